"""Symmetric InfoNCE with a learnable temperature, and Wang & Isola (2020) alignment/uniformity."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(
    img: torch.Tensor,
    txt: torch.Tensor,
    text_ids: torch.Tensor,
    logit_scale: torch.Tensor,
    image_ids: torch.Tensor | None = None,
    soft: float = 0.0,
    soft_temperature: float = 0.05,
) -> torch.Tensor:
    """Mean of image->text and text->image cross-entropy over the batch.

    ``img``/``txt`` are L2-normalised (B, d); row i of each is a pair. Pairs whose caption is
    the same text (``text_ids`` equal) are all positives of each other, so a repeated caption
    in a batch ("home" drawn by three icon sets) is not pushed apart from itself; so are rows
    of the same image (``image_ids`` equal: an image drawn twice, each time with another caption).

    ``soft`` > 0 mixes that share of each row's target from the captions' own similarities
    (softmax of caption . caption / ``soft_temperature``, the frozen text space's judgement): a
    picture of a house is then not pushed as far from "home" as from "scorpion".
    """
    logits = logit_scale.exp() * img @ txt.t()
    same = text_ids[:, None] == text_ids[None, :]
    if image_ids is not None:
        same = same | (image_ids[:, None] == image_ids[None, :])
    positives = same.float()
    targets = positives / positives.sum(dim=1, keepdim=True)
    if soft > 0:
        with torch.no_grad():
            semantic = F.softmax(txt @ txt.t() / soft_temperature, dim=1)
        targets = (1 - soft) * targets + soft * semantic
    loss_i = -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    loss_t = -(targets * F.log_softmax(logits.t(), dim=1)).sum(dim=1).mean()
    return (loss_i + loss_t) / 2


def vocab_loss(
    img: torch.Tensor, vocab: torch.Tensor, positives: list[list[int]], logit_scale: torch.Tensor
) -> torch.Tensor:
    """Image -> every caption of the training set: cross-entropy whose target is spread evenly
    over all captions of the image (its name, synonyms, tags), so they are pulled in together
    and every other caption in the vocabulary is a negative."""
    logits = logit_scale.exp() * img @ vocab.t()
    dev = img.device
    rows = torch.tensor([r for r, caps in enumerate(positives) for _ in caps], device=dev)
    cols = torch.tensor([c for caps in positives for c in caps], device=dev)
    weights = torch.tensor([1.0 / len(caps) for caps in positives for _ in caps], device=dev)
    logp = F.log_softmax(logits, dim=1)
    return -(logp[rows, cols] * weights).sum() / len(positives)


def alignment(x: torch.Tensor, y: torch.Tensor, alpha: float = 2.0) -> float:
    """E ||x - y||^alpha over positive pairs (lower is better)."""
    return float((x - y).norm(dim=1).pow(alpha).mean())


def uniformity(x: torch.Tensor, t: float = 2.0) -> float:
    """log E exp(-t ||x_i - x_j||^2) over distinct pairs (lower is more uniform)."""
    if len(x) < 2:
        return 0.0
    return float(torch.pdist(x, p=2).pow(2).mul(-t).exp().mean().log())
