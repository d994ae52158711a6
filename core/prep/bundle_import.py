"""Importing a class bundle: refuse anything tampered, unsafe or incompatible, then merge without overwriting.

Order of work, so that a refused bundle writes nothing:
1. read the member list and manifest.json; refuse links, devices, duplicate or escaping names,
   files a bundle never carries, missing or extra files, sizes that differ from the manifest, and
   versions that cannot read the weights;
2. extract into `<data>/.import-*/` with core.data.archives.extract_tgz (tarfile's "data" filter and
   more); check every file's size and SHA-256, then read every unit the way the app will, through
   the module that owns its format: a run with core.store.runs.verify_run (typed record, weights loaded
   with `weights_only=True` into its architecture, predictions), a feature cache with
   core.train.features.load_features (every file, arrays with `allow_pickle=False`, shapes, its key), a
   patch index with core.inside.patches.verify_index, a checkpoint with `weights_only=True` (any failure:
   the folder is removed, nothing else was touched). A unit that would be unusable here (a feature
   cache without its BatchNorm statistics, as version 1 bundles carried them) refuses the bundle;
3. refuse any path the bundle stores (run records, patch indexes, feature metadata, the manifest)
   that is absolute or leaves the data folder: a bundle stores paths relative to it;
4. rewrite image paths in records and indexes for this data folder, then move each unit (a run or
   feature folder, an index, a checkpoint, a dataset file) into place: missing ones are added,
   identical ones skipped, a local cache that cannot be used (broken, or incomplete from an earlier
   import) replaced; a local run is never replaced silently: a newer bundle copy replaces it only
   when asked (`replace_runs`, `--replace-runs`), and the report says which were kept.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core.data.archives import ArchiveError, extract_tgz
from core.inside import patches
from core.nets.models import RECORD_FILE
from core.prep.manifest import (
    MANIFEST,
    BundleError,
    Manifest,
    MemberKind,
    Progress,
    absolute_path,
    destination,
    incompatibility,
    incomplete_units,
    map_index_paths,
    map_record_paths,
    member_kind,
    merge_unit,
    safe_name,
    stored_path_inside,
)
from core.settings import runs_dir
from core.storage import atomic_write_bytes, read_json
from core.store import records, repair, runs, training_lock
from core.store.records import RunRecord, to_json
from core.train import features as feats
from core.train.training import library_versions

MAX_MANIFEST_BYTES = 64 * 1024**2
DISK_MARGIN = 256 * 1024**2


@dataclass
class ImportReport:
    """What an import did, unit by unit (a run or feature folder, an index, a checkpoint, a dataset file)."""

    added: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already here, identical (or a cache with the same key)
    kept: list[str] = field(default_factory=list)  # local runs newer than the bundle's (retrained here)
    not_replaced: list[str] = field(default_factory=list)  # local runs older than the bundle's, kept (not asked)
    replaced: list[str] = field(default_factory=list)  # local runs replaced: asked (replace_runs), or damaged
    conflicts: list[str] = field(default_factory=list)  # a local dataset file differs: the local one stays
    run_ids: list[str] = field(default_factory=list)  # the runs the bundle carries
    manifest: Manifest | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for the page or the terminal."""

        def count(units: list[str]) -> str:
            kinds: dict[str, int] = {}
            for unit in units:
                kind = unit.split("/")[0] if not unit.startswith("torch/") else MemberKind.WEIGHTS.value
                kinds[kind] = kinds.get(kind, 0) + 1
            return ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "nothing"

        parts = [f"added {count(self.added)}", f"already here {count(self.skipped)}"]
        if self.kept:
            parts.append(f"kept {len(self.kept)} newer local run(s)")
        if self.not_replaced:
            parts.append(
                f"kept {len(self.not_replaced)} local run(s) the bundle has a newer copy of (import with "
                "--replace-runs to take the bundle's)"
            )
        if self.replaced:
            parts.append(f"replaced {len(self.replaced)} local run(s)")
        if self.conflicts:
            parts.append(f"{len(self.conflicts)} local dataset file(s) differ and were kept")
        return "; ".join(parts) + f" ({self.seconds:.1f} s)."


def _kind_of(member: tarfile.TarInfo) -> str:
    for test, what in (
        (member.issym, "a symbolic link"),
        (member.islnk, "a hard link"),
        (member.ischr, "a character device"),
        (member.isblk, "a block device"),
        (member.isfifo, "a FIFO"),
    ):
        if test():
            return what
    return "not a regular file"


def check_members(tar: tarfile.TarFile) -> tuple[Manifest, list[tarfile.TarInfo]]:
    """The manifest and the file members, after every check that needs no extraction."""
    members: dict[str, tarfile.TarInfo] = {}
    for member in tar.getmembers():
        name = member.name
        if member.isdir():
            safe_name(name.rstrip("/"))  # folder entries are not extracted, but an escaping one still refuses
            continue
        if not member.isfile():
            raise BundleError(f"Refused: {name!r} is {_kind_of(member)}; a bundle holds only regular files.")
        member_kind(name)  # escaping, absolute, hidden or unexpected names raise here
        if name in members:
            raise BundleError(f"Refused: {name!r} appears twice in the bundle.")
        members[name] = member
    if MANIFEST not in members:
        raise BundleError("Refused: the bundle has no manifest.json.")
    if members[MANIFEST].size > MAX_MANIFEST_BYTES:
        raise BundleError("Refused: manifest.json is implausibly large.")
    try:
        manifest = Manifest.from_dict(json.loads(tar.extractfile(members.pop(MANIFEST)).read()))
    except (json.JSONDecodeError, UnicodeDecodeError, tarfile.TarError, OSError) as err:
        raise BundleError(f"Refused: manifest.json cannot be read ({err}).") from err
    listed = {f.path: f for f in manifest.files}
    if len(listed) != len(manifest.files):
        raise BundleError("Refused: the manifest lists a file twice.")
    for name in listed:
        if member_kind(name) == MemberKind.MANIFEST:
            raise BundleError("Refused: the manifest lists itself.")
    if missing := sorted(set(listed) - set(members)):
        raise BundleError(f"Refused: {len(missing)} file(s) listed in the manifest are missing, e.g. {missing[0]}.")
    if extra := sorted(set(members) - set(listed)):
        raise BundleError(f"Refused: {len(extra)} file(s) are not in the manifest, e.g. {extra[0]}.")
    for name, member in members.items():
        if member.size != listed[name].size:
            raise BundleError(f"Refused: {name} has {member.size} bytes, the manifest says {listed[name].size}.")
    if problem := incompatibility(manifest.versions, library_versions()):
        raise BundleError(f"Refused: {problem}")
    if problems := incomplete_units(list(listed)):
        older = " (bundles made before format version 2 left it out)" if manifest.version < 2 else ""
        raise BundleError(
            f"Refused: {len(problems)} cache(s) or run(s) could not be used after the import, e.g. {problems[0]}"
            f"{older}. Make the bundle again with `make bundle`."
        )
    return manifest, list(members.values())


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def _check_content(root: Path, manifest: Manifest, progress: Progress) -> None:
    """Sizes and hashes of the extracted files, then each unit read as the app reads it; BundleError on any failure."""
    done = 0
    for f in manifest.files:
        path = root / f.path
        if not path.is_file() or path.is_symlink() or path.stat().st_size != f.size:
            raise BundleError(f"Refused: {f.path} does not have the size the manifest says.")
        if _sha256(path) != f.sha256:
            raise BundleError(f"Refused: {f.path} was changed after the bundle was made (SHA-256 mismatch).")
        done += f.size
        progress("verifying", done, manifest.total_bytes)
    units: dict[str, MemberKind] = {}
    for f in manifest.files:
        units.setdefault(merge_unit(f.path), f.kind)
    # runs last: loading one builds its model, which sets up TORCH_HOME in the data folder
    for unit, kind in sorted(units.items(), key=lambda item: item[1] == MemberKind.RUN):
        try:
            _check_unit(root / unit, kind)
        except Exception as err:  # any unit the app could not use refuses the bundle
            raise BundleError(f"Refused: {unit} cannot be used here ({err}).") from err
    check_stored_paths(root, manifest)  # every unit read the way the app will: now the paths they store


def _check_unit(path: Path, kind: MemberKind) -> None:
    """Read one unit the way the app will, through the owner of its format; raises when it cannot be used."""
    import torch

    if kind == MemberKind.RUN:
        runs.verify_run(path)
    elif kind == MemberKind.FEATURES:
        feats.load_features(path)
    elif kind == MemberKind.PATCH_INDEX:
        patches.verify_index(path)
    elif kind == MemberKind.WEIGHTS:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError("not a state_dict of tensors")


def _usable(path: Path, kind: MemberKind) -> bool:
    """Whether a unit already in the data folder can be used (a broken or incomplete cache is replaced)."""
    try:
        _check_unit(path, kind)
    except Exception:
        return False
    return True


def _same_file(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size and _sha256(a) == _sha256(b)


def _replace(src: Path, dest: Path) -> None:
    """Put src where dest is: dest moved aside first, so a reader never sees neither."""
    old = dest.with_name(f".old-{dest.name}-{uuid.uuid4().hex[:8]}")
    dest.rename(old)
    src.rename(dest)
    if old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)


def _move_run(src: Path, dest: Path, report: ImportReport, unit: str, replace_runs: bool = False) -> None:
    """Add a run folder. A local run of the same id stays, unless it is damaged or the bundle's is newer and
    replace_runs asks for it; the report says which (never a silent replacement)."""
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        src.rename(dest)
        report.added.append(unit)
        return
    try:
        local_created = records.check_run(dest).created
    except (ValueError, OSError):
        local_created = float("-inf")  # damaged here: the bundle's copy repairs it (reported as replaced)
    bundle_created = records.check_run(src).created
    if local_created >= bundle_created:  # the same run (already imported or trained here), or a newer one
        (report.skipped if local_created == bundle_created else report.kept).append(unit)
        return
    if local_created != float("-inf") and not replace_runs:
        report.not_replaced.append(unit)
        return
    _replace(src, dest)
    report.replaced.append(unit)


def _merge(root: Path, manifest: Manifest, data_dir: Path, report: ImportReport, replace_runs: bool = False) -> None:
    """Move every unit from the verified temp folder into the data folder."""
    units: dict[str, MemberKind] = {}
    for f in manifest.files:
        units.setdefault(merge_unit(f.path), f.kind)
    for unit, kind in units.items():
        src, dest = root / unit, destination(unit, data_dir)
        if kind == MemberKind.RUN:
            _move_run(src, dest, report, unit, replace_runs)
        elif dest.exists() and kind in (MemberKind.FEATURES, MemberKind.PATCH_INDEX) and not _usable(dest, kind):
            _replace(src, dest)  # e.g. a feature cache an older import left without batchnorm.npz
            report.replaced.append(unit)
        elif dest.exists():
            if kind == MemberKind.DATASET and not _same_file(src, dest):
                report.conflicts.append(unit)
            else:
                report.skipped.append(unit)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            src.rename(dest)
            report.added.append(unit)


_ABSOLUTE = re.compile(r"^(/|\\|~[^\s/]*/|[A-Za-z]:[\\/])")  # /x, \\host, ~/x, ~user/x, C:\x, C:/x


def _strings(value: object) -> Iterator[str]:
    """Every string inside a JSON value (dict keys and values, list items)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _looks_absolute(value: str) -> bool:
    """A string anywhere in a record that names a file by an absolute path (titles and notes never start so)."""
    return bool(_ABSOLUTE.match(value))


def _refuse_path(where: str, value: str) -> BundleError:
    shown = value if len(value) <= 80 else value[:77] + "..."
    return BundleError(
        f"Refused: {where} stores the path {shown!r}, outside the data folder (a bundle stores paths relative "
        "to it; this one could make the app read any file of this machine)."
    )


def check_stored_paths(root: Path, manifest: Manifest) -> None:
    """Refuse a bundle that stores any path outside the data folder: in a run record (its image list and
    dataset root, or any other field), a patch index, a feature cache's metadata, or the manifest."""
    for name, value in (("manifest.json", to_json(manifest.runs)), ("manifest.json", to_json(manifest.dataset))):
        for text in _strings(value):
            if _looks_absolute(text):
                raise _refuse_path(name, text)
    for f in manifest.files:
        path = root / f.path
        if f.path.endswith(".json"):
            data = read_json(path)
            checked = []
            if f.kind == MemberKind.RUN and path.name == RECORD_FILE:  # verified by _check_unit: it parses
                record = RunRecord.from_json(data)
                checked = [*record.valid_paths, record.dataset.root]
            for text in checked:
                if not stored_path_inside(text):
                    raise _refuse_path(f.path, text)
            for text in _strings(data):
                if _looks_absolute(text):
                    raise _refuse_path(f.path, text)
        elif f.kind == MemberKind.PATCH_INDEX:
            index = patches.load_index(path)
            for text in [*index.paths, *index.skipped]:
                if not stored_path_inside(str(text)):
                    raise _refuse_path(f.path, str(text))


def _localise(root: Path, manifest: Manifest, data_dir: Path) -> None:
    """Rewrite data-folder-relative image paths (run records, patch indexes) for this data folder."""
    local = lambda p: absolute_path(p, data_dir)  # noqa: E731
    for f in manifest.files:
        path = root / f.path
        if f.kind == MemberKind.RUN and path.name == RECORD_FILE:
            record = map_record_paths(records.read_record(path.parent), local)
            atomic_write_bytes(path, json.dumps(record.to_json(), indent=2).encode())
        elif f.kind == MemberKind.PATCH_INDEX:
            atomic_write_bytes(path, map_index_paths(path, local))


def import_bundle(
    path: Path, data_dir: Path, progress: Progress | None = None, replace_runs: bool = False
) -> ImportReport:
    """Verify a class bundle and merge it into data_dir; BundleError (nothing written) when it is refused.

    Args:
        progress: called with (phase, bytes done, bytes in all) while unpacking and verifying.
        replace_runs: replace a local run by the bundle's copy of the same run when that is newer (without
            it such local runs are kept and listed in the report's not_replaced).
    """
    start = time.perf_counter()
    progress = progress or (lambda what, done, total: None)
    path, data_dir = Path(path), Path(data_dir)
    if not path.is_file():
        raise BundleError(f"No bundle file at {path}.")
    try:
        tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by the with block below
    except (tarfile.TarError, OSError, EOFError) as err:
        raise BundleError(f"{path.name} is not a readable bundle ({err}).") from err
    data_dir.mkdir(parents=True, exist_ok=True)
    with tar, repair.import_lock(data_dir) as free:
        if not free:
            raise BundleError("Another import into this data folder is running; import again when it has finished.")
        repair.remove_import_leftovers_held(data_dir)  # a killed import's `.import-*` (we hold the lock)
        try:
            manifest, members = check_members(tar)
        except (tarfile.TarError, EOFError) as err:
            raise BundleError(f"{path.name} is damaged ({err}).") from err
        free = shutil.disk_usage(data_dir).free
        if free < manifest.total_bytes + DISK_MARGIN:
            raise BundleError(
                f"Refused: the bundle unpacks to {manifest.total_bytes / 1e9:.1f} GB and {data_dir} has "
                f"{free / 1e9:.1f} GB free."
            )
        tmp = data_dir / f".import-{uuid.uuid4().hex[:8]}"
        try:
            progress("unpacking", 0, manifest.total_bytes)
            try:  # the app's one tar extractor: tarfile's "data" filter, and no links, devices or absolute names
                extract_tgz(
                    path,
                    tmp,
                    max_files=len(tar.getmembers()),
                    max_total_bytes=manifest.total_bytes + MAX_MANIFEST_BYTES,
                )
            except ArchiveError as err:
                raise BundleError(f"Refused: {err}") from err
            progress("unpacking", manifest.total_bytes, manifest.total_bytes)
            _check_content(tmp, manifest, progress)
            _localise(tmp, manifest, data_dir)
            report = ImportReport(run_ids=[r.run_id for r in manifest.runs], manifest=manifest)
            try:
                with training_lock.training_lock(runs_dir(data_dir)):
                    _merge(tmp, manifest, data_dir, report, replace_runs)
            except training_lock.TrainingBusy as err:
                raise BundleError(f"{err} Import the bundle when it has finished.") from err
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    report.seconds = time.perf_counter() - start
    return report
