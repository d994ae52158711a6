"""One training at a time per data folder: the training lock, the progress file and the stop request.

All three live in `<data>/runs/`: `.train.lock` (fcntl.flock, held while a training runs),
`.progress.json` (the running training's state, for other tabs and processes) and `.stop`
(asks the running training to stop after its current batch).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from core.i18n import _
from core.storage import atomic_write_bytes, atomic_write_json, read_json
from core.store.records import EpochRow, RunConfig, TrainEvent, parse_dataclass, to_json

LOCK_FILE = ".train.lock"
PROGRESS_FILE = ".progress.json"
STOP_FILE = ".stop"


class TrainingBusy(RuntimeError):
    """Another training holds this data folder's lock; the message is meant for the page."""


class TrainingStopped(Exception):
    """The Stop button was pressed: the run is abandoned and nothing is saved."""


class ProgressStatus(StrEnum):
    STARTING = "starting"  # the lock is held, data and model are being prepared
    TRAINING = "training"  # events are coming in


@dataclass(frozen=True)
class TrainProgress:
    """The running training's state (`.progress.json`), for other tabs and processes: what, since when, how far."""

    run_id: str = ""
    title: str = ""  # the config's English title (older files: the only name they carry)
    config: RunConfig | None = None
    started: float = 0.0
    epochs: tuple[EpochRow, ...] = ()
    status: ProgressStatus = ProgressStatus.STARTING
    last: TrainEvent | None = None
    updated: float = 0.0  # set by write_progress
    pid: int | None = None  # set by write_progress

    def shown_title(self) -> str:
        """The training's title in the current language where its config says, else as stored ("" if none)."""
        return self.config.title(_) if self.config is not None else self.title

    def with_event(self, event: TrainEvent) -> TrainProgress:
        """This state after one more event (an epoch's row joins the table)."""
        epochs = (*self.epochs, event.row) if event.row is not None else self.epochs
        return replace(self, epochs=epochs, last=event, status=ProgressStatus.TRAINING)


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
                raise TrainingBusy(message.format(title=progress.title)) from err
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


def write_progress(runs_dir: Path, progress: TrainProgress) -> None:
    """The running training's state, for other tabs (atomic JSON)."""
    atomic_write_json(Path(runs_dir) / PROGRESS_FILE, to_json(replace(progress, updated=time.time(), pid=os.getpid())))


def read_progress(runs_dir: Path) -> TrainProgress | None:
    """The running training's last reported state, or None (none, or unreadable)."""
    try:
        return parse_dataclass(TrainProgress, read_json(Path(runs_dir) / PROGRESS_FILE), PROGRESS_FILE)
    except ValueError:  # missing, broken JSON, or a RecordError
        return None


def clear_progress(runs_dir: Path) -> None:
    (Path(runs_dir) / PROGRESS_FILE).unlink(missing_ok=True)


def request_stop(runs_dir: Path) -> None:
    """Ask the running training (in any tab) to stop after its current batch."""
    atomic_write_bytes(Path(runs_dir) / STOP_FILE, b"stop")


def stop_requested(runs_dir: Path) -> bool:
    return (Path(runs_dir) / STOP_FILE).exists()


def clear_stop(runs_dir: Path) -> None:
    (Path(runs_dir) / STOP_FILE).unlink(missing_ok=True)
