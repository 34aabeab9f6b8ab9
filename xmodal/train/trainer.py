"""The contrastive trainer: an image tower (CNN on pixels, or an MLP adapter over a frozen base
encoder's image features) trained against frozen text vectors with symmetric InfoNCE.

Per epoch it reports loss, temperature, validation Recall@K both ways, alignment and uniformity,
plus any extra evaluators (held-out sets); the best epoch by ``select`` is saved atomically as
soon as it is reached, so Ctrl-C or a crash never loses or corrupts it.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xmodal.encoders.base import Encoder
from xmodal.encoders.minilm import MINILM_SPACE
from xmodal.encoders.pictogram import PictogramConfig, build_network, images_to_array
from xmodal.errors import InvalidArgumentError
from xmodal.eval.metrics import dense_metrics
from xmodal.train.augment import AugmentConfig, augment_batch, composite_white
from xmodal.train.checkpoint import check_out_dir, save_model_dir
from xmodal.train.data import PairSet, fit_content_rgba
from xmodal.train.losses import alignment, info_nce, uniformity, vocab_loss

ImageEncodeFn = Callable[[np.ndarray], np.ndarray]
Evaluator = Callable[[ImageEncodeFn], dict[str, float]]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 100
    val_fraction: float = 0.05
    patience: int = 4
    seed: int = 0
    threads: int = 1
    init_temperature: float = 0.07
    steps_per_epoch: int = 0  # 0: one pass over the training pairs
    # 0: no limit; else no epoch starts that would end past it (judged by the mean epoch so far)
    time_budget_s: float = 0.0
    select: str = "val_t2i_recall@10"
    # > 0 adds image -> all-captions cross-entropy (every caption of the training set is a
    # class; all captions of the image are its positives; cheap because the text side is
    # frozen), weighted against the in-batch InfoNCE
    vocab_loss_weight: float = 0.0
    # training-time speed only (the saved weights are float32 and inference is unchanged):
    # bfloat16 autocast and channels-last convolutions, ~2.5-3x faster on CPUs with AVX-512 BF16
    bf16: bool = False
    # share of each batch drawn from groups of images whose names are alike ("arrow right",
    # "arrow right circle", "arrow bar right"), so the model must tell near neighbours apart
    hard_batch_fraction: float = 0.0
    hard_group_size: int = 32
    # first epoch with look-alike batches (1: all of them); a later start leaves the earlier
    # epochs exactly as without them (the groups are made when first needed)
    hard_batch_from_epoch: int = 1
    # > 0 adds Wang & Isola's alignment E||img - text||^2 over the batch's pairs: InfoNCE with a
    # learned temperature only ranks, and leaves true pairs at a cosine (~0.2) that unrelated
    # texts reach too; pulling pairs together lets picture hits compete with text hits in one
    # mixed result list
    align_loss_weight: float = 0.0
    # save the model with the modality-gap shift (see PictogramConfig.gap_shift); rankings
    # within pictures are unchanged, mixed picture/text result lists become comparable
    gap_shift: bool = True
    # chance of training on the image's first caption (its name) rather than a random one
    first_caption_p: float = 0.0
    # > 0: draw training images with probability n^-group_balance, n = the images that share
    # its source and name (Material ships each icon in 4-6 near-identical variants, an emoji
    # set each drawing once); 1 gives every (source, name) the same share of the steps
    group_balance: float = 0.0
    # > 0: evaluate, select and save an exponential moving average of the weights (and of the
    # batch-norm statistics) with this decay per step, rather than the last step's weights
    ema_decay: float = 0.0
    # > 0: that share of each InfoNCE target comes from caption-caption similarity (softmax at
    # soft_target_temperature) instead of all on the pair, so near-synonyms are not negatives
    soft_targets: float = 0.0
    soft_target_temperature: float = 0.05
    # lower bound of the learned temperature (CLIP's 0.01 = logit scale 100)
    min_temperature: float = 0.01
    # where the steps run: "cpu", "cuda", "cuda:N", "mps", or "auto" (the first GPU torch sees,
    # else the CPU); augmentation runs there too, and the saved weights are the same float32
    # CPU tensors whatever it is
    device: str = "cpu"
    progress: bool = True
    # "" names the model by a digest of its weights and config (sha256-...); the recipe sets "8"
    version: str = ""
    arch: PictogramConfig = field(default_factory=PictogramConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        # settings often come from JSON (--init, the recipe): a wrong type gets one clear line
        # here, not a TypeError deep in training
        for f in fields(self):
            default, value = f.default, getattr(self, f.name)
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif isinstance(default, float):
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            elif isinstance(default, str):
                ok = isinstance(value, str)
            else:
                continue
            if not ok:
                kind = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}[type(default)]
                raise InvalidArgumentError(f"training setting {f.name} must be {kind}, got {value!r}")
        if not 0 <= self.ema_decay < 1 or self.group_balance < 0:
            raise InvalidArgumentError(
                f"need 0 <= ema_decay < 1 and group_balance >= 0 (got {self.ema_decay}, {self.group_balance})"
            )
        if not 0 <= self.soft_targets < 1 or self.soft_target_temperature <= 0:
            raise InvalidArgumentError(
                "need 0 <= soft_targets < 1 and soft_target_temperature > 0 "
                f"(got {self.soft_targets}, {self.soft_target_temperature})"
            )
        if not re.fullmatch(r"cpu|mps|auto|cuda(:\d+)?", self.device):
            raise InvalidArgumentError(f"training device must be cpu, cuda, cuda:N, mps or auto, got {self.device!r}")
        if not (self.time_budget_s >= 0 and math.isfinite(self.time_budget_s)):
            raise InvalidArgumentError(
                f"time_budget_s must be 0 (no limit) or a positive number, got {self.time_budget_s}"
            )
        if not 0 < self.min_temperature <= self.init_temperature:
            raise InvalidArgumentError(
                f"need 0 < min_temperature <= init_temperature (got {self.min_temperature}, {self.init_temperature})"
            )


@dataclass
class TrainReport:
    out: Path
    epochs: list[dict[str, Any]]
    best_epoch: int = 0
    best_score: float = -math.inf
    interrupted: bool = False
    stopped_early: bool = False
    seconds: float = 0.0


class _Tower:
    """Image tower being trained plus how to feed it, for training steps and evaluation."""

    def __init__(
        self, cfg: TrainConfig, pairs: PairSet, base: Encoder | None, base_spec: str, device: torch.device
    ) -> None:
        self.cfg = cfg
        self.base = base
        self.device = device
        self.features: torch.Tensor | None = None
        # the gap-shift layer is added after training (with_gap_shift), whatever the arch says;
        # a hubness bank and a memory are fitted after that (xmodal.train.hubness / .memory), so a
        # reused config drops them
        arch = replace(cfg.arch, gap_shift=False, hubness_bank=0, memory_size=0)
        if base is not None:
            self.features = torch.from_numpy(self._base_features(pairs.pixels)).to(device)
            arch = PictogramConfig(
                **{
                    **arch.to_dict(),
                    "kind": "adapter",
                    "base": base_spec or f"{base.name}:{base.ref}",
                    "stages": arch.stages,
                    "in_dim": int(base.dim),
                }
            )
        self.arch = arch
        self.net = build_network(arch).to(device)
        if cfg.bf16 and arch.kind == "cnn":
            self.net = self.net.to(memory_format=torch.channels_last)
        self.ema: torch.optim.swa_utils.AveragedModel | None = None
        if cfg.ema_decay > 0:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(self.net, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
        pixels = pairs.pixels
        if arch.kind == "cnn" and arch.fit_content > 0:
            pixels = fit_content_rgba(pixels, arch.fit_content)
        self.pixels = torch.from_numpy(pixels).to(device)
        self.mono = torch.from_numpy(pairs.mono_mask()).to(device)

    @property
    def eval_net(self) -> torch.nn.Module:
        """The weights that are evaluated and saved: the moving average when there is one."""
        return self.ema.module if self.ema is not None else self.net

    def after_step(self) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.net)

    def _base_features(self, pixels: np.ndarray) -> np.ndarray:
        from PIL import Image

        assert self.base is not None
        rgb = composite_white(pixels)
        return self.base.encode_images([Image.fromarray(x) for x in rgb])

    def train_inputs(self, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """``idx``: the batch's image indices, on the training device."""
        if self.features is not None:
            return self.features[idx]
        return augment_batch(self.pixels[idx], self.mono[idx], self.arch.image_size, self.cfg.augment, gen)

    def forward_train(self, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        x = self.train_inputs(idx, gen)
        if not self.cfg.bf16:
            return self.net(x)
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            return self.net(x)

    def encode(self, pixels: np.ndarray) -> np.ndarray:
        """Unit vectors for RGBA pixels, through the same preprocessing as inference."""
        from PIL import Image

        net = self.eval_net
        net.eval()
        out = []
        with torch.inference_mode():
            for s in range(0, len(pixels), 256):
                chunk = pixels[s : s + 256]
                if self.base is not None:
                    x = torch.from_numpy(self._base_features(chunk))
                else:
                    rgb = composite_white(chunk)
                    x = torch.from_numpy(
                        images_to_array([Image.fromarray(p) for p in rgb], self.arch.image_size, self.arch.fit_content)
                    )
                out.append(torch.nn.functional.normalize(net(x.to(self.device)), dim=1).float().cpu().numpy())
        net.train()
        return np.concatenate(out) if out else np.zeros((0, self.arch.embed_dim), np.float32)


def embed_captions(pairs: PairSet, text_encoder: Encoder) -> tuple[list[str], np.ndarray, list[list[int]]]:
    """Unique caption texts, their vectors (computed once) and each image's caption ids."""
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(c, len(vocab)) for c in caps] for caps in pairs.captions]
    texts = list(vocab)
    return texts, text_encoder.encode_text(texts), ids


def validation_metrics(img: np.ndarray, text_vecs: np.ndarray, ids: Sequence[list[int]]) -> dict[str, float]:
    """t2i: each distinct first caption finds the images that carry it; i2t: each image finds its captions."""
    firsts = sorted({c[0] for c in ids})
    pos_t2i = np.array([[q in c for c in ids] for q in firsts], dtype=bool)
    t2i = dense_metrics(text_vecs[firsts] @ img.T, pos_t2i)
    vocab = sorted({t for c in ids for t in c})
    col = {t: j for j, t in enumerate(vocab)}
    pos_i2t = np.zeros((len(ids), len(vocab)), dtype=bool)
    for i, c in enumerate(ids):
        pos_i2t[i, [col[t] for t in c]] = True
    i2t = dense_metrics(img @ text_vecs[vocab].T, pos_i2t)
    first_vecs = torch.from_numpy(text_vecs[[c[0] for c in ids]])
    img_t = torch.from_numpy(img)
    return {
        **{f"val_t2i_{k}": v for k, v in t2i.items()},
        **{f"val_i2t_{k}": v for k, v in i2t.items()},
        "val_alignment": alignment(img_t, first_vecs),
        "val_uniformity": uniformity(img_t[:2000]),
    }


def train(
    pairs: PairSet,
    text_encoder: Encoder,
    out: Path,
    cfg: TrainConfig,
    evaluators: Sequence[Evaluator] = (),
    base: Encoder | None = None,
    log: Callable[[str], None] | None = None,
    base_spec: str = "",
) -> TrainReport:
    """Train and save the best epoch to ``out``; returns the per-epoch report. Uses
    ``cfg.threads`` torch threads and gives the caller's thread count back afterwards."""
    previous_threads = torch.get_num_threads()
    try:
        return _train(pairs, text_encoder, out, cfg, evaluators, base, log, base_spec)
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    pairs: PairSet,
    text_encoder: Encoder,
    out: Path,
    cfg: TrainConfig,
    evaluators: Sequence[Evaluator],
    base: Encoder | None,
    log: Callable[[str], None] | None,
    base_spec: str,
) -> TrainReport:
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    out = Path(out)
    check_out_dir(out)
    if len(pairs) < 2:
        raise InvalidArgumentError("contrastive training needs at least 2 distinct images")
    if base is not None and base.space == MINILM_SPACE and base.name == "pictogram":
        log("note: the base is itself a MiniLM-space tower; training an adapter on top of it")
    device = resolve_device(cfg.device)
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    t0 = time.monotonic()

    texts, text_vecs, cap_ids = embed_captions(pairs, text_encoder)
    if text_encoder.space != MINILM_SPACE:
        log(f"note: text space is {text_encoder.space!r}, the model card records it")
    order = rng.permutation(len(pairs))
    n_val = min(max(1, round(len(pairs) * cfg.val_fraction)), len(pairs) - 1)
    val_idx, train_idx = np.sort(order[:n_val]), order[n_val:]
    tower = _Tower(cfg, pairs, base, base_spec, device)
    text_t = torch.from_numpy(text_vecs).to(device)
    logit_scale = torch.nn.Parameter(torch.tensor(math.log(1.0 / cfg.init_temperature), device=device))
    opt = torch.optim.AdamW(
        [{"params": tower.net.parameters()}, {"params": [logit_scale], "weight_decay": 0.0}],
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
    )
    bs = min(cfg.batch_size, len(train_idx))
    steps = cfg.steps_per_epoch or max(1, len(train_idx) // bs)
    total = steps * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, total, cfg.warmup_steps))
    report = TrainReport(out=out, epochs=[])
    weights = balance_weights(pairs, train_idx, cfg.group_balance)
    groups: list[np.ndarray] | None = None
    card = {
        "encoder": "pictogram",
        "version": cfg.version,
        "space": text_encoder.space,
        "dim": tower.arch.embed_dim,
        "text_encoder": text_encoder.info().to_dict(),
        "base": base.info().to_dict() if base is not None else None,
        "train_config": _jsonable(asdict(cfg)),
        "n_pairs": len(pairs),
        "n_captions": len(texts),
    }
    log(
        f"{len(pairs)} images, {len(texts)} captions; {len(train_idx)} train / {n_val} val; "
        f"{steps} steps x {cfg.epochs} epochs of {bs}"
    )
    bad_epochs = 0
    loop_t0 = time.monotonic()
    try:
        for epoch in range(1, cfg.epochs + 1):
            tower.net.train()
            if groups is None and cfg.hard_batch_fraction > 0 and epoch >= cfg.hard_batch_from_epoch:
                groups = name_groups(text_vecs, cap_ids, train_idx, cfg, rng)
            losses = []
            bar = _progress(steps, f"epoch {epoch}/{cfg.epochs}", cfg.progress)
            pos = rng.permutation(train_idx) if weights is None else rng.choice(train_idx, steps * bs, p=weights)
            for step in range(steps):
                start = (step * bs) % max(1, len(pos) - bs + 1)
                idx = np.sort(pos[start : start + bs])
                if groups is not None:
                    idx = hard_batch(idx, groups, cfg.hard_batch_fraction, rng)
                choice = np.array([pick_caption(cap_ids[i], cfg.first_caption_p, rng) for i in idx])
                idx_t, choice_t = torch.from_numpy(idx).to(device), torch.from_numpy(choice).to(device)
                img = torch.nn.functional.normalize(tower.forward_train(idx_t, gen).float(), dim=1)
                loss = info_nce(
                    img,
                    text_t[choice_t],
                    choice_t,
                    logit_scale,
                    idx_t,
                    soft=cfg.soft_targets,
                    soft_temperature=cfg.soft_target_temperature,
                )
                if cfg.align_loss_weight > 0:
                    loss = loss + cfg.align_loss_weight * (img - text_t[choice_t]).pow(2).sum(dim=1).mean()
                if cfg.vocab_loss_weight > 0:
                    loss = loss + cfg.vocab_loss_weight * vocab_loss(
                        img, text_t, [cap_ids[i] for i in idx], logit_scale
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                tower.after_step()
                sched.step()
                with torch.no_grad():
                    logit_scale.clamp_(0, -math.log(cfg.min_temperature))
                losses.append(float(loss.detach()))
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
            if bar is not None:
                bar.close()
            row = _epoch_row(epoch, losses, logit_scale, opt, t0, tower, pairs, val_idx, text_vecs, cap_ids)
            for ev in evaluators:
                row.update(ev(tower.encode))
            report.epochs.append(row)
            log(_format_row(row))
            score = float(row.get(cfg.select, -math.inf))
            if score > report.best_score:
                report.best_score, report.best_epoch, bad_epochs = score, epoch, 0
                if cfg.gap_shift or cfg.arch.gap_shift:
                    state, arch = with_gap_shift(
                        tower, pairs, train_idx, text_vecs, cap_ids, np.random.default_rng(cfg.seed)
                    )
                else:
                    state, arch = _cpu_state(tower.eval_net), tower.arch
                save_model_dir(
                    out,
                    state,
                    arch,
                    {**card, "best_epoch": epoch, "metrics": row},
                    report.epochs,
                )
            else:
                bad_epochs += 1
                if bad_epochs >= cfg.patience:
                    report.stopped_early = True
                    log(f"early stop: {cfg.select} did not improve for {cfg.patience} epochs")
                    break
            if epoch < cfg.epochs and next_epoch_overruns(cfg.time_budget_s, t0, loop_t0, epoch):
                log(f"time budget: epoch {epoch + 1} would end past {cfg.time_budget_s:g} s; stopping")
                break
    except KeyboardInterrupt:
        report.interrupted = True
        log(
            "interrupted: "
            + (
                f"kept the best checkpoint (epoch {report.best_epoch}) in {out}"
                if report.best_epoch
                else "no epoch finished, nothing saved"
            )
        )
    report.seconds = time.monotonic() - t0
    return report


def with_gap_shift(  # type: ignore[no-untyped-def]
    tower, pairs: PairSet, train_idx: np.ndarray, text_vecs: np.ndarray, cap_ids: Sequence[list[int]], rng
) -> tuple[dict[str, torch.Tensor], PictogramConfig]:
    """The weights and config with a GapShift layer whose vector is the mean first-caption
    vector minus the mean image vector over (up to 4,096) training pairs."""
    sample = np.sort(rng.choice(train_idx, size=min(len(train_idx), 4096), replace=False))
    gap = text_vecs[[cap_ids[i][0] for i in sample]].mean(axis=0) - tower.encode(pairs.pixels[sample]).mean(axis=0)
    state = _cpu_state(tower.eval_net)
    state[f"{len(tower.net)}.gap"] = torch.from_numpy(gap.astype(np.float32))
    return state, PictogramConfig.from_dict({**tower.arch.to_dict(), "gap_shift": True})


def next_epoch_overruns(budget_s: float, t0: float, loop_t0: float, done: int, now: float | None = None) -> bool:
    """Would one more epoch, as long as the mean of the ``done`` ones since ``loop_t0``, end past
    ``budget_s`` counted from ``t0``? Never with no budget (0). Stopping *before* such an epoch
    keeps the whole run inside the budget instead of one epoch past it."""
    if not budget_s:
        return False
    now = time.monotonic() if now is None else now
    return now - t0 + (now - loop_t0) / max(1, done) > budget_s


def resolve_device(name: str) -> torch.device:
    """The torch device for TrainConfig.device; a GPU that is asked for but absent is one clear error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgumentError(f"training device {name!r}: torch sees no CUDA GPU here (use cpu or auto)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise InvalidArgumentError(f"training device {name!r}: torch sees {torch.cuda.device_count()} CUDA GPU(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidArgumentError(f"training device {name!r}: MPS is not available here (use cpu or auto)")
    return device


def _cpu_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in net.state_dict().items()}


def balance_weights(pairs: PairSet, train_idx: np.ndarray, power: float) -> np.ndarray | None:
    """Sampling probabilities over ``train_idx``: n^-power, n = the training images with the same
    source and first caption (None when ``power`` is 0: plain shuffling)."""
    if power <= 0:
        return None
    keys = [(pairs.sources[i] if pairs.sources else "", pairs.captions[i][0]) for i in train_idx]
    counts = Counter(keys)
    w = np.array([counts[k] for k in keys], dtype=np.float64) ** -power
    return w / w.sum()


def pick_caption(ids: list[int], first_p: float, rng: np.random.Generator) -> int:
    if first_p > 0 and rng.random() < first_p:
        return ids[0]
    return ids[int(rng.integers(len(ids)))]


def name_groups(
    text_vecs: np.ndarray,
    cap_ids: Sequence[list[int]],
    train_idx: np.ndarray,
    cfg: TrainConfig,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """Training images grouped by k-means (FAISS) over their first caption's vector."""
    import faiss

    x = np.ascontiguousarray(text_vecs[[cap_ids[i][0] for i in train_idx]], dtype=np.float32)
    n_groups = max(1, len(train_idx) // max(2, cfg.hard_group_size))
    km = faiss.Kmeans(x.shape[1], n_groups, niter=10, seed=int(rng.integers(2**31)), spherical=True)
    km.train(x)
    _, assign = km.index.search(x, 1)
    groups = [train_idx[assign[:, 0] == g] for g in range(n_groups)]
    return [g for g in groups if len(g) >= 2]


def hard_batch(idx: np.ndarray, groups: list[np.ndarray], fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Replace ``fraction`` of a random batch with whole groups of look-alike names."""
    n_hard = int(len(idx) * fraction)
    picked: list[np.ndarray] = []
    seen: set[int] = set()
    while sum(len(p) for p in picked) < n_hard and len(seen) < len(groups):
        g = int(rng.integers(len(groups)))
        if g not in seen:
            seen.add(g)
            picked.append(rng.permutation(groups[g]))
    hard = np.concatenate(picked)[:n_hard] if picked else np.zeros(0, dtype=idx.dtype)
    rest = np.setdiff1d(idx, hard)[: len(idx) - len(hard)]
    return np.sort(np.concatenate([hard, rest]))


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    frac = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))


def _epoch_row(epoch, losses, logit_scale, opt, t0, tower, pairs, val_idx, text_vecs, cap_ids):  # type: ignore[no-untyped-def]
    val_img = tower.encode(pairs.pixels[val_idx])
    return {
        "epoch": epoch,
        "loss": float(np.mean(losses)) if losses else float("nan"),
        "temperature": float(1.0 / logit_scale.detach().exp()),
        "lr": float(opt.param_groups[0]["lr"]),
        **validation_metrics(val_img, text_vecs, [cap_ids[i] for i in val_idx]),
        "seconds": round(time.monotonic() - t0, 1),
    }


def _format_row(row: dict[str, Any]) -> str:
    return "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())


def _progress(total: int, desc: str, enabled: bool):  # type: ignore[no-untyped-def]
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    return x
