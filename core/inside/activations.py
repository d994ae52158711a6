"""Capturing what layers output: the one place Pet Lab registers forward hooks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from core.i18n import _
from core.nets.models import get_module


class NothingCaptured(RuntimeError):
    """The forward pass never reached the hooked layers."""


@contextmanager
def capture_activations(
    model: nn.Module, layers: dict[str, nn.Module] | list[nn.Module], keep_grad: bool = False
) -> Iterator[dict[str, torch.Tensor]]:
    """Hook `layers` for the duration of the block; yields {name: output} filled by the forward pass.

    Outputs are detached and moved to the CPU inside the hook (unless keep_grad, used by Grad-CAM,
    which needs the graph). Every handle is removed in `finally`, also when the block raises; if
    the block ran a forward pass that never reached a hooked layer, NothingCaptured is raised.
    Use under `model.eval()` and `torch.no_grad()` unless gradients are the point.

    Hooks belong to the module, not the thread: on a model shared by several browser sessions,
    another session's forward pass would fire them too. They therefore record only forward passes
    made by the thread that opened the block.
    """
    named = layers if isinstance(layers, dict) else {str(i): m for i, m in enumerate(layers)}
    captured: dict[str, torch.Tensor] = {}
    handles = []
    owner = threading.get_ident()

    def make_hook(name: str):
        def hook(_module: nn.Module, _inputs, output) -> None:
            if threading.get_ident() != owner:  # another session's forward on a shared model
                return
            out = output[0] if isinstance(output, (tuple, list)) else output
            # inplace ReLUs later in the net would overwrite a shared tensor: keep a copy
            captured[name] = out if keep_grad else out.detach().to("cpu", copy=True)

        return hook

    try:
        for name, module in named.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        yield captured
    finally:
        for handle in handles:
            handle.remove()
    if not captured:
        raise NothingCaptured(f"no activations captured for {list(named)}: was the model run inside the block?")


def hook_count(model: nn.Module) -> int:
    """Total forward/backward hooks left on a model's modules (tests use it to prove none leak)."""
    return sum(
        len(m._forward_hooks) + len(m._backward_hooks) + len(getattr(m, "_forward_pre_hooks", {}))
        for m in model.modules()
    )


# ---- stages: truncation, shapes, feature maps --------------------------------------------------


def truncate(model: nn.Module, path: str) -> nn.Sequential:
    """A Sequential that runs `model` up to and including the module at dotted `path`.

    Works for our Sequential(body, head) layouts, where every component of a stage path indexes
    an nn.Sequential ('0.0.13' is body[0][13]). The modules are shared, not copied: use it for
    forward passes without hooks (e.g. the top-patch index) or deepcopy it first.
    """
    parts = [int(p) for p in path.split(".")]

    def cut(seq: nn.Module, idx: list[int]) -> list[nn.Module]:
        if not isinstance(seq, nn.Sequential):
            raise ValueError(f"stage path {path!r} does not go through nn.Sequential containers")
        head, rest = idx[0], idx[1:]
        if not 0 <= head < len(seq):
            raise ValueError(f"stage path {path!r}: index {head} out of range")
        if not rest:
            return list(seq[: head + 1])
        return [*seq[:head], nn.Sequential(*cut(seq[head], rest))]

    return nn.Sequential(*cut(model, parts))


def capture_stages(model: nn.Module, x: torch.Tensor, paths: list[str]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One forward pass of the whole model; returns ({path: stage output on CPU}, logits).

    The hooks live only inside capture_activations; callers sharing a model take the lock.
    """
    model.eval()
    layers = {p: get_module(model, p) for p in paths}
    with torch.no_grad(), capture_activations(model, layers) as acts:
        logits = model(x)  # (B, n_classes)
    return dict(acts), logits.detach().cpu()


def stage_shapes(model: nn.Module, paths: list[str], size: int = 224) -> dict[str, tuple[int, ...]]:
    """Output shape of each stage for a (1, 3, size, size) input, from one dummy forward."""
    x = torch.zeros(1, 3, size, size)
    acts, _logits = capture_stages(model, x, paths)
    return {p: tuple(acts[p].shape) for p in paths}


def channel_order(act: torch.Tensor | np.ndarray) -> np.ndarray:
    """Channel indices of a (C, h, w) activation sorted by mean activation, strongest first."""
    arr = act.numpy() if isinstance(act, torch.Tensor) else np.asarray(act)
    means = arr.reshape(arr.shape[0], -1).mean(axis=1)
    return np.argsort(-means, kind="stable")


def feature_grid(act: np.ndarray, channels: list[int] | np.ndarray, ncols: int = 8, gap: int = 1) -> np.ndarray:
    """Mosaic of chosen channels of a (C, h, w) activation, each scaled to [0, 1]; gaps are NaN.

    Returns a (rows*(h+gap)-gap, ncols*(w+gap)-gap) float array ready for a heat map.
    """
    act = np.asarray(act, dtype=np.float32)
    channels = list(channels)
    h, w = act.shape[1:]
    ncols = max(1, min(ncols, len(channels)))
    nrows = max(1, -(-len(channels) // ncols))
    grid = np.full((nrows * (h + gap) - gap, ncols * (w + gap) - gap), np.nan, dtype=np.float32)
    for i, ch in enumerate(channels):
        r, c = divmod(i, ncols)
        tile = act[ch]
        lo, hi = float(tile.min()), float(tile.max())
        tile = (tile - lo) / (hi - lo) if hi > lo else np.zeros_like(tile)
        grid[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = tile
    return grid


def feature_grid_figure(
    act: np.ndarray, channels: list[int] | np.ndarray, ncols: int = 8, title: str = "", width_px: int = 560
):
    """Plotly heat map of feature_grid with the channel number on hover, sized for a column `width_px` wide."""
    import plotly.graph_objects as go

    act = np.asarray(act)
    channels = list(channels)
    h, w = act.shape[1:]
    grid = feature_grid(act, channels, ncols)
    ncols = max(1, min(ncols, len(channels)))
    labels = np.full(grid.shape, "", dtype=object)
    for i, ch in enumerate(channels):
        r, c = divmod(i, ncols)
        labels[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = _("channel {n}").format(n=ch)
    fig = go.Figure(
        go.Heatmap(
            z=grid, customdata=labels, colorscale="Viridis", showscale=False,
            hovertemplate="%{customdata}<br>%{z:.2f}<extra></extra>",
        )
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed", scaleanchor="x", visible=False)
    fig.update_xaxes(visible=False)
    top = 30 if title else 0
    height = int(min(900, max(120, width_px * grid.shape[0] / grid.shape[1]))) + top  # keep the tiles square
    fig.update_layout(title=title or None, margin=dict(l=0, r=0, t=top, b=0), height=height)
    return fig


def channel_overlay_heat(act: np.ndarray, channel: int) -> np.ndarray:
    """One channel of a (C, h, w) activation, positive part scaled to [0, 1] for core.inside.gradcam.overlay."""
    tile = np.clip(np.asarray(act[channel], dtype=np.float32), 0, None)
    top = float(tile.max())
    return tile / top if top > 0 else tile


def private_copy(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode with no hooks, for long jobs on a model other sessions share.

    Hooks are global to a module: a forward pass on the shared model would also fire another
    session's capture hooks. Long runs (occlusion, the top-patch index) use a copy instead of
    holding the lock for minutes; take the lock around this call only.
    """
    import copy

    clone = copy.deepcopy(model).eval()
    for module in clone.modules():
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()
        module._backward_hooks.clear()
    return clone
