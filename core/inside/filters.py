"""The first conv layer's filters as pictures, and how much fine-tuning changed them."""

from __future__ import annotations

import numpy as np
from PIL import Image
from torch import nn

from core.nets.models import get_module


def conv_filters(model: nn.Module, path: str) -> np.ndarray:
    """Weights of the conv at `path` as (C_out, k, k, C_in) float32 (C_in is 3 for the first conv)."""
    conv = get_module(model, path)
    if not isinstance(conv, nn.Conv2d):
        raise ValueError(f"{path!r} is a {type(conv).__name__}, not a Conv2d")
    return conv.weight.detach().cpu().float().permute(0, 2, 3, 1).numpy().copy()  # (C_out, k, k, C_in)


def filter_grid(filters: np.ndarray, ncols: int = 16, scale: int = 6, gap: int = 2) -> Image.Image:
    """RGB mosaic of (C_out, k, k, 3) filters, each scaled to [0, 1] on its own, enlarged `scale`×."""
    n, k = filters.shape[0], filters.shape[1]
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    tile = k * scale
    canvas = np.full((nrows * (tile + gap) + gap, ncols * (tile + gap) + gap, 3), 255, dtype=np.uint8)
    for i in range(n):
        f = filters[i][..., :3]
        lo, hi = float(f.min()), float(f.max())
        f = (f - lo) / (hi - lo) if hi > lo else np.full_like(f, 0.5)
        big = np.kron(f, np.ones((scale, scale, 1)))  # nearest-neighbour enlargement, (k*scale, k*scale, 3)
        r, c = divmod(i, ncols)
        top, left = gap + r * (tile + gap), gap + c * (tile + gap)
        canvas[top : top + tile, left : left + tile] = (big * 255).round().astype(np.uint8)
    return Image.fromarray(canvas)


def filter_change(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Relative L2 change ||after - before|| / ||before|| of each filter, shape (C_out,)."""
    if before.shape != after.shape:
        raise ValueError(f"filter shapes differ: {before.shape} vs {after.shape}")
    diff = np.linalg.norm((after - before).reshape(len(before), -1), axis=1)
    norm = np.linalg.norm(before.reshape(len(before), -1), axis=1)
    return diff / np.maximum(norm, 1e-12)
