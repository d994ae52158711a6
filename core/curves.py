"""Charts and tables of training: LR-finder curves, loss per epoch, runs side by side, fastai's epoch table."""

from __future__ import annotations

import pandas as pd


def lr_finder_figure(results: list[dict]):
    """Loss vs LR on a log axis; the newest curve on top with its suggestion markers, older ones faded."""
    import plotly.graph_objects as go

    fig = go.Figure()
    symbols = {"valley": "star", "minimum": "circle", "steep": "triangle-down", "slide": "diamond"}
    for i, res in enumerate(results):
        newest = i == len(results) - 1
        label = f"run {i + 1}: {res.get('stage', '')}{' (cached features)' if res.get('fast') else ''}"
        fig.add_trace(
            go.Scatter(
                x=res["lrs"],
                y=res["losses"],
                name=label,
                opacity=1.0 if newest else 0.35,
                line={"width": 3 if newest else 1.5},
            )
        )
        if newest:
            for name, (lr, loss) in res.get("points", {}).items():
                fig.add_trace(
                    go.Scatter(
                        x=[lr],
                        y=[loss],
                        mode="markers",
                        name=f"{name}: {res['suggestions'][name]:.1e}",
                        marker={"size": 13, "symbol": symbols.get(name, "x")},
                    )
                )
    fig.update_layout(
        height=360,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"title": "learning rate (log scale)", "type": "log", "exponentformat": "e"},
        yaxis={"title": "loss (smoothed)"},
    )
    return fig


def loss_figure(epochs: list[dict], batches: list[tuple[float, float]] | None = None):
    """Train/valid loss per epoch (and the smoothed batch loss while training)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    if batches:
        fig.add_trace(go.Scatter(x=[b[0] for b in batches], y=[b[1] for b in batches], name="batch loss (smoothed)",
                                 line={"width": 1, "color": "lightgrey"}))  # fmt: skip
    if epochs:
        x = list(range(1, len(epochs) + 1))
        fig.add_trace(go.Scatter(x=x, y=[e["train_loss"] for e in epochs], name="train_loss", mode="lines+markers"))
        fig.add_trace(go.Scatter(x=x, y=[e["valid_loss"] for e in epochs], name="valid_loss", mode="lines+markers"))
        fig.add_trace(go.Scatter(x=x, y=[e["error_rate"] for e in epochs], name="error_rate", mode="lines+markers",
                                 yaxis="y2", line={"dash": "dot"}))  # fmt: skip
    fig.update_layout(
        height=320,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"title": "epoch (all stages)"},
        yaxis={"title": "loss"},
        yaxis2={"title": "error rate", "overlaying": "y", "side": "right", "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def runs_figure(records: list[tuple[str, list[dict]]], metric: str = "valid_loss"):
    """One line per run: metric per epoch, to compare runs side by side."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for label, epochs in records:
        fig.add_trace(go.Scatter(x=list(range(1, len(epochs) + 1)), y=[e.get(metric) for e in epochs],
                                 name=label, mode="lines+markers"))  # fmt: skip
    fig.update_layout(height=340, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis={"title": "epoch"}, yaxis={"title": metric}, legend={"orientation": "h", "y": -0.3})  # fmt: skip
    return fig


def epochs_table(epochs: list[dict]) -> pd.DataFrame:
    """fastai's per-epoch table: stage, epoch, train_loss, valid_loss, error_rate, time.

    Records number stages and epochs from 0 as fastai does; the table numbers them from 1, as the
    page's headings and status lines do ("stage 1/2").
    """
    cols = ["stage", "epoch", "train_loss", "valid_loss", "error_rate", "seconds"]
    df = pd.DataFrame(epochs, columns=cols)
    df["stage"] = df["stage"] + 1
    df["epoch"] = df["epoch"] + 1
    return df.rename(columns={"seconds": "time (s)"})
