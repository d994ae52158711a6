"""'Your own classes' (Teachable Machine style): classes named in the browser, photos added to each.

In class mode each student has their own store in a private space (core.teach.classroom), and the
teacher's store is read-only to students: a store opened with `read_only=True` refuses every change.
A student's store has quotas (core.quotas: classes, photos per class, bytes, and all students together);
every store keeps the disk's free-space floor. Nothing is created on disk before the first class.

A class name becomes a folder name, so it is checked and normalised in one place (`class_name`):
letters of any script and digits, single spaces, '-' and '_'; NFC-normalised (an "é" typed on a
Mac and one typed on Windows are one name); at most MAX_NAME_CHARS characters and MAX_NAME_BYTES
bytes of UTF-8 on disk. Two names that differ only by case or normalisation are the same class
(`name_key`): a Mac or Windows disk would merge their folders anyway.
"""

from __future__ import annotations

import io
import shutil
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.auth import Forbidden
from core.data.images import ImageError, load_image_bytes
from core.i18n import _
from core.quotas import (
    MB,
    QuotaError,
    Quotas,
    disk_full_said,
    folder_bytes,
    require_free_space,
)
from core.storage import atomic_write_bytes

MAX_NAME_CHARS = 40  # what a chart's axis and a selectbox show in full
# UTF-8 bytes of the folder name: 40 CJK characters are 120 bytes, far under ext4's and NTFS's 255
# per name, and leave room in a tar header and in a path on Windows (260 characters in all).
MAX_NAME_BYTES = 120
# Names Windows reserves for devices, with or without an extension: a dataset copied there breaks.
RESERVED_NAMES = frozenset(
    ["con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))]
)
JOINERS = "\u200c\u200d"  # zero-width (non-)joiner: part of how Persian, Hindi and others spell words
STORED_SIDE = 512  # photos are stored as JPEG with the longer side at most this


def _allowed(char: str) -> bool:
    """A letter (any script), a combining mark, a digit or number, '-', '_', a space or a joiner."""
    return unicodedata.category(char)[0] in "LMN" or char in "-_ " or char in JOINERS


def class_name(typed: str) -> str:
    """The class name as stored: NFC-normalised, runs of spaces made one; ValueError says what is wrong.

    Refused: empty names, any character that is not a letter, digit, space, '-' or '_' (so no '/',
    no dots, no control or invisible formatting characters), a first character that is not a letter
    or digit, more than MAX_NAME_CHARS characters or MAX_NAME_BYTES bytes, and Windows' device names.
    """
    name = " ".join(unicodedata.normalize("NFC", typed).split())  # every kind of space and tab is one space
    if not name:
        raise ValueError(_("A class needs a name."))
    bad = sorted({c for c in name if not _allowed(c)})
    if bad:
        shown = " ".join(repr(c) if c.isprintable() else f"U+{ord(c):04X}" for c in bad[:5])
        raise ValueError(
            _("A class name may hold letters (of any language), digits, spaces, '-' and '_', not {chars}.").format(
                chars=shown
            )
        )
    if unicodedata.category(name[0])[0] not in "LN":
        raise ValueError(_("A class name starts with a letter or a digit."))
    if len(name) > MAX_NAME_CHARS or len(name.encode()) > MAX_NAME_BYTES:
        raise ValueError(
            _("{name} is too long: at most {chars} characters ({bytes} bytes on disk).").format(
                name=name[:MAX_NAME_CHARS] + "…", chars=MAX_NAME_CHARS, bytes=MAX_NAME_BYTES
            )
        )
    if name.split(".")[0].casefold() in RESERVED_NAMES:
        raise ValueError(_("{name} is a reserved file name on Windows: choose another.").format(name=name))
    return name


def name_key(name: str) -> str:
    """What makes two class names the same class: NFC and case-folded ("Cat", "cat" and "CAT" are one)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def safe_folder_name(text: str, fallback: str) -> str:
    """A folder name made from free text (a published dataset's name): what class_name refuses becomes '_'.

    NFC, at most MAX_NAME_BYTES bytes of UTF-8 (cut at a character), never hidden, never reserved; fallback
    (a plain ASCII name) when nothing usable is left.
    """
    text = " ".join(unicodedata.normalize("NFC", text).split())
    safe = "".join(c if _allowed(c) and c != " " else "_" for c in text).strip("_ ")
    safe = safe[:MAX_NAME_CHARS]
    while len(safe.encode()) > MAX_NAME_BYTES:
        safe = safe[:-1]
    if not safe or safe.casefold() in RESERVED_NAMES or unicodedata.category(safe[0])[0] not in "LN":
        return fallback
    return safe


@dataclass
class OwnClassesStore:
    """A folder dataset at root/<class>/<image hash>.jpg, labelled by parent folder."""

    root: Path
    read_only: bool = False  # the teacher's classes seen by a student: every change raises Forbidden
    on_change: Callable[[], None] | None = None  # called after every change (class mode: the Class page is told)
    quotas: Quotas | None = None  # a student's store: classes, photos per class and bytes are limited
    everyone: Path | None = None  # the folder holding every student's store, for the class-wide total

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    def _writable(self) -> None:
        if self.read_only:
            raise Forbidden(_("These classes are the teacher's: students can look at them, not change them."))

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [d for d in sorted(self.root.iterdir()) if d.is_dir() and not d.name.startswith(".")]

    def _folder(self, name: str) -> Path | None:
        """The folder of the class called name (or a name that is the same class, see name_key), or None."""
        key = name_key(name)
        return next((d for d in self._folders() if name_key(d.name) == key), None)

    def classes(self) -> dict[str, int]:
        """Class name (NFC, as the dataset scan labels it) -> number of photos."""
        return {
            unicodedata.normalize("NFC", d.name): sum(1 for f in d.iterdir() if f.suffix == ".jpg")
            for d in self._folders()
        }

    def add_class(self, name: str) -> str:
        """Create a class folder and return the class's name; ValueError (meant for the page) on a bad name.

        A name that is the same class as an existing one (case, normalisation) gives that class back;
        QuotaError (SpaceError) past the student's class quota or the disk's floor.
        """
        self._writable()
        name = class_name(name)
        existing = self._folder(name)
        if existing is not None:
            return unicodedata.normalize("NFC", existing.name)
        made = len(self.classes())
        if self.quotas is not None and made >= self.quotas.classes:
            raise QuotaError(
                _("You have {n} classes, the most one student may make: delete one to make another.").format(n=made)
            )
        require_free_space(self.root)
        with disk_full_said(self.root):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        self._changed()
        return name

    def usage(self) -> tuple[int, int]:
        """(classes, bytes of photos) this store holds: what its quotas count."""
        return len(self.classes()), folder_bytes(self.root)

    def add_photo(self, name: str, data: bytes, filename: str = "photo") -> Path:
        """Store one photo (any format Pet Lab reads) as an RGB JPEG in the class.

        Raises ImageError for a file that is no usable image, QuotaError (SpaceError) past a quota or the floor.
        """
        self._writable()
        folder = self._folder(name)
        if folder is None:
            raise ValueError(_("No class called {name!r}.").format(name=name))
        quotas = self.quotas
        if quotas is not None and sum(1 for f in folder.iterdir() if f.suffix == ".jpg") >= quotas.photos_per_class:
            raise QuotaError(
                _("{cls} has {n} photos, the most one class may hold: delete some to add others.").format(
                    cls=name, n=quotas.photos_per_class
                )
            )
        if quotas is not None:
            self._check_bytes(0, quotas)  # a full share is refused before any decoding
        loaded = load_image_bytes(data, filename, max_side=STORED_SIDE)
        dest = folder / f"{loaded.digest}.jpg"
        if dest.exists():
            return dest
        buf = io.BytesIO()
        loaded.image.save(buf, "JPEG", quality=92)
        body = buf.getvalue()
        if quotas is not None:
            self._check_bytes(len(body), quotas)
        require_free_space(self.root, len(body))
        with disk_full_said(self.root):
            atomic_write_bytes(dest, body)
        self._changed()
        return dest

    def _check_bytes(self, size: int, quotas: Quotas) -> None:
        used = folder_bytes(self.root)
        if used + size > quotas.student_bytes:
            raise QuotaError(
                _(
                    "Your photos take {used} MB of the {limit} MB one student may store: delete some to add others."
                ).format(used=f"{used / MB:.1f}", limit=quotas.student_mb)
            )
        if self.everyone is not None:
            everyone = folder_bytes(self.everyone)
            if everyone + size > quotas.total_bytes:
                raise QuotaError(
                    _(
                        "The class's own photos take {used} MB of the {limit} MB all students may store together: "
                        "ask the teacher to make room."
                    ).format(used=f"{everyone / MB:.0f}", limit=quotas.total_mb)
                )

    def photos(self, name: str) -> list[Path]:
        folder = self._folder(name)
        return sorted(folder.glob("*.jpg")) if folder is not None else []

    def remove_photo(self, name: str, photo: str) -> None:
        self._writable()
        folder = self._folder(name)
        if folder is None:
            return
        path = (folder / photo).resolve()
        if path.parent == folder.resolve():
            path.unlink(missing_ok=True)
            self._changed()

    def remove_class(self, name: str) -> None:
        self._writable()
        folder = self._folder(name)
        if folder is not None and folder.resolve().parent == self.root.resolve():
            shutil.rmtree(folder)
            self._changed()

    def publish(self, dest: Path) -> OwnClassesStore:
        """Copy every class and photo into dest (replacing what was there), atomically by rename."""
        dest = Path(dest)
        require_free_space(dest.parent, folder_bytes(self.root))
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(self.root, tmp, ignore=shutil.ignore_patterns(".*"))
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            dest.rename(old)
            tmp.rename(dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(dest)
        return OwnClassesStore(dest)


__all__ = ["OwnClassesStore", "ImageError", "Forbidden", "QuotaError"]
