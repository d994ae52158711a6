"""What the Data page shows, computed without Streamlit: plotly figures, tables and image grids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from PIL import Image

from core.data.labels import LabelResult, is_cat_breed
from core.i18n import N_, _, num
from core.nets import models

IMAGENET_MEAN = np.array(models.IMAGENET_MEAN)
IMAGENET_STD = np.array(models.IMAGENET_STD)
CAT_COLOUR, DOG_COLOUR, OTHER_COLOUR = "#e4572e", "#17bebb", "#4c78a8"


def looks_like_pets(classes: list[str]) -> bool:
    """True when names follow Pets' convention: some capitalised (cats) and some lower-case (dogs)."""
    return any(is_cat_breed(c) for c in classes) and any(not is_cat_breed(c) for c in classes)


def class_balance_figure(items: pd.DataFrame) -> go.Figure:
    """Bar chart of images per class; with Pets-style names cat breeds and dog breeds get their own colour."""
    counts = items["label"].value_counts().sort_index()
    classes = counts.index.tolist()
    pets_style = looks_like_pets(classes)
    fig = go.Figure()
    if pets_style:
        for name, colour, is_cat in ((_("cat breeds"), CAT_COLOUR, True), (_("dog breeds"), DOG_COLOUR, False)):
            sub = counts[[is_cat_breed(c) == is_cat for c in classes]]
            fig.add_bar(x=sub.index, y=sub.values, name=f"{name} ({len(sub)})", marker_color=colour)
    else:
        fig.add_bar(x=classes, y=counts.values, name=_("images"), marker_color=OTHER_COLOUR)
    fig.add_hline(
        y=float(counts.mean()), line_dash="dot", annotation_text=_("mean {n}").format(n=num(counts.mean(), 0))
    )
    fig.update_layout(
        xaxis_title=_("class"),
        yaxis_title=_("images"),
        xaxis_tickangle=-45,
        height=380,
        margin=dict(t=30, b=10),
        legend=dict(orientation="h", y=1.1),
        bargap=0.15,
    )
    return fig


def size_figure(items: pd.DataFrame, max_points: int = 8000) -> go.Figure:
    """Scatter of width × height per image (read from headers), to show why we resize."""
    sample = items if len(items) <= max_points else items.sample(max_points, random_state=0)
    fig = go.Figure(
        go.Scattergl(
            x=sample["width"],
            y=sample["height"],
            mode="markers",
            marker=dict(size=5, opacity=0.5, color=OTHER_COLOUR),
            text=sample["rel"],
            hovertemplate="%{text}<br>%{x}×%{y}<extra></extra>",
        )
    )
    fig.update_layout(xaxis_title=_("width (px)"), yaxis_title=_("height (px)"), height=380, margin=dict(t=30, b=10))
    return fig


def size_summary(items: pd.DataFrame) -> dict[str, float]:
    """Median and extremes of the image sizes (keys are English; the page translates them)."""
    return {
        N_("median width"): float(items["width"].median()),
        N_("median height"): float(items["height"].median()),
        N_("smallest side"): float(np.minimum(items["width"], items["height"]).min()),
        N_("largest side"): float(np.maximum(items["width"], items["height"]).max()),
    }


def sample_rows(items: pd.DataFrame, classes: list[str] | None, n: int, seed: int) -> pd.DataFrame:
    """n random rows (like show_batch), restricted to classes when given."""
    pool = items if not classes else items[items["label"].isin(classes)]
    return pool.sample(min(n, len(pool)), random_state=seed) if len(pool) else pool


def label_examples(result: LabelResult, per_class: int = 2) -> pd.DataFrame:
    """A few file names per class with the label the pattern extracted."""
    rows, seen = [], {}
    for rel, label in result.labels.items():
        if seen.get(label, 0) < per_class:
            seen[label] = seen.get(label, 0) + 1
            rows.append({"file": rel, "label": label})
    return pd.DataFrame(rows, columns=[N_("file"), N_("label")])


def normalise(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """Pixels scaled to [0, 1] and then ImageNet-normalised, as (H, W, 3) float arrays."""
    scaled = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    return scaled, (scaled - IMAGENET_MEAN) / IMAGENET_STD


NORMALISATION_ROWS = (  # the normalisation table's rows, translated where shown
    N_("mean (0–1 pixels)"),
    N_("std (0–1 pixels)"),
    N_("ImageNet mean"),
    N_("ImageNet std"),
    N_("mean after"),
    N_("std after"),
)


def normalisation_table(image: Image.Image) -> pd.DataFrame:
    """Mean and std per channel before and after ImageNet normalisation: a row per statistic, a column per channel.

    Seven statistics side by side did not fit next to the photo (the last column was cut off, in Chinese
    the most); three channel columns do, in any language.
    """
    scaled, normed = normalise(image)
    values = [
        scaled.mean(axis=(0, 1)),
        scaled.std(axis=(0, 1)),
        IMAGENET_MEAN,
        IMAGENET_STD,
        normed.mean(axis=(0, 1)),
        normed.std(axis=(0, 1)),
    ]
    table = pd.DataFrame([[_(name), *np.round(row, 3)] for name, row in zip(NORMALISATION_ROWS, values, strict=True)])
    table.columns = [_(N_("statistic")), "R", "G", "B"]
    return table


def channel_histogram_figure(image: Image.Image) -> go.Figure:
    """Per-channel pixel histograms before (0–1) and after normalisation: the Augmentation page's chart."""
    import torch

    from core.data.augmentation import channel_histograms  # imports fastai: not when the Data page loads

    scaled, normed = normalise(image)
    as_chw = lambda arr: torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))  # noqa: E731
    return channel_histograms(as_chw(scaled), as_chw(normed))
