"""Contrastive training of image towers into the frozen MiniLM text space (``xmodal train``).

Lives apart from inference: nothing under xmodal/ except the CLI imports this package.
"""
