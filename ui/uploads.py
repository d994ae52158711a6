"""Bounds on the uploads Streamlit keeps in the server's memory: per browser session and in all.

Streamlit holds every file PUT to `/_stcore/upload_file/<session>/<id>` in memory until its session
ends, and a disconnected session is kept two more minutes for a reconnect. `server.maxUploadSize`
(.streamlit/config.toml, 50 MB) bounds one file; nothing bounds how many files one session PUTs to
ids of its choosing (the review: ten 190 MB files, 1.1 → 3 GB, still held after disconnecting).
install_upload_limits() wraps the runtime's upload manager so that a session holds at most
$PETLAB_UPLOAD_SESSION_MB and all sessions together $PETLAB_UPLOAD_TOTAL_MB; past the total, the files of
sessions no longer connected go first, and what still does not fit is refused (HTTP 413: the browser's
uploader shows the file as failed).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

SESSION_ENV = "PETLAB_UPLOAD_SESSION_MB"
TOTAL_ENV = "PETLAB_UPLOAD_TOTAL_MB"
MAX_FILES_PER_SESSION = 200  # a class of photos; zero-byte files cost memory too
_INSTALLED = "_petlab_upload_limits"
_LOCK = threading.Lock()


def _megabytes(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default))) * 1024**2
    except ValueError:
        return default * 1024**2


@dataclass(frozen=True)
class UploadLimits:
    """Bytes of uploads one browser session, and all of them together, may hold in the server's memory."""

    per_session: int
    total: int
    files_per_session: int = MAX_FILES_PER_SESSION

    @classmethod
    def from_env(cls) -> UploadLimits:
        return cls(per_session=_megabytes(SESSION_ENV, 100), total=_megabytes(TOTAL_ENV, 512))


def _refuse(detail: str) -> Exception:
    from starlette.exceptions import HTTPException  # Streamlit's server: the upload route turns it into a 413

    return HTTPException(status_code=413, detail=detail)


def bound_manager(manager, limits: UploadLimits, is_active) -> None:
    """Wrap manager.add_file (a MemoryUploadedFileManager) with limits; is_active(session_id) says who is connected."""
    original = manager.add_file

    def add_file(session_id: str, file) -> None:
        size = len(file.data)
        with _LOCK:
            mine = manager.file_storage.get(session_id, {})
            held = sum(len(f.data) for fid, f in mine.items() if fid != file.file_id)
            if held + size > limits.per_session:
                raise _refuse(f"This tab already holds {held // 1024**2} MB of uploads; the limit is "
                              f"{limits.per_session // 1024**2} MB. Remove some files first.")  # fmt: skip
            if len(mine) >= limits.files_per_session:
                raise _refuse(f"This tab already holds {len(mine)} uploaded files; the limit is "
                              f"{limits.files_per_session}. Remove some files first.")  # fmt: skip
            if _total(manager) + size > limits.total:
                for gone in [sid for sid in list(manager.file_storage) if sid != session_id and not is_active(sid)]:
                    manager.remove_session_files(gone)  # kept only for a reconnect: they go first
            if _total(manager) + size > limits.total:
                raise _refuse("The server holds too many uploads right now; try again in a minute.")
            original(session_id, file)

    add_file.__wrapped__ = original
    manager.add_file = add_file
    setattr(manager, _INSTALLED, limits)


def _total(manager) -> int:
    return sum(len(f.data) for files in list(manager.file_storage.values()) for f in list(files.values()))


def install_upload_limits(limits: UploadLimits | None = None) -> bool:
    """Bound the running server's upload manager (once per process); False without a Streamlit runtime (AppTest)."""
    from streamlit.runtime import Runtime

    if not Runtime.exists():
        return False
    runtime = Runtime.instance()
    manager = runtime.uploaded_file_mgr
    if getattr(manager, _INSTALLED, None) is not None:
        return True
    with _LOCK:
        if getattr(manager, _INSTALLED, None) is None and hasattr(manager, "file_storage"):
            bound_manager(manager, limits or UploadLimits.from_env(), runtime.is_active_session)
    return True
