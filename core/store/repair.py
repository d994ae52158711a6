"""Self-repair of the data folder: interrupted swaps rolled forward or back, leftovers of killed jobs and imports removed."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from core.store.records import check_run
from core.store.training_lock import PROGRESS_FILE, TrainingBusy, clear_progress, training_lock

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


# ---- leftovers of a killed import (`make import`, core.prep.bundle_import) ----------------------------------

IMPORT_PREFIX = ".import-"  # `.import-<id>.partial` while unpacking, `.import-<id>` while verifying and merging


@contextlib.contextmanager
def import_lock(data_dir: Path) -> Iterator[bool]:
    """Hold the data folder's import lock (a flock on the folder itself: no lock file); yields False, holding
    nothing, while another import holds it. The kernel releases it when its process dies (kill -9)."""
    try:
        fd = os.open(Path(data_dir), os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _import_leftovers(data_dir: Path, max_age: float, now: float) -> list[str]:
    done = []
    try:
        names = sorted(n for n in os.listdir(data_dir) if n.startswith(IMPORT_PREFIX))
    except OSError:
        return done
    for name in names:
        path = Path(data_dir) / name
        if _age(path, now) >= max_age:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            done.append(f"Removed {name}, left by an import that was stopped.")
    return done


def remove_import_leftovers(data_dir: Path, max_age: float = LEFTOVER_AGE_S, now: float | None = None) -> list[str]:
    """Remove `.import-*` folders a killed import left in the data folder (the bundle's size each); returns
    what was done. Only when no import holds the lock, and only those untouched for max_age seconds."""
    data_dir = Path(data_dir)
    try:
        if not any(n.startswith(IMPORT_PREFIX) for n in os.listdir(data_dir)):
            return []  # the usual case: nothing to look at, no lock taken
    except OSError:
        return []
    with import_lock(data_dir) as free:
        if not free:
            return []  # an import runs now: its folders are live
        return _import_leftovers(data_dir, max_age, time.time() if now is None else now)


def remove_import_leftovers_held(data_dir: Path) -> list[str]:
    """For an import holding the lock itself: every `.import-*` is a killed import's, whatever its age."""
    return _import_leftovers(Path(data_dir), 0.0, time.time())
