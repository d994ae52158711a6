"""Occlusion sensitivity (Zeiler & Fergus 2014, Fig. 7): hide part of the image, watch the prediction.

A grey square slides over the image; for every position we record the probability of the class
of interest and the label the model now prefers. Where hiding the pixels makes the probability
drop, the model was looking.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from core.i18n import _, pct

Progress = Callable[[int, int], None]


@dataclass
class OcclusionResult:
    """Maps over the grid of square positions (row = y, column = x)."""

    prob: np.ndarray  # (ny, nx) probability of `target` with the square at each position
    label: np.ndarray  # (ny, nx) int, most probable class with the square there
    label_prob: np.ndarray  # (ny, nx) its probability
    ys: np.ndarray  # (ny,) top row of the square in input pixels
    xs: np.ndarray  # (nx,) left column
    patch: int
    stride: int
    target: int
    base_prob: float  # probability of `target` on the unoccluded image

    def pixel_map(self, size: int) -> np.ndarray:
        """prob spread back to a (size, size) image: each pixel gets the mean over squares covering it."""
        total = np.zeros((size, size), dtype=np.float64)
        count = np.zeros((size, size), dtype=np.float64)
        for a, y in enumerate(self.ys):
            for b, x in enumerate(self.xs):
                total[y : y + self.patch, x : x + self.patch] += self.prob[a, b]
                count[y : y + self.patch, x : x + self.patch] += 1
        return np.where(count > 0, total / np.maximum(count, 1), self.base_prob).astype(np.float32)

    def drop_map(self, size: int) -> np.ndarray:
        """Relative drop of the target probability per pixel, clipped to [0, 1] (1 = hiding it kills the class)."""
        return np.clip(1 - self.pixel_map(size) / max(self.base_prob, 1e-9), 0, 1)


def square_positions(size: int, patch: int, stride: int) -> np.ndarray:
    """Top-left coordinates 0, stride, … that keep the square inside, plus the last one flush with the edge."""
    if not 0 < patch <= size:
        raise ValueError(f"patch size must be between 1 and {size} px, got {patch}")
    if stride < 1:
        raise ValueError("stride must be at least 1 px")
    pos = list(range(0, size - patch + 1, stride))
    if pos[-1] != size - patch:
        pos.append(size - patch)
    return np.array(pos, dtype=np.int64)


def occlusion_map(
    model: nn.Module,
    x: torch.Tensor,
    target: int | None = None,
    patch: int = 32,
    stride: int = 16,
    batch_size: int = 32,
    fill: float = 0.0,
    progress: Progress | None = None,
) -> OcclusionResult:
    """Slide a `patch`-px square of value `fill` over x (1, 3, H, W) and run batched forwards.

    `fill` = 0 is the dataset-mean grey once normalised. `target` defaults to the top class of
    the unoccluded image. The model is only read (eval mode, no gradients).
    """
    model.eval()
    size = x.shape[-1]
    ys, xs = square_positions(x.shape[-2], patch, stride), square_positions(size, patch, stride)
    grid = [(y, xx) for y in ys for xx in xs]
    with torch.no_grad():
        base = model(x).softmax(-1)[0]  # (n_classes,)
    target = int(base.argmax()) if target is None else int(target)
    prob = np.zeros(len(grid), dtype=np.float32)
    label = np.zeros(len(grid), dtype=np.int64)
    label_prob = np.zeros(len(grid), dtype=np.float32)
    for start in range(0, len(grid), batch_size):
        chunk = grid[start : start + batch_size]
        batch = x.repeat(len(chunk), 1, 1, 1)  # (B, 3, H, W)
        for n, (y, xx) in enumerate(chunk):
            batch[n, :, y : y + patch, xx : xx + patch] = fill
        with torch.no_grad():
            p = model(batch).softmax(-1)  # (B, n_classes)
        top_p, top_i = p.max(-1)
        prob[start : start + len(chunk)] = p[:, target].numpy()
        label[start : start + len(chunk)] = top_i.numpy()
        label_prob[start : start + len(chunk)] = top_p.numpy()
        if progress is not None:
            progress(start + len(chunk), len(grid))
    shape = (len(ys), len(xs))
    return OcclusionResult(
        prob=prob.reshape(shape),
        label=label.reshape(shape),
        label_prob=label_prob.reshape(shape),
        ys=ys,
        xs=xs,
        patch=patch,
        stride=stride,
        target=target,
        base_prob=float(base[target]),
    )


def occlusion_figures(result: OcclusionResult, classes: list[str]):
    """Two plotly heat maps per square centre: target probability (white = unchanged, red = lower), top label."""
    import plotly.graph_objects as go

    cy = result.ys + result.patch / 2
    cx = result.xs + result.patch / 2
    prob_fig = go.Figure(
        go.Heatmap(
            z=result.prob, x=cx, y=cy, zmid=result.base_prob, colorscale="RdBu", colorbar=dict(title="p"),
            hovertemplate=_("square centred at ({x}, {y})").format(x="%{x}", y="%{y}") + "<br>p = %{z:.3f}<extra></extra>",
        )
    )  # fmt: skip
    prob_fig.update_layout(title=f"p({classes[result.target][:20]})")
    used = sorted(set(result.label.ravel().tolist()))
    code = {c: i for i, c in enumerate(used)}
    z = np.vectorize(code.get)(result.label)
    names = np.array([[classes[c] for c in row] for row in result.label], dtype=object)
    palette = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d"]
    n = max(1, len(used))
    scale = []
    for i in range(n):
        colour = palette[i % len(palette)]
        scale += [[i / n, colour], [(i + 1) / n, colour]]
    label_fig = go.Figure(
        go.Heatmap(
            z=z, x=cx, y=cy, customdata=names, zmin=-0.5, zmax=n - 0.5, colorscale=scale,
            colorbar=dict(tickvals=list(range(n)), ticktext=[classes[c][:24] for c in used]),
            hovertemplate=_("square centred at ({x}, {y})").format(x="%{x}", y="%{y}") + "<br>%{customdata}<extra></extra>",
        )
    )  # fmt: skip
    label_fig.update_layout(title=_("top label"))
    for fig in (prob_fig, label_fig):
        fig.update_yaxes(autorange="reversed", scaleanchor="x", title=_("y (px)"))
        fig.update_xaxes(title=_("x (px)"))
        fig.update_layout(margin=dict(l=0, r=0, t=40, b=0), height=380)
    return prob_fig, label_fig


DROP_RED = np.array([215.0, 25.0, 28.0], dtype=np.float32)
NOTICEABLE_DROP = 0.05  # a relative drop below this is shown as no red at all


def drop_overlay(view: Image.Image, result: OcclusionResult, max_alpha: float = 0.7) -> Image.Image:
    """The model's view, in grey, with red laid over where hiding a square lowers the target probability.

    The red's opacity is the relative drop itself (0 → none, 100 % → max_alpha), not rescaled to the
    largest drop, so a map with no red means: hiding any part barely changes the prediction.
    """
    arr = np.asarray(view.convert("L").convert("RGB"), dtype=np.float32)  # (S, S, 3) in grey: only the map is red
    drop = result.drop_map(arr.shape[0])  # (S, S) in [0, 1]
    drop = np.where(drop < NOTICEABLE_DROP, 0.0, drop)
    alpha = (drop * max_alpha)[..., None]
    return Image.fromarray((arr * (1 - alpha) + DROP_RED * alpha).round().astype(np.uint8))


def drop_caption(result: OcclusionResult, class_name: str, size: int) -> str:
    """Caption for drop_overlay that says what its colour means, and that there is no red when there is none."""
    biggest = float(result.drop_map(size).max())
    p = f"p({class_name}) = {pct(result.base_prob)}"
    if biggest < NOTICEABLE_DROP:
        return _("No red: hiding any {patch} px square lowers {p} by less than {share}.").format(
            patch=result.patch, p=p, share=pct(NOTICEABLE_DROP)
        )
    return _("Red = hiding that part lowers {p}; the deepest red is a {share} drop.").format(p=p, share=pct(biggest))
