"""The class bundle: one tar of what a lesson needs, with a manifest, made at home and imported in class.

A bundle holds the Pets images, torchvision's ImageNet checkpoints, trained runs,
cached body features and top-patch indexes, plus `manifest.json`: every file's size and SHA-256,
the library versions, the runs' configs and scores and the machine it was made on. It carries no
code and no pickle: weights are state_dicts (read with `torch.load(weights_only=True)`), records
JSON, arrays `.npy`/`.npz` (read with `allow_pickle=False`). Paths inside records and indexes are
stored relative to the data folder and rewritten for the folder they are imported into.

This module writes it; core.prep.manifest holds the format both sides share. Import
(core.prep.bundle_import) checks the member list before writing anything, extracts into a
temporary folder inside the data folder with the app's checked extractor (core.data.archives), verifies
every file, then moves them into place without overwriting newer runs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from core.data import pets
from core.inside import patches
from core.nets.models import RECORD_FILE
from core.prep.manifest import (
    CHECKPOINTS_DIR,
    DATASET_DIR,
    MANIFEST,
    BundleDataset,
    BundleError,
    BundleFile,
    BundleRun,
    Manifest,
    MemberKind,
    Progress,
    machine_info,
    map_index_paths,
    map_record_paths,
    member_kind,
    relative_path,
    stored_path_inside,
)
from core.settings import (
    FEATURES_DIR,
    PATCH_INDEX_DIR,
    RUNS_DIR,
    checkpoints_dir,
    features_dir,
    patch_index_dir,
    runs_dir,
)
from core.store import runs
from core.train import features as feats
from core.train.training import library_versions


@dataclass
class BundleReport:
    """What write_bundle produced."""

    path: Path
    bytes: int  # size of the bundle file
    files: int
    seconds: float
    manifest: Manifest


# ---- what goes into a bundle ------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One file to bundle: its bundle path, its source, and bytes when the file is rewritten."""

    name: str
    kind: MemberKind
    source: Path
    data: bytes | None = None


def collect(
    data_dir: Path, run_ids: list[str] | None = None, include_dataset: bool = True
) -> tuple[list[Entry], Manifest]:
    """Everything under the data folder a class needs, and the manifest's descriptive part (no hashes yet)."""
    data_dir = Path(data_dir)
    entries: list[Entry] = []
    warnings: list[str] = []
    rel = lambda p: relative_path(p, data_dir)  # noqa: E731
    images = pets.pets_folder(data_dir) / "images"  # annotations/ (trimaps, boxes) is not used by the app
    dataset = None
    if include_dataset and images.is_dir():
        for path in sorted(images.rglob("*")):
            rel_name = path.relative_to(data_dir).as_posix()
            if (
                not path.is_file()
                or path.is_symlink()
                or any(p.startswith(".") for p in path.relative_to(data_dir).parts)
            ):
                continue
            try:
                entries.append(Entry(rel_name, member_kind(rel_name), path))
            except BundleError:
                warnings.append(f"left out {rel_name} (not a data file)")
        dataset = BundleDataset(pets.PETS_NAME, f"{DATASET_DIR}/images", len(list(images.glob("*.jpg"))))
    checkpoints = checkpoints_dir(data_dir)
    for path in sorted(checkpoints.glob("*.pth")) if checkpoints.is_dir() else []:
        entries.append(Entry(f"{CHECKPOINTS_DIR}/{path.name}", MemberKind.WEIGHTS, path))
    found, skipped = runs.list_runs(runs_dir(data_dir))
    warnings += skipped
    run_entries = []
    for run in found:
        if run_ids is not None and run.run_id not in run_ids:
            continue
        record = map_record_paths(run.record, rel)
        root = record.dataset.root
        if not all(stored_path_inside(p) for p in [root, *record.valid_paths]):
            # trained on a folder outside the data folder: its images are not in the bundle, and an import
            # refuses any path outside the data folder (core.prep.bundle_import)
            if run_ids is not None:
                raise BundleError(
                    f"Run {run.run_id} was trained on {root}, outside the data folder: it cannot be bundled."
                )
            warnings.append(f"left out run {run.run_id}: trained on {root}, outside the data folder")
            continue
        if root and not include_dataset:
            warnings.append(f"run {run.run_id} was trained on {root}, which is not in the bundle")
        for name in runs.RUN_FILES:
            if name == RECORD_FILE:
                data = json.dumps(record.to_json(), indent=2, sort_keys=True, default=str).encode()
                entries.append(Entry(f"{RUNS_DIR}/{run.run_id}/{name}", MemberKind.RUN, run.path / name, data))
            elif (run.path / name).is_file():
                entries.append(Entry(f"{RUNS_DIR}/{run.run_id}/{name}", MemberKind.RUN, run.path / name))
        last = run.record.epochs[-1] if run.record.epochs else None
        scores = {k: last.value(k) if last else None for k in ("train_loss", "valid_loss", "error_rate")}
        run_entries.append(
            BundleRun(
                run.run_id,
                run.title,
                run.record.arch,
                run.record.img_size,
                run.record.config,
                len(run.record.epochs),
                scores,
                run.record.device,
                run.created,
            )  # fmt: skip
        )
        if dataset is not None and root.startswith(DATASET_DIR):
            dataset = replace(dataset, fingerprint=run.record.dataset.fingerprint)
    if run_ids is not None and (missing := set(run_ids) - {r.run_id for r in run_entries}):
        raise BundleError(f"No complete run with id {', '.join(sorted(missing))} in {runs_dir(data_dir)}.")
    features = features_dir(data_dir)
    for folder in sorted(features.iterdir()) if features.is_dir() else []:
        if folder.name.startswith(".") or not folder.is_dir():
            continue  # a cache being written (its temp folder) or an extraction's stash
        try:
            feats.load_features(folder)  # only caches the app can use travel: every file, readable, consistent
        except ValueError as err:
            warnings.append(f"left out {FEATURES_DIR}/{folder.name}: {err}")
            continue
        entries += [
            Entry(f"{FEATURES_DIR}/{folder.name}/{n}", MemberKind.FEATURES, folder / n) for n in feats.FEATURE_FILES
        ]
    index_dir = patch_index_dir(data_dir)
    for path in sorted(index_dir.glob(f"*{patches.INDEX_SUFFIX}")) if index_dir.is_dir() else []:
        try:
            data = map_index_paths(path, rel)
            index = patches.load_index(path)
        except (ValueError, OSError, KeyError) as err:
            warnings.append(f"left out the broken patch index {path.name} ({err})")
            continue
        if not all(stored_path_inside(rel(p)) for p in [*index.paths, *index.skipped]):
            warnings.append(f"left out the patch index {path.name}: its images are outside the data folder")
            continue
        entries.append(Entry(f"{PATCH_INDEX_DIR}/{path.name}", MemberKind.PATCH_INDEX, path, data))
    manifest = Manifest(
        files=[],
        versions=library_versions(),
        machine=machine_info(),
        runs=run_entries,
        dataset=dataset,
        created=time.time(),
        warnings=warnings,
    )
    return entries, manifest


class _HashingReader:
    """A file object that hashes what tarfile reads from it."""

    def __init__(self, fh, on_bytes: Callable[[int], None]):
        self.fh, self.sha, self.on_bytes = fh, hashlib.sha256(), on_bytes

    def read(self, n: int = -1) -> bytes:
        chunk = self.fh.read(n)
        self.sha.update(chunk)
        self.on_bytes(len(chunk))
        return chunk


def _tarinfo(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(mtime), 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_bundle(
    data_dir: Path,
    out: Path,
    run_ids: list[str] | None = None,
    include_dataset: bool = True,
    progress: Progress | None = None,
) -> BundleReport:
    """Write one tar (gzip when `out` ends in .gz/.tgz) of the data folder's class content plus manifest.json.

    Files are hashed while they are written; the manifest comes last. The bundle is written to a
    `.part` file renamed into place, so a half-written bundle never carries the final name.
    """
    start = time.perf_counter()
    out = Path(out)
    entries, manifest = collect(data_dir, run_ids, include_dataset)
    if not entries:
        raise BundleError(f"Nothing to bundle in {data_dir}: run `make prepare` first.")
    sizes = [len(e.data) if e.data is not None else e.source.stat().st_size for e in entries]
    total = sum(sizes)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress("bundle", done, total)

    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    mode = "w:gz" if out.name.endswith((".gz", ".tgz")) else "w"
    try:
        with tarfile.open(part, mode, **({"compresslevel": 1} if mode == "w:gz" else {})) as tar:
            for entry, size in zip(entries, sizes, strict=True):
                mtime = entry.source.stat().st_mtime
                if entry.data is not None:
                    reader = _HashingReader(io.BytesIO(entry.data), advance)
                    tar.addfile(_tarinfo(entry.name, size, mtime), reader)
                else:
                    with open(entry.source, "rb") as fh:
                        reader = _HashingReader(fh, advance)
                        tar.addfile(_tarinfo(entry.name, size, mtime), reader)
                manifest.files.append(BundleFile(entry.name, size, reader.sha.hexdigest(), entry.kind))
            data = manifest.to_json()
            tar.addfile(_tarinfo(MANIFEST, len(data), time.time()), io.BytesIO(data))
        os.replace(part, out)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return BundleReport(out, out.stat().st_size, len(manifest.files), time.perf_counter() - start, manifest)
