"""Who is who in a class: the names students give themselves, and numbers for those who gave none.

A student may give a display name; it is kept with the tab (its store, ui/auth.py) and in the student's
space, `students/<tab>/profile.json`, where the teacher's Class page reads it. A name is never trusted:
it identifies nobody (anyone may call themself "Teacher"), decides nothing and is never part of a path;
it is only shown, cleaned (Unicode NFC, no control or format characters, one space between words, at
most MAX_NAME characters) and escaped wherever it is shown as markdown (`markdown_safe`).

A student with no name is "Student 3": numbers are given in the order students first show up on the
teacher's page, kept in the same profile, so a student keeps their number (and the teacher can tell two
students who both call themselves "Ada" apart: "Ada (3)", "Ada (5)").
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import string
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from core.auth import Identity
from core.i18n import _
from core.settings import students_dir
from core.storage import atomic_write_json, read_json
from core.store import live
from core.store.records import parse_dataclass, to_json
from core.store.session_store import valid_token

MAX_NAME = 40
PROFILE_FILE = "profile.json"
_SPACES = re.compile(r"\s+")
_MARKDOWN_SPECIAL = set(string.punctuation)  # every ASCII punctuation mark has a backslash escape in CommonMark


def clean_name(text: object) -> str:
    """A display name as it may be shown: NFC, control and format characters dropped, spaces collapsed, capped."""
    if not isinstance(text, str):
        return ""
    text = unicodedata.normalize("NFC", text)
    text = "".join(c if not unicodedata.category(c).startswith("C") else " " for c in text)
    return _SPACES.sub(" ", text).strip()[:MAX_NAME].strip()


def markdown_safe(text: str) -> str:
    """Text shown literally inside st.markdown: no emphasis, links, `:red[…]`, `:emoji:` or `$math$`."""
    return "".join("\\" + c if c in _MARKDOWN_SPECIAL else c for c in text)


@dataclass(frozen=True)
class Profile:
    """What the teacher's page knows of a student: their number and the name they chose ("" when none)."""

    number: int
    name: str = ""

    def label(self) -> str:
        """'Ada (3)' for a named student, 'Student 3' for one who gave no name (plain text, not markdown)."""
        if self.name:
            return _("{name} ({number})").format(name=self.name, number=self.number)
        return _("Student {number}").format(number=self.number)


def _profile_path(base: Path, tab: str) -> Path:
    if not valid_token(tab):
        raise ValueError("A profile belongs to a tab token (letters, digits, '-' and '_').")
    return students_dir(base) / tab / PROFILE_FILE


def _read(path: Path) -> Profile | None:
    """A stored profile through the one parser (its name cleaned again), or None: none, unreadable, or not one."""
    try:
        found = parse_dataclass(Profile, read_json(path), PROFILE_FILE)
    except ValueError:  # missing, broken JSON, or a RecordError
        return None
    return replace(found, name=clean_name(found.name)) if found.number >= 1 else None


@contextlib.contextmanager
def _locked(base: Path) -> Iterator[None]:
    folder = students_dir(base)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".roster.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _next_number(base: Path) -> int:
    folder = students_dir(base)
    taken = [p.number for p in (_read(f / PROFILE_FILE) for f in folder.iterdir() if f.is_dir()) if p]
    return max(taken, default=0) + 1


def profile(base: Path, tab: str) -> Profile:
    """The tab's profile; a tab seen for the first time gets the next number (kept from then on)."""
    path = _profile_path(base, tab)
    found = _read(path)
    if found is not None:
        return found
    with _locked(base):
        found = _read(path)
        if found is None:
            found = Profile(_next_number(base))
            atomic_write_json(path, to_json(found))
    return found


def set_name(base: Path, identity: Identity, name: object) -> str:
    """A student names themself (an empty name clears it); returns the name as kept. The teacher has no profile."""
    if identity.is_teacher:
        raise ValueError("The teacher is shown as the teacher; only students give themselves a name.")
    cleaned = clean_name(name)
    path = _profile_path(base, identity.tab)
    with _locked(base):
        current = _read(path) or Profile(_next_number(base))
        if current.name != cleaned:
            atomic_write_json(path, to_json(replace(current, name=cleaned)))
    live.bump(base, live.Channel.ROSTER)
    return cleaned


def label_of(base: Path, tab: str) -> str:
    """How the teacher's page names the tab's student: 'Ada (3)' or 'Student 3' (plain text)."""
    try:
        return profile(base, tab).label()
    except (ValueError, OSError):
        return _("a student")
