"""A BERT sentence encoder in plain PyTorch, for sentence-transformers model folders that are a
BERT with mean pooling (all-MiniLM-L6-v2 is one).

Why not ``SentenceTransformer`` itself: importing ``sentence_transformers`` pulls in
``transformers``, scikit-learn and SciPy, which is most of a CLI search's cold start (see
BENCHMARKS.md); this module needs only ``torch``, ``tokenizers`` and ``safetensors``. It reads
the same files (``config.json``, ``model.safetensors``, ``tokenizer.json``,
``sentence_bert_config.json``, ``modules.json``, ``1_Pooling/config.json``) and gives the same
vectors (tests compare it with ``SentenceTransformer`` on the bundled model). Folders it does
not understand (:func:`plain_bert_folder` is False) are loaded with ``SentenceTransformer``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# config.json values (with their defaults) this implementation computes exactly
_CONFIG = {
    "model_type": ("bert", None),
    "hidden_act": ("gelu", None),
    "position_embedding_type": ("absolute", "absolute"),
    "is_decoder": (False, False),
    "add_cross_attention": (False, False),
}
# sentence_bert_config.json keys and the values that leave SentenceTransformer's encoding as
# ours (v6 writes the last three; anything else there, e.g. tokenizer or model arguments, is
# left to SentenceTransformer)
_ST_CONFIG = {
    "do_lower_case": False,
    "transformer_task": "feature-extraction",
    "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
    "module_output_name": "token_embeddings",
}
_MODULES = ("Transformer", "Pooling", "Normalize")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _optional_json(path: Path) -> dict[str, Any]:
    data = _read_json(path) if path.is_file() else {}
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} is not an object")
    return data


def plain_bert_folder(path: str | Path) -> bool:
    """True when :class:`BertSentenceModel` computes what ``SentenceTransformer`` would for the
    folder (see :func:`why_not_plain_bert`)."""
    return why_not_plain_bert(path) is None


def why_not_plain_bert(path: str | Path) -> str | None:
    """None for a sentence-transformers folder holding a float32 BERT encoder (exact GELU,
    absolute positions) with a BERT WordPiece ``tokenizer.json``, mean-token pooling and an
    optional final Normalize, and no prompts, truncated dimensions or extra arguments; else the
    first reason it is not one. Strict on purpose: a folder it refuses is still loaded, by
    ``SentenceTransformer``."""
    root = Path(path)
    try:
        return _why_not(root)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        return f"unreadable: {exc}"


def _why_not(root: Path) -> str | None:
    config = _read_json(root / "config.json")
    for key, (value, default) in _CONFIG.items():
        if config.get(key, default) != value:
            return f"config.json {key} is {config.get(key, default)!r}, not {value!r}"
    if config.get("dtype", config.get("torch_dtype")) not in (None, "float32"):
        return "config.json asks for a dtype other than float32"
    modules = _read_json(root / "modules.json")
    types = [str(m["type"]) for m in modules]
    if not all(t.startswith("sentence_transformers.") for t in types):
        return "modules.json has a module from outside sentence-transformers"
    if [t.rsplit(".", 1)[-1] for t in types] not in (list(_MODULES[:2]), list(_MODULES)):
        return "modules are not Transformer, Pooling[, Normalize]"
    if modules[0].get("path", "") != "":
        return "the Transformer module is not at the folder's root"
    if not _mean_pooling(_read_json(root / modules[1]["path"] / "config.json")):
        return "pooling is not the mean of the tokens"
    if len(modules) == 3:
        norm = _optional_json(root / str(modules[2].get("path", "")) / "config.json")
        if norm.get("module_input_name", "sentence_embedding") != "sentence_embedding":
            return "Normalize does not act on the sentence embedding"
    st_config = _optional_json(root / "sentence_bert_config.json")
    for key, value in st_config.items():
        if key != "max_seq_length" and _ST_CONFIG.get(key, object()) != value:
            return f"sentence_bert_config.json sets {key}={value!r}"
    model_config = _optional_json(root / "config_sentence_transformers.json")
    if model_config.get("default_prompt_name") or any((model_config.get("prompts") or {}).values()):
        return "the model has prompts"
    if model_config.get("truncate_dim"):
        return "the model truncates its vectors"
    if model_config.get("model_type", "SentenceTransformer") != "SentenceTransformer":
        return f"model_type {model_config['model_type']!r}"
    return _why_not_tokenizer(root) or _why_not_weights(root / "model.safetensors")


def _why_not_tokenizer(root: Path) -> str | None:
    """The fast tokenizer file must be the BERT pipeline that ``tokenizer_config.json`` describes
    (transformers builds BertTokenizer from the latter), padding and truncating on the right."""
    tok = _read_json(root / "tokenizer.json")
    norm, pre, model = tok.get("normalizer") or {}, tok.get("pre_tokenizer") or {}, tok.get("model") or {}
    if (norm.get("type"), pre.get("type"), model.get("type")) != ("BertNormalizer", "BertPreTokenizer", "WordPiece"):
        return "tokenizer.json is not a BERT WordPiece tokenizer"
    if (tok.get("post_processor") or {}).get("type") not in ("TemplateProcessing", "BertProcessing"):
        return "tokenizer.json does not add [CLS] and [SEP]"
    tc = _optional_json(root / "tokenizer_config.json")
    if tc.get("tokenizer_class") not in (None, "BertTokenizer", "BertTokenizerFast"):
        return f"tokenizer_class {tc['tokenizer_class']!r}"
    if tc.get("padding_side", "right") != "right" or tc.get("truncation_side", "right") != "right":
        return "the tokenizer pads or truncates on the left"
    described = (tc.get("do_lower_case", True), tc.get("strip_accents"), tc.get("tokenize_chinese_chars", True))
    if described != (norm.get("lowercase"), norm.get("strip_accents"), norm.get("handle_chinese_chars")):
        return "tokenizer.json and tokenizer_config.json disagree on normalisation"
    return None


def _why_not_weights(path: Path) -> str | None:
    """Every tensor float32 (integer buffers aside): read from the safetensors header alone."""
    with open(path, "rb") as fh:
        size = int.from_bytes(fh.read(8), "little")
        if not 0 < size < 100_000_000:
            return "model.safetensors has no valid header"
        header = json.loads(fh.read(size))
    dtypes = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    return None if dtypes <= {"F32", "I64"} else f"weights stored as {sorted(dtypes - {'F32', 'I64'})}"


def _mean_pooling(pooling: dict[str, Any]) -> bool:
    """Pooling config of either sentence-transformers format: ``pooling_mode_mean_tokens``
    (up to v5) or ``pooling_mode: "mean"`` (v6)."""
    if "pooling_mode" in pooling:
        mode = pooling["pooling_mode"]
        return mode == "mean" or mode == ["mean"]
    modes = {k: v for k, v in pooling.items() if k.startswith("pooling_mode") and v}
    return modes == {"pooling_mode_mean_tokens": True}


def _max_seq_length(root: Path, limit: int) -> int:
    """``max_seq_length`` of ``sentence_bert_config.json`` (up to v5), else the tokenizer's
    ``model_max_length`` (v6 keeps it there), never past the position table."""
    for name, key in (("sentence_bert_config.json", "max_seq_length"), ("tokenizer_config.json", "model_max_length")):
        if (root / name).is_file():
            value = _read_json(root / name).get(key)
            if isinstance(value, int) and value > 0:
                return min(value, limit)
    return limit


def _model_class():  # type: ignore[no-untyped-def]
    """The network, built on first use so importing this module does not import torch.
    Submodule names follow the Hugging Face checkpoint, so its state dict loads as is."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class DenseNorm(nn.Module):  # ``attention.output`` and ``output``: dense, residual, LayerNorm
        def __init__(self, d_in: int, d_out: int, eps: float) -> None:
            super().__init__()
            self.dense = nn.Linear(d_in, d_out)
            self.LayerNorm = nn.LayerNorm(d_out, eps=eps)

        def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
            return self.LayerNorm(self.dense(x) + residual)

    class SelfAttention(nn.Module):
        def __init__(self, hidden: int, heads: int) -> None:
            super().__init__()
            self.heads = heads
            self.query = nn.Linear(hidden, hidden)
            self.key = nn.Linear(hidden, hidden)
            self.value = nn.Linear(hidden, hidden)

        def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
            b, n, d = x.shape

            def split(t: torch.Tensor) -> torch.Tensor:
                return t.view(b, n, self.heads, d // self.heads).transpose(1, 2)

            ctx = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)), keep)
            return ctx.transpose(1, 2).reshape(b, n, d)

    class Attention(nn.Module):
        def __init__(self, hidden: int, heads: int, eps: float) -> None:
            super().__init__()
            self.self = SelfAttention(hidden, heads)
            self.output = DenseNorm(hidden, hidden, eps)

        def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
            return self.output(self.self(x, keep), x)

    class Intermediate(nn.Module):
        def __init__(self, hidden: int, inner: int) -> None:
            super().__init__()
            self.dense = nn.Linear(hidden, inner)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.gelu(self.dense(x))

    class Layer(nn.Module):
        def __init__(self, hidden: int, heads: int, inner: int, eps: float) -> None:
            super().__init__()
            self.attention = Attention(hidden, heads, eps)
            self.intermediate = Intermediate(hidden, inner)
            self.output = DenseNorm(inner, hidden, eps)

        def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
            x = self.attention(x, keep)
            return self.output(self.intermediate(x), x)

    class Embeddings(nn.Module):
        def __init__(self, config: dict[str, Any], hidden: int, eps: float) -> None:
            super().__init__()
            self.word_embeddings = nn.Embedding(int(config["vocab_size"]), hidden)
            self.position_embeddings = nn.Embedding(int(config["max_position_embeddings"]), hidden)
            self.token_type_embeddings = nn.Embedding(int(config.get("type_vocab_size", 2)), hidden)
            self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

        def forward(self, ids: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
            # the checkpoint's order of additions, so the vectors match it to the last bit
            x = self.word_embeddings(ids) + self.token_type_embeddings(types)
            positions = torch.arange(ids.shape[1], device=ids.device)
            return self.LayerNorm(x + self.position_embeddings(positions)[None])

    class Encoder(nn.Module):
        def __init__(self, config: dict[str, Any], hidden: int, eps: float) -> None:
            super().__init__()
            heads, inner = int(config["num_attention_heads"]), int(config["intermediate_size"])
            self.layer = nn.ModuleList(
                Layer(hidden, heads, inner, eps) for _ in range(int(config["num_hidden_layers"]))
            )

        def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
            for layer in self.layer:
                x = layer(x, keep)
            return x

    class Bert(nn.Module):
        def __init__(self, config: dict[str, Any]) -> None:
            super().__init__()
            hidden, eps = int(config["hidden_size"]), float(config.get("layer_norm_eps", 1e-12))
            self.embeddings = Embeddings(config, hidden, eps)
            self.encoder = Encoder(config, hidden, eps)

        def forward(self, ids: torch.Tensor, types: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            keep = None if bool(mask.all()) else mask[:, None, None, :].bool()  # True = attend
            return self.encoder(self.embeddings(ids, types), keep)

    return Bert


class BertSentenceModel:
    """Tokenize → BERT → mean over real tokens → (optionally) unit length."""

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        root = Path(path)
        reason = why_not_plain_bert(root)
        if reason is not None:
            raise ValueError(f"{root}: not a plain BERT sentence encoder ({reason})")
        config = _read_json(root / "config.json")
        self.normalize = len(_read_json(root / "modules.json")) == 3
        self.max_seq_length = _max_seq_length(root, int(config["max_position_embeddings"]))
        self.dim = int(config["hidden_size"])
        self.tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.max_seq_length)
        pad_id = int(config.get("pad_token_id") or 0)
        pad_token = self.tokenizer.id_to_token(pad_id) or "[PAD]"
        self.tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
        self.model = _model_class()(config)
        stored = {k.removeprefix("bert."): v for k, v in load_file(str(root / "model.safetensors")).items()}
        keep = ("embeddings.", "encoder.")
        weights = {k: v for k, v in stored.items() if k.startswith(keep) and k != "embeddings.position_ids"}
        self.model.load_state_dict(weights, strict=True)
        self.model.eval().to(device)
        self.device = device
        self._torch = torch

    def encode(self, texts: Sequence[str], normalize_embeddings: bool = False) -> np.ndarray:
        """Float32 (n, dim) sentence vectors. ``normalize_embeddings`` normalises once more after
        the folder's own Normalize, as ``SentenceTransformer.encode`` does, so the vectors are
        bit-identical to what it gives for the same batch (no stored vector changes)."""
        torch = self._torch
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self.tokenizer.encode_batch([str(t).strip() for t in texts])
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.long, device=self.device)
        types = torch.tensor([e.type_ids for e in encodings], dtype=torch.long, device=self.device)
        mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long, device=self.device)
        with torch.inference_mode():
            tokens = self.model(ids, types, mask)
            weights = mask.unsqueeze(-1).to(tokens.dtype)
            total = (tokens * weights).sum(dim=1, dtype=torch.float32)
            pooled = total / weights.sum(dim=1, dtype=torch.float32).clamp(min=1e-9)
            for _ in range(int(self.normalize) + int(normalize_embeddings)):
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.float().cpu().numpy()


__all__ = ["BertSentenceModel", "plain_bert_folder", "why_not_plain_bert"]
