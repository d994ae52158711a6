"""Datasets: what a dataset is, scanning a folder cheaply, and the train/valid split."""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
from PIL import Image

from core.data.images import IMAGE_SUFFIXES, MAX_PIXELS, public_reason
from core.data.labels import PETS_PATTERN, LabelError, LabelResult, label_by_parent, label_files
from core.i18n import N_, _, listed, n_, num, pct
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
    skipped: list[tuple[str, str]] = field(default_factory=list)  # links, sockets, unreadable folders

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


@dataclass
class FolderListing:
    """Image files found under a folder, and what was skipped because it cannot be used (with why)."""

    files: list[str] = field(default_factory=list)  # relative POSIX paths, sorted
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)


def _walk_images(root: Path, with_stat: bool = False) -> Iterator[tuple[str, os.stat_result | None, str | None]]:
    """(relative path, stat or None, skip reason or None) for every image-named entry under root.

    Never raises for what the folder holds: unreadable folders, dangling links, links out of the
    folder, sockets, pipes and devices come back with a reason. Hidden names are ignored; linked
    folders are not followed. Only links cost a stat unless with_stat (the entry type comes free).
    """
    root = str(root)
    root_real = os.path.realpath(root)
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            with os.scandir(os.path.join(root, rel_dir)) as it:
                entries = list(it)
        except OSError as err:
            yield rel_dir or ".", None, _("folder cannot be read: {reason}").format(reason=public_reason(err))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(rel)
                    continue
                if os.path.splitext(entry.name)[1].lower() not in IMAGE_SUFFIXES:
                    continue
                if entry.is_symlink():
                    try:
                        info = os.stat(entry.path)
                    except FileNotFoundError:
                        yield rel, None, _("dangling link (its target is gone)")
                        continue
                    if not os.path.realpath(entry.path).startswith(root_real + os.sep):
                        yield rel, None, _("link to a file outside the folder")
                        continue
                    if not stat.S_ISREG(info.st_mode):
                        yield rel, None, _("not a regular file (folder, socket, pipe or device)")
                        continue
                    yield rel, info if with_stat else None, None
                elif entry.is_file(follow_symlinks=False):
                    yield rel, entry.stat(follow_symlinks=False) if with_stat else None, None
                else:
                    yield rel, None, _("not a regular file (socket, pipe or device)")
            except OSError as err:
                yield rel, None, public_reason(err)


def list_folder(root: Path) -> FolderListing:
    """Image files under root (hidden names skipped) and what could not be used; DatasetError if root is no folder."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(_("Folder not found: {name}").format(name=root.name))
    listing = FolderListing()
    for rel, _size, reason in _walk_images(root):
        if reason is None:
            listing.files.append(rel)
        else:
            listing.skipped.append((rel, reason))
    listing.files.sort()
    listing.skipped.sort()
    return listing


def list_image_files(root: Path) -> list[str]:
    """Relative POSIX paths of usable image files under root, sorted; hidden folders are skipped."""
    return list_folder(root).files


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
                raise ValueError(_("truncated JPEG (no end-of-image marker)"))
        elif head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            size = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if size is None:
        with Image.open(path) as img:  # lazy: reads the header, decodes no pixels
            size = img.size
    width, height = size
    if width * height > MAX_PIXELS:
        raise ValueError(
            _("{w}×{h} is over the {limit} MP limit").format(w=width, h=height, limit=f"{MAX_PIXELS / 1e6:.0f}")
        )
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
    listing = list_folder(root)
    rel_paths = listing.files
    if not rel_paths:
        raise DatasetError(_("No images found in the folder {name}.").format(name=root.name))
    result = apply_labels(spec, rel_paths)
    rows, corrupt = [], []
    root_str = str(root)
    for rel, label in result.labels.items():
        path = os.path.join(root_str, rel)
        try:
            width, height = read_header(path)
        except Exception as err:  # any unreadable file is reported, never fatal
            corrupt.append((rel, public_reason(err, path)))
            continue
        rows.append((rel, path, label, width, height))
    items = pd.DataFrame(rows, columns=["rel", "path", "label", "width", "height"])
    items["is_valid"] = split_valid(len(items), spec.valid_pct, spec.seed)
    return DatasetScan(spec=spec, items=items, unmatched=result.unmatched, corrupt=corrupt, skipped=listing.skipped)


def folder_signature(root: Path) -> str:
    """Cheap signature of a folder's images (names, sizes, mtimes) used as a cache key; never raises."""
    entries = []
    for rel, info, reason in _walk_images(Path(root), with_stat=True):
        entries.append((rel, info.st_size, int(info.st_mtime)) if info is not None else (rel, reason))
    return stable_hash(sorted(entries, key=str))


# split_counts' headers, marked for translation (the page shows them with core.i18n.translated_columns)
SPLIT_COLUMNS = (N_("class"), N_("train"), N_("valid"), N_("total"), N_("valid %"))


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


# ---------------------------------------------------------------- layout: wrapping folders
@dataclass(frozen=True)
class FolderLayout:
    """Where a dataset's labels start: the folder below any wrapping folders, and how to label it."""

    root: Path  # the folder the dataset is read from (wrapping folders skipped)
    label_from: str  # "parent" when images sit in class folders, "regex" when they sit in root itself
    wrapper: str = ""  # the wrapping folders skipped, e.g. "fashion" ("" when none)


def wrapping_prefix(rel_paths: list[str]) -> str:
    """The folders every image sits inside ("fashion" for fashion/<class>/x.jpg and fashion/x_1.jpg), or "".

    A zip made by compressing one folder wraps everything in it; labelling by parent folder would
    then give a single class named after the wrapper. Stops before a level that holds images itself.
    """
    parts = [PurePosixPath(rel).parts for rel in rel_paths]
    prefix: list[str] = []
    while parts and all(len(p) > len(prefix) + 1 for p in parts):
        first = {p[len(prefix)] for p in parts}
        if len(first) != 1:
            break
        prefix.append(first.pop())
    return "/".join(prefix)


def detect_layout(root: Path, rel_paths: list[str] | None = None) -> FolderLayout:
    """Skip wrapping folders, then label by parent folder if images sit in sub-folders, else by file-name regex."""
    root = Path(root)
    rel_paths = list_image_files(root) if rel_paths is None else rel_paths
    wrapper = wrapping_prefix(rel_paths)
    inner = [rel[len(wrapper) + 1 :] if wrapper else rel for rel in rel_paths]
    nested = any("/" in rel for rel in inner)
    return FolderLayout(root=root.joinpath(*wrapper.split("/")) if wrapper else root,
                        label_from="parent" if nested else "regex", wrapper=wrapper)  # fmt: skip


def folder_spec(name: str, kind: str, root: Path, rel_paths: list[str] | None = None,
                label_from: str | None = None) -> DatasetSpec:  # fmt: skip
    """The spec of a folder or extracted zip, read from below its wrapping folders.

    Args:
        rel_paths: image paths relative to root when already known (a zip's extracted list).
        label_from: the labelling rule the user chose; None picks it from the layout.
    """
    layout = detect_layout(root, rel_paths)
    return DatasetSpec(name=name, kind=kind, root=str(layout.root.resolve()),
                       label_from=label_from or layout.label_from)  # fmt: skip


# ---------------------------------------------------------------- checks: can this dataset teach?
MIN_IMAGES_PER_CLASS = 10
MIN_VALID_IMAGES = 10


class CheckKind(StrEnum):
    """What is wrong with a dataset for training; the Data page shows each (a blocking one as an error)."""

    ONE_CLASS = "one_class"
    NO_SPLIT = "no_split"  # blocking: no validation image at all
    NO_TRAIN = "no_train"  # blocking: a class with no training image
    NO_VALID = "no_valid"
    FEW_IMAGES = "few_images"
    FEW_VALID = "few_valid"


BLOCKING = (CheckKind.ONE_CLASS, CheckKind.NO_SPLIT, CheckKind.NO_TRAIN)  # training is refused, before any queue


@dataclass(frozen=True)
class DatasetCheck:
    """One problem found by check_dataset: its kind, the classes concerned and a message for the page."""

    kind: CheckKind
    message: str
    classes: tuple[str, ...] = ()

    @property
    def blocking(self) -> bool:
        """Training on this dataset cannot work (or cannot be measured at all): it is refused."""
        return self.kind in BLOCKING


def _names(classes: list[str], limit: int = 5) -> str:
    shown = listed(classes[:limit])
    return shown + (_(" and {n} more").format(n=len(classes) - limit) if len(classes) > limit else "")


def images_for_one_valid(valid_pct: float = VALID_PCT) -> int:
    """The fewest images whose random split holds one validation image (int(n · valid_pct) ≥ 1): 5 at 20 %."""
    return max(2, math.ceil(1 / valid_pct - 1e-9)) if valid_pct > 0 else 0


def check_dataset(scan: DatasetScan, min_per_class: int = MIN_IMAGES_PER_CLASS) -> list[DatasetCheck]:
    """Problems that keep a dataset from teaching anything: one class, no split, classes without training or
    validation images, too few images. The blocking ones (see `training_refusal`) come first."""
    items = scan.items
    if not len(items):
        return []
    checks: list[DatasetCheck] = []
    classes = scan.classes
    if len(classes) < 2:
        only = classes[0] if classes else "?"
        checks.append(DatasetCheck(
            CheckKind.ONE_CLASS,
            _("Only one class ({only}): there is nothing to tell apart, so a model that always answers it "
              "is never wrong. Check how the images are labelled: class folders, or a pattern that "
              "captures the class from the file name.").format(only=only),
            (only,),
        ))  # fmt: skip
        return checks
    counts = split_counts(items).set_index("class")
    n_images, n_valid = len(items), int(items["is_valid"].sum())
    if n_valid == 0:
        need = images_for_one_valid(scan.spec.valid_pct)
        checks.append(DatasetCheck(
            CheckKind.NO_SPLIT,
            n_("{n} image: the validation set (a random {share} of the images, rounded down) gets none of it, "
               "so nothing could measure the model and training is refused. Add at least {more} more "
               "({need} give one validation image; a few dozen per class teach something).",
               "{n} images: the validation set (a random {share} of the images, rounded down) gets none of "
               "them, so nothing could measure the model and training is refused. Add at least {more} more "
               "({need} give one validation image; a few dozen per class teach something).",
               n_images).format(n=num(n_images), share=pct(scan.spec.valid_pct), more=num(max(1, need - n_images)),
                                need=num(need)),
        ))  # fmt: skip
    no_train = [c for c in classes if counts.loc[c, "train"] == 0]
    if no_train:
        checks.append(DatasetCheck(
            CheckKind.NO_TRAIN,
            n_("{n} class has no training image ({names}): all its photos went to the validation set, so the "
               "model could never learn it and training is refused. Add photos to it (a few dozen teach "
               "something).",
               "{n} classes have no training image ({names}): all their photos went to the validation set, so "
               "the model could never learn them and training is refused. Add photos to them (a few dozen "
               "teach something).",
               len(no_train)).format(n=num(len(no_train)), names=_names(no_train)),
            tuple(no_train),
        ))  # fmt: skip
    no_valid = [c for c in classes if counts.loc[c, "valid"] == 0]
    if no_valid and n_valid:
        checks.append(DatasetCheck(
            CheckKind.NO_VALID,
            n_("{n} class without a validation image ({names}): the error rate says nothing about it. Add "
               "images so the random validation split (a fifth of the images) reaches every class.",
               "{n} classes without a validation image ({names}): the error rate says nothing about them. Add "
               "images so the random validation split (a fifth of the images) reaches every class.",
               len(no_valid)).format(n=len(no_valid), names=_names(no_valid)),
            tuple(no_valid),
        ))  # fmt: skip
    few = [c for c in classes if counts.loc[c, "total"] < min_per_class]
    if few:
        checks.append(DatasetCheck(
            CheckKind.FEW_IMAGES,
            n_("{n} class with fewer than {min} images ({names}): too few to learn from or to measure. Aim "
               "for a few dozen photos per class.",
               "{n} classes with fewer than {min} images ({names}): too few to learn from or to measure. Aim "
               "for a few dozen photos per class.",
               len(few)).format(n=len(few), min=min_per_class, names=_names(few)),
            tuple(few),
        ))  # fmt: skip
    if 0 < n_valid < MIN_VALID_IMAGES:
        checks.append(DatasetCheck(
            CheckKind.FEW_VALID,
            n_("Only {n} validation image: it alone decides the error rate (0 or 100 %), so a zero error rate "
               "here proves little.",
               "Only {n} validation images: each one moves the error rate by {points} points, so a zero error "
               "rate here proves little.",
               n_valid).format(n=n_valid, points=f"{100 / max(1, n_valid):.0f}"),
        ))  # fmt: skip
    return checks


def training_refusal(scan: DatasetScan) -> DatasetCheck | None:
    """Why training on this dataset is refused before anything is queued (with its numbers), or None."""
    return next((c for c in check_dataset(scan) if c.blocking), None)
