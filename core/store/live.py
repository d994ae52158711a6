"""Live state: small stamps that say "something everyone sees has changed", so open tabs refresh by themselves.

A tab cannot be told when another tab (or the worker) changes something; it can only look. Looking
must be cheap, because every open tab looks every few seconds: one `os.stat` of one small file per
channel, never a read of the job records or the runs. Whoever changes something bumps the channel's
stamp (a new file written atomically: a new inode and mtime); a tab that sees a stamp other than
the one it drew its page with reruns the page (ui/jobs.py, the sidebar's polling fragment).

Channels (files under `<data>/live/`):
- CLASS: what every tab shows: the class dataset and model, a job queued, started or ended (not its
  progress: that has its own bar), a run stored or deleted, students' classes published.
- ROSTER: what only the teacher's Class page lists: students' own classes, names, training requests.
- LESSON: the Lesson step the teacher shows (core.teach.classroom.share_lesson_step). No page reruns for it as a
  whole: a student's Lesson page that follows the teacher reruns when the step differs from the one it drew,
  and the sidebar's polling box shows the other pages where the teacher is (ui/live.py).

A lost bump costs a few seconds of staleness, never a wrong page: every page still reads the state
itself when it runs. So a bump never raises (a full disk must not fail the change it announces).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from enum import StrEnum
from pathlib import Path

from core.settings import live_dir
from core.storage import atomic_write_bytes

_COUNTER = itertools.count()


class Channel(StrEnum):
    """What a stamp announces (its file name under live/)."""

    CLASS = "class"
    ROSTER = "roster"
    LESSON = "lesson"


def stamp_path(base: Path, channel: Channel) -> Path:
    return live_dir(base) / str(Channel(channel))


def bump(base: Path, *channels: Channel) -> None:
    """Announce a change on each channel: its stamp file is replaced (new inode, new mtime)."""
    for channel in channels:
        note = f"{time.time_ns()} {os.getpid()} {next(_COUNTER)}\n".encode()
        with contextlib.suppress(OSError):
            atomic_write_bytes(stamp_path(base, channel), note)


def version(base: Path, channel: Channel) -> str:
    """The channel's current stamp as a short string ("0" before the first bump); one stat, no read."""
    try:
        info = os.stat(stamp_path(base, channel))
    except OSError:
        return "0"
    return f"{info.st_ino}:{info.st_mtime_ns}:{info.st_size}"


def versions(base: Path, channels: tuple[Channel, ...]) -> tuple[str, ...]:
    """The stamps of several channels, in order (what a tab compares with the ones it drew its page with)."""
    return tuple(version(base, c) for c in channels)
