"""Per-tab settings that outlive a page change and a browser reload: plain JSON values and a few capped blobs.

Each browser tab carries a random token (the app puts it in the URL as `?s=<token>`). The token
names a folder under `<data folder>/sessions/` holding `values.json` (settings: numbers, strings,
lists, the active dataset) and at most MAX_BLOBS small files (an uploaded photo). A folder not
used for `ttl_s` seconds is deleted by purge_expired. Nothing here is ever unpickled or executed.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shutil
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.quotas import QuotaError, Quotas, require_free_space
from core.storage import atomic_write_bytes, atomic_write_json
from core.store.records import parse_dataclass, to_json

TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
BLOB_NAME = re.compile(r"^[a-z0-9_]{1,40}$")
TTL_S = 24 * 3600  # a tab untouched for a day starts afresh
MAX_VALUES_BYTES = 64 * 1024  # settings are small; anything bigger is refused
MAX_BLOB_BYTES = 10 * 1024**2  # one uploaded photo
MAX_BLOBS = 16  # per tab (Prediction keeps up to 8 uploads, Augmentation and Layers one each); the oldest goes first
MAX_TAB_BLOB_BYTES = 32 * 1024**2  # per tab, all blobs together; the oldest go first
VALUES_FILE = "values.json"


class StoreError(ValueError):
    """A value the store refuses (not plain JSON, too big, a bad name); the message says why."""


def new_token() -> str:
    """A fresh unguessable tab token (22 URL-safe characters)."""
    return secrets.token_urlsafe(16)


def valid_token(token: object) -> bool:
    """True for a token new_token could have made; anything else (paths, dots, long strings) is refused."""
    return isinstance(token, str) and bool(TOKEN_PATTERN.match(token))


@dataclass(frozen=True)
class Blob:
    """A stored file: its bytes, the name it was uploaded under and when it was stored."""

    data: bytes
    filename: str
    stored_at: float


@dataclass(frozen=True)
class BlobInfo:
    """A stored file's `.json` beside its bytes: the name it was uploaded under, when, and its size (a check)."""

    size: int
    filename: str = ""
    stored_at: float = 0.0


class SessionStore:
    """The settings of one browser tab, kept in `folder/<token>/`."""

    def __init__(self, folder: Path, token: str):
        if not valid_token(token):
            raise StoreError("Not a valid tab token.")
        self.dir = Path(folder) / token

    # ---- plain values
    def values(self) -> dict[str, Any]:
        """All stored values ({} for a new, expired or unreadable store); marks the tab as used."""
        path = self.dir / VALUES_FILE
        try:
            loaded = json.loads(path.read_text())
            path.touch()
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def update(self, changes: dict[str, Any], remove: tuple[str, ...] = ()) -> dict[str, Any]:
        """Set (and remove) values in one atomic write; returns the values now stored."""
        values = self.values()
        values.update(changes)
        for key in remove:
            values.pop(key, None)
        try:
            text = json.dumps(values, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise StoreError(f"Only plain values (numbers, text, lists, dicts) can be kept: {err}") from err
        if len(text) > MAX_VALUES_BYTES:
            raise StoreError(f"The tab's settings would exceed {MAX_VALUES_BYTES // 1024} KB; not kept.")
        atomic_write_json(self.dir / VALUES_FILE, values)
        return values

    def drop_values(self) -> None:
        """Remove every stored value (works on a full disk, where update cannot rewrite the file)."""
        (self.dir / VALUES_FILE).unlink(missing_ok=True)

    def move_to(self, token: str) -> SessionStore:
        """The same values and blobs under a new token (the old token then reaches nothing)."""
        moved = SessionStore(self.dir.parent, token)
        if self.dir.is_dir():
            if moved.dir.exists():
                shutil.rmtree(moved.dir)
            self.dir.rename(moved.dir)
        return moved

    def copy_to(self, token: str, exclude: Collection[str] = (), blobs: bool = True) -> SessionStore:
        """A new store under token with this one's values (less the keys in exclude) and blobs; this one stays.

        For a duplicated browser tab: it starts from the same settings under a token of its own.
        """
        copy = SessionStore(self.dir.parent, token)
        values = {k: v for k, v in self.values().items() if k not in exclude}
        if values:
            copy.update(values)
        if blobs and self.dir.is_dir():
            for body in sorted(self.dir.glob("*.bin"), key=lambda p: p.stat().st_mtime):  # oldest first: same order
                blob = self.get_blob(body.stem)
                if blob is not None:
                    copy.put_blob(body.stem, blob.data, blob.filename)
        return copy

    # ---- blobs (uploaded photos)
    def _blob_paths(self, name: str) -> tuple[Path, Path]:
        if not BLOB_NAME.match(name):
            raise StoreError(f"Bad blob name {name!r}.")
        return self.dir / f"{name}.bin", self.dir / f"{name}.json"

    def put_blob(self, name: str, data: bytes, filename: str, quotas: Quotas | None = None) -> bool:
        """Keep a file for this tab; False (nothing kept) when it is over MAX_BLOB_BYTES or the disk is short of
        space (the free-space floor, or a full disk). Best effort.

        Then the oldest blobs go until at most MAX_BLOBS remain, holding at most MAX_TAB_BLOB_BYTES together,
        and every tab's oldest over the class-wide total (quotas.sessions_mb).
        """
        if len(data) > MAX_BLOB_BYTES:
            return False
        quotas = quotas or Quotas.from_env()
        body, meta = self._blob_paths(name)
        try:
            require_free_space(self.dir.parent, len(data), quotas)
            _make_room(self.dir.parent, len(data), quotas.sessions_bytes)
            atomic_write_bytes(body, data)
            atomic_write_json(meta, to_json(BlobInfo(len(data), str(filename)[:200], time.time())))
            kept = sorted(
                self.dir.glob("*.bin"), key=lambda p: (p.stat().st_mtime_ns, p.name == body.name), reverse=True
            )
            sizes = [path.stat().st_size for path in kept]
        except (OSError, QuotaError):
            with contextlib.suppress(OSError):
                self.drop_blob(name)
            return False
        total = 0
        for i, (path, size) in enumerate(zip(kept, sizes, strict=True)):
            total += size
            if i >= MAX_BLOBS or (total > MAX_TAB_BLOB_BYTES and path != body):
                self.drop_blob(path.stem)
        return True

    def get_blob(self, name: str) -> Blob | None:
        """A stored file, or None when there is none (or it is damaged)."""
        body, meta = self._blob_paths(name)
        try:
            info = parse_dataclass(BlobInfo, json.loads(meta.read_text()), meta.name)
            data = body.read_bytes()
        except (OSError, ValueError):  # missing, broken JSON, or a RecordError
            return None
        if info.size != len(data):
            return None
        return Blob(data=data, filename=info.filename, stored_at=info.stored_at)

    def drop_blob(self, name: str) -> None:
        for path in self._blob_paths(name):
            path.unlink(missing_ok=True)


def _make_room(folder: Path, size: int, limit: int) -> None:
    """Drop the oldest kept files of any tab under folder until size more bytes fit in limit."""
    kept = []
    for body in Path(folder).glob("*/*.bin"):
        with contextlib.suppress(OSError):
            info = body.stat()
            kept.append((info.st_mtime, info.st_size, body))
    total = sum(n for _t, n, _p in kept)
    for _when, n, body in sorted(kept, key=lambda k: k[0]):
        if total + size <= limit:
            break
        with contextlib.suppress(OSError, StoreError):
            SessionStore(body.parent.parent, body.parent.name).drop_blob(body.stem)
            total -= n


def purge_expired(folder: Path, ttl_s: float = TTL_S, now: float | None = None) -> int:
    """Delete tab folders untouched for ttl_s seconds; returns how many went."""
    folder = Path(folder)
    now = time.time() if now is None else now
    removed = 0
    if not folder.is_dir():
        return 0
    for tab in folder.iterdir():
        if not tab.is_dir() or not valid_token(tab.name):
            continue
        try:
            last = max(p.stat().st_mtime for p in [tab, *tab.iterdir()])
        except (OSError, ValueError):
            continue
        if now - last > ttl_s:
            shutil.rmtree(tab, ignore_errors=True)
            removed += 1
    return removed
