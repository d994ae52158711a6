"""The one-cycle schedule as plain functions: plot it, test it, no training needed.

These call the very functions fastai's `fit_one_cycle` uses (`combined_cos`), so the curve the
Training page draws before a run is the curve the run follows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.i18n import _, n_, num

DIV = 25.0  # fit_one_cycle: start at lr_max / div
DIV_FINAL = 1e5  # ... and end at lr_max / div_final
PCT_START = 0.25  # fraction of the steps spent warming up
MOMS = (0.95, 0.85, 0.95)  # Learner's default momentum cycle (Adam's beta1)
LR_WIDGET_FORMAT = "%.2e"  # number inputs of a learning rate: the three digits lr_text shows (sprintf, 1.45e-3)


def lr_text(lr: float) -> str:
    """A learning rate as every page writes it: 3e-03, 2.5e-03, 1.45e-03 (3 significant digits at most).

    The one format of a learning rate: run titles, the LR finder's suggestions and its button, the
    schedule's title, the slice table, the progress line. A suggestion applied is rounded to it, so
    the number on the button is the number trained with.
    """
    mantissa, exponent = f"{lr:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{exponent}"


def lr_shown(lr: float) -> float:
    """lr rounded to what lr_text shows (the value a button that shows it applies)."""
    return float(lr_text(lr))


def one_cycle_lr(
    pct: float, lr_max: float, pct_start: float = PCT_START, div: float = DIV, div_final: float = DIV_FINAL
) -> float:
    """Learning rate at training progress pct ∈ [0, 1) under fit_one_cycle(lr_max=lr_max)."""
    from fastai.callback.schedule import combined_cos

    return float(combined_cos(pct_start, lr_max / div, lr_max, lr_max / div_final)(pct))


def one_cycle_mom(pct: float, moms: tuple[float, float, float] = MOMS, pct_start: float = PCT_START) -> float:
    """Momentum at progress pct: the inverse cycle (high when the LR is low)."""
    from fastai.callback.schedule import combined_cos

    return float(combined_cos(pct_start, *moms)(pct))


def one_cycle_schedule(
    n_epoch: int, n_iter: int, lr_max: float, pct_start: float = PCT_START, moms: tuple[float, float, float] = MOMS
) -> pd.DataFrame:
    """Per-step LR and momentum of fit_one_cycle(n_epoch, lr_max) with n_iter batches per epoch.

    fastai's ParamScheduler evaluates the schedule at pct_train = step / (n_epoch * n_iter) before
    each batch, which is exactly what this table holds (columns: step, epoch, pct, lr, mom).
    """
    from fastai.callback.schedule import combined_cos

    total = max(1, n_epoch * n_iter)
    steps = np.arange(total)
    pcts = steps / total
    lr_fn = combined_cos(pct_start, lr_max / DIV, lr_max, lr_max / DIV_FINAL)
    mom_fn = combined_cos(pct_start, *moms)
    return pd.DataFrame(
        {
            "step": steps,
            "epoch": steps / max(1, n_iter),
            "pct": pcts,
            "lr": [float(lr_fn(p)) for p in pcts],
            "mom": [float(mom_fn(p)) for p in pcts],
        }
    )


def group_lrs(lr_lo: float | None, lr_hi: float, n_groups: int) -> list[float]:
    """LR per layer group for `slice(lo, hi)` (geometric spread, fastai's even_mults) or one LR for all."""
    from fastai.torch_core import even_mults

    if lr_lo is None:
        return [float(lr_hi)] * n_groups  # a plain float: every group gets the same LR
    if n_groups == 1:
        return [float(lr_hi)]
    return [float(v) for v in even_mults(lr_lo, lr_hi, n_groups)]


def schedule_title(n_epoch: int, n_iter: int, lr_max: float) -> str:
    """The schedule figure's title: the fit_one_cycle call it plots and its batches per epoch."""
    batches = n_("{n} batch per epoch", "{n} batches per epoch", n_iter).format(n=num(n_iter))
    call = f"fit_one_cycle({n_epoch}, lr_max={lr_text(lr_max)})"
    return _("{call}: {batches}").format(call=call, batches=batches)  # a full-width colon in Chinese


def schedule_figure(schedule: pd.DataFrame, title: str | None = None):
    """Plotly LR (left axis) and momentum (right axis) per step, as fit_one_cycle will run them."""
    import plotly.graph_objects as go

    fig = go.Figure()
    epoch, lr, mom = _("epoch"), _("learning rate"), _("momentum")
    fig.add_trace(go.Scatter(x=schedule["epoch"], y=schedule["lr"], name=lr, line={"width": 3},
                             hovertemplate=epoch + " %{x:.2f}: lr %{y:.2e}<extra></extra>"))  # fmt: skip
    fig.add_trace(go.Scatter(x=schedule["epoch"], y=schedule["mom"], name=mom, yaxis="y2", line={"dash": "dot"},
                             hovertemplate=epoch + " %{x:.2f}: " + mom + " %{y:.3f}<extra></extra>"))  # fmt: skip
    fig.update_layout(
        title=title or _("One-cycle schedule"),
        height=300,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis={"title": epoch, "tickformat": ".1f"},
        yaxis={"title": lr, "exponentformat": "e"},
        # momentum cycles between 0.85 and 0.95: ticks every 0.05 with two decimals (not 0.8098…)
        yaxis2={
            "title": mom,
            "overlaying": "y",
            "side": "right",
            "range": [0.8, 1.0],
            "tick0": 0.8,
            "dtick": 0.05,
            "tickformat": ".2f",
        },  # fmt: skip
        legend={"orientation": "h", "y": -0.25},
    )
    return fig
