"""Tiny randomly initialised CLIP / SigLIP / CLAP checkpoints, built offline for tests.

Each builder writes a complete ``save_pretrained`` directory (config, weights, tokenizer and
processor files) that ``xmodal.encoders.registry`` can load by spec (``clip:DIR``) or by bare
directory. The tokenizers are real transformers tokenizers over tiny vocabularies made here: a
character-level byte-BPE for CLIP and CLAP (RoBERTa), and a SentencePiece model trained on a
few sentences for SigLIP (needs the ``sentencepiece`` package). Nothing is downloaded.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xmodal.encoders.hf_common import quiet_transformers

LETTERS = "abcdefghijklmnopqrstuvwxyz"
SIGLIP_CORPUS = [
    "a photo of a cat",
    "a photo of a dog",
    "a red square on a blue background",
    "the quick brown fox jumps over the lazy dog",
    "green trees and a yellow sun",
]


def _quietly(builder: Callable[..., Path]) -> Callable[..., Path]:
    """Build without transformers' warnings (no torchvision, ...) and progress bars."""

    @functools.wraps(builder)
    def wrapper(*args: Any, **kwargs: Any) -> Path:
        with quiet_transformers():
            return builder(*args, **kwargs)

    return wrapper


def _clip_tokenizer() -> object:
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in LETTERS:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    # a few merges, so words are more than single characters
    merges = [("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>"), ("r", "e"), ("re", "d</w>")]
    for token in ("ca", "cat</w>", "do", "dog</w>", "re", "red</w>"):
        vocab[token] = len(vocab)
    # transformers hints list[str], but tokenizers needs (left, right) pairs at run time
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=16)  # type: ignore[arg-type]


@_quietly
def make_tiny_clip(directory: Path, seed: int = 0, projection_dim: int = 8) -> Path:
    """A CLIP with 1-layer towers, 32x32 images in 8x8 patches, a 16-token text window."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tokenizer = _clip_tokenizer()
    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),  # type: ignore[arg-type]
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 1,
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=projection_dim,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    return directory


def _siglip_tokenizer(workdir: Path) -> object:
    import sentencepiece as spm
    from transformers import SiglipTokenizer

    workdir.mkdir(parents=True, exist_ok=True)
    prefix = workdir / "spiece"
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(SIGLIP_CORPUS * 4),
        model_prefix=str(prefix),
        vocab_size=48,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        character_coverage=1.0,
        hard_vocab_limit=False,
        minloglevel=2,
        num_threads=1,
    )
    return SiglipTokenizer(vocab_file=str(prefix) + ".model", model_max_length=16)


@_quietly
def make_tiny_siglip(directory: Path, seed: int = 0) -> Path:
    """A SigLIP with 1-layer towers, 32x32 images, 16-d embeddings, text padded to 16 tokens."""
    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    tokenizer = _siglip_tokenizer(directory.parent / f".{directory.name}-spm")
    config = SiglipConfig(
        text_config={
            "vocab_size": len(tokenizer),  # type: ignore[arg-type]
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "pad_token_id": tokenizer.pad_token_id,  # type: ignore[attr-defined]
            "eos_token_id": tokenizer.eos_token_id,  # type: ignore[attr-defined]
            "bos_token_id": None,
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
    )
    torch.manual_seed(seed)
    model = SiglipModel(config).eval()
    image_processor = SiglipImageProcessor(size={"height": 32, "width": 32})
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    return directory


def _siglip2_tokenizer() -> object:
    from transformers import Siglip2Tokenizer

    vocab: dict[str, int] = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4, "\u2581": 5}
    merges: list[tuple[str, str]] = []
    for c in LETTERS:
        vocab[c] = len(vocab)
        vocab["\u2581" + c] = len(vocab)
        merges.append(("\u2581", c))
    return Siglip2Tokenizer(vocab=vocab, merges=merges, model_max_length=64)  # type: ignore[arg-type]


@_quietly
def make_tiny_siglip2(directory: Path, seed: int = 0) -> Path:
    """A SigLIP 2 (NaFlex): 1-layer towers, 16-d embeddings, Gemma-style BPE over letters.

    Siglip2Processor imposes 16-pixel patches and a 256-patch budget at call time, whatever the
    saved image processor says, so the vision tower is built for exactly that.
    """
    import torch
    from transformers import Siglip2Config, Siglip2ImageProcessor, Siglip2Model, Siglip2Processor

    tokenizer = _siglip2_tokenizer()
    config = Siglip2Config(
        text_config={
            "vocab_size": len(tokenizer),  # type: ignore[arg-type]
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 64,  # Siglip2Processor pads text to 64 tokens
            "pad_token_id": 0,
            "eos_token_id": 1,
            "bos_token_id": 2,
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_patches": 256,
            "patch_size": 16,
        },
    )
    torch.manual_seed(seed)
    model = Siglip2Model(config).eval()
    image_processor = Siglip2ImageProcessor(patch_size=16, max_num_patches=256)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    Siglip2Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    return directory


def _roberta_tokenizer() -> object:
    from transformers import RobertaTokenizer

    vocab: dict[str, int] = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4, "\u0120": 5}
    merges: list[tuple[str, str]] = []
    for c in LETTERS:
        vocab[c] = len(vocab)
        vocab["\u0120" + c] = len(vocab)
        merges.append(("\u0120", c))
    return RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=32)  # type: ignore[arg-type]


@_quietly
def make_tiny_clap(directory: Path, seed: int = 0, fusion: bool = False) -> Path:
    """A CLAP with a 1-layer text tower and a 2-stage HTSAT audio tower over a 1 s window.

    The feature extractor keeps CLAP's 48 kHz rate and 10 ms hop, so the window is 101 frames.
    Unfused: 16 mel bins, random-crop truncation (like laion/clap-htsat-unfused). Fused: 64 mel
    bins (the extractor's fusion path assumes 64) and feature fusion (like clap-htsat-fused).
    """
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

    tokenizer = _roberta_tokenizer()
    mels = 64 if fusion else 16
    audio_config: dict[str, Any] = {
        "num_mel_bins": mels,
        "spec_size": 128 if fusion else 64,  # frames must fit spec_size * (spec_size // mels)
        "window_size": 4,
        "patch_size": 4,
        "patch_stride": [4, 4],
        "depths": [1, 1],
        "num_attention_heads": [2, 2],
        "patch_embeds_hidden_size": 16,
        "hidden_size": 32,
        "projection_dim": 8,
        "enable_fusion": fusion,
    }
    if fusion:
        audio_config["fusion_type"] = "aff_2d"
    config = ClapConfig(
        text_config={
            "vocab_size": len(tokenizer),  # type: ignore[arg-type]
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 34,
            "projection_dim": 8,
        },
        audio_config=audio_config,
        projection_dim=8,
    )
    torch.manual_seed(seed)
    model = ClapModel(config).eval()
    features = ClapFeatureExtractor(
        feature_size=mels,
        sampling_rate=48_000,
        hop_length=480,
        max_length_s=1,
        fft_window_size=1024 if fusion else 256,  # 64 mel filters need the full 1024-point FFT
        truncation="fusion" if fusion else "rand_trunc",
        padding="repeatpad",
    )
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    ClapProcessor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(directory)
    return directory
