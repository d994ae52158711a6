"""Reading a run's mistakes: confusion matrix, top losses, most confused pairs, per-class error, scoreboard.

Everything works from the run's cached validation predictions (probs (N, C), targets (N,)), the
same numbers fastai's ClassificationInterpretation computes from `get_preds`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.i18n import N_, _, n_

# Published Oxford-IIIT Pet numbers (37 breeds) the lesson compares against.
PUBLISHED = (
    (N_("Parkhi et al. 2012 (hand-engineered features)"), 1 - 0.5921, N_("{share} accuracy"), "59.21%"),
    (N_("course-v3 lesson 1: resnet34, fit_one_cycle(4)"), 0.0710, N_("{share} error"), "7.10%"),
    (N_("course-v3 lesson 1: + unfreeze, slice(1e-6, 1e-4)"), 0.0622, N_("{share} error"), "6.22%"),
    (N_("course-v3 lesson 1: resnet50 at 299 px"), 0.0440, N_("{share} error"), "4.40%"),
)


def confusion_matrix(targets: np.ndarray, preds: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (C, C): row = actual class, column = predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(targets, dtype=np.int64), np.asarray(preds, dtype=np.int64)), 1)
    return cm


def losses(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Cross-entropy per image: -log p(actual class), the loss fastai's top_losses sorts by."""
    p = probs[np.arange(len(targets)), targets]
    return -np.log(np.clip(p, 1e-12, 1.0))


def error_rate(probs: np.ndarray, targets: np.ndarray) -> float:
    """Fraction of images whose top prediction is wrong."""
    return float((probs.argmax(1) != targets).mean()) if len(targets) else float("nan")


def aligned_paths(valid_paths, n: int) -> list[str]:
    """The run's validation paths, one per row of its predictions: "" where the record has none.

    A record may list fewer paths than preds.npz has rows (written by hand, cut short, or by an older
    version): indexing past it must not take the page down; the page says how many are missing.
    """
    paths = [p if isinstance(p, str) else "" for p in list(valid_paths or [])[:n]]
    return paths + [""] * (n - len(paths))


def top_losses(
    probs: np.ndarray, targets: np.ndarray, classes: list[str], paths: list[str], k: int = 9
) -> pd.DataFrame:
    """The k validation images the model is most wrong (or least sure) about, worst first."""
    loss = losses(probs, targets)
    order = np.argsort(-loss, kind="stable")[:k]
    preds = probs.argmax(1)
    return pd.DataFrame(
        {
            "index": order,
            "path": [paths[i] for i in order],
            "actual": [classes[targets[i]] for i in order],
            "predicted": [classes[preds[i]] for i in order],
            "loss": loss[order],
            "prob_predicted": probs[order, preds[order]],
            "prob_actual": probs[order, targets[order]],
        }
    )


def most_confused(cm: np.ndarray, classes: list[str], min_val: int = 1) -> pd.DataFrame:
    """Off-diagonal (actual, predicted, count) with count ≥ min_val, most frequent first (fastai's most_confused)."""
    rows = [
        (classes[a], classes[p], int(cm[a, p]))
        for a in range(len(classes))
        for p in range(len(classes))
        if a != p and cm[a, p] >= min_val
    ]
    df = pd.DataFrame(rows, columns=[N_("actual"), N_("predicted"), N_("count")])
    return df.sort_values(["count", "actual", "predicted"], ascending=[False, True, True]).reset_index(drop=True)


def per_class_error(cm: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Per class: images, correct, error rate, and the class it is most often mistaken for."""
    totals = cm.sum(1)
    correct = np.diag(cm)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    worst = off.argmax(1)
    df = pd.DataFrame(
        {
            N_("class"): classes,
            N_("images"): totals,
            N_("correct"): correct,
            N_("error_rate"): np.where(totals > 0, 1 - correct / np.maximum(totals, 1), np.nan),
            N_("most often called"): [classes[w] if off[i, w] > 0 else "" for i, w in enumerate(worst)],
        }
    )
    return df.sort_values(["error_rate", "class"], ascending=[False, True]).reset_index(drop=True)


def cell_items(probs: np.ndarray, targets: np.ndarray, actual: int, predicted: int) -> np.ndarray:
    """Indices of the validation images in one confusion-matrix cell."""
    return np.nonzero((targets == actual) & (probs.argmax(1) == predicted))[0]


def _as_index(value: Any, n: int) -> int | None:
    """value as an index in [0, n), or None (bools, floats with a fraction, strings of digits are refused)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    if not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    i = int(value)
    return i if 0 <= i < n else None


def _point_cell(point: Mapping, classes: Sequence[str], index: Mapping[str, int]) -> tuple[int, int] | None:
    """One selected point of confusion_figure -> (actual, predicted), or None when it names no cell."""
    n = len(classes)
    # 1. the axis labels: the chart's axes are categorical, so x / y are class names
    x, y = point.get("x"), point.get("y")
    if x is not None and y is not None and str(y) in index and str(x) in index:
        return index[str(y)], index[str(x)]
    # 2. customdata of the cell markers: [actual, predicted, count], a list or (JSON of a typed array) a dict
    data = point.get("customdata")
    if isinstance(data, Mapping):
        data = [data.get(str(i), data.get(i)) for i in range(2)]
    if isinstance(data, (list, tuple)) and len(data) >= 2:
        a, p = _as_index(data[0], n), _as_index(data[1], n)
        if a is not None and p is not None:
            return a, p
    # 3. the point's index: [row, col] on the heatmap, row * n + col on the marker trace
    idx = point.get("point_index", point.get("point_number"))
    if isinstance(idx, (list, tuple)) and len(idx) == 2:
        a, p = _as_index(idx[0], n), _as_index(idx[1], n)
        return (a, p) if a is not None and p is not None else None
    flat = _as_index(idx, n * n)
    if flat is not None and point.get("curve_number") == 1:
        return divmod(flat, n)
    return None


def selected_cells(event: Any, classes: Sequence[str]) -> list[tuple[int, int]]:
    """(actual, predicted) cells selected in confusion_figure, in order, without repeats; never raises.

    Takes what `st.plotly_chart(on_select=...)` returns (or its "selection" part): a click gives one
    point, a box or lasso gives every cell marker inside it. Points arrive as dicts; anything odd,
    or a stale selection from another run (indices or names that are not this run's), is skipped.
    """
    try:
        selection = event.get("selection", event) if isinstance(event, Mapping) else None
        points = selection.get("points") if isinstance(selection, Mapping) else None
    except Exception:  # a read-only state object that misbehaves: no selection
        return []
    if not isinstance(points, (list, tuple)):
        return []
    index = {str(c): i for i, c in enumerate(classes)}
    cells: list[tuple[int, int]] = []
    for point in points:
        if not isinstance(point, Mapping):
            continue
        try:
            cell = _point_cell(point, classes, index)
        except Exception:  # one malformed point never hides the others
            cell = None
        if cell is not None and cell not in cells:
            cells.append(cell)
    return cells


def confusion_figure(cm: np.ndarray, classes: list[str]) -> go.Figure:
    """Plotly heatmap readable up to 37×37: counts in the cells, a clickable point per cell for selection."""
    n = len(classes)
    cell = 22 if n > 20 else 40  # px per cell
    size = max(360, n * cell + 200)
    text = np.where(cm > 0, cm.astype(str), "")
    fig = go.Figure(
        go.Heatmap(
            z=np.log1p(cm),  # log colour so the off-diagonal mistakes show next to a bright diagonal
            x=classes,
            y=classes,
            text=text,
            texttemplate="%{text}",
            textfont={"size": 9 if n > 20 else 12},
            customdata=cm,
            hovertemplate=_("actual %{y}<br>predicted %{x}<br>%{customdata} images") + "<extra></extra>",
            colorscale="Blues",
            showscale=False,
            xgap=1,
            ygap=1,
        )
    )
    # Invisible markers on every cell: Streamlit's on_select reports points, which heatmaps lack.
    xs, ys = np.meshgrid(np.arange(n), np.arange(n))
    fig.add_trace(
        go.Scatter(
            x=[classes[i] for i in xs.ravel()],
            y=[classes[j] for j in ys.ravel()],
            mode="markers",
            marker={"size": cell - 2, "opacity": 0.01, "symbol": "square", "color": "black"},
            customdata=np.stack([ys.ravel(), xs.ravel(), cm[ys.ravel(), xs.ravel()]], axis=1),
            hovertemplate=_("actual %{y}<br>predicted %{x}<br>%{customdata[2]} images") + "<extra></extra>",
            showlegend=False,
            name="cells",
        )
    )
    fig.update_layout(
        height=size,
        width=size + 60,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        # categorical axes even for classes named "0", "1", …: selections then report class names
        xaxis={
            "title": _("predicted"),
            "tickangle": -60,
            "tickfont": {"size": 10},
            "side": "top",
            "type": "category",
            "fixedrange": True,
        },
        yaxis={
            "title": _("actual"),
            "autorange": "reversed",
            "tickfont": {"size": 10},
            "type": "category",
            "fixedrange": True,
        },
        # A click selects a cell. Streamlit turns click-selection off while the drag mode is box or lasso,
        # so dragging does nothing (fixed axes) and box / lasso come from the chart's toolbar.
        clickmode="event+select",
        dragmode="pan",
    )
    return fig


# scoreboard's headers, marked for translation (the page shows them with core.i18n.translated_columns)
SCOREBOARD_COLUMNS = (N_("model"), N_("error_rate"), N_("as published"), N_("accuracy"))


def scoreboard(run_error: float, run_label: str, n_classes: int) -> pd.DataFrame:
    """This run next to the published Pets numbers (which are on all 37 breeds)."""
    rows = [
        {"model": _(name), "error_rate": err, "as published": _(text).format(share=share)}
        for name, err, text, share in PUBLISHED
    ]
    if n_classes == 37:
        this = _("this run: {label}").format(label=run_label)
    else:  # one message with its note: each language spaces (or not) its parenthesis
        this = n_(
            "this run: {label} ({n} class: not comparable to 37 breeds)",
            "this run: {label} ({n} classes: not comparable to 37 breeds)",
            n_classes,
        ).format(label=run_label, n=n_classes)
    rows.append({"model": this, "error_rate": run_error, "as published": ""})
    df = pd.DataFrame(rows)
    df["accuracy"] = 1 - df["error_rate"]
    return df.sort_values("error_rate", ascending=False).reset_index(drop=True)
