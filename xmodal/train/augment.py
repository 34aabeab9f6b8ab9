"""Batch augmentation of RGBA pictograms in torch: stroke width, scale/shift/rotation, colour,
backgrounds (white, solid, gradient), noise. Output is the encoder's input: (B, 3, s, s) in [-1, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from xmodal.errors import InvalidArgumentError


@dataclass(frozen=True)
class AugmentConfig:
    scale: tuple[float, float] = (0.65, 1.1)
    shift: float = 0.12
    rotate_deg: float = 10.0
    p_stroke: float = 0.4
    p_white_bg: float = 0.5
    p_gradient_bg: float = 0.2
    p_recolour: float = 0.6
    p_gray: float = 0.15
    noise: float = 0.03

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise InvalidArgumentError(f"unknown augmentation settings: {', '.join(sorted(unknown))}")
        d: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**d)


def composite_white(pixels: np.ndarray) -> np.ndarray:
    """RGBA uint8 (n, s, s, 4) -> RGB uint8 on white, like xmodal.media.image.load_image does."""
    a = pixels[..., 3:4].astype(np.float32) / 255.0
    rgb = pixels[..., :3].astype(np.float32) * a + 255.0 * (1.0 - a)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def augment_batch(
    pixels: torch.Tensor, mono: torch.Tensor, out_size: int, cfg: AugmentConfig, gen: torch.Generator
) -> torch.Tensor:
    """``pixels`` uint8 (B, S, S, 4); ``mono`` bool (B,). Returns float (B, 3, out, out) in [-1, 1],
    on the device of ``pixels`` (``gen`` must be a generator of that device)."""
    b, dev = pixels.shape[0], pixels.device
    x = pixels.permute(0, 3, 1, 2).float() / 255.0
    rgb, a = x[:, :3], x[:, 3:4]

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen, device=dev)

    # stroke width: dilate or erode the shape of single-colour icons
    stroke = rand(b) < cfg.p_stroke
    thicker = rand(b) < 0.5
    dil = F.max_pool2d(a, 3, 1, 1)
    ero = -F.max_pool2d(-a, 3, 1, 1)
    sel = (stroke & mono).view(b, 1, 1, 1)
    a = torch.where(sel, torch.where(thicker.view(b, 1, 1, 1), dil, ero), a)

    # geometry on premultiplied colour, so edges do not pick up black
    s = cfg.scale[0] + (cfg.scale[1] - cfg.scale[0]) * rand(b)
    ang = (rand(b) * 2 - 1) * math.radians(cfg.rotate_deg)
    tx, ty = ((rand(b) * 2 - 1) * cfg.shift for _ in range(2))
    cos, sin = torch.cos(ang) / s, torch.sin(ang) / s
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    src = torch.cat([rgb * a, a], 1)
    grid = F.affine_grid(theta, list(src.shape), align_corners=False)
    warped = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    warped = F.interpolate(warped, size=(out_size, out_size), mode="area")
    a = warped[:, 3:4].clamp(0, 1)
    rgb = (warped[:, :3] / a.clamp_min(1e-4)).clamp(0, 1)

    # foreground colour: recolour single-colour icons; sometimes grey out colour ones
    fg = rand(b, 3, 1, 1)
    dark = rand(b, 1, 1, 1) < 0.4
    fg = torch.where(dark, fg * 0.25, fg)
    recolour = (mono & (rand(b) < cfg.p_recolour)).view(b, 1, 1, 1)
    rgb = torch.where(recolour, fg.expand_as(rgb), rgb)
    gray = (~mono & (rand(b) < cfg.p_gray)).view(b, 1, 1, 1)
    rgb = torch.where(gray, rgb.mean(1, keepdim=True).expand_as(rgb), rgb)

    # background: white, solid colour, or a gradient between two colours
    c1, c2 = rand(b, 3, 1, 1), rand(b, 3, 1, 1)
    ramp = torch.linspace(0, 1, out_size, device=dev).view(1, 1, 1, out_size)
    horiz = rand(b, 1, 1, 1) < 0.5
    ramp = torch.where(horiz, ramp, ramp.transpose(2, 3)).expand(b, 1, out_size, out_size)
    gradient = c1 * (1 - ramp) + c2 * ramp
    u = rand(b).view(b, 1, 1, 1)
    bg = torch.where(
        u < cfg.p_white_bg,
        torch.ones_like(gradient),
        torch.where(u < cfg.p_white_bg + cfg.p_gradient_bg, gradient, c1.expand_as(gradient)),
    )
    # keep a recoloured icon visible: if it is close to the background, flip it
    lum = lambda t: (0.299 * t[:, 0:1] + 0.587 * t[:, 1:2] + 0.114 * t[:, 2:3]).mean((2, 3), keepdim=True)  # noqa: E731
    low_contrast = (lum(rgb * a + (1 - a) * 0.5) - lum(bg)).abs() < 0.25
    rgb = torch.where(low_contrast & mono.view(b, 1, 1, 1), 1 - bg.mean((2, 3), keepdim=True).expand_as(rgb), rgb)

    out = rgb * a + bg * (1 - a)
    if cfg.noise > 0:
        out = out + torch.randn(out.shape, generator=gen, device=dev) * cfg.noise * rand(b, 1, 1, 1)
    return out.clamp(0, 1) * 2 - 1
