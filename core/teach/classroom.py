"""The class on disk: each student's private space, who is connected, the class settings.

Layout under the data folder (class mode only; a laptop uses none of it):
- `students/<tab>/own/`: the student's own classes (private to that tab; cleaned STUDENT_SPACE_HOURS
  after the student's last visit, unless the teacher published them first);
- `heartbeats/<role>.<who>`: one empty file per role and student (the client's address hashed, else the
  tab), its mtime the last heartbeat; written only by a tab open for a while (ui.auth.heartbeat), so
  tabs opened and dropped by a script leave nothing and one machine counts once;
- `datasets/published/<name>/`: students' classes the teacher published for everyone;
- `class.json`: the class dataset (everyone's default) and the class model, set by the teacher, with
  when each last changed (a tab that drew an older choice follows the newer one, ui/state.py);
- `lesson.json`: the Lesson step the signed-in teacher shows, which students' Lesson pages follow
  (its own live channel, LESSON: a step change reruns only the pages that show it).

Every change here that another tab shows bumps a core.store.live stamp, so open tabs refresh by themselves.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from core.auth import TEACHER_HOURS, Identity, require
from core.codec import RecordError, parse_dataclass, to_json
from core.data.datasets import DatasetSpec
from core.i18n import _
from core.quotas import Quotas, disk_full_said
from core.settings import (
    class_file,
    heartbeats_dir,
    lesson_file,
    own_classes_dir,
    published_dir,
    runs_dir,
    students_dir,
)
from core.storage import atomic_write_json, read_json
from core.store import live
from core.store.session_store import valid_token
from core.teach.own_classes import OwnClassesStore, safe_folder_name
from core.train.lesson import clamp_step

STUDENT_SPACE_HOURS = float(os.environ.get("PETLAB_STUDENT_HOURS", "24"))
ACTIVE_SECONDS = 60.0  # a tab that sent a heartbeat this recently counts as connected
HEARTBEAT_KEEP_S = 3600.0  # heartbeats older than this are removed (clean_student_spaces)
ROLES = ("teacher", "student")


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


def own_store(base: Path, identity: Identity, quotas: Quotas | None = None) -> OwnClassesStore:
    """The 'Your own classes' store this user edits: the teacher's (laptop too), else the student's own,
    with the student quotas (core.quotas, from the environment unless given) and the class-wide total."""
    if identity.is_teacher:
        return OwnClassesStore(teacher_classes_root(base))
    return OwnClassesStore(
        student_classes_root(base, identity.tab),
        quotas=quotas or Quotas.from_env(),
        everyone=students_dir(base),
        on_change=lambda: live.bump(base, live.Channel.ROSTER),
    )


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
    live.bump(base, live.Channel.CLASS)  # every student's Data page lists it
    return published_spec(dest.root)


PUBLISHED_SUFFIX = " (published)"


def published_spec(root: Path) -> DatasetSpec:
    """The dataset of one published folder (labelled by its class folders)."""
    return DatasetSpec(name=f"{Path(root).name}{PUBLISHED_SUFFIX}", kind="own", root=str(root), label_from="parent")


@dataclass(frozen=True)
class PublishedClasses:
    """Students' classes the teacher published: anyone may use them as their dataset."""

    spec: DatasetSpec
    classes: dict[str, int]  # class -> photos

    @property
    def n_photos(self) -> int:
        return sum(self.classes.values())


def published_classes(base: Path) -> list[PublishedClasses]:
    """Every published class set, by name (hidden temp folders of a publish under way left out)."""
    folder = published_dir(base)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        if path.is_dir() and not path.name.startswith("."):
            classes = OwnClassesStore(path, read_only=True).classes()
            found.append(PublishedClasses(published_spec(path), classes))
    return found


# ---- connected tabs --------------------------------------------------------------------------


def heartbeat_name(identity: Identity, client: str | None = None) -> str:
    """`<role>.<who>`: who is the client's address (hashed: no addresses on disk) when known, else the tab.

    Tabs are free (a script opened 37 a second); a machine is not: the Class page counts machines.
    """
    who = hashlib.sha256(client.encode()).hexdigest()[:22] if client else identity.tab
    return f"{identity.role}.{who}"


def touch_session(base: Path, identity: Identity, client: str | None = None, now: float | None = None) -> bool:
    """Record a heartbeat (its file's mtime) and the student space's last visit; cheap enough for every rerun.

    Best effort: False when it could not be written (a full disk never takes a page down).
    """
    path = heartbeats_dir(base) / heartbeat_name(identity, client)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        if now is not None:
            os.utime(path, (now, now))
        if identity.role == "student":
            space = student_space(base, identity.tab)
            if space.is_dir():  # made only with the student's first class (core.teach.own_classes)
                os.utime(space, None if now is None else (now, now))
    except OSError:
        return False
    return True


def forget_session(base: Path, identity: Identity, client: str | None = None) -> None:
    """Remove identity's heartbeat (a tab that signed in as the teacher is no student any more)."""
    with contextlib.suppress(OSError):
        (heartbeats_dir(base) / heartbeat_name(identity, client)).unlink(missing_ok=True)


def active_sessions(base: Path, within: float = ACTIVE_SECONDS, now: float | None = None) -> dict[str, int]:
    """How many students (machines, or tabs where the address is unknown) and teacher tabs sent a heartbeat
    in the last `within` seconds."""
    now = now or time.time()
    counts = dict.fromkeys(ROLES, 0)
    folder = heartbeats_dir(base)
    if not folder.is_dir():
        return counts
    for path in folder.iterdir():
        role, dot, _rest = path.name.partition(".")
        if not dot or role not in counts:
            continue  # not a heartbeat (an older layout's file is cleaned with the old heartbeats)
        try:
            if now - path.stat().st_mtime <= within:
                counts[role] += 1
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
    """Delete student spaces not seen for max_age_hours, and heartbeats older than HEARTBEAT_KEEP_S; returns
    the tabs whose space was removed."""
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
                if path.stat().st_mtime < now - min(HEARTBEAT_KEEP_S, max_age_hours * 3600):
                    path.unlink()
            except OSError:
                continue
    return removed


# ---- the class settings ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassSettings:
    """What the teacher chose for everyone: the class dataset and the class model (a run id), and when.

    `dataset_changed` / `model_changed` (time.time() of the teacher's last choice, 0 before any) let a
    tab tell a choice it has not followed yet from one it already did (ui.state.follow_class).
    """

    dataset: DatasetSpec | None = None
    model_run: str | None = None
    dataset_changed: float = 0.0
    model_changed: float = 0.0


def read_class_settings(base: Path) -> ClassSettings:
    """The class settings, or the empty defaults when none are stored or the file is unreadable."""
    path = class_file(base)
    if not path.is_file():
        return ClassSettings()
    try:
        return parse_dataclass(ClassSettings, read_json(path), path.name)
    except ValueError:  # broken JSON or a RecordError (a wrong field): the defaults, as with no file
        return ClassSettings()


def set_class_dataset(base: Path, identity: Identity, spec: DatasetSpec | None) -> ClassSettings:
    """Teacher: make spec everyone's default dataset (None: the server's default); every tab follows it."""
    require(identity, "change_class_dataset")
    old = read_class_settings(base)
    settings = ClassSettings(spec, old.model_run, _later(old.dataset_changed), old.model_changed)
    _write(base, settings)
    return settings


def delete_class_run(base: Path, identity: Identity, run_id: str) -> None:
    """Teacher: delete a run for everyone (unpublished first when it is the class model)."""
    from core.store import runs  # runs imports torch (nets.models): sign-in and class settings do without it

    require(identity, "delete_run")
    if not run_id.isalnum():
        raise ValueError(f"Not a run id: {run_id!r}")
    if read_class_settings(base).model_run == run_id:
        set_class_model(base, identity, None)
    runs.delete_run(runs_dir(base) / run_id)
    live.bump(base, live.Channel.CLASS)


def set_class_model(base: Path, identity: Identity, run_id: str | None) -> ClassSettings:
    """Teacher: publish a run as the class model (everyone's active model from now on; None: unpublish)."""
    require(identity, "publish")
    old = read_class_settings(base)
    settings = ClassSettings(old.dataset, run_id, old.dataset_changed, _later(old.model_changed))
    _write(base, settings)
    return settings


def _later(before: float) -> float:
    """Now, or just after `before` when a clock step would make the new choice look older."""
    return max(time.time(), before + 1e-3)


def _write(base: Path, settings: ClassSettings) -> None:
    with disk_full_said(base):  # the old settings stay (the write is atomic); the page says why
        atomic_write_json(class_file(base), to_json(settings))
    live.bump(base, live.Channel.CLASS)


# ---- the lesson step the class follows ---------------------------------------------------------

LESSON_STEP_HOURS = TEACHER_HOURS  # a step shared longer ago than a teacher's sign-in lasts is yesterday's lesson


@dataclass(frozen=True)
class LessonStep:
    """The Lesson step the teacher shows the class (1 .. len(core.train.lesson.STEPS)), and when they moved to it."""

    step: int
    at: float

    def current(self, now: float | None = None) -> bool:
        """Whether it is today's lesson: shared less than LESSON_STEP_HOURS ago."""
        return (time.time() if now is None else now) - self.at <= LESSON_STEP_HOURS * 3600


def lesson_step(base: Path, now: float | None = None) -> LessonStep | None:
    """The step the class follows, or None: none shared, the teacher signed out, or older than a school day.

    One small read; a tab reads it again only when the LESSON stamp moved (ui.live.teacher_step).
    """
    try:
        shared = parse_dataclass(LessonStep, read_json(lesson_file(base)), "lesson.json")
    except (OSError, ValueError, RecordError):  # none yet, or unreadable: nobody is led
        return None
    return shared if shared.step == clamp_step(shared.step) and shared.current(now) else None


def share_lesson_step(base: Path, identity: Identity, step: int) -> LessonStep:
    """Teacher: show the class this Lesson step; students who follow move to it. Only a change is written."""
    require(identity, "lead_lesson")
    step = clamp_step(step)
    shared = lesson_step(base)
    if shared is not None and shared.step == step:
        return shared
    shared = LessonStep(step, time.time())
    with disk_full_said(base):
        atomic_write_json(lesson_file(base), to_json(shared))
    live.bump(base, live.Channel.LESSON)
    return shared


def end_lesson(base: Path, identity: Identity) -> None:
    """Teacher (at sign-out): nobody is led any more; followers stay where they are."""
    require(identity, "lead_lesson")
    with contextlib.suppress(FileNotFoundError):
        lesson_file(base).unlink()
        live.bump(base, live.Channel.LESSON)


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
