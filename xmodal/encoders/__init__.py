"""Encoders: map media of one or more modalities into a shared, L2-normalised vector space."""

from xmodal.encoders.base import Encoder, EncoderInfo

__all__ = ["Encoder", "EncoderInfo"]
