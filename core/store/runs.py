"""Run folders on disk: atomic writing, the runs list, finding, deleting, and the cached predictions.

A run lives in `<data>/runs/<run_id>/` with `model.pt` (state_dict of Sequential(body, head),
loaded with weights_only=True), `run.json` (what the run is and how it went, see core.store.records)
and `preds.npz` (its validation-set probabilities). `run_id` is the stable hash of its frozen
`RunConfig`, so asking for a config that was already trained finds it instead of training it again.
"""

from __future__ import annotations

import io
import shutil
import uuid
import zipfile
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from core.i18n import _
from core.nets.models import RECORD_FILE, WEIGHTS_FILE, LoadedModel, create_model, load_weights, read_weights, run_label
from core.storage import atomic_write_bytes, atomic_write_json
from core.store.records import RecordError, RunConfig, RunRecord, check_run, parse_dataclass, read_record, run_id
from core.store.repair import remove_import_leftovers, repair_runs

PREDS_FILE = "preds.npz"
# the on-disk format of a run folder, listed here once (the bundle writer and the importer use these)
RUN_FILES = (WEIGHTS_FILE, RECORD_FILE, PREDS_FILE)  # every file a run folder holds
REQUIRED_RUN_FILES = (WEIGHTS_FILE, RECORD_FILE)  # runs stored before preds.npz existed lack it (it is recomputed)


@dataclass
class RunModel(LoadedModel):
    """A fine-tuned run's model, loaded from its folder, with its checked run.json record."""

    record: RunRecord | None = field(default=None, repr=False)

    def shown_label(self) -> str:
        """As LoadedModel's; a title the trainer wrote is shown in the current language (RunRecord.shown_title)."""
        if self.record is None or self.label == run_label(self.run_id, self.arch):
            return super().shown_label()
        return self.record.shown_title() or self.label


def load_run_model(run_dir: Path) -> RunModel:
    """Rebuild a fine-tuned run's model from run.json + model.pt, in eval mode on the CPU."""
    run_dir = Path(run_dir)
    record = read_record(run_dir)  # checked types; RecordError (a ValueError) names a wrong field
    arch, classes = record.arch, list(record.classes)
    model = create_model(arch, len(classes), pretrained=False)
    load_weights(model, run_dir / WEIGHTS_FILE)
    return RunModel(
        model=model.eval(),
        arch=arch,
        classes=classes,
        label=record.title or run_label(run_dir.name, arch),
        kind="run",
        img_size=record.img_size,
        run_id=run_dir.name,
        record=record,
    )


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


def list_runs(runs_dir: Path) -> tuple[list[RunInfo], list[str]]:
    """All complete runs, newest first, and one warning line per folder that was skipped.

    Repairs the registry first (repair_runs): an interrupted swap is rolled forward or back and
    old leftovers of killed jobs are removed, and so are those of a killed import in the data folder.
    """
    runs, warnings = [], []
    runs_dir = Path(runs_dir)
    remove_import_leftovers(runs_dir.parent)  # the data folder (core.settings' layout: runs/ lies in it)
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


@dataclass(frozen=True, eq=False)  # arrays: compare them with numpy, not ==
class Preds:
    """A run's stored validation predictions (preds.npz), checked: probs (N, C) floats, targets (N,) ints in [0, C).

    The trainer keeps the last validation pass (core.train.training.validation_keeper); Interpretation reads it.
    Constructing one checks it (RecordError naming what is wrong), so nothing invalid is ever stored or shown.
    """

    probs: np.ndarray  # (N, C) float32 softmax probabilities
    targets: np.ndarray  # (N,) int64 class indices

    def __post_init__(self) -> None:
        probs, targets = self.probs, self.targets
        if probs.ndim != 2 or not np.issubdtype(probs.dtype, np.floating):
            raise RecordError(f"{PREDS_FILE}: probs should be a 2-D float array, not {probs.ndim}-D {probs.dtype}")
        if targets.ndim != 1 or not np.issubdtype(targets.dtype, np.integer):
            raise RecordError(
                f"{PREDS_FILE}: targets should be a 1-D integer array, not {targets.ndim}-D {targets.dtype}"
            )
        if len(targets) != len(probs):
            raise RecordError(f"{PREDS_FILE}: {len(probs)} rows of probs but {len(targets)} targets")
        if len(targets) and (targets.min() < 0 or targets.max() >= probs.shape[1]):
            raise RecordError(f"{PREDS_FILE}: targets outside 0–{probs.shape[1] - 1}")

    @property
    def n_classes(self) -> int:
        return int(self.probs.shape[1])

    @property
    def error_rate(self) -> float | None:
        """The share of validation images whose top prediction is wrong (None without images)."""
        return float((self.probs.argmax(1) != self.targets).mean()) if len(self.targets) else None

    def check_classes(self, n_classes: int | None) -> Preds:
        """Itself, when it has one column per class of its run; RecordError otherwise."""
        if n_classes is not None and self.n_classes != n_classes:
            raise RecordError(f"{PREDS_FILE}: probs has {self.n_classes} columns for {n_classes} classes")
        return self

    def to_npz(self) -> bytes:
        """Plain .npz bytes (no pickled objects), the arrays named as the fields."""
        buf = io.BytesIO()
        np.savez(buf, **{f.name: getattr(self, f.name) for f in fields(self)})
        return buf.getvalue()

    @classmethod
    def from_npz(cls, path: Path, n_classes: int | None = None) -> Preds:
        """Read and check a preds.npz (allow_pickle=False: object arrays are refused, never unpickled)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except ValueError as err:  # object arrays: numpy refuses to unpickle them
            raise RecordError(f"{PREDS_FILE} holds Python objects, which are never loaded") from err
        except (OSError, EOFError, zipfile.BadZipFile) as err:
            raise RecordError(f"{PREDS_FILE} is damaged and cannot be read") from err
        return parse_dataclass(cls, arrays, PREDS_FILE).check_classes(n_classes)


def write_run(runs_dir: Path, rid: str, weights: bytes, record: RunRecord, preds: Preds) -> Path:
    """Write a complete run folder atomically: fill a hidden temp folder, then rename it into place.

    The record is a checked RunRecord and the predictions checked Preds (one column per class of the
    record): nothing invalid is ever stored.
    """
    if not isinstance(record, RunRecord) or not isinstance(preds, Preds):
        raise TypeError("write_run stores a RunRecord and its Preds")
    RunRecord.from_json(record.to_json())  # what is written reads back: every field's type checked by the parser
    preds.check_classes(len(record.classes))
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    tmp = runs_dir / f".tmp-{rid}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        atomic_write_bytes(tmp / WEIGHTS_FILE, weights)
        atomic_write_bytes(tmp / PREDS_FILE, preds.to_npz())
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


def load_preds(run_dir: Path, n_classes: int | None = None) -> Preds | None:
    """The cached validation predictions of a run, checked; None when absent.

    A damaged file, pickled object arrays or wrong shapes raise RecordError with a readable reason.
    """
    path = Path(run_dir) / PREDS_FILE
    if not path.is_file():
        return None
    return Preds.from_npz(path, n_classes)


def stored_error_differs(run: RunInfo) -> tuple[float, float] | None:
    """(last epoch's error, the stored predictions' error) when they differ, else None.

    Runs trained now store the last validation pass itself, so the two agree. A run trained by an
    older Pet Lab under bf16/fp16 validated in that precision and stored fp32 predictions: its
    Training page table and Interpretation then showed two numbers for one model (issue 17).
    """
    shown = run.record.error_rate
    if run.record.precision == "fp32":
        return None  # validated and predicted in fp32 alike
    try:
        preds = load_preds(run.path, len(run.record.classes))
    except RecordError:
        return None  # Interpretation says what is wrong with the file
    if shown is None or preds is None or preds.error_rate is None:
        return None
    stored = preds.error_rate
    return None if abs(stored - shown) < 1e-6 else (float(shown), stored)


def verify_run(run_dir: Path) -> RunRecord:
    """A run folder checked whole, as every page will use it; ValueError (or RecordError) saying why not.

    The typed record, the weights loaded into its architecture as this fastai builds it (with
    torch.load(weights_only=True)), and the stored predictions, when there, against its classes.
    """
    run_dir = Path(run_dir)
    record = check_run(run_dir)
    state = read_weights(run_dir / WEIGHTS_FILE)  # weights_only=True, before anything else touches the file
    try:
        create_model(record.arch, len(record.classes), pretrained=False).load_state_dict(state)
    except Exception as err:  # missing or unexpected keys, size mismatch, unknown arch ...
        raise ValueError(
            f"{WEIGHTS_FILE} does not fit {record.arch} with {len(record.classes)} classes ({err})"
        ) from err
    load_preds(run_dir, len(record.classes))
    return record


def delete_run(run_dir: Path) -> None:
    """Remove a run folder (rename away first so readers never see it half-deleted)."""
    run_dir = Path(run_dir)
    trash = run_dir.with_name(f".del-{run_dir.name}-{uuid.uuid4().hex[:8]}")
    run_dir.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)
