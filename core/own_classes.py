"""'Your own classes' (Teachable Machine style): classes named in the browser, photos added to each.

In class mode each student has their own store in a private space (core.classroom), and the
teacher's store is read-only to students: a store opened with `read_only=True` refuses every change.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.auth import Forbidden
from core.i18n import _
from core.images import ImageError, load_image_bytes
from core.storage import atomic_write_bytes

CLASS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _\-]{0,39}$")
STORED_SIDE = 512  # photos are stored as JPEG with the longer side at most this


@dataclass
class OwnClassesStore:
    """A folder dataset at root/<class>/<image hash>.jpg, labelled by parent folder."""

    root: Path
    read_only: bool = False  # the teacher's classes seen by a student: every change raises Forbidden
    on_change: Callable[[], None] | None = None  # called after every change (class mode: the Class page is told)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.read_only:
            self.root.mkdir(parents=True, exist_ok=True)

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
        (self.root / name).mkdir(exist_ok=True)
        self._changed()
        return name

    def add_photo(self, name: str, data: bytes, filename: str = "photo") -> Path:
        """Store one photo (any format Pet Lab reads) as an RGB JPEG in the class; raises ImageError."""
        self._writable()
        folder = self.root / name
        if not folder.is_dir():
            raise ValueError(_("No class called {name!r}.").format(name=name))
        loaded = load_image_bytes(data, filename, max_side=STORED_SIDE)
        dest = folder / f"{loaded.digest}.jpg"
        if not dest.exists():
            import io

            buf = io.BytesIO()
            loaded.image.save(buf, "JPEG", quality=92)
            atomic_write_bytes(dest, buf.getvalue())
            self._changed()
        return dest

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


__all__ = ["OwnClassesStore", "ImageError", "Forbidden"]
