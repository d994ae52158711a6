"""fastai's LR finder (lr_find) and its four suggestions, for the last stage of a run config."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from core import runs
from core.datasets import DatasetScan
from core.learners import ProgressFn, fast_learner, prepare_learner
from core.runs import RunConfig

SUGGESTIONS = ("valley", "minimum", "steep", "slide")
SUGGESTION_TEXT = {
    "valley": "the middle of the longest stretch where the loss keeps falling (fastai's default).",
    "minimum": "one tenth of the LR at the lowest loss: the minimum itself is already too high.",
    "steep": "where the loss falls fastest per step of log-LR.",
    "slide": "the largest LR before the loss starts to climb, allowing for noise.",
}


@dataclass
class LRFinderResult:
    """The LR finder's curve (smoothed loss per LR) and its suggestions."""

    lrs: list[float]
    losses: list[float]
    suggestions: dict[str, float]  # name -> suggested LR
    points: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (lr, loss) marker
    stage: str = "frozen"
    fast: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def _suggest(lrs: list[float], losses: list[float], num_it: int) -> tuple[dict, dict]:
    """fastai's suggestion functions on the same slice of the curve lr_find uses."""
    from fastai.callback.schedule import minimum, slide, steep, valley

    lr_t = torch.tensor(lrs[num_it // 10 : -5] or lrs)
    loss_t = torch.tensor(losses[num_it // 10 : -5] or losses)
    finite = torch.isfinite(loss_t)
    if not finite.all():
        cut = int(torch.nonzero(~finite)[0])
        lr_t, loss_t = lr_t[:cut], loss_t[:cut]
    suggestions, points = {}, {}
    if len(lr_t) < 3:
        return suggestions, points
    for name, func in zip(SUGGESTIONS, (valley, minimum, steep, slide), strict=True):
        try:
            lr, point = func(lr_t, loss_t, num_it)
        except (IndexError, ValueError, RuntimeError):  # slide needs ≥ 16 points; a very short curve lacks them
            continue
        suggestions[name] = float(lr)
        points[name] = (float(point[0]), float(point[1]))
    return suggestions, points


def find_lr(
    config: RunConfig,
    scan: DatasetScan,
    runs_dir: Path,
    features_dir: Path,
    num_it: int = 100,
    on_event: ProgressFn | None = None,
) -> LRFinderResult:
    """fastai's lr_find for the last stage of config (frozen, or unfrozen on top of the stored parent run).

    For a fast frozen stage it runs on the cached features, which is the same head, loss and
    optimizer at a fraction of the cost.
    """
    runs.validate(config)
    stage = config.stages[-1]
    start = time.perf_counter()
    Path(runs_dir).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".lrfind-", dir=Path(runs_dir)))
    try:
        learn, _, _ = prepare_learner(
            config, scan, runs_dir, features_dir, work, on_event, for_stage=len(config.stages) - 1
        )
        if stage.fast:
            learn = fast_learner(config, stage, scan, features_dir, learn, on_event)
        elif stage.unfreeze:
            learn.unfreeze()
        learn.lr_find(num_it=num_it, show_plot=False, suggest_funcs=None)
        lrs = [float(v) for v in learn.recorder.lrs]
        losses = [float(v) for v in learn.recorder.losses]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    suggestions, points = _suggest(lrs, losses, num_it)
    return LRFinderResult(
        lrs=lrs,
        losses=losses,
        suggestions=suggestions,
        points=points,
        stage="unfrozen" if stage.unfreeze else "frozen",
        fast=stage.fast,
        seconds=time.perf_counter() - start,
    )
