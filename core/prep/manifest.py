"""The class bundle's format, shared by writing (core.prep.bundle) and importing (core.prep.bundle_import).

`manifest.json` parsed and checked in one place (`Manifest.from_dict`); which member names a bundle
may carry and where each lands in the data folder; paths inside records and patch indexes made
relative to the data folder and back; the library versions and machine a bundle was made with,
and whether they are compatible here.

A bundle is made of units, each in the on-disk format of the module that owns it, which lists its
files and reads them: a run folder (core.store.runs: RUN_FILES, verify_run), a feature cache folder
(core.train.features: FEATURE_FILES, load_features), a patch index (core.inside.patches: verify_index), a
torchvision checkpoint, a dataset file. Nothing here keeps a second list of their files.
"""

from __future__ import annotations

import json
import os
import platform
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

from core.data import pets
from core.data.images import IMAGE_SUFFIXES
from core.inside import patches
from core.settings import (
    DATASETS_DIR,
    FEATURES_DIR,
    PATCH_INDEX_DIR,
    RUNS_DIR,
    TORCH_CHECKPOINTS_DIR,
    TORCH_DIR,
    checkpoints_dir,
)
from core.store import runs
from core.store.records import RecordError, RunConfig, RunRecord, parse_dataclass, to_json
from core.train.features import FEATURE_FILES

BUNDLE_FORMAT = "petlab-bundle"
BUNDLE_VERSION = 2  # 2: feature caches carry batchnorm.npz (version 1 bundles left it out)
MANIFEST = "manifest.json"
CHECKPOINTS_DIR = f"{TORCH_DIR}/{TORCH_CHECKPOINTS_DIR}"  # in the bundle; lands under TORCH_HOME (the data folder's torch/ by default)
DATASET_DIR = f"{DATASETS_DIR}/{pets.FOLDER_NAME}"
DATASET_SUFFIXES = {*IMAGE_SUFFIXES, ".txt", ".xml", ".mat"}  # Pets: images/, annotations/ (lists, xmls, trimaps)
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

Progress = Callable[[str, int, int], None]  # (what, bytes done, bytes in all)


class BundleError(ValueError):
    """A bundle that cannot be made or must be refused; the message is meant for the page."""


class MemberKind(StrEnum):
    """What a file in a bundle is (its JSON value is the manifest's "kind"); each kind has the owner of its format."""

    MANIFEST = "manifest"  # manifest.json itself (never listed in it)
    DATASET = "dataset"  # an image or list of the Pets dataset
    WEIGHTS = "weights"  # a torchvision checkpoint
    RUN = "run"  # a file of a run folder (core.store.runs)
    FEATURES = "features"  # a file of a feature cache (core.train.features)
    PATCH_INDEX = "patch_index"  # a patch index (core.inside.patches)


@dataclass(frozen=True)
class BundleFile:
    """One file of the bundle as the manifest lists it."""

    path: str  # POSIX path relative to the data folder (checkpoints: relative to TORCH_HOME's parent layout)
    size: int
    sha256: str
    kind: MemberKind


@dataclass(frozen=True)
class BundleRun:
    """One run a bundle carries, as its manifest describes it (what `python -m core.prep bundle` lists)."""

    run_id: str
    title: str = ""
    arch: str = ""
    img_size: int = 0
    config: RunConfig | None = None
    epochs: int = 0
    scores: dict[str, float | None] = field(default_factory=dict)  # train_loss, valid_loss, error_rate
    device: str = ""
    created: float = 0.0


@dataclass(frozen=True)
class BundleDataset:
    """The dataset a bundle carries (Oxford-IIIT Pet's images)."""

    name: str
    folder: str = ""  # where its images land, relative to the data folder
    images: int = 0
    fingerprint: str = ""  # the runs' dataset fingerprint, when a run was trained on it


@dataclass(frozen=True)
class _ManifestHead:
    """What a manifest must say before anything else is read: that it is ours, and its version."""

    format: str = ""
    version: Any = None


@dataclass
class Manifest:
    """What a bundle says about itself; parsed and checked in one place (from_dict)."""

    files: list[BundleFile]
    versions: dict[str, str]
    machine: dict[str, str] = field(default_factory=dict)
    runs: list[BundleRun] = field(default_factory=list)
    dataset: BundleDataset | None = None
    created: float = 0.0
    warnings: list[str] = field(default_factory=list)
    format: str = BUNDLE_FORMAT
    version: int = BUNDLE_VERSION

    def to_json(self) -> bytes:
        return json.dumps(to_json(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_dict(cls, data: object) -> Manifest:
        """Parse manifest.json; BundleError when it is not a Pet Lab manifest this version can read."""
        try:
            head = parse_dataclass(_ManifestHead, data, MANIFEST)
        except RecordError:
            head = _ManifestHead()
        if head.format != BUNDLE_FORMAT:
            raise BundleError("This is not a Pet Lab class bundle (its manifest.json is missing or not ours).")
        if not isinstance(head.version, int) or isinstance(head.version, bool) or head.version > BUNDLE_VERSION:
            raise BundleError(
                f"The bundle has format version {head.version}; this Pet Lab reads up to {BUNDLE_VERSION}. "
                "Update Pet Lab."
            )
        try:
            return parse_dataclass(cls, data, MANIFEST)
        except RecordError as err:
            raise BundleError(f"The bundle's manifest.json is damaged ({err}).") from err

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


# ---- names: what a bundle may carry, and where it goes --------------------------------------------


def safe_name(name: str) -> PurePosixPath:
    """A member name as a relative path that stays inside the folder; BundleError when it would escape."""
    if not name or "\\" in name or any(ord(c) < 32 for c in name):
        raise BundleError(f"Refused: the bundle holds a file with an unusable name ({name!r}).")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or name != path.as_posix() or ":" in path.parts[0]:
        raise BundleError(f"Refused: {name!r} would land outside the data folder.")
    if any(p.startswith(".") for p in path.parts):
        raise BundleError(f"Refused: {name!r} is a hidden file.")
    return path


def member_kind(name: str) -> MemberKind:
    """The kind of file a bundle path names; BundleError when a bundle may not carry it (or it escapes)."""
    path = safe_name(name)
    parts = path.parts
    if parts == (MANIFEST,):
        return MemberKind.MANIFEST
    if len(parts) == 3 and parts[0] == RUNS_DIR and _KEY.match(parts[1]) and parts[2] in runs.RUN_FILES:
        return MemberKind.RUN
    if len(parts) == 3 and parts[0] == FEATURES_DIR and _KEY.match(parts[1]) and parts[2] in FEATURE_FILES:
        return MemberKind.FEATURES
    if (
        len(parts) == 2
        and parts[0] == PATCH_INDEX_DIR
        and _KEY.match(parts[1])
        and parts[1].endswith(patches.INDEX_SUFFIX)
    ):
        return MemberKind.PATCH_INDEX
    if path.parent.as_posix() == CHECKPOINTS_DIR and _KEY.match(path.name) and path.suffix == ".pth":
        return MemberKind.WEIGHTS
    if (
        name.startswith(DATASET_DIR + "/")
        and len(parts) <= 6
        and (path.suffix.lower() in DATASET_SUFFIXES or path.name == "README")
    ):
        return MemberKind.DATASET
    raise BundleError(f"Refused: {name!r} is not a file a class bundle carries (no code, no pickles).")


def destination(name: str, data_dir: Path) -> Path:
    """Where a bundle path lands: checkpoints under TORCH_HOME, everything else under the data folder."""
    if name.startswith(CHECKPOINTS_DIR + "/"):
        return checkpoints_dir(data_dir) / PurePosixPath(name).name
    return Path(data_dir).joinpath(*PurePosixPath(name).parts)


def merge_unit(name: str) -> str:
    """The unit import merges at once: a run or feature folder, else the single file."""
    parts = PurePosixPath(name).parts
    return "/".join(parts[:2]) if parts[0] in (RUNS_DIR, FEATURES_DIR) else name


def incomplete_units(names: list[str]) -> list[str]:
    """Why each folder unit among a bundle's file names could not be used as it stands ([] when all can).

    A feature cache needs every file of core.train.features.FEATURE_FILES (version 1 bundles left out
    batchnorm.npz, so every cache they carried counted as missing after the import); a run needs
    core.store.runs.REQUIRED_RUN_FILES.
    """
    units: dict[str, set[str]] = {}
    for name in names:
        unit = merge_unit(name)
        if unit != name:
            units.setdefault(unit, set()).add(PurePosixPath(name).name)
    problems = []
    for unit, have in sorted(units.items()):
        need = FEATURE_FILES if unit.startswith(FEATURES_DIR + "/") else runs.REQUIRED_RUN_FILES
        if missing := [n for n in need if n not in have]:
            problems.append(f"{unit} lacks {', '.join(missing)}")
    return problems


# ---- paths inside records and indexes --------------------------------------------------------------


def relative_path(path: str, data_dir: Path) -> str:
    """A path under the data folder as a POSIX path relative to it; other paths unchanged."""
    p = Path(path)
    for base, target in ((Path(data_dir), p), (Path(data_dir).resolve(), p.resolve())):
        try:
            return target.relative_to(base).as_posix()
        except ValueError:
            continue
    return path


def absolute_path(path: str, data_dir: Path) -> str:
    """Inverse of relative_path for the data folder a bundle is imported into."""
    p = PurePosixPath(path)
    if p.is_absolute() or ".." in p.parts or not path:
        return path
    return str(Path(data_dir).joinpath(*p.parts))


_DRIVE = re.compile(r"^[A-Za-z]:")


def stored_path_inside(value: str) -> bool:
    """Whether a path as a bundle stores it stays in the data folder: relative, POSIX, no `..`, `~`, drive or NUL.

    relative_path leaves a path outside the data folder absolute: such a run or index is left out of a
    bundle (core.prep.bundle), and a bundle storing one is refused (core.prep.bundle_import).
    """
    if not value:
        return True  # no path (a run without a dataset root)
    if "\\" in value or "\0" in value or value.startswith("~") or _DRIVE.match(value):
        return False
    path = PurePosixPath(value)
    return not path.is_absolute() and ".." not in path.parts


def map_record_paths(record: RunRecord, fn: Callable[[str], str]) -> RunRecord:
    """A run record with its image paths (valid_paths, dataset root) passed through fn."""
    dataset = replace(record.dataset, root=fn(record.dataset.root)) if record.dataset.root else record.dataset
    return replace(record, valid_paths=tuple(fn(p) for p in record.valid_paths), dataset=dataset)


def map_index_paths(path: Path, fn: Callable[[str], str]) -> bytes:
    """A saved patch index re-saved with its image paths passed through fn (allow_pickle=False both ways)."""
    index = patches.load_index(path)
    index.paths = [fn(p) for p in index.paths]
    index.skipped = [fn(p) for p in index.skipped]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "index.npz"
        patches.save_index(index, out)
        return out.read_bytes()


# ---- versions and the machine -----------------------------------------------------------------------


def _release(version: str) -> tuple[int, ...]:
    """'2.14.1+cu128' -> (2, 14, 1)."""
    numbers = []
    for part in version.split("+")[0].split("."):
        digits = re.match(r"\d+", part)
        if not digits:
            break
        numbers.append(int(digits.group()))
    return tuple(numbers) or (0,)


def incompatibility(bundle: dict[str, str], local: dict[str, str]) -> str | None:
    """Why weights made with `bundle` versions cannot be used with `local` ones, or None.

    fastai's major.minor decides the model layout (create_vision_model's head), so it must match;
    torch must have the same major version and be at least as new as the one that saved the weights;
    torchvision the same major version.
    """
    rules = {
        "fastai": lambda have, made: have[:2] == made[:2],
        "torch": lambda have, made: have[:1] == made[:1] and have[:2] >= made[:2],
        "torchvision": lambda have, made: have[:1] == made[:1],
    }
    problems = []
    for lib, compatible in rules.items():
        if lib not in bundle:
            problems.append(f"the bundle does not say which {lib} made it")
        elif not compatible(_release(local.get(lib, "0")), _release(bundle[lib])):
            problems.append(f"{lib} {bundle[lib]} (this machine has {local.get(lib, 'none')})")
    if not problems:
        return None
    return (
        "The bundle was made with incompatible versions: "
        + "; ".join(problems)
        + ". Make the bundle again with the versions in requirements.txt."
    )


def machine_info() -> dict[str, str]:
    """The machine a bundle is made on (shown to the teacher who imports it)."""
    import torch

    device = "cpu"
    if torch.cuda.is_available():
        device = f"cuda ({torch.cuda.get_device_name(0)})"
    elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        device = "mps"
    return {
        "node": platform.node(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": str(os.cpu_count() or 0),
        "device": device,
    }
