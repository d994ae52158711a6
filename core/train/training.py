"""Fine-tuning as in lesson 1: fit_one_cycle frozen, then unfreeze with slice(lo, hi), stored as a run.

The orchestration: train_run finds or trains the run for a config (stages before the last come
from the stored parent run), reports live progress, honours Stop and stores the run atomically
(core.store.runs). Data and learners come from core.train.learners, the LR finder lives in core.train.lr_finder,
the charts and tables in core.train.curves.
"""

from __future__ import annotations

import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from core.data.datasets import DatasetScan
from core.i18n import N_, _
from core.nets import inference
from core.nets.models import save_weights
from core.quotas import NOTHING_SAVED, disk_full_said, require_free_space
from core.store import records, runs, training_lock
from core.store.records import (
    DatasetInfo,
    EpochRow,
    EventKind,
    LRFinderResult,
    RunConfig,
    RunRecord,
    TrainEvent,
    parse_dataclass,
)
from core.store.runs import Preds, RunInfo
from core.store.training_lock import TrainingStopped, TrainProgress
from core.train.learners import ProgressFn, fast_learner, prepare_learner

# ---- live progress and the stop button --------------------------------------------------------


def live_callback(on_event: ProgressFn, should_stop: Callable[[], bool], stage: int, every: float = 0.25):
    """A fastai callback that reports batches and epochs and raises TrainingStopped when asked."""
    from fastai.callback.core import Callback
    from fastai.learner import Recorder

    class Live(Callback):
        order = Recorder.order + 1  # after the Recorder has written the epoch's values

        def before_fit(self) -> None:
            self.last = 0.0

        def before_epoch(self) -> None:
            self.epoch_start = time.perf_counter()

        def after_batch(self) -> None:
            if should_stop():
                raise TrainingStopped(_("Training stopped: nothing was saved."))
            now = time.perf_counter()
            if self.training and now - self.last >= every:
                self.last = now
                lr = float(self.opt.hypers[-1]["lr"])  # fastai's hyper-parameters of the last layer group
                on_event(TrainEvent(EventKind.BATCH, stage=stage, epoch=self.epoch, n_epoch=self.n_epoch,
                                    iter=self.iter + 1, n_iter=self.n_iter, loss=float(self.smooth_loss), lr=lr))  # fmt: skip

        def after_epoch(self) -> None:
            names = list(self.recorder.metric_names[1:-1])  # train_loss, valid_loss, error_rate
            values = [float(v) for v in self.recorder.values[-1]]
            metrics = dict(zip(names, values, strict=False))  # fastai's names: EpochRow's fields, others in .metrics
            seconds = time.perf_counter() - self.epoch_start
            row = parse_dataclass(
                EpochRow, {**metrics, "stage": stage, "epoch": self.epoch, "seconds": seconds}, "epoch"
            )
            on_event(TrainEvent(EventKind.EPOCH, n_epoch=self.n_epoch, row=row))

    return Live()


def validation_keeper():
    """A fastai callback that keeps the last validation pass's probabilities and targets.

    The run stores these as its predictions (preds.npz, read by Interpretation): the very forward
    pass whose error the Training page shows for the last epoch, so the two pages cannot disagree
    about one model. Validation runs in fp32 whatever precision the training steps use
    (core.nets.inference.mixed_precision_callbacks), so these are the numbers any machine computes.
    """
    from fastai.callback.core import Callback

    class KeepValidation(Callback):
        def before_validate(self) -> None:
            self.probs, self.targets = [], []

        def after_batch(self) -> None:
            if not self.training:
                self.probs.append(torch.softmax(self.pred.detach().float(), dim=1).cpu())  # (B, C)
                self.targets.append(self.yb[0].detach().cpu())  # (B,)

        def result(self) -> tuple[np.ndarray, np.ndarray]:
            """(N, C) float32 probabilities and (N,) int64 targets of the last validation pass."""
            return torch.cat(self.probs).numpy().astype(np.float32), torch.cat(self.targets).numpy().astype(np.int64)

    return KeepValidation()


# ---- training --------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """What train_run hands back: the stored run and whether it was found rather than trained."""

    run: RunInfo
    reused: bool


def train_run(
    config: RunConfig,
    scan: DatasetScan,
    runs_dir: Path,
    features_dir: Path,
    on_event: ProgressFn | None = None,
    lr_finder: LRFinderResult | None = None,
    retrain: bool = False,
    wait: bool = False,
) -> TrainResult:
    """Train (or find) the run for config and store it atomically; nothing is saved when stopped or failed.

    Stages before the last come from the stored parent run when there is one, as in the lesson
    where `unfreeze()` + `fit_one_cycle` continues the frozen model.
    """
    from fastai.torch_core import set_seed

    records.validate(config)
    runs_dir, features_dir = Path(runs_dir), Path(features_dir)
    rid = records.run_id(config)
    found = runs.find_run(runs_dir, config)
    if found is not None and not retrain:
        return TrainResult(found, reused=True)
    require_free_space(runs_dir)  # below the floor: refused before any work, with the reason
    with disk_full_said(runs_dir, _(NOTHING_SAVED)):  # a write hit a full disk: temp folders gone, runs untouched
        return _train_locked(config, scan, runs_dir, features_dir, rid, on_event, lr_finder, wait, set_seed)


def _train_locked(config, scan, runs_dir, features_dir, rid, on_event, lr_finder, wait, set_seed) -> TrainResult:
    """train_run's work under the training lock: train in a temp folder, then store the run atomically."""
    with training_lock.training_lock(runs_dir, wait=wait):
        training_lock.clear_stop(runs_dir)
        progress = TrainProgress(run_id=rid, title=config.title(), config=config, started=time.time())
        training_lock.write_progress(runs_dir, progress)

        def emit(event: TrainEvent) -> None:
            nonlocal progress
            progress = progress.with_event(event)
            training_lock.write_progress(runs_dir, progress)
            if on_event:
                on_event(event)

        work = Path(tempfile.mkdtemp(prefix=".work-", dir=runs_dir))
        try:
            record, preds = _train(config, scan, runs_dir, features_dir, work, emit, set_seed)
            record = replace(record, lr_finder=lr_finder)
            model_bytes = (work / "model.pt").read_bytes()
            path = runs.write_run(runs_dir, rid, model_bytes, record, preds)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            training_lock.clear_progress(runs_dir)
            training_lock.clear_stop(runs_dir)
        return TrainResult(RunInfo(rid, path, records.check_run(path)), reused=False)


def _train(config, scan, runs_dir, features_dir, work, emit, set_seed) -> tuple[RunRecord, Preds]:
    """The training itself; returns the run record and its stored predictions (the last validation pass)."""
    parent_cfg = config.parent()
    start_stage = len(config.stages) - 1 if parent_cfg and runs.find_run(runs_dir, parent_cfg) else 0
    t0 = time.perf_counter()
    learn, prior, device = prepare_learner(config, scan, runs_dir, features_dir, work, emit, for_stage=start_stage)
    timings: dict[str, float] = {"setup": time.perf_counter() - t0}
    epochs = list(prior)
    precision = inference.precision_for(device)
    kept = validation_keeper()  # the last validation pass: the stored predictions

    def collect(event: TrainEvent) -> None:
        if event.row is not None:
            epochs.append(event.row)
        emit(event)

    should_stop = lambda: training_lock.stop_requested(runs_dir)  # noqa: E731
    for i in range(start_stage, len(config.stages)):
        stage = config.stages[i]
        t = time.perf_counter()
        set_seed(config.seed + i)
        emit(TrainEvent(EventKind.STAGE, stage=i, describe=stage.describe()))
        live = live_callback(collect, should_stop, i)
        if stage.fast:
            head = fast_learner(config, stage, scan, features_dir, learn, emit)
            timings[f"stage{i}_extract"] = head.features.seconds
            t = time.perf_counter()
            head.fit_one_cycle(stage.epochs, lr_max=stage.lr_max, pct_start=stage.pct_start, cbs=[live, kept])
        else:
            if stage.unfreeze:
                learn.unfreeze()
            else:
                learn.freeze()
            lr = slice(stage.lr_min, stage.lr_max) if stage.lr_min else stage.lr_max
            # channels_last; the training steps in bf16/fp16 where that is the rule (validation stays fp32)
            fast_cbs = inference.training_callbacks(device, precision)
            learn.fit_one_cycle(stage.epochs, lr_max=lr, pct_start=stage.pct_start, cbs=[live, kept, *fast_cbs])
        timings[f"stage{i}_train"] = time.perf_counter() - t
    model = learn.model.cpu().eval()
    probs, targets = kept.result()  # a fast stage: the head on the cached valid features, the full model's predictions
    save_weights(model, work / "model.pt")
    valid_items = scan.items[scan.items["is_valid"]].reset_index(drop=True)
    trained = range(start_stage, len(config.stages))
    record = RunRecord(
        arch=config.arch,
        classes=tuple(learn.dls.vocab),
        img_size=config.img_size,
        title=config.title(),
        config=config,
        dataset=DatasetInfo(**asdict(scan.spec), fingerprint=scan.fingerprint),  # the spec: novelty finds the images
        epochs=tuple(epochs),
        timings=timings,
        created=time.time(),
        trained_stages=tuple(trained),
        valid_paths=tuple(valid_items["path"].tolist()),
        device=str(device),
        # what the steps trained here ran in: a head on cached features always trains in fp32
        precision=precision if any(not config.stages[i].fast for i in trained) else "fp32",
        versions=library_versions(),
        notes=BN_NOTE if any(s.fast for s in config.stages) else "",
    )
    return record, Preds(probs=probs.astype(np.float32), targets=targets)


BN_NOTE = N_(  # stored in run.json in English; the page shows _(BN_NOTE)
    "What the fast path does differently: it runs the frozen body once per image and trains only the head "
    "on the cached output. First it re-estimates the body's BatchNorm statistics on your training images "
    "(one pass, no weights change), as fastai's frozen epochs do on the side; so stage 2, which trains the "
    "body with batch statistics, continues from the features the head learned on. BatchNorm's own weights "
    "stay as pretrained in stage 1 (fastai's freeze() trains them, train_bn=True)."
)


def library_versions() -> dict[str, str]:
    """Versions that matter to reproduce a run."""
    import fastai
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "fastai": fastai.__version__,
        "numpy": np.__version__,
    }
