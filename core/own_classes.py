"""'Your own classes' (Teachable Machine style): classes named in the browser, photos added to each.

In class mode each student has their own store in a private space (core.classroom), and the
teacher's store is read-only to students: a store opened with `read_only=True` refuses every change.
A student's store has quotas (core.quotas: classes, photos per class, bytes, and all students together);
every store keeps the disk's free-space floor. Nothing is created on disk before the first class.
"""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.auth import Forbidden
from core.i18n import _
from core.images import ImageError, load_image_bytes
from core.quotas import (
    MB,
    QuotaError,
    Quotas,
    disk_full_error,
    folder_bytes,
    is_disk_full,
    require_free_space,
)
from core.storage import atomic_write_bytes

CLASS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _\-]{0,39}$")
STORED_SIDE = 512  # photos are stored as JPEG with the longer side at most this


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

    def classes(self) -> dict[str, int]:
        """Class name -> number of photos."""
        if not self.root.is_dir():
            return {}
        return {
            d.name: sum(1 for f in d.iterdir() if f.suffix == ".jpg")
            for d in sorted(self.root.iterdir())
            if d.is_dir() and not d.name.startswith(".")
        }

    def add_class(self, name: str) -> str:
        """Create a class folder; raises ValueError on a name that is not a plain word."""
        self._writable()
        name = name.strip()
        if not CLASS_NAME.match(name):
            raise ValueError(
                _("Class names are 1-40 letters, digits, spaces, '-' or '_', starting with a letter or digit.")
            )
        made = len(self.classes())
        if self.quotas is not None and not (self.root / name).is_dir() and made >= self.quotas.classes:
            raise QuotaError(
                _("You have {n} classes, the most one student may make: delete one to make another.").format(n=made)
            )
        require_free_space(self.root)
        try:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            if is_disk_full(err):
                raise disk_full_error(self.root) from err
            raise
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
        folder = self.root / name
        if not folder.is_dir():
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
        try:
            atomic_write_bytes(dest, body)
        except OSError as err:
            if is_disk_full(err):
                raise disk_full_error(self.root) from err
            raise
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
        return sorted((self.root / name).glob("*.jpg"))

    def remove_photo(self, name: str, photo: str) -> None:
        self._writable()
        path = (self.root / name / photo).resolve()
        if path.parent == (self.root / name).resolve():
            path.unlink(missing_ok=True)
            self._changed()

    def remove_class(self, name: str) -> None:
        self._writable()
        folder = (self.root / name).resolve()
        if folder.parent == self.root.resolve() and folder.is_dir():
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
