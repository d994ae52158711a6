"""The class on disk: each student's private space, who is connected, the class settings.

Layout under the data folder (class mode only; a laptop uses none of it):
- `students/<tab>/own/`: the student's own classes (private to that tab; cleaned STUDENT_SPACE_HOURS
  after the student's last visit, unless the teacher published them first);
- `heartbeats/<tab>`: one small file per tab, its mtime the last heartbeat, its content the role;
- `datasets/published/<name>/`: students' classes the teacher published for everyone;
- `class.json`: the class dataset (everyone's default) and the class model, set by the teacher.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from core.auth import Identity, require
from core.datasets import DatasetSpec
from core.i18n import _
from core.own_classes import OwnClassesStore, safe_folder_name
from core.session_store import valid_token
from core.settings import class_file, heartbeats_dir, own_classes_dir, published_dir, students_dir
from core.storage import atomic_write_json, read_json

STUDENT_SPACE_HOURS = float(os.environ.get("PETLAB_STUDENT_HOURS", "24"))
ACTIVE_SECONDS = 60.0  # a tab that sent a heartbeat this recently counts as connected


def student_space(base: Path, tab: str) -> Path:
    """A student's private folder, named by their tab token (validated: a plain folder name)."""
    if not valid_token(tab):
        raise ValueError("A student space is named by a tab token (letters, digits, '-' and '_').")
    return students_dir(base) / tab


def student_classes_root(base: Path, tab: str) -> Path:
    """The folder of a student's own classes: `students/<tab>/own/`."""
    return student_space(base, tab) / "own"


def teacher_classes_root(base: Path) -> Path:
    return own_classes_dir(base)


def own_store(base: Path, identity: Identity) -> OwnClassesStore:
    """The 'Your own classes' store this user edits: the teacher's (laptop too), else the student's own."""
    if identity.is_teacher:
        return OwnClassesStore(teacher_classes_root(base))
    return OwnClassesStore(student_classes_root(base, identity.tab))


def teacher_store(base: Path, identity: Identity) -> OwnClassesStore:
    """The teacher's own classes, read-only unless identity is the teacher."""
    return OwnClassesStore(teacher_classes_root(base), read_only=not identity.is_teacher)


def run_visible(dataset_root: str, identity: Identity, base: Path) -> bool:
    """False for a run trained on (the folder of) another student's private classes; the teacher sees every run."""
    if identity.is_teacher:
        return True
    root = str(dataset_root or "")
    students = str(students_dir(base)) + os.sep
    if not root.startswith(students):
        return True
    return root.startswith(str(student_space(base, identity.tab)) + os.sep)


def publish_classes(base: Path, identity: Identity, tab: str, name: str) -> DatasetSpec:
    """Teacher: copy a student's own classes to datasets/published/<name>, visible to the class."""
    require(identity, "publish")
    source = OwnClassesStore(student_classes_root(base, tab))
    if len([c for c, n in source.classes().items() if n >= 2]) < 2:
        raise ValueError(_("Publishing needs at least two classes with two or more photos each."))
    safe = safe_folder_name(name, fallback=tab[:8])  # any script; no separators, dots or reserved names
    dest = source.publish(published_dir(base) / safe)
    return DatasetSpec(name=f"{safe} (published)", kind="own", root=str(dest.root), label_from="parent")


# ---- connected tabs --------------------------------------------------------------------------


def touch_session(base: Path, identity: Identity, now: float | None = None) -> None:
    """Record a heartbeat for identity's tab (its file's mtime); cheap enough for every rerun."""
    path = heartbeats_dir(base) / identity.tab
    try:
        path.touch()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(identity.role)
    if path.read_text() != identity.role:  # a student who signed in as the teacher
        path.write_text(identity.role)
    if now is not None:
        os.utime(path, (now, now))
    if identity.role == "student":
        space = student_space(base, identity.tab)
        if space.is_dir():
            os.utime(space, None if now is None else (now, now))


def active_sessions(base: Path, within: float = ACTIVE_SECONDS, now: float | None = None) -> dict[str, int]:
    """How many tabs per role sent a heartbeat in the last `within` seconds."""
    now = now or time.time()
    counts = {"teacher": 0, "student": 0}
    folder = heartbeats_dir(base)
    if not folder.is_dir():
        return counts
    for path in folder.iterdir():
        try:
            if now - path.stat().st_mtime <= within:
                role = path.read_text() or "student"
                counts[role] = counts.get(role, 0) + 1
        except OSError:
            continue
    return counts


@dataclass(frozen=True)
class StudentSpace:
    """A student's space as the teacher's Class page lists it."""

    tab: str
    classes: dict[str, int]
    last_seen: float


def student_spaces(base: Path) -> list[StudentSpace]:
    """Every student space with its classes, most recently seen first."""
    folder = students_dir(base)
    if not folder.is_dir():
        return []
    found = []
    for space in folder.iterdir():
        if space.is_dir() and valid_token(space.name):
            store = OwnClassesStore(student_classes_root(base, space.name), read_only=True)
            found.append(StudentSpace(space.name, store.classes(), space.stat().st_mtime))
    return sorted(found, key=lambda s: s.last_seen, reverse=True)


def clean_student_spaces(base: Path, max_age_hours: float = STUDENT_SPACE_HOURS, now: float | None = None) -> list[str]:
    """Delete student spaces and heartbeats not seen for max_age_hours; returns the tabs removed."""
    now = now or time.time()
    cutoff = now - max_age_hours * 3600
    removed = []
    for space in student_spaces(base):
        if space.last_seen < cutoff:
            shutil.rmtree(student_space(base, space.tab), ignore_errors=True)
            removed.append(space.tab)
    sessions = heartbeats_dir(base)
    if sessions.is_dir():
        for path in sessions.iterdir():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                continue
    return removed


# ---- the class settings ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassSettings:
    """What the teacher chose for everyone: the class dataset and the class model (a run id)."""

    dataset: DatasetSpec | None = None
    model_run: str | None = None


def read_class_settings(base: Path) -> ClassSettings:
    """The class settings, or the empty defaults when none are stored or the file is unreadable."""
    path = class_file(base)
    if not path.is_file():
        return ClassSettings()
    try:
        data = read_json(path)
        spec = DatasetSpec(**data["dataset"]) if data.get("dataset") else None
        model = data.get("model_run")
        return ClassSettings(spec, model if isinstance(model, str) else None)
    except (ValueError, TypeError, KeyError):
        return ClassSettings()


def set_class_dataset(base: Path, identity: Identity, spec: DatasetSpec | None) -> ClassSettings:
    """Teacher: make spec everyone's default dataset."""
    require(identity, "change_class_dataset")
    settings = ClassSettings(spec, read_class_settings(base).model_run)
    _write(base, settings)
    return settings


def set_class_model(base: Path, identity: Identity, run_id: str | None) -> ClassSettings:
    """Teacher: publish a run as the class model (everyone's default active model)."""
    require(identity, "publish")
    settings = ClassSettings(read_class_settings(base).dataset, run_id)
    _write(base, settings)
    return settings


def _write(base: Path, settings: ClassSettings) -> None:
    data = {"dataset": asdict(settings.dataset) if settings.dataset else None, "model_run": settings.model_run}
    atomic_write_json(class_file(base), data)


def own_classes_privacy_note(who: Identity, hours: float = STUDENT_SPACE_HOURS) -> str:
    """Where a user's own-class photos go, in one sentence for the Data page."""
    if not who.class_mode:
        return _("Everything stays on this machine.")
    if who.is_teacher:
        return _("Your classes are the class's: students see them but cannot change them.")
    return _(
        "Your classes are private to this browser tab and deleted {hours} hours after your last visit, "
        "unless the teacher publishes them for the class."
    ).format(hours=f"{hours:g}")
