"""Run records: the frozen config that names a run, and run.json typed and checked in one place.

`RunConfig` (with its `StageConfig`s) is everything that changes what a run learns; its stable hash
is the run id. `RunRecord` is run.json parsed: what a run is and how it went. Anything read from
disk goes through `parse_dataclass`, so a wrong type becomes one `RecordError` naming the field.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.codec import RecordError, parse_dataclass, to_json
from core.data.datasets import DatasetSpec
from core.i18n import N_, _
from core.nets.models import ARCHS, OFFLINE_ARCH, RECORD_FILE, WEIGHTS_FILE
from core.nets.schedules import lr_text
from core.storage import read_json, stable_hash


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
        """'2 ep frozen, cached features @ 2.5e-03' (English unless translate is `_`: titles are stored in English).

        One whole message per kind of stage, so a language orders it as it speaks ("冻结训练 2 轮（缓存特征，
        学习率 2.5e-03）"), not word for word.
        """
        lr = f"slice({lr_text(self.lr_min)}, {lr_text(self.lr_max)})" if self.lr_min else lr_text(self.lr_max)
        if self.unfreeze:
            text = N_("{epochs} ep unfrozen @ {lr}")
        elif self.fast:
            text = N_("{epochs} ep frozen, cached features @ {lr}")
        else:
            text = N_("{epochs} ep frozen @ {lr}")
        return translate(text).format(epochs=self.epochs, lr=lr)


@dataclass(frozen=True)
class RunConfig:
    """Everything that changes what a run learns; its stable hash is the run id."""

    dataset: str  # DatasetScan.fingerprint
    arch: str = OFFLINE_ARCH
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
        """'mobilenet_v2 64px aug: 2 ep frozen @ 3e-03 → …': stored in English; `title(_)` in the current language.

        In Chinese: 'mobilenet_v2，64 像素，数据增强：冻结训练 2 轮（学习率 3e-03）→ …'.
        """
        stages = " → ".join(s.describe(translate) for s in self.stages)
        return translate(N_("{arch} {details}: {stages}")).format(
            arch=self.arch, details=self._details(translate), stages=stages
        )

    def title_head(self) -> str:
        """The English title up to its stages, 'mobilenet_v2 random-init 64px aug frozen-BN:' (tells a trainer's
        title from one someone typed)."""
        return N_("{arch} {details}:").format(arch=self.arch, details=self._details(N_))

    def _details(self, translate: Callable[[str], str]) -> str:
        """'random-init 64px aug frozen-BN': what the title says before the stages, joined as the language does."""
        details = [
            *([] if self.pretrained else [translate(N_("random-init"))]),
            translate(N_("{size}px")).format(size=self.img_size),
            *([translate(N_("aug"))] if self.augment else []),
            *([] if self.train_bn else [translate(N_("frozen-BN"))]),
        ]
        joined = details[0]
        for detail in details[1:]:  # "64px aug" in English, "64 像素，数据增强" in Chinese
            joined = translate(N_("{details} {detail}")).format(details=joined, detail=detail)
        return joined


# Version of what the fast frozen path computes, hashed into the id of every run with a fast stage.
# 2: body BatchNorm statistics adapted to the dataset before extraction (core.train.features.adapt_batchnorm).
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
    return parse_dataclass(RunConfig, data, "config")


def config_as_dict(config: RunConfig) -> dict[str, Any]:
    return asdict(config)


# ---- the run record: run.json parsed in one place ------------------------------------------------


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
        return parse_dataclass(cls, data, where)

    def to_json(self) -> dict[str, Any]:
        return to_json(self)

    def value(self, metric: str) -> float | None:
        """A metric by fastai's name (train_loss, valid_loss, error_rate or any other it reported), None when absent."""
        if metric in self.metrics:
            return self.metrics[metric]
        return getattr(self, metric) if metric in _EPOCH_VALUES else None


_EPOCH_VALUES = ("train_loss", "valid_loss", "error_rate", "seconds")


class EventKind(StrEnum):
    """What a progress event reports (its JSON value is the stored "kind")."""

    EXTRACT = "extract"  # body features being extracted: what, i of n batches
    STAGE = "stage"  # a stage starts: stage, describe
    BATCH = "batch"  # a training batch: stage, epoch/n_epoch, iter/n_iter, smoothed loss, lr
    EPOCH = "epoch"  # an epoch ended: its row of fastai's table
    LR_FIND = "lr_find"  # the LR finder starts n mini-batches
    INDEX = "index"  # a patch index: i of n images


@dataclass(frozen=True)
class TrainEvent:
    """One progress event of a training, an LR finder, an extraction or a patch index.

    The trainer emits these (core.train.learners.ProgressFn), the progress file and job records store the last
    one, and the pages draw them; only the fields of its kind are set.
    """

    kind: EventKind
    stage: int | None = None
    describe: str = ""
    epoch: int | None = None
    n_epoch: int | None = None
    iter: int | None = None
    n_iter: int | None = None
    loss: float | None = None
    lr: float | None = None
    what: str = ""
    i: int | None = None
    n: int | None = None
    row: EpochRow | None = None
    time: float = 0.0  # when a job stored it (0 in the live events)

    @classmethod
    def from_json(cls, data: Any, where: str = "training event") -> TrainEvent:
        return parse_dataclass(cls, data, where)

    @property
    def fraction(self) -> float | None:
        """How far the current step is, 0..1 (batches within the stage's epochs, or extraction / indexing)."""
        if self.kind == EventKind.BATCH and self.n_iter and self.n_epoch:
            return min(1.0, ((self.epoch or 0) + (self.iter or 0) / self.n_iter) / self.n_epoch)
        if self.kind in (EventKind.EXTRACT, EventKind.INDEX) and self.n:
            return min(1.0, (self.i or 0) / self.n)
        return None


@dataclass(frozen=True)
class LRFinderResult:
    """The LR finder's curve (smoothed loss per LR) and its suggestions (core.train.lr_finder.find_lr makes it).

    Kept with a run (run.json's lr_finder), in a job record and in a tab's store: read back through the parser.
    """

    lrs: list[float]
    losses: list[float]
    suggestions: dict[str, float]  # name -> suggested LR
    points: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (lr, loss) marker
    stage: str = "frozen"  # one of core.train.lr_finder.STAGE_NAMES (English on disk; translated where shown)
    fast: bool = False
    seconds: float = 0.0

    @classmethod
    def from_json(cls, data: Any, where: str = "LR-finder result") -> LRFinderResult:
        """Parse a stored result, every field type-checked; RecordError (a ValueError) names what is wrong."""
        return parse_dataclass(cls, data, where)

    def to_json(self) -> dict[str, Any]:
        return to_json(self)


@dataclass(frozen=True)
class DatasetInfo:
    """Which dataset a run was trained on: its name, folder, fingerprint, and (runs since issue 19) its labelling."""

    name: str = ""
    root: str = ""
    fingerprint: str = ""
    kind: str = ""  # the DatasetSpec's other fields; "" in runs stored before they were recorded
    label_from: str = ""
    pattern: str = ""
    match_on: str = ""
    valid_pct: float | None = None
    seed: int | None = None

    def spec(self):
        """The run's own DatasetSpec (to find its training images again), or None for an older record."""
        if not (self.kind and self.label_from and self.root) or self.valid_pct is None or self.seed is None:
            return None
        return DatasetSpec(self.name, self.kind, self.root, self.label_from, self.pattern, self.match_on,
                           self.valid_pct, self.seed)  # fmt: skip


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
    precision: str = "fp32"  # what the training steps ran in (core.nets.inference.precision_for); fp32 before it
    versions: dict[str, str] = field(default_factory=dict)
    lr_finder: LRFinderResult | None = None  # the LR finder result the student looked at before training
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
        return parse_dataclass(cls, data, RECORD_FILE)

    def to_json(self) -> dict[str, Any]:
        """The run.json object (same layout the trainer always wrote)."""
        out = {
            "arch": self.arch,
            "classes": list(self.classes),
            "img_size": self.img_size,
            "title": self.title,
            "config": to_json(self.config),
            "dataset": to_json(self.dataset),
            "epochs": to_json(self.epochs),
            "timings": dict(self.timings),
            "created": self.created,
            "trained_stages": list(self.trained_stages),
            "valid_paths": list(self.valid_paths),
            "device": self.device,
            "precision": self.precision,
            "versions": dict(self.versions),
            "lr_finder": to_json(self.lr_finder),
            "bn_note": self.notes,
        }
        return {**self.extra, **out}

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


def check_run(path: Path) -> RunRecord:
    """The checked record of a complete run folder; raises ValueError naming what is wrong."""
    path = Path(path)
    if not (path / WEIGHTS_FILE).is_file():
        raise ValueError(f"{WEIGHTS_FILE} is missing")
    return read_record(path)
