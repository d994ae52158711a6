"""Runs on disk: the config that names a run, atomic run folders, the runs list, the training lock.

A run lives in `<data>/runs/<run_id>/` with `model.pt` (state_dict of Sequential(body, head),
loaded with weights_only=True), `run.json` (what the run is and how it went) and `preds.npz`
(its validation-set probabilities). `run_id` is the stable hash of its frozen `RunConfig`, so
asking for a config that was already trained finds it instead of training it again.
"""

from __future__ import annotations

import fcntl
import io
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.models import ARCHS, RECORD_FILE, WEIGHTS_FILE
from core.storage import atomic_write_bytes, atomic_write_json, read_json, stable_hash

PREDS_FILE = "preds.npz"
LOCK_FILE = ".train.lock"
PROGRESS_FILE = ".progress.json"
STOP_FILE = ".stop"
REQUIRED_KEYS = ("arch", "classes", "img_size", "title", "config")


class TrainingBusy(RuntimeError):
    """Another training holds this data folder's lock; the message is meant for the page."""


class TrainingStopped(Exception):
    """The Stop button was pressed: the run is abandoned and nothing is saved."""


class ConfigError(ValueError):
    """A run configuration that cannot be trained; the message is meant for the page."""


@dataclass(frozen=True)
class StageConfig:
    """One `fit_one_cycle` call: frozen (head only) or unfrozen (all layer groups)."""

    epochs: int
    lr_max: float
    lr_min: float | None = None  # set: slice(lr_min, lr_max) across layer groups (discriminative LRs)
    unfreeze: bool = False
    fast: bool = False  # frozen stage trained on cached body features instead of images
    views: int = 1  # augmented views per training image in the feature cache (fast only)
    pct_start: float = 0.25

    def describe(self) -> str:
        lr = f"slice({self.lr_min:.0e}, {self.lr_max:.0e})" if self.lr_min else f"{self.lr_max:.0e}"
        kind = "unfrozen" if self.unfreeze else ("frozen, cached features" if self.fast else "frozen")
        return f"{self.epochs} ep {kind} @ {lr}"


@dataclass(frozen=True)
class RunConfig:
    """Everything that changes what a run learns; its stable hash is the run id."""

    dataset: str  # DatasetScan.fingerprint
    arch: str = "mobilenet_v2"
    pretrained: bool = True
    img_size: int = 128
    augment: bool = False  # fastai aug_transforms on the training batches
    bs: int = 16
    seed: int = 42
    wd: float = 0.01  # Adam's decoupled weight decay (fastai's default)
    train_bn: bool = True  # fastai's freeze() keeps BatchNorm trainable; False freezes it like the cached path
    stages: tuple[StageConfig, ...] = ()

    @property
    def run_id(self) -> str:
        return run_id(self)

    def parent(self) -> RunConfig | None:
        """The run this one continues from (all stages but the last), or None for a one-stage run."""
        return replace(self, stages=self.stages[:-1]) if len(self.stages) > 1 else None

    def title(self) -> str:
        init = "" if self.pretrained else " random-init"
        stages = " → ".join(s.describe() for s in self.stages)
        bn = "" if self.train_bn else " frozen-BN"
        return f"{self.arch}{init} {self.img_size}px{' aug' if self.augment else ''}{bn}: {stages}"


def run_id(config: RunConfig) -> str:
    """Stable hash of the full config: the same config gives the same id in every process."""
    return stable_hash(config)


def validate(config: RunConfig) -> None:
    """Raise ConfigError when a config cannot be trained as asked."""
    if config.arch not in ARCHS:
        raise ConfigError(f"Unknown architecture {config.arch!r}.")
    if not config.stages:
        raise ConfigError("A run needs at least one stage.")
    if not 16 <= config.img_size <= 1024:
        raise ConfigError("Image size must be between 16 and 1024 px.")
    if config.bs < 2:
        raise ConfigError("Batch size must be at least 2 (BatchNorm needs two images).")
    for i, stage in enumerate(config.stages):
        if stage.epochs < 1:
            raise ConfigError("Every stage needs at least one epoch.")
        if stage.lr_max <= 0 or (stage.lr_min is not None and not 0 < stage.lr_min <= stage.lr_max):
            raise ConfigError("Learning rates must be positive, with slice(lo, hi) lo ≤ hi.")
        if stage.fast and (stage.unfreeze or i > 0):
            raise ConfigError("Cached-feature training only works for the first, frozen stage.")
        if stage.views < 1:
            raise ConfigError("Views per image must be at least 1.")


def config_from_dict(data: dict) -> RunConfig:
    """Rebuild a RunConfig from its JSON form in run.json."""
    stages = tuple(StageConfig(**s) for s in data.get("stages", []))
    return RunConfig(**{**data, "stages": stages})


# ---- run folders ----------------------------------------------------------------------------


@dataclass
class RunInfo:
    """One usable run folder: its id, record and the folder itself."""

    run_id: str
    path: Path
    record: dict = field(repr=False)

    @property
    def title(self) -> str:
        return self.record.get("title", self.run_id)

    @property
    def created(self) -> float:
        return float(self.record.get("created", 0))

    @property
    def error_rate(self) -> float | None:
        epochs = self.record.get("epochs") or []
        return epochs[-1].get("error_rate") if epochs else None


def check_run(path: Path) -> dict:
    """The run.json of a complete run folder; raises ValueError naming what is wrong."""
    path = Path(path)
    if not (path / WEIGHTS_FILE).is_file():
        raise ValueError(f"{WEIGHTS_FILE} is missing")
    record = read_json(path / RECORD_FILE)
    if not isinstance(record, dict):
        raise ValueError(f"{RECORD_FILE} is not an object")
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise ValueError(f"{RECORD_FILE} lacks {', '.join(missing)}")
    return record


def list_runs(runs_dir: Path) -> tuple[list[RunInfo], list[str]]:
    """All complete runs, newest first, and one warning per folder that was skipped."""
    runs, warnings = [], []
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return runs, warnings
    for path in sorted(runs_dir.iterdir()):
        if path.name.startswith(".") or not path.is_dir():
            continue  # temp folders of a training in progress, the lock, the progress file
        try:
            runs.append(RunInfo(path.name, path, check_run(path)))
        except (ValueError, OSError) as err:
            warnings.append(f"Skipped run folder {path.name}: {err}")
    runs.sort(key=lambda r: r.created, reverse=True)
    return runs, warnings


def find_run(runs_dir: Path, config: RunConfig) -> RunInfo | None:
    """The stored run for exactly this config, if it is complete."""
    path = Path(runs_dir) / run_id(config)
    try:
        return RunInfo(path.name, path, check_run(path))
    except (ValueError, OSError):
        return None


def write_run(runs_dir: Path, rid: str, weights: bytes, record: dict, preds: dict[str, np.ndarray]) -> Path:
    """Write a complete run folder atomically: fill a hidden temp folder, then rename it into place."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    tmp = runs_dir / f".tmp-{rid}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        atomic_write_bytes(tmp / WEIGHTS_FILE, weights)
        atomic_write_bytes(tmp / PREDS_FILE, preds_bytes(preds))
        atomic_write_json(tmp / RECORD_FILE, record)
        final = runs_dir / rid
        if final.exists():  # "retrain anyway": move the old one aside first, then swap
            old = runs_dir / f".old-{rid}-{uuid.uuid4().hex[:8]}"
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def preds_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """Plain .npz bytes (no pickled objects) of prediction arrays."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def load_preds(run_dir: Path) -> dict[str, np.ndarray] | None:
    """The cached validation predictions of a run (probs (N, C), targets (N,)), or None."""
    path = Path(run_dir) / PREDS_FILE
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def save_preds(run_dir: Path, arrays: dict[str, np.ndarray]) -> None:
    """Add (or replace) the prediction cache of an existing run, atomically."""
    atomic_write_bytes(Path(run_dir) / PREDS_FILE, preds_bytes(arrays))


def delete_run(run_dir: Path) -> None:
    """Remove a run folder (rename away first so readers never see it half-deleted)."""
    run_dir = Path(run_dir)
    trash = run_dir.with_name(f".del-{run_dir.name}-{uuid.uuid4().hex[:8]}")
    run_dir.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)


def config_as_dict(config: RunConfig) -> dict[str, Any]:
    return asdict(config)


# ---- one training at a time per data folder ---------------------------------------------------


@contextmanager
def training_lock(runs_dir: Path, wait: bool = False) -> Iterator[None]:
    """Hold the data folder's training lock (fcntl.flock); TrainingBusy when held and not waiting."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    fh = open(runs_dir / LOCK_FILE, "a+")  # noqa: SIM115 - closed in finally
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError as err:
            progress = read_progress(runs_dir)
            what = f" ({progress.get('title', '')})" if progress else ""
            raise TrainingBusy(f"Another training is running in this data folder{what}.") from err
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        fh.close()


def training_running(runs_dir: Path) -> bool:
    """True while some process holds the training lock."""
    path = Path(runs_dir) / LOCK_FILE
    if not path.exists():
        return False
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def write_progress(runs_dir: Path, progress: dict) -> None:
    """The running training's state, for other tabs (atomic JSON)."""
    atomic_write_json(Path(runs_dir) / PROGRESS_FILE, {**progress, "updated": time.time(), "pid": os.getpid()})


def read_progress(runs_dir: Path) -> dict | None:
    """The running training's last reported state, or None."""
    try:
        data = read_json(Path(runs_dir) / PROGRESS_FILE)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def clear_progress(runs_dir: Path) -> None:
    (Path(runs_dir) / PROGRESS_FILE).unlink(missing_ok=True)


def request_stop(runs_dir: Path) -> None:
    """Ask the running training (in any tab) to stop after its current batch."""
    atomic_write_bytes(Path(runs_dir) / STOP_FILE, b"stop")


def stop_requested(runs_dir: Path) -> bool:
    return (Path(runs_dir) / STOP_FILE).exists()


def clear_stop(runs_dir: Path) -> None:
    (Path(runs_dir) / STOP_FILE).unlink(missing_ok=True)
