"""Dataset folder signatures, remembered server-wide: a rerun pays one stat per folder, not one per image.

`datasets.folder_signature` stats every image (~0.1 s for Pets' 7,390 files on the 2-core dev machine),
and the sidebar alone asks for the active dataset's signature twice per rerun of every page. Adding,
removing or renaming an image changes its folder's mtime, so the signature is recomputed at once; a file
rewritten in place under the same name is seen within SIGNATURE_TTL_S.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

from core.data import datasets

SIGNATURE_TTL_S = 30.0  # a file rewritten in place (same name) shows within this; adds, removes, renames at once
MAX_WATCHED_DIRS = 2000
MAX_REMEMBERED = 64  # folders remembered at once; beyond this the memo starts again
_SIGNATURES: dict[str, tuple[float, tuple[tuple[str, int], ...], str]] = {}
_SIGNATURES_LOCK = threading.Lock()


def _folders(root: str) -> list[str]:
    """root and every folder under it, as the dataset walk sees them (hidden names skipped, links not followed)."""
    found, stack = [], [root]
    while stack and len(found) < MAX_WATCHED_DIRS:
        folder = stack.pop()
        found.append(folder)
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            stack += [e.path for e in entries if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
    return found


def _stamps(folders: list[str]) -> tuple[tuple[str, int], ...] | None:
    try:
        return tuple((f, os.stat(f).st_mtime_ns) for f in folders)
    except OSError:
        return None


def dataset_signature(root: Path) -> str:
    """datasets.folder_signature of root, remembered while no folder under it changed (and at most SIGNATURE_TTL_S)."""
    key, now = str(root), time.monotonic()
    with _SIGNATURES_LOCK:
        entry = _SIGNATURES.get(key)
    if entry is not None:
        when, stamps, signature = entry
        if now - when < SIGNATURE_TTL_S and _stamps([f for f, _ in stamps]) == stamps:
            return signature
    stamps = _stamps(_folders(key))
    signature = datasets.folder_signature(root)
    if stamps is not None:
        with _SIGNATURES_LOCK:
            if len(_SIGNATURES) > MAX_REMEMBERED:
                _SIGNATURES.clear()
            _SIGNATURES[key] = (now, stamps, signature)
    return signature
