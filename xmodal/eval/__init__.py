"""Retrieval evaluation: ranking metrics (ranx-compatible) and the ``xmodal eval`` harness."""
