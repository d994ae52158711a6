"""Runs on disk: the config that names a run, atomic run folders, the runs list, the training lock.

A run lives in `<data>/runs/<run_id>/` with `model.pt` (state_dict of Sequential(body, head),
loaded with weights_only=True), `run.json` (what the run is and how it went) and `preds.npz`
(its validation-set probabilities). `run_id` is the stable hash of its frozen `RunConfig`, so
asking for a config that was already trained finds it instead of training it again.
"""

from __future__ import annotations

import dataclasses
import fcntl
import io
import math
import os
import shutil
import time
import types
import typing
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.i18n import N_, _
from core.models import ARCHS, RECORD_FILE, WEIGHTS_FILE
from core.storage import atomic_write_bytes, atomic_write_json, read_json, stable_hash

PREDS_FILE = "preds.npz"
LOCK_FILE = ".train.lock"
PROGRESS_FILE = ".progress.json"
STOP_FILE = ".stop"


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

    def describe(self, translate: Callable[[str], str] = N_) -> str:
        """'2 ep frozen, cached features @ 2.5e-03' (English unless translate is `_`: titles are stored in English)."""
        lr = f"slice({lr_text(self.lr_min)}, {lr_text(self.lr_max)})" if self.lr_min else lr_text(self.lr_max)
        kind = N_("unfrozen") if self.unfreeze else (N_("frozen, cached features") if self.fast else N_("frozen"))
        return translate(N_("{epochs} ep {kind} @ {lr}")).format(epochs=self.epochs, kind=translate(kind), lr=lr)


def lr_text(lr: float) -> str:
    """A learning rate as short as it can be while telling runs apart: 3e-03, 2.5e-03, 1.25e-04 (3 digits at most)."""
    mantissa, exponent = f"{lr:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{exponent}"


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

    def title(self, translate: Callable[[str], str] = N_) -> str:
        """'mobilenet_v2 64px aug: 2 ep frozen @ 3e-03 → …': stored in English; `title(_)` in the current language."""
        stages = " → ".join(s.describe(translate) for s in self.stages)
        return f"{self.title_head(translate)} {stages}"

    def title_head(self, translate: Callable[[str], str] = N_) -> str:
        """The title up to its stages: 'mobilenet_v2 random-init 64px aug frozen-BN:'."""
        init = "" if self.pretrained else " " + translate(N_("random-init"))
        aug = " " + translate(N_("aug")) if self.augment else ""
        bn = "" if self.train_bn else " " + translate(N_("frozen-BN"))
        return f"{self.arch}{init} {self.img_size}px{aug}{bn}:"


# Version of what the fast frozen path computes, hashed into the id of every run with a fast stage.
# 2: body BatchNorm statistics adapted to the dataset before extraction (core.features.adapt_batchnorm).
# Fast runs stored before it kept ImageNet's statistics and wreck stage 2, so they are never reused
# as "already trained" nor continued by stage 2 (they stay listed and usable as models).
FAST_PATH_VERSION = 2


def run_id(config: RunConfig) -> str:
    """Stable hash of the full config: the same config gives the same id in every process."""
    if any(stage.fast for stage in config.stages):
        return stable_hash({"config": asdict(config), "fast_path": FAST_PATH_VERSION})
    return stable_hash(config)


def validate(config: RunConfig) -> None:
    """Raise ConfigError when a config cannot be trained as asked."""
    if config.arch not in ARCHS:
        raise ConfigError(_("Unknown architecture {arch}.").format(arch=repr(config.arch)))
    if not config.stages:
        raise ConfigError(_("A run needs at least one stage."))
    if not 16 <= config.img_size <= 1024:
        raise ConfigError(_("Image size must be between 16 and 1024 px."))
    if config.bs < 2:
        raise ConfigError(_("Batch size must be at least 2 (BatchNorm needs two images)."))
    for i, stage in enumerate(config.stages):
        if stage.epochs < 1:
            raise ConfigError(_("Every stage needs at least one epoch."))
        if stage.lr_max <= 0 or (stage.lr_min is not None and not 0 < stage.lr_min <= stage.lr_max):
            raise ConfigError(_("Learning rates must be positive, with slice(lo, hi) lo ≤ hi."))
        if stage.fast and (stage.unfreeze or i > 0):
            raise ConfigError(_("Cached-feature training only works for the first, frozen stage."))
        if stage.views < 1:
            raise ConfigError(_("Views per image must be at least 1."))


def config_from_dict(data: dict) -> RunConfig:
    """Rebuild a RunConfig from its JSON form in run.json, checking every field's type (RecordError)."""
    return _parse_dataclass(RunConfig, data, "config")


# ---- the run record: run.json parsed in one place ------------------------------------------------


class RecordError(ValueError):
    """A run.json or preds.npz that is readable but wrong (missing field, wrong type); names the field."""


def _type_name(hint: Any) -> str:
    names = {str: "text", int: "a whole number", float: "a number", bool: "true/false", dict: "an object"}
    if hint in names:
        return names[hint]
    origin = typing.get_origin(hint)
    if origin is tuple:
        return "a list"
    if origin is dict:
        return "an object"
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) if a is not type(None) else "null" for a in typing.get_args(hint))
    return getattr(hint, "__name__", str(hint))


def _check(value: Any, hint: Any, where: str) -> Any:
    """value converted to the type hint (lists to tuples, ints to floats), or RecordError naming where."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _check(value, arg, where)
            except RecordError:
                continue
    elif hint is Any:
        return value
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is dict:
        if isinstance(value, dict):
            return value
    elif origin is tuple:
        item = typing.get_args(hint)[0]
        if isinstance(value, list | tuple):
            return tuple(_check(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    elif origin is dict:
        key_t, val_t = typing.get_args(hint)
        if isinstance(value, dict):
            return {_check(k, key_t, where): _check(v, val_t, f"{where}.{k}") for k, v in value.items()}
    elif dataclasses.is_dataclass(hint):
        return _parse_dataclass(hint, value, where)
    shown = type(value).__name__ if not isinstance(value, str) else f"{value[:20]!r}"
    raise RecordError(f"{where} should be {_type_name(hint)}, not {shown}")


def _parse_dataclass(cls: type, data: Any, where: str):
    """cls(**data) with every field type-checked; unknown keys go to the field named by cls.EXTRA (or are ignored)."""
    extra = getattr(cls, "EXTRA", None)
    if not isinstance(data, dict):
        raise RecordError(f"{where} should be an object, not {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.name != extra}
    kwargs: dict[str, Any] = {}
    for name, f in known.items():
        if name in data:
            kwargs[name] = _check(data[name], hints[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise RecordError(f"{where} lacks {name}")
    if extra:
        kwargs[extra] = {k: v for k, v in data.items() if k not in known}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise RecordError(f"{where}: {err}") from err


@dataclass(frozen=True)
class EpochRow:
    """One row of fastai's per-epoch table, as the trainer recorded it."""

    stage: int
    epoch: int
    train_loss: float | None = None
    valid_loss: float | None = None
    error_rate: float | None = None
    seconds: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # any other metric fastai reported
    EXTRA: typing.ClassVar[str] = "metrics"

    @classmethod
    def from_json(cls, data: Any, where: str = "epoch") -> EpochRow:
        return _parse_dataclass(cls, data, where)

    def to_json(self) -> dict[str, Any]:
        row = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "metrics"}
        return {**row, **self.metrics}


@dataclass(frozen=True)
class DatasetInfo:
    """Which dataset a run was trained on."""

    name: str = ""
    root: str = ""
    fingerprint: str = ""


@dataclass(frozen=True)
class RunRecord:
    """run.json, typed and checked: what a run is and how it went. Every reader goes through this.

    The JSON layout is unchanged (older runs load); keys this version does not know are kept in
    `extra` and written back. Anything with a wrong type raises RecordError naming the field.
    """

    arch: str
    classes: tuple[str, ...]
    img_size: int
    title: str
    config: RunConfig
    dataset: DatasetInfo = field(default_factory=DatasetInfo)
    epochs: tuple[EpochRow, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase (setup, stage0_train, ...)
    created: float = 0.0  # time.time() when it was stored
    trained_stages: tuple[int, ...] = ()  # stages trained in this run (earlier ones came from the parent)
    valid_paths: tuple[str, ...] = ()  # the validation images, in the order of preds.npz
    device: str = ""
    precision: str = "fp32"  # what training and extraction ran in (core.inference.precision_for); fp32 before it
    versions: dict[str, str] = field(default_factory=dict)
    lr_finder: dict | None = None  # the LR finder result the student looked at before training
    notes: str = ""  # "bn_note" in run.json
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    EXTRA: typing.ClassVar[str] = "extra"

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise RecordError(f"arch {self.arch!r} is not a known architecture")
        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise RecordError("classes should be a non-empty list of distinct names")
        if not 16 <= self.img_size <= 1024:
            raise RecordError(f"img_size {self.img_size} is outside 16–1024")
        if not math.isfinite(self.created):
            raise RecordError("created should be a finite time stamp")

    @classmethod
    def from_json(cls, data: Any) -> RunRecord:
        """Parse run.json's object; RecordError names the first wrong field."""
        if isinstance(data, dict) and "bn_note" in data:
            data = {**{k: v for k, v in data.items() if k != "bn_note"}, "notes": data["bn_note"]}
        return _parse_dataclass(cls, data, RECORD_FILE)

    def to_json(self) -> dict[str, Any]:
        """The run.json object (same layout the trainer always wrote)."""
        out = {
            "arch": self.arch,
            "classes": list(self.classes),
            "img_size": self.img_size,
            "title": self.title,
            "config": asdict(self.config),
            "dataset": asdict(self.dataset),
            "epochs": [e.to_json() for e in self.epochs],
            "timings": dict(self.timings),
            "created": self.created,
            "trained_stages": list(self.trained_stages),
            "valid_paths": list(self.valid_paths),
            "device": self.device,
            "precision": self.precision,
            "versions": dict(self.versions),
            "lr_finder": self.lr_finder,
            "bn_note": self.notes,
        }
        return {**self.extra, **out}

    def epoch_rows(self) -> list[dict[str, Any]]:
        """The epochs as plain dicts, for tables and charts."""
        return [e.to_json() for e in self.epochs]

    @property
    def error_rate(self) -> float | None:
        return self.epochs[-1].error_rate if self.epochs else None

    def shown_title(self) -> str:
        """The title as shown: the trainer's own title in the current language; any other stored title as it is."""
        if self.config.stages and self.title.startswith(self.config.title_head()):
            return self.config.title(_)
        return self.title


def read_record(run_dir: Path) -> RunRecord:
    """Read and check a run folder's run.json: the one place run.json is parsed."""
    return RunRecord.from_json(read_json(Path(run_dir) / RECORD_FILE))


# ---- run folders ----------------------------------------------------------------------------


@dataclass
class RunInfo:
    """One usable run folder: its id, checked record and the folder itself."""

    run_id: str
    path: Path
    record: RunRecord = field(repr=False)

    @property
    def title(self) -> str:
        return self.record.shown_title() or self.run_id

    @property
    def created(self) -> float:
        return self.record.created

    @property
    def error_rate(self) -> float | None:
        return self.record.error_rate


def check_run(path: Path) -> RunRecord:
    """The checked record of a complete run folder; raises ValueError naming what is wrong."""
    path = Path(path)
    if not (path / WEIGHTS_FILE).is_file():
        raise ValueError(f"{WEIGHTS_FILE} is missing")
    return read_record(path)


def list_runs(runs_dir: Path) -> tuple[list[RunInfo], list[str]]:
    """All complete runs, newest first, and one warning line per folder that was skipped.

    Repairs the registry first (repair_runs): an interrupted swap is rolled forward or back and
    old leftovers of killed jobs are removed.
    """
    runs, warnings = [], []
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return runs, warnings
    repair_runs(runs_dir)
    for path in sorted(runs_dir.iterdir()):
        if path.name.startswith(".") or not path.is_dir():
            continue  # temp folders of a training in progress, the lock, the progress file
        try:
            runs.append(RunInfo(path.name, path, check_run(path)))
        except (ValueError, OSError) as err:
            why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            warnings.append(_("Skipped run folder {name}: {why}").format(name=path.name, why=why))
    runs.sort(key=lambda r: r.created, reverse=True)
    return runs, warnings


def find_run(runs_dir: Path, config: RunConfig) -> RunInfo | None:
    """The stored run for exactly this config, if it is complete."""
    path = Path(runs_dir) / run_id(config)
    try:
        return RunInfo(path.name, path, check_run(path))
    except (ValueError, OSError):
        return None


def find_frozen_run(runs_dir: Path, config: RunConfig, views: int = 1) -> tuple[RunConfig, RunInfo | None]:
    """The stored run of config, else of the same config with its frozen first stage trained the other way.

    The Training page's Fast toggle (cached body features) and `make prepare` (full fastai runs, as the
    course trains them) make two runs of the same lesson settings. Whichever is stored is "already
    trained". Returns the config found (config itself when neither is) and its run; `views`: the
    augmented views per image a Fast twin of a full config would use.
    """
    found = find_run(runs_dir, config)
    first = config.stages[0] if config.stages else None
    if found is not None or first is None or first.unfreeze:
        return config, found
    twin_first = replace(first, fast=not first.fast, views=1 if first.fast else views)
    twin = replace(config, stages=(twin_first, *config.stages[1:]))
    twin_found = find_run(runs_dir, twin)
    return (twin, twin_found) if twin_found is not None else (config, None)


def write_run(runs_dir: Path, rid: str, weights: bytes, record: RunRecord | dict, preds: dict[str, np.ndarray]) -> Path:
    """Write a complete run folder atomically: fill a hidden temp folder, then rename it into place.

    The record is checked first (a dict is parsed into a RunRecord), and so are the predictions:
    nothing invalid is ever stored.
    """
    record = record if isinstance(record, RunRecord) else RunRecord.from_json(record)
    check_preds(preds, len(record.classes))
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    tmp = runs_dir / f".tmp-{rid}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        atomic_write_bytes(tmp / WEIGHTS_FILE, weights)
        atomic_write_bytes(tmp / PREDS_FILE, preds_bytes(preds))
        atomic_write_json(tmp / RECORD_FILE, record.to_json())
        final = runs_dir / rid
        if final.exists():  # "retrain anyway": move the old one aside first, then swap (repair_runs finishes
            old = runs_dir / f".old-{rid}-{uuid.uuid4().hex[:8]}"  # a swap killed between the renames)
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


def check_preds(arrays: dict[str, np.ndarray], n_classes: int | None = None) -> dict[str, np.ndarray]:
    """Validation predictions checked: probs (N, C) floats, targets (N,) ints in [0, C); RecordError otherwise."""
    if "probs" not in arrays or "targets" not in arrays:
        raise RecordError(f"{PREDS_FILE} lacks {'probs' if 'probs' not in arrays else 'targets'}")
    probs, targets = np.asarray(arrays["probs"]), np.asarray(arrays["targets"])
    if probs.ndim != 2 or not np.issubdtype(probs.dtype, np.floating):
        raise RecordError(f"{PREDS_FILE}: probs should be a 2-D float array, not {probs.ndim}-D {probs.dtype}")
    if targets.ndim != 1 or not np.issubdtype(targets.dtype, np.integer):
        raise RecordError(f"{PREDS_FILE}: targets should be a 1-D integer array, not {targets.ndim}-D {targets.dtype}")
    if len(targets) != len(probs):
        raise RecordError(f"{PREDS_FILE}: {len(probs)} rows of probs but {len(targets)} targets")
    n = probs.shape[1] if n_classes is None else n_classes
    if probs.shape[1] != n:
        raise RecordError(f"{PREDS_FILE}: probs has {probs.shape[1]} columns for {n} classes")
    if len(targets) and (targets.min() < 0 or targets.max() >= n):
        raise RecordError(f"{PREDS_FILE}: targets outside 0–{n - 1}")
    return {**arrays, "probs": probs, "targets": targets}


def load_preds(run_dir: Path, n_classes: int | None = None) -> dict[str, np.ndarray] | None:
    """The cached validation predictions of a run (probs (N, C), targets (N,)), checked; None when absent.

    A damaged file, pickled object arrays or wrong shapes raise RecordError with a readable reason.
    """
    path = Path(run_dir) / PREDS_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except ValueError as err:  # object arrays: numpy refuses to unpickle them
        raise RecordError(f"{PREDS_FILE} holds Python objects, which are never loaded") from err
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise RecordError(f"{PREDS_FILE} is damaged and cannot be read") from err
    return check_preds(arrays, n_classes)


def save_preds(run_dir: Path, arrays: dict[str, np.ndarray]) -> None:
    """Add (or replace) the prediction cache of an existing run, atomically."""
    atomic_write_bytes(Path(run_dir) / PREDS_FILE, preds_bytes(arrays))


def delete_run(run_dir: Path) -> None:
    """Remove a run folder (rename away first so readers never see it half-deleted)."""
    run_dir = Path(run_dir)
    trash = run_dir.with_name(f".del-{run_dir.name}-{uuid.uuid4().hex[:8]}")
    run_dir.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)


# ---- self-repair: interrupted swaps and leftovers of killed jobs --------------------------------

LEFTOVER_AGE_S = 600  # leftovers younger than this may belong to a job that is still running
LEFTOVER_PREFIXES = (".work-", ".tmp-", ".lrfind-", ".del-", ".old-")


def _age(path: Path, now: float) -> float:
    """Seconds since anything in path (a file or a folder, not descending into huge trees) last changed."""
    try:
        newest = path.lstat().st_mtime
        if path.is_dir():
            for child in path.iterdir():
                newest = max(newest, child.lstat().st_mtime)
    except OSError:
        return 0.0
    return now - newest


def _swap_id(name: str) -> str | None:
    """The run id in a '.old-<rid>-<hex8>' or '.tmp-<rid>-<hex8>' name."""
    for prefix in (".old-", ".tmp-"):
        if name.startswith(prefix) and len(name) > len(prefix) + 9 and name[-9] == "-":
            return name[len(prefix) : -9]
    return None


def _complete(path: Path) -> bool:
    try:
        check_run(path)
    except (ValueError, OSError):
        return False
    return True


def repair_runs(runs_dir: Path, max_age: float = LEFTOVER_AGE_S, now: float | None = None) -> list[str]:
    """Put the registry back in order; returns what was done (one line each).

    Runs only when no training holds the lock (it takes the lock itself, without waiting), so it
    never touches a job in progress. A "retrain anyway" swap killed between its two renames left
    the run only in `.old-<rid>-*` (and the new one complete in `.tmp-<rid>-*`): it is rolled
    forward to the new copy when that is complete, else back to the old one. Leftovers of killed
    jobs (`.work-*`, `.tmp-*`, `.lrfind-*`, `.del-*`, `.old-*`) untouched for max_age seconds are
    removed, and so is a progress file no training owns.
    """
    runs_dir = Path(runs_dir)
    try:
        names = [p.name for p in runs_dir.iterdir()]
    except OSError:
        return []
    if not any(n.startswith(LEFTOVER_PREFIXES) or n == PROGRESS_FILE for n in names):
        return []  # the usual case: nothing to look at, no lock taken
    done: list[str] = []
    now = time.time() if now is None else now
    try:
        with training_lock(runs_dir):
            for name in sorted(names):
                rid = _swap_id(name)
                if rid and name.startswith(".old-") and not (runs_dir / rid).exists():
                    newer = sorted(runs_dir.glob(f".tmp-{rid}-*"), key=lambda p: p.stat().st_mtime, reverse=True)
                    source = next((p for p in newer if _complete(p)), None)
                    if source is not None:
                        source.rename(runs_dir / rid)
                        done.append(f"Run {rid}: finished an interrupted retrain (kept the new copy).")
                    elif _complete(runs_dir / name):
                        (runs_dir / name).rename(runs_dir / rid)
                        done.append(f"Run {rid}: restored after an interrupted retrain (kept the old copy).")
            for path in sorted(runs_dir.iterdir()):
                if path.name.startswith(LEFTOVER_PREFIXES) and _age(path, now) >= max_age:
                    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
                    done.append(f"Removed {path.name}, left by a job that was stopped.")
            if (runs_dir / PROGRESS_FILE).exists():  # we hold the lock: no training owns it
                clear_progress(runs_dir)
                done.append("Removed the progress file of a training that was stopped.")
    except TrainingBusy:
        return []  # a training runs now: its folders are live, repair later
    except OSError:
        pass  # a read-only or vanished folder: nothing more to do now
    return done


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
            if progress:
                message = _("Another training is running in this data folder ({title}).")
                raise TrainingBusy(message.format(title=progress.get("title", ""))) from err
            raise TrainingBusy(_("Another training is running in this data folder.")) from err
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
