"""What one student and the whole class may store, and the disk space Pet Lab always leaves free.

Set by environment variables (docs/security.md, "Limits"), read once per call so a teacher's change applies on
the next action:

| variable | default | what |
|---|---|---|
| PETLAB_OWN_CLASSES | 10 | own classes per student |
| PETLAB_OWN_PHOTOS | 100 | photos per own class (of a student) |
| PETLAB_OWN_MB | 50 | MB of own-class photos per student |
| PETLAB_OWN_TOTAL_MB | 2000 | MB of own-class photos of all students together |
| PETLAB_SESSIONS_MB | 1000 | MB of photos kept for tabs (the last upload of each, core.store.session_store), all tabs together |
| PETLAB_MIN_FREE_MB | 500 | MB kept free on the data folder's disk: below it new heavy writes are refused |

Heavy writes (a photo, a kept upload, a training, a cache, an import) call require_free_space first and
translate a write that still hits a full disk (is_disk_full) into SpaceError; best-effort writes
(heartbeats, tab settings) never raise at all. The teacher's pages show disk_state().
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.i18n import N_, _

MB = 1024**2
ENV = {
    "classes": "PETLAB_OWN_CLASSES",
    "photos_per_class": "PETLAB_OWN_PHOTOS",
    "student_mb": "PETLAB_OWN_MB",
    "total_mb": "PETLAB_OWN_TOTAL_MB",
    "sessions_mb": "PETLAB_SESSIONS_MB",
    "min_free_mb": "PETLAB_MIN_FREE_MB",
}
NEARLY_FULL_FACTOR = 4  # the teacher is warned below this many times the floor
NOTHING_SAVED = N_("This job stopped and saved nothing; runs and caches saved before are untouched.")


class QuotaError(ValueError):
    """A write a quota or the free-space floor refuses; the message is meant for the page."""


class SpaceError(QuotaError):
    """The data folder's disk is (nearly) full: nothing new is stored; the message says so."""


@dataclass(frozen=True)
class Quotas:
    """The limits in force, from the environment (Quotas.from_env) or set by a test."""

    classes: int = 10
    photos_per_class: int = 100
    student_mb: int = 50
    total_mb: int = 2000
    sessions_mb: int = 1000
    min_free_mb: int = 500

    @classmethod
    def from_env(cls) -> Quotas:
        """The defaults, each replaced by its environment variable when that holds a whole number >= 0."""
        values = {}
        for name, var in ENV.items():
            try:
                values[name] = max(0, int(os.environ[var]))
            except (KeyError, ValueError):
                continue
        return cls(**values)

    @property
    def student_bytes(self) -> int:
        return self.student_mb * MB

    @property
    def total_bytes(self) -> int:
        return self.total_mb * MB

    @property
    def sessions_bytes(self) -> int:
        return self.sessions_mb * MB

    @property
    def min_free_bytes(self) -> int:
        return self.min_free_mb * MB


# ---- the free-space floor -------------------------------------------------------------------------


def free_bytes(path: Path) -> int:
    """Bytes free for this user on the disk holding path (its nearest existing parent); 0 when unknown."""
    path = Path(path)
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return 0


@dataclass(frozen=True)
class DiskState:
    """The data folder's disk as the teacher's pages show it."""

    free: int
    total: int
    floor: int

    @property
    def below_floor(self) -> bool:
        return self.free < self.floor

    @property
    def nearly_full(self) -> bool:
        return self.free < NEARLY_FULL_FACTOR * self.floor


def disk_state(path: Path, quotas: Quotas | None = None) -> DiskState:
    """Free and total bytes of the disk holding path, with the floor in force."""
    quotas = quotas or Quotas.from_env()
    try:
        total = shutil.disk_usage(path).total
    except OSError:
        total = 0
    return DiskState(free_bytes(path), total, quotas.min_free_bytes)


def space_message(free: int, floor: int) -> str:
    return _(
        "The server's disk is nearly full ({free} MB free; Pet Lab keeps {floor} MB free): nothing new can be "
        "stored now. Tell the teacher."
    ).format(free=f"{free / MB:,.0f}", floor=f"{floor / MB:,.0f}")


def require_free_space(path: Path, needed: int = 0, quotas: Quotas | None = None) -> None:
    """Raise SpaceError when writing `needed` more bytes under path would leave less than the floor free."""
    quotas = quotas or Quotas.from_env()
    free = free_bytes(path)
    if free - needed < quotas.min_free_bytes:
        raise SpaceError(space_message(free, quotas.min_free_bytes))


def is_disk_full(err: BaseException) -> bool:
    """True for the OSError a write gets when the disk (or the user's quota) is full."""
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)


def disk_full_error(path: Path, then: str = "", quotas: Quotas | None = None) -> SpaceError:
    """The SpaceError for a write that hit a full disk under path (raise it `from` the OSError); `then`: what
    became of the work, appended."""
    quotas = quotas or Quotas.from_env()
    return SpaceError(" ".join(filter(None, [space_message(free_bytes(path), quotas.min_free_bytes), then])))


@contextmanager
def disk_full_said(path: Path, then: str = "") -> Iterator[None]:
    """Run a write under path: an OSError of a full disk becomes disk_full_error's SpaceError (from it), the
    reason a page shows; any other OSError goes on as it was."""
    try:
        yield
    except OSError as err:
        if is_disk_full(err):
            raise disk_full_error(path, then) from err
        raise


# ---- what a folder holds -----------------------------------------------------------------------------


def folder_bytes(root: Path) -> int:
    """Bytes of the files under root (links not followed); 0 for a missing folder."""
    total, stack = 0, [str(root)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total
