"""Extractors turn media into text the hub encoder can read: OCR for images, ASR for speech."""
