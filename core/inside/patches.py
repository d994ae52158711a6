"""Top activating patches (Zeiler & Fergus 2014, Fig. 2): which dataset crops excite a channel most.

One pass over the dataset per (model, stage) keeps, for every channel, the k images whose
strongest unit in that channel is largest, and where that unit sits. The result is a small
`.npz` index on disk, so browsing channels afterwards needs no forward pass at all.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from core.codec import parse_dataclass
from core.data.images import ImageError, load_image_file
from core.i18n import _
from core.inside.activations import truncate
from core.inside.receptive_field import ReceptiveField, crop_field
from core.nets import models
from core.nets.models import denormalise, preprocess
from core.settings import PATCH_INDEX_DIR, sub_dir
from core.storage import atomic_write_bytes, stable_hash
from core.store.runs import load_run_model

INDEX_VERSION = 1
INDEX_SUFFIX = ".npz"  # an index is one file, `<data>/patch_index/<index_key>.npz` (save_index / load_index)
TOP_K = 9  # patches per channel, as in Zeiler & Fergus' figures
PAGE_IMAGES = 300  # images the Layers page indexes by default (a seeded sample over all classes)
SAMPLE_SEED = 0

Progress = Callable[[int, int], None]


@dataclass
class PatchIndex:
    """Per channel, the top-k images (ids into `paths`), the unit position and its activation."""

    values: np.ndarray  # (C, k) float32, -inf where fewer than k images were seen
    image_ids: np.ndarray  # (C, k) int32, -1 where empty
    ys: np.ndarray  # (C, k) int32 row of the unit in the stage's (h, w) grid
    xs: np.ndarray  # (C, k) int32 column
    paths: list[str]  # image files, in the order ids refer to
    stage: str
    size: int  # input size the model saw
    grid: tuple[int, int]  # (h, w) of the stage output
    skipped: list[str]  # files that could not be decoded

    @property
    def n_channels(self) -> int:
        return int(self.values.shape[0])

    def top(self, channel: int) -> list[tuple[str, int, int, float]]:
        """(path, y, x, value) of the channel's top images, best first."""
        out = []
        for v, i, y, x in zip(
            self.values[channel], self.image_ids[channel], self.ys[channel], self.xs[channel], strict=True
        ):
            if i >= 0:
                out.append((self.paths[int(i)], int(y), int(x), float(v)))
        return out


def sample_paths(paths: Sequence[str], n: int) -> list[str]:
    """n of the dataset's files, spread over all classes (fixed seed, so the index key is stable)."""
    import random

    ordered = sorted(paths)
    return ordered if n >= len(ordered) else sorted(random.Random(SAMPLE_SEED).sample(ordered, n))


def model_key(model: nn.Module, kind: str, arch: str, run_id: str | None = None, seed: int = 0) -> str:
    """A name for a model's weights that is stable across restarts and machines (keys the on-disk index).

    A run is named by its id and a checksum of its weights (a retrained run gets new indexes).
    """
    if kind == "run":
        with torch.no_grad():
            checksum = float(sum(p.double().abs().sum() for p in model.parameters()))
        return f"run-{run_id}-{stable_hash(round(checksum, 6), 8)}"
    if kind == "random":
        return f"random-{arch}-seed{seed}"
    return f"imagenet-{arch}"


def index_key(model_id: str, fingerprint: str, stage: str, size: int, k: int) -> str:
    """Hash of everything that changes the index's content."""
    return stable_hash([INDEX_VERSION, model_id, fingerprint, stage, int(size), int(k)])


def index_path(key: str, base: Path | None = None) -> Path:
    """Where the index with this key lives under the data folder."""
    return sub_dir(PATCH_INDEX_DIR, base) / f"{key}{INDEX_SUFFIX}"


def _load_batch(paths: Sequence[str], size: int) -> tuple[torch.Tensor | None, list[int], list[str]]:
    """Preprocess a batch of files; returns (tensor, indices that loaded, files that failed)."""
    tensors, ok, bad = [], [], []
    for i, path in enumerate(paths):
        try:
            tensors.append(preprocess(load_image_file(Path(path)).image, size))  # (1, 3, size, size)
            ok.append(i)
        except (ImageError, OSError):
            bad.append(str(path))
    return (torch.cat(tensors) if tensors else None), ok, bad


def build_patch_index(
    model: nn.Module,
    stage: str,
    paths: Sequence[str],
    size: int = 224,
    k: int = 9,
    batch_size: int = 16,
    progress: Progress | None = None,
) -> PatchIndex:
    """One pass over `paths`: for each channel of `stage`, the k images with the strongest unit.

    Each image counts once per channel (its best position), as in Zeiler & Fergus. The forward
    pass stops at the stage (a truncated Sequential sharing the model's modules, no hooks).
    """
    net = truncate(model, stage).eval()
    paths = [str(p) for p in paths]
    top_v = top_i = top_y = top_x = None
    grid: tuple[int, int] = (0, 0)
    skipped: list[str] = []
    total = len(paths)
    for start in range(0, total, batch_size):
        chunk = paths[start : start + batch_size]
        x, ok, bad = _load_batch(chunk, size)
        skipped += bad
        if x is not None:
            with torch.no_grad():
                act = net(x)  # (B, C, h, w), e.g. (B, 24, 56, 56) for mobilenet_v2 features.3 at 224 px
            b, c, h, w = act.shape
            grid = (h, w)
            best, pos = act.reshape(b, c, h * w).max(dim=2)  # (B, C) strongest unit per image and channel
            ids = torch.tensor([start + i for i in ok], dtype=torch.int64).view(b, 1).expand(b, c)
            cand_v, cand_i, cand_p = best.T, ids.T, pos.T  # (C, B)
            if top_v is None:
                top_v = torch.full((c, 0), float("-inf"))
                top_i = torch.zeros((c, 0), dtype=torch.int64)
                top_y = torch.zeros((c, 0), dtype=torch.int64)
                top_x = torch.zeros((c, 0), dtype=torch.int64)
            all_v = torch.cat([top_v, cand_v], dim=1)  # (C, k + B)
            all_i = torch.cat([top_i, cand_i], dim=1)
            all_y = torch.cat([top_y, cand_p // w], dim=1)
            all_x = torch.cat([top_x, cand_p % w], dim=1)
            keep = min(k, all_v.shape[1])
            top_v, order = all_v.topk(keep, dim=1)  # (C, keep), ties keep the earlier image
            top_i, top_y, top_x = (t.gather(1, order) for t in (all_i, all_y, all_x))
        if progress is not None:
            progress(min(start + batch_size, total), total)
    if top_v is None:
        raise ValueError(_("None of the images could be read, so there is nothing to index."))
    c, have = top_v.shape
    pad = k - have

    def padded(t: torch.Tensor, fill) -> np.ndarray:
        return torch.cat([t, torch.full((c, pad), fill, dtype=t.dtype)], dim=1).numpy() if pad else t.numpy()

    return PatchIndex(
        values=padded(top_v.float(), float("-inf")).astype(np.float32),
        image_ids=padded(top_i, -1).astype(np.int32),
        ys=padded(top_y, 0).astype(np.int32),
        xs=padded(top_x, 0).astype(np.int32),
        paths=paths,
        stage=stage,
        size=int(size),
        grid=grid,
        skipped=skipped,
    )


@dataclass(frozen=True, eq=False)
class _StoredIndex:
    """An index file's arrays as save_index writes them (a plain .npz: strings as unicode arrays, no objects)."""

    values: np.ndarray
    image_ids: np.ndarray
    ys: np.ndarray
    xs: np.ndarray
    paths: np.ndarray  # (N,) str
    skipped: np.ndarray  # (M,) str
    stage: np.ndarray  # () str
    meta: np.ndarray  # (4,) int64: size, grid h, grid w, INDEX_VERSION

    @classmethod
    def of(cls, index: PatchIndex) -> _StoredIndex:
        return cls(index.values, index.image_ids, index.ys, index.xs, np.array(index.paths, dtype=np.str_),
                   np.array(index.skipped, dtype=np.str_), np.array(index.stage, dtype=np.str_),
                   np.array([index.size, *index.grid, INDEX_VERSION], dtype=np.int64))  # fmt: skip

    def index(self, where: str) -> PatchIndex:
        if self.meta.shape != (4,) or not np.issubdtype(self.meta.dtype, np.integer):
            raise ValueError(f"{where} has no readable size and version")
        size, h, w, version = (int(v) for v in self.meta)
        if version != INDEX_VERSION:
            raise ValueError(f"{where} was written by another index version ({version})")
        return PatchIndex(self.values, self.image_ids, self.ys, self.xs, [str(p) for p in self.paths], str(self.stage),
                          size, (h, w), [str(p) for p in self.skipped])  # fmt: skip


def save_index(index: PatchIndex, path: Path) -> None:
    """Write the index as a plain .npz (no pickled objects), atomically."""
    stored = _StoredIndex.of(index)
    buf = io.BytesIO()
    np.savez(buf, **{f.name: getattr(stored, f.name) for f in fields(stored)})
    atomic_write_bytes(Path(path), buf.getvalue())


def load_index(path: Path) -> PatchIndex:
    """Read an index written by save_index through the one parser; never unpickles (allow_pickle=False)."""
    with np.load(Path(path), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return parse_dataclass(_StoredIndex, arrays, Path(path).name).index(str(path))


def verify_index(path: Path) -> PatchIndex:
    """An index file read and checked whole (shapes agree, ids point into its paths); ValueError saying why not."""
    try:
        index = load_index(path)
    except (OSError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{Path(path).name} cannot be read ({err})") from err
    shape = index.values.shape
    if len(shape) != 2 or any(a.shape != shape for a in (index.image_ids, index.ys, index.xs)):
        raise ValueError(f"{Path(path).name} has arrays of inconsistent shapes")
    if index.image_ids.size and (index.image_ids.max() >= len(index.paths) or index.image_ids.min() < -1):
        raise ValueError(f"{Path(path).name} names images it does not list")
    return index


def load_or_build_index(
    model: nn.Module,
    model_id: str,
    fingerprint: str,
    stage: str,
    paths: Sequence[str],
    size: int = 224,
    k: int = 9,
    progress: Progress | None = None,
) -> PatchIndex:
    """The cached index for this (model, dataset, stage, size, k), built and saved if missing or broken."""
    path = index_path(index_key(model_id, fingerprint, stage, size, k))
    if path.is_file():
        try:
            return load_index(path)
        except (ValueError, OSError, KeyError):
            path.unlink(missing_ok=True)  # a broken cache file is rebuilt, never trusted
    index = build_patch_index(model, stage, paths, size=size, k=k, progress=progress)
    save_index(index, path)
    return index


@dataclass(frozen=True)
class PatchIndexRequest:
    """A patch index to build away from the page (in the worker): the model, by how to load it, and the scan.

    model_id is the page's name for the weights (model_key); the worker checks the model it loads has
    the same, so an index is never saved under another model's name.
    """

    model_kind: str  # "run" | "imagenet" | "random"
    arch: str
    model_id: str
    fingerprint: str  # the dataset's fingerprint and the sample size
    stage: str  # dotted module path, e.g. "0.3"
    size: int
    paths: tuple[str, ...]
    run_id: str | None = None
    k: int = TOP_K

    @property
    def key(self) -> str:
        return index_key(self.model_id, self.fingerprint, self.stage, self.size, self.k)

    def path(self, base: Path | None = None) -> Path:
        return index_path(self.key, base)

    def __post_init__(self) -> None:
        if self.model_kind not in ("run", "imagenet", "random") or (self.model_kind == "run") != bool(self.run_id):
            raise ValueError(f"a patch-index request names no loadable model ({self.model_kind!r})")

    @classmethod
    def from_json(cls, data: object) -> PatchIndexRequest:
        """Parse a stored request (a job record's), every field type-checked; raises ValueError naming what is wrong."""
        return parse_dataclass(cls, data, "patch-index request")


def build_requested_index(
    request: PatchIndexRequest, base: Path, runs_dir: Path, progress: Progress | None = None
) -> PatchIndex:
    """Load the request's model, check it is the weights the page named, build the index and save it atomically."""
    if request.model_kind == "run":
        loaded = load_run_model(Path(runs_dir) / str(request.run_id))
        found = model_key(loaded.model, "run", request.arch, request.run_id)
    else:
        loaded = models.load_imagenet(request.arch, pretrained=request.model_kind == "imagenet")
        found = model_key(loaded.model, request.model_kind, request.arch, seed=models.RANDOM_INIT_SEED)
    if found != request.model_id:
        raise ValueError("the model changed since this index was asked for (a retrained run?): ask again")
    index = build_patch_index(
        loaded.model.eval(), request.stage, request.paths, request.size, request.k, progress=progress
    )
    save_index(index, request.path(base))
    return index


def top_patches(index: PatchIndex, channel: int, rf: ReceptiveField) -> list[tuple[Image.Image, str, float]]:
    """The channel's top patches cropped to the receptive field: (crop, file, activation), best first."""
    out = []
    for path, y, x, value in index.top(channel):
        try:
            img = denormalise(preprocess(load_image_file(Path(path)).image, index.size)[0])  # (size, size, 3)
        except (ImageError, OSError):
            continue
        out.append((Image.fromarray(crop_field(img, rf, y, x)), path, value))
    return out
