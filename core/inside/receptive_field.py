"""Receptive fields: which input pixels a unit of a stage can see, computed for any CNN.

Instead of reading kernel sizes and strides off the architecture (which gets residual branches
wrong), we ask autograd: on a copy of the network with every conv weight positive, every
activation made linear and every max-pool made an average, the gradient of one central unit
with respect to the input is non-zero exactly on that unit's receptive field.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.inside.activations import truncate


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one stage: size in pixels, jump (input pixels per output step), offset.

    Unit (i, j) of the stage sees the square of side `size` centred on
    (offset + i * jump, offset + j * jump) in input pixels (parts may fall in the padding).
    """

    size: int
    jump: float
    offset: float

    def box(self, i: int, j: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) in input pixels of unit (i, j); may extend past the image."""
        half = (self.size - 1) / 2
        cy, cx = self.offset + i * self.jump, self.offset + j * self.jump
        top, left = int(round(cy - half)), int(round(cx - half))
        return top, left, top + self.size, left + self.size


def _positive_copy(model: nn.Module) -> nn.Module:
    """A single-channel float64 copy whose output is a positive, linear function of a positive input."""
    probe = copy.deepcopy(model).double().eval()
    for module in probe.modules():
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()
        module._backward_hooks.clear()
    for name, module in list(probe.named_modules()):
        replacement: nn.Module | None = None
        if isinstance(module, nn.Conv2d):
            # with constant positive weights every channel carries the same value, so one channel
            # per conv gives the same support at a fraction of the cost
            replacement = nn.Conv2d(
                1, 1, module.kernel_size, module.stride, module.padding, module.dilation, bias=False
            )
            with torch.no_grad():
                replacement.weight.fill_(1.0 / replacement.weight.numel())  # averaging keeps values in range
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            replacement = nn.Identity()
        elif isinstance(module, nn.ReLU | nn.ReLU6 | nn.Hardtanh | nn.SiLU | nn.GELU | nn.Hardswish | nn.Dropout):
            replacement = nn.Identity()  # inputs are positive: only the clamps would matter, drop them
        elif isinstance(module, nn.MaxPool2d):
            replacement = nn.AvgPool2d(module.kernel_size, module.stride, module.padding, ceil_mode=module.ceil_mode)
        if replacement is not None and name:
            parent_name, _, child = name.rpartition(".")
            parent = probe.get_submodule(parent_name) if parent_name else probe
            setattr(parent, child, replacement.double())
    return probe


def _rows_seen(out: torch.Tensor, x: torch.Tensor, i: int) -> np.ndarray:
    """Input rows with a non-zero gradient for unit (i, i) of out (1, C, h, w), summed over channels."""
    (grad,) = torch.autograd.grad(out[0, :, i, i].sum(), x, retain_graph=True)
    return np.nonzero(grad[0].abs().sum((0, 2)).numpy() > 0)[0]


def receptive_field(model: nn.Module, path: str, size: int = 224, max_size: int = 1024) -> ReceptiveField:
    """Receptive field of the stage at dotted `path` (see module docstring), exact for conv/pool nets.

    The central unit's support gives the field directly when it fits in the image. When it is
    clipped, the bottom edge of the first unit and the top edge of the last unit still pin down
    size and offset, so a 224 px probe suffices even for fields of ~450 px; only larger fields
    make the probe image grow (doubling up to `max_size`).
    """
    return _field_of(truncate(_positive_copy(model), path), size, max_size)


def receptive_fields(model: nn.Module, paths: list[str], size: int = 224) -> dict[str, ReceptiveField]:
    """receptive_field for several stages, sharing one probe copy of the model."""
    probe = _positive_copy(model)
    return {p: _field_of(truncate(probe, p), size) for p in paths}


def _field_of(probe: nn.Module, size: int, max_size: int = 1024) -> ReceptiveField:
    """Receptive field of the last unit layer of a probe network (see receptive_field)."""
    while True:
        x = torch.ones(1, 1, size, size, dtype=torch.float64, requires_grad=True)
        out = probe(x)  # (1, 1, h, w), e.g. (1, 1, 7, 7) for mobilenet_v2 features.18 at 224 px
        h = out.shape[-2]
        jump = size / h

        centre = _rows_seen(out, x, h // 2)
        if centre[0] > 0 and centre[-1] < size - 1:  # not clipped: read it off directly
            rf = int(centre[-1] - centre[0] + 1)
            return ReceptiveField(
                size=rf, jump=float(jump), offset=float((centre[0] + centre[-1]) / 2 - (h // 2) * jump)
            )
        bottom_first, top_last = _rows_seen(out, x, 0)[-1], _rows_seen(out, x, h - 1)[0]
        if bottom_first < size - 1 and top_last > 0 or size >= max_size:
            rf = int(round(bottom_first - top_last + (h - 1) * jump + 1))
            return ReceptiveField(size=rf, jump=float(jump), offset=float(bottom_first - (rf - 1) / 2))
        size *= 2


def crop_field(image: np.ndarray, rf: ReceptiveField, i: int, j: int) -> np.ndarray:
    """The (size, size, 3) crop of an HxWx3 image that unit (i, j) sees; outside the image is grey."""
    top, left, bottom, right = rf.box(i, j)
    h, w = image.shape[:2]
    out = np.full((rf.size, rf.size, image.shape[2]), 128, dtype=image.dtype)
    t, l_, b, r = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
    if t < b and l_ < r:
        out[t - top : b - top, l_ - left : r - left] = image[t:b, l_:r]
    return out
