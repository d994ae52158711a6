"""Charts and tables of training: LR-finder curves, loss per epoch, runs side by side, fastai's epoch table."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from core.i18n import _
from core.nets.schedules import lr_text
from core.store.records import EpochRow, LRFinderResult

# the same colour for a series wherever it is drawn (the live chart adds a batch-loss trace first, which
# shifted plotly's automatic colours: train_loss was drawn in the stored chart's valid_loss colour)
SERIES_COLORS = {
    "train_loss": "#0068c9",
    "valid_loss": "#83c9ff",
    "error_rate": "#ff2b2b",
    "batch": "#c4c7cc",
}
# error rate is a share: percent ticks (0.439 -> 44%), '~' drops trailing zeros on fine ticks (0.5%); its own
# round ticks from 0 (Streamlit's theme syncs a right-hand axis to the left one's gridlines: 3.2%, 16.8%, 30.3%)
PERCENT_AXIS = {"tickformat": ".1~%", "rangemode": "tozero", "tickmode": "auto", "showgrid": False}


def epoch_axis(n_epochs: int, title: str) -> dict:
    """An x axis of whole epochs (1, 2, 3; not 1.2, 1.4), at most about ten ticks."""
    return {"title": title, "tick0": 1, "dtick": max(1, -(-n_epochs // 10))}


def lr_finder_figure(results: Sequence[LRFinderResult]):
    """Loss vs LR on a log axis; the newest curve on top with its suggestion markers, older ones faded."""
    import plotly.graph_objects as go

    fig = go.Figure()
    symbols = {"valley": "star", "minimum": "circle", "steep": "triangle-down", "slide": "diamond"}
    for i, res in enumerate(results):
        newest = i == len(results) - 1
        stage = _(res.stage) if res.stage else ""
        label = (_("run {n}: {stage} (cached features)") if res.fast else _("run {n}: {stage}")).format(
            n=i + 1, stage=stage
        )
        fig.add_trace(
            go.Scatter(
                x=res.lrs,
                y=res.losses,
                name=label,
                opacity=1.0 if newest else 0.35,
                line={"width": 3 if newest else 1.5},
            )
        )
        if newest:
            for name, (lr, loss) in res.points.items():
                fig.add_trace(
                    go.Scatter(
                        x=[lr],
                        y=[loss],
                        mode="markers",
                        name=f"{name}: {lr_text(res.suggestions[name])}",
                        marker={"size": 13, "symbol": symbols.get(name, "x")},
                    )
                )
    fig.update_layout(
        height=360,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"title": _("learning rate (log scale)"), "type": "log", "exponentformat": "e"},
        yaxis={"title": _("loss (smoothed)")},
    )
    return fig


def loss_figure(epochs: Sequence[EpochRow], batches: list[tuple[float, float]] | None = None):
    """Train/valid loss per epoch (and the smoothed batch loss while training); error rate in percent on the right."""
    import plotly.graph_objects as go

    fig = go.Figure()
    if batches:
        fig.add_trace(go.Scatter(x=[b[0] for b in batches], y=[b[1] for b in batches], name=_("batch loss (smoothed)"),
                                 line={"width": 1, "color": SERIES_COLORS["batch"]}))  # fmt: skip
    if epochs:
        x = list(range(1, len(epochs) + 1))
        for series in ("train_loss", "valid_loss"):
            fig.add_trace(go.Scatter(x=x, y=[e.value(series) for e in epochs], name=series, mode="lines+markers",
                                     line={"color": SERIES_COLORS[series]}))  # fmt: skip
        fig.add_trace(go.Scatter(x=x, y=[e.error_rate for e in epochs], name="error_rate", mode="lines+markers",
                                 yaxis="y2", line={"dash": "dot", "color": SERIES_COLORS["error_rate"]},
                                 hovertemplate="%{y:.1%}"))  # fmt: skip
    fig.update_layout(
        height=320,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis=epoch_axis(len(epochs), _("epoch (all stages)")),
        yaxis={"title": _("loss")},
        yaxis2={"title": _("error rate"), "overlaying": "y", "side": "right", **PERCENT_AXIS},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def runs_figure(records: list[tuple[str, Sequence[EpochRow]]], metric: str = "valid_loss"):
    """One line per run: metric per epoch, to compare runs side by side (error rate in percent)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    percent = metric == "error_rate"
    for label, epochs in records:
        fig.add_trace(go.Scatter(x=list(range(1, len(epochs) + 1)), y=[e.value(metric) for e in epochs],
                                 name=label, mode="lines+markers", hovertemplate="%{y:.1%}" if percent else None))  # fmt: skip
    n_epochs = max((len(epochs) for _label, epochs in records), default=1)
    fig.update_layout(height=340, margin={"l": 10, "r": 10, "t": 30, "b": 10}, xaxis=epoch_axis(n_epochs, _("epoch")),
                      yaxis={"title": metric, **(PERCENT_AXIS if percent else {})},
                      legend={"orientation": "h", "y": -0.3})  # fmt: skip
    return fig


def epochs_table(epochs: Sequence[EpochRow]) -> pd.DataFrame:
    """fastai's per-epoch table: stage, epoch, train_loss, valid_loss, error_rate, time.

    Records number stages and epochs from 0 as fastai does; the table numbers them from 1, as the
    page's headings and status lines do ("stage 1/2"). Headers in the current language, fastai's
    metric names (train_loss, valid_loss, error_rate) as fastai prints them.
    """
    cols = ["stage", "epoch", "train_loss", "valid_loss", "error_rate", "seconds"]
    df = pd.DataFrame([[e.stage, e.epoch, e.train_loss, e.valid_loss, e.error_rate, e.seconds] for e in epochs],
                      columns=cols)  # fmt: skip
    df["stage"] = df["stage"] + 1
    df["epoch"] = df["epoch"] + 1
    return df.rename(columns={"stage": _("stage"), "epoch": _("epoch"), "seconds": _("time (s)")})
