"""Fine-tuning as in lesson 1: fit_one_cycle frozen, then unfreeze with slice(lo, hi), stored as a run.

The orchestration: train_run finds or trains the run for a config (stages before the last come
from the stored parent run), reports live progress, honours Stop and stores the run atomically
(core.runs). Data and learners come from core.learners, the LR finder lives in core.lr_finder,
the charts and tables in core.curves.
"""

from __future__ import annotations

import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from core import features as feats
from core import inference, records, runs, training_lock
from core.datasets import DatasetScan
from core.i18n import N_, _
from core.learners import ProgressFn, fast_learner, prepare_learner
from core.models import save_weights
from core.records import RunConfig
from core.runs import RunInfo
from core.training_lock import TrainingStopped

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
                on_event(
                    {
                        "kind": "batch",
                        "stage": stage,
                        "epoch": self.epoch,
                        "n_epoch": self.n_epoch,
                        "iter": self.iter + 1,
                        "n_iter": self.n_iter,
                        "loss": float(self.smooth_loss),
                        "lr": float(self.opt.hypers[-1]["lr"]),
                    }
                )

        def after_epoch(self) -> None:
            names = list(self.recorder.metric_names[1:-1])  # train_loss, valid_loss, error_rate
            values = [float(v) for v in self.recorder.values[-1]]
            row = {"stage": stage, "epoch": self.epoch, **dict(zip(names, values, strict=False))}
            row["seconds"] = time.perf_counter() - self.epoch_start
            on_event({"kind": "epoch", "n_epoch": self.n_epoch, "row": row})

    return Live()


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
    lr_finder: dict | None = None,
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
    with training_lock.training_lock(runs_dir, wait=wait):
        training_lock.clear_stop(runs_dir)
        progress = {"run_id": rid, "title": config.title(), "config": records.config_as_dict(config),
                    "started": time.time(), "epochs": [], "status": "starting"}  # fmt: skip
        training_lock.write_progress(runs_dir, progress)

        def emit(event: dict) -> None:
            if event["kind"] == "epoch":
                progress["epochs"].append(event["row"])
            progress["last"] = event
            progress["status"] = "training"
            training_lock.write_progress(runs_dir, progress)
            if on_event:
                on_event(event)

        work = Path(tempfile.mkdtemp(prefix=".work-", dir=runs_dir))
        try:
            record = _train(config, scan, runs_dir, features_dir, work, emit, set_seed)
            record["lr_finder"] = lr_finder
            model_bytes = (work / "model.pt").read_bytes()
            preds = record.pop("_preds")
            path = runs.write_run(runs_dir, rid, model_bytes, record, preds)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            training_lock.clear_progress(runs_dir)
            training_lock.clear_stop(runs_dir)
        return TrainResult(RunInfo(rid, path, records.check_run(path)), reused=False)


def _train(config, scan, runs_dir, features_dir, work, emit, set_seed) -> dict:
    """The training itself; returns the run record (with the predictions under '_preds')."""
    parent_cfg = config.parent()
    start_stage = len(config.stages) - 1 if parent_cfg and runs.find_run(runs_dir, parent_cfg) else 0
    t0 = time.perf_counter()
    learn, prior, device = prepare_learner(config, scan, runs_dir, features_dir, work, emit, for_stage=start_stage)
    timings: dict[str, float] = {"setup": time.perf_counter() - t0}
    epochs = list(prior)
    last_fast = None
    precision = inference.precision_for(device)

    def collect(event: dict) -> None:
        if event["kind"] == "epoch":
            epochs.append(event["row"])
        emit(event)

    should_stop = lambda: training_lock.stop_requested(runs_dir)  # noqa: E731
    for i in range(start_stage, len(config.stages)):
        stage = config.stages[i]
        t = time.perf_counter()
        set_seed(config.seed + i)
        emit({"kind": "stage", "stage": i, "describe": stage.describe()})
        live = live_callback(collect, should_stop, i)
        if stage.fast:
            head = fast_learner(config, stage, scan, features_dir, learn, emit)
            timings[f"stage{i}_extract"] = head.features.seconds
            t = time.perf_counter()
            head.fit_one_cycle(stage.epochs, lr_max=stage.lr_max, pct_start=stage.pct_start, cbs=[live])
            last_fast = head
        else:
            if stage.unfreeze:
                learn.unfreeze()
            else:
                learn.freeze()
            lr = slice(stage.lr_min, stage.lr_max) if stage.lr_min else stage.lr_max
            fast_cbs = inference.training_callbacks(device, precision)  # channels_last; bf16/fp16 where it pays
            learn.fit_one_cycle(stage.epochs, lr_max=lr, pct_start=stage.pct_start, cbs=[live, *fast_cbs])
            last_fast = None
        timings[f"stage{i}_train"] = time.perf_counter() - t
    model = learn.model.cpu().eval()
    if last_fast is not None:  # the head on cached valid features gives the full model's predictions
        probs = feats.head_probs(model, last_fast.features.valid_x, torch.device("cpu"))
        targets = last_fast.features.valid_y
    else:
        p, y = learn.get_preds(dl=learn.dls.valid)
        probs, targets = p.float().numpy(), y.numpy().astype(np.int64)
    save_weights(model, work / "model.pt")
    valid_items = scan.items[scan.items["is_valid"]].reset_index(drop=True)
    return {
        "arch": config.arch,
        "classes": list(learn.dls.vocab),
        "img_size": config.img_size,
        "title": config.title(),
        "config": asdict(config),
        "dataset": {**asdict(scan.spec), "fingerprint": scan.fingerprint},  # the spec: novelty finds the images again
        "epochs": epochs,
        "timings": timings,
        "created": time.time(),
        "trained_stages": list(range(start_stage, len(config.stages))),
        "valid_paths": valid_items["path"].tolist(),
        "device": str(device),
        "precision": precision,
        "versions": library_versions(),
        "bn_note": BN_NOTE if any(s.fast for s in config.stages) else "",
        "_preds": {"probs": probs.astype(np.float32), "targets": targets},
    }


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
