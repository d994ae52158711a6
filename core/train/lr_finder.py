"""fastai's LR finder (lr_find) and its four suggestions, for the last stage of a run config."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from core.auth import Forbidden, Identity
from core.data.datasets import DatasetScan
from core.i18n import N_, _
from core.storage import stable_hash
from core.store import records, training_lock
from core.store.records import EventKind, LRFinderResult, RunConfig, TrainEvent
from core.train.learners import ProgressFn, fast_learner, features_cached, prepare_learner

VALLEY = "valley"  # fastai's default suggestion: the one the Training page offers to apply
SUGGESTIONS = (VALLEY, "minimum", "steep", "slide")
SUGGESTION_TEXT = {  # translated where shown
    "valley": N_("the middle of the longest stretch where the loss keeps falling (fastai's default)."),
    "minimum": N_("one tenth of the LR at the lowest loss: the minimum itself is already too high."),
    "steep": N_("where the loss falls fastest per step of log-LR."),
    "slide": N_("the largest LR before the loss starts to climb, allowing for noise."),
}


FROZEN, UNFROZEN = N_("frozen"), N_("unfrozen")  # the stage a curve was found for (LRFinderResult.stage)
STAGE_NAMES = (FROZEN, UNFROZEN)  # as curves.lr_finder_figure shows them, translated


def lr_finder_key(config: RunConfig) -> str:
    """What the LR finder's curve depends on: config with the last stage's epochs and LRs left out.

    One key per curve, so asking again with another lr_max (say, after "Use valley") finds it.
    """
    last = config.stages[-1]
    neutral = replace(last, epochs=1, lr_max=1e-3, lr_min=None)
    return stable_hash(["lr_find", records.config_as_dict(replace(config, stages=(*config.stages[:-1], neutral)))])


def cheap(config: RunConfig, features_dir: Path) -> bool:
    """True when the LR finder for config trains only a head on body features already cached (seconds)."""
    return len(config.stages) == 1 and features_cached(config, features_dir)


def require_allowed(identity: Identity, config: RunConfig, features_dir: Path) -> None:
    """Raise Forbidden unless identity may run this LR finder: the teacher always, a student only when cheap."""
    if not identity.is_teacher and not cheap(config, features_dir):
        raise Forbidden(
            _(
                "In class mode the teacher prepares the LR finder for new settings (it extracts body features "
                "first). Ask the teacher, or keep *Fast: cached body features* on with settings the teacher "
                "has prepared: then it runs here in seconds."
            )
        )


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
    wait: bool = False,
) -> LRFinderResult:
    """fastai's lr_find for the last stage of config (frozen, or unfrozen on top of the stored parent run).

    For a fast frozen stage it runs on the cached features, which is the same head, loss and
    optimizer at a fraction of the cost. It holds the training lock (TrainingBusy when a training
    holds it and wait is False), so its `.lrfind-*` folder is created and removed while no repair
    of the runs folder can run.
    """
    records.validate(config)
    stage = config.stages[-1]
    start = time.perf_counter()
    with training_lock.training_lock(runs_dir, wait=wait):
        work = Path(tempfile.mkdtemp(prefix=".lrfind-", dir=Path(runs_dir)))
        try:
            learn, _prior, _device = prepare_learner(
                config, scan, runs_dir, features_dir, work, on_event, for_stage=len(config.stages) - 1
            )
            if stage.fast:
                learn = fast_learner(config, stage, scan, features_dir, learn, on_event)
            elif stage.unfreeze:
                learn.unfreeze()
            if on_event:
                on_event(TrainEvent(EventKind.LR_FIND, n=num_it))
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
        stage=UNFROZEN if stage.unfreeze else FROZEN,
        fast=stage.fast,
        seconds=time.perf_counter() - start,
    )
