"""Datasets: what a dataset is, scanning a folder cheaply, and the train/valid split."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from core.images import IMAGE_SUFFIXES, MAX_PIXELS
from core.labels import PETS_PATTERN, LabelError, LabelResult, label_by_parent, label_files
from core.storage import stable_hash

VALID_PCT = 0.2
SEED = 42


class DatasetError(ValueError):
    """A dataset that cannot be used as asked; the message is meant for the page."""


@dataclass(frozen=True)
class DatasetSpec:
    """Everything that defines a labelled dataset; its hash keys every cache built from it."""

    name: str
    kind: str  # "pets" | "folder" | "zip" | "own"
    root: str  # absolute folder that holds the images
    label_from: str = "regex"  # "regex" (from the name or path) | "parent" (folder name)
    pattern: str = PETS_PATTERN
    match_on: str = "name"  # "name": fastai from_name_re; "path": from_path_re
    valid_pct: float = VALID_PCT
    seed: int = SEED

    def with_labelling(self, label_from: str, pattern: str, match_on: str) -> DatasetSpec:
        return replace(self, label_from=label_from, pattern=pattern, match_on=match_on)


@dataclass
class DatasetScan:
    """The result of scanning a dataset: one row per usable image, and what was left out."""

    spec: DatasetSpec
    items: pd.DataFrame  # columns: rel, path, label, width, height, is_valid
    unmatched: list[str] = field(default_factory=list)
    corrupt: list[tuple[str, str]] = field(default_factory=list)  # (rel path, reason)

    @property
    def classes(self) -> list[str]:
        return sorted(self.items["label"].unique().tolist()) if len(self.items) else []

    @property
    def n_images(self) -> int:
        return len(self.items)

    @property
    def fingerprint(self) -> str:
        """Hash of the labelled file list and split: changes when any file, label or split changes."""
        cols = self.items[["rel", "label", "is_valid", "width", "height"]]
        return stable_hash([self.spec.pattern, self.spec.match_on, cols.values.tolist()])


def list_image_files(root: Path) -> list[str]:
    """Relative POSIX paths of image files under root, sorted; hidden folders are skipped."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"Folder not found: {root}")
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel_dir = os.path.relpath(dirpath, root)
        for fname in filenames:
            if fname.startswith("."):
                continue
            if os.path.splitext(fname)[1].lower() in IMAGE_SUFFIXES:
                found.append(fname if rel_dir == "." else f"{rel_dir}/{fname}".replace(os.sep, "/"))
    return sorted(found)


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header (SOFn), walking marker segments; None if not found."""
    pos = 2
    while pos + 9 < len(head):
        if head[pos] != 0xFF:
            return None
        marker = head[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _SOF_MARKERS:
            height, width = (
                int.from_bytes(head[pos + 5 : pos + 7], "big"),
                int.from_bytes(head[pos + 7 : pos + 9], "big"),
            )
            return (width, height) if width and height else None
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        pos += 2 + int.from_bytes(head[pos + 2 : pos + 4], "big")
    return None


def read_header(path: Path) -> tuple[int, int]:
    """(width, height) from the image header alone; raises on unreadable or truncated files.

    JPEG and PNG headers are parsed directly from the first bytes (one open, no decoding); other
    formats go through PIL's lazy open. A JPEG must also end with its end-of-image marker.
    """
    with open(path, "rb") as fh:
        head = fh.read(65536)
        size: tuple[int, int] | None = None
        if head[:3] == b"\xff\xd8\xff":
            size = _jpeg_size(head)
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            fh.seek(max(0, end - 1024))
            if b"\xff\xd9" not in fh.read():  # a cut-off JPEG lacks its end-of-image marker
                raise ValueError("truncated JPEG (no end-of-image marker)")
        elif head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            size = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if size is None:
        with Image.open(path) as img:  # lazy: reads the header, decodes no pixels
            size = img.size
    width, height = size
    if width * height > MAX_PIXELS:
        raise ValueError(f"{width}×{height} is over the {MAX_PIXELS / 1e6:.0f} MP limit")
    return width, height


def split_valid(n: int, valid_pct: float = VALID_PCT, seed: int = SEED) -> np.ndarray:
    """Boolean mask of validation items: shuffle with the seed, the first valid_pct go to valid (as RandomSplitter)."""
    if not 0 <= valid_pct < 1:
        raise DatasetError("valid_pct must be in [0, 1).")
    order = np.random.default_rng(seed).permutation(n)
    mask = np.zeros(n, dtype=bool)
    mask[order[: int(valid_pct * n)]] = True
    return mask


def apply_labels(spec: DatasetSpec, rel_paths: list[str]) -> LabelResult:
    """Label relative paths according to the spec's labelling rule."""
    if spec.label_from == "parent":
        return label_by_parent(rel_paths)
    if spec.label_from == "regex":
        return label_files(rel_paths, spec.pattern, spec.match_on)
    raise LabelError(f"Unknown labelling rule {spec.label_from!r}.")


def scan_dataset(spec: DatasetSpec) -> DatasetScan:
    """List, label and split a dataset, reading only image headers (no pixel decoding)."""
    root = Path(spec.root)
    rel_paths = list_image_files(root)
    if not rel_paths:
        raise DatasetError(f"No images found in {root}.")
    result = apply_labels(spec, rel_paths)
    rows, corrupt = [], []
    root_str = str(root)
    for rel, label in result.labels.items():
        path = os.path.join(root_str, rel)
        try:
            width, height = read_header(path)
        except Exception as err:  # any unreadable file is reported, never fatal
            corrupt.append((rel, str(err) or type(err).__name__))
            continue
        rows.append((rel, path, label, width, height))
    items = pd.DataFrame(rows, columns=["rel", "path", "label", "width", "height"])
    items["is_valid"] = split_valid(len(items), spec.valid_pct, spec.seed)
    return DatasetScan(spec=spec, items=items, unmatched=result.unmatched, corrupt=corrupt)


def folder_signature(root: Path) -> str:
    """Cheap signature of a folder's contents (names, sizes, mtimes) used as a cache key."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fname in sorted(filenames):
            st = os.stat(os.path.join(dirpath, fname))
            entries.append((os.path.relpath(os.path.join(dirpath, fname), root), st.st_size, int(st.st_mtime)))
    return stable_hash(entries)


def split_counts(items: pd.DataFrame) -> pd.DataFrame:
    """Per-class train/valid counts, sorted by class."""
    table = (
        items.assign(split=np.where(items["is_valid"], "valid", "train"))
        .groupby(["label", "split"])
        .size()
        .unstack(fill_value=0)
    )
    for col in ("train", "valid"):
        if col not in table:
            table[col] = 0
    table = table[["train", "valid"]]
    table["total"] = table["train"] + table["valid"]
    table["valid %"] = (100 * table["valid"] / table["total"]).round(1)
    return table.reset_index().rename(columns={"label": "class"})
