"""Class bundles: what goes in, the manifest, and every refusal (tampered, unsafe, incompatible) writing nothing."""

import io
import json
import pickle
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from core import settings
from core.data import pets
from core.data.synthetic import make_pets_like
from core.inside import patches
from core.nets.models import create_model
from core.prep.bundle import write_bundle
from core.prep.bundle_import import import_bundle
from core.prep.manifest import BUNDLE_VERSION, BundleError, merge_unit
from core.storage import atomic_write_json
from core.store import records, runs
from core.train import features
from tests.factories import run_record, store_run

CLASSES = ("Bengal", "beagle")


def make_data_folder(base: Path, created: float = 1000.0) -> str:
    """A small prepared data folder: Pets-shaped images, a checkpoint, a run, a feature cache, a patch index."""
    images = make_pets_like(pets.pets_folder(base) / "images", n_per_class=3, classes=CLASSES)
    paths = sorted(str(p) for p in images.glob("*.jpg"))
    ckpt = base / "torch" / "hub" / "checkpoints" / "tiny-0123abcd.pth"
    ckpt.parent.mkdir(parents=True)
    torch.save({"w": torch.arange(4.0)}, ckpt)
    model = create_model("mobilenet_v2", len(CLASSES), pretrained=False)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    record = run_record(
        classes=CLASSES,
        epochs=[records.EpochRow(0, 0, train_loss=0.7, valid_loss=0.6, error_rate=0.5)],
        dataset=records.DatasetInfo(name="Oxford-IIIT Pet", root=str(images), fingerprint="fp"),
        created=created,
        valid_paths=tuple(paths[:2]),
    )
    store_run(base / "runs", record, "run0001", buf.getvalue())
    bn = features.batchnorm_stats(model[0])
    feature_set = features.FeatureSet(
        np.ones((1, 4, 8), np.float32), np.arange(4), np.ones((2, 8), np.float32), np.arange(2), 0.1, False, bn
    )
    spec = features.FeatureSpec("fp", "mobilenet_v2", True, 32, False, 1, 42, 8)
    features.write_features(base / "features" / spec.key, feature_set, spec)
    index = patches.PatchIndex(
        values=np.ones((3, 2), np.float32),
        image_ids=np.zeros((3, 2), np.int32),
        ys=np.zeros((3, 2), np.int32),
        xs=np.zeros((3, 2), np.int32),
        paths=paths[:2],
        stage="0.0.3",
        size=32,
        grid=(8, 8),
        skipped=[],
    )
    patches.save_index(index, base / settings.PATCH_INDEX_DIR / "abc123.npz")
    return "run0001"


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A prepared data folder and its bundle, made once for the module (in its own PETLAB_DATA)."""
    folder = tmp_path_factory.mktemp("prepared")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PETLAB_DATA", str(folder))
        mp.delenv("TORCH_HOME", raising=False)
        make_data_folder(folder)
        report = write_bundle(folder, tmp_path_factory.mktemp("out") / "class.tar")
    return folder, report


@pytest.fixture
def made(source, tmp_path, monkeypatch):
    """The prepared folder, its bundle and `fresh`: an empty classroom data folder (the active one)."""
    fresh = tmp_path / "classroom"
    fresh.mkdir()
    monkeypatch.setenv("PETLAB_DATA", str(fresh))
    monkeypatch.delenv("TORCH_HOME", raising=False)  # checkpoints land in TORCH_HOME, where torchvision looks
    return source[0], source[1], fresh


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def rewrite(src: Path, dst: Path, edit) -> Path:
    """Copy a tar member by member through edit(info, data) -> list of (info, data) to write."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for info in tin.getmembers():
            data = tin.extractfile(info).read() if info.isfile() else b""
            for new_info, new_data in edit(info, data):
                new_info.size = len(new_data) if new_info.isfile() else 0
                tout.addfile(new_info, io.BytesIO(new_data) if new_info.isfile() else None)
    return dst


def refused(path: Path, fresh: Path, match: str) -> None:
    with pytest.raises(BundleError, match=match):
        import_bundle(path, fresh)
    assert listing(fresh) == []  # nothing written, not even the temporary folder


def test_bundle_holds_the_class_content_with_a_manifest(made):
    data_folder, report, _ = made
    kinds = {f.kind for f in report.manifest.files}
    assert kinds == {"dataset", "weights", "run", "features", "patch_index"}
    assert sum(f.kind == "dataset" for f in report.manifest.files) == 6
    with tarfile.open(report.path) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())
        record = json.loads(tar.extractfile("runs/run0001/run.json").read())
    assert sorted(names) == sorted([f.path for f in report.manifest.files] + ["manifest.json"])
    assert all(len(f["sha256"]) == 64 and f["size"] > 0 for f in manifest["files"])
    assert manifest["versions"]["torch"] == torch.__version__
    assert manifest["runs"][0]["scores"]["error_rate"] == 0.5 and manifest["machine"]["device"]
    # image paths are stored relative to the data folder: the bundle does not know where it will land
    assert record["valid_paths"][0].startswith("datasets/oxford-iiit-pet/images/")
    assert record["dataset"]["root"] == "datasets/oxford-iiit-pet/images"
    assert str(data_folder) not in json.dumps(manifest)
    assert not any(n.endswith((".pkl", ".py")) for n in names)


def test_import_merges_and_rewrites_paths(made):
    _, report, fresh = made
    seen = []
    result = import_bundle(report.path, fresh, lambda *event: seen.append(event))
    assert result.run_ids == ["run0001"] and "runs/run0001" in result.added
    total = report.manifest.total_bytes
    assert ("unpacking", total, total) in seen and seen[-1] == ("verifying", total, total)
    units = {merge_unit(f.path) for f in report.manifest.files}  # images, checkpoints, run, features, index
    assert set(result.added) | set(result.skipped) == units and len(units) >= 6 + 4
    assert "torch/hub/checkpoints/tiny-0123abcd.pth" in result.added
    assert (fresh / "torch" / "hub" / "checkpoints" / "tiny-0123abcd.pth").is_file()
    found, _ = runs.list_runs(fresh / "runs")
    assert [r.run_id for r in found] == ["run0001"]
    assert Path(found[0].record.valid_paths[0]).is_file()
    assert found[0].record.dataset.root == str(fresh / "datasets" / "oxford-iiit-pet" / "images")
    index = patches.load_index(fresh / settings.PATCH_INDEX_DIR / "abc123.npz")
    assert all(Path(p).is_file() and p.startswith(str(fresh)) for p in index.paths)
    state = torch.load(fresh / "runs" / "run0001" / "model.pt", weights_only=True)  # no map_location: CPU tensors
    assert all(t.device.type == "cpu" for t in state.values())
    assert not list(fresh.glob(".import-*"))
    again = import_bundle(report.path, fresh)  # a second import finds everything and changes nothing
    assert again.added == again.kept == [] and set(again.skipped) == units


def test_a_local_run_is_never_replaced_silently(made, tmp_path):
    """The review: a bundle whose run had a later `created` silently replaced the local run of the same id.
    Now a local run stays (newer or older) and the report says so; only replace_runs takes the bundle's."""
    _, report, fresh = made
    make_data_folder(fresh, created=time.time() + 100)  # the classroom retrained it later
    (fresh / "datasets" / "oxford-iiit-pet" / "images" / "Bengal_1.jpg").write_bytes(b"a different photo")
    result = import_bundle(report.path, fresh)
    assert result.kept == ["runs/run0001"] and result.replaced == []
    assert result.conflicts == ["datasets/oxford-iiit-pet/images/Bengal_1.jpg"]
    assert (fresh / "datasets" / "oxford-iiit-pet" / "images" / "Bengal_1.jpg").read_bytes() == b"a different photo"
    older = tmp_path / "older"
    make_data_folder(older, created=1.0)
    result = import_bundle(report.path, older)  # the bundle's copy is newer: kept local all the same, and said
    assert result.not_replaced == ["runs/run0001"] and result.replaced == []
    assert "--replace-runs" in result.summary()
    assert records.check_run(older / "runs" / "run0001").created == 1.0
    result = import_bundle(report.path, older, replace_runs=True)  # asked: now it is replaced, and said
    assert result.replaced == ["runs/run0001"] and "replaced 1 local run" in result.summary()
    assert records.check_run(older / "runs" / "run0001").created == 1000.0


def test_a_flipped_byte_is_refused(made, tmp_path):
    _, report, fresh = made

    def flip(info, data):
        if info.name == "runs/run0001/model.pt":
            data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
        return [(info, data)]

    refused(rewrite(report.path, tmp_path / "flipped.tar", flip), fresh, "changed after the bundle was made")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda info, data: [] if info.name.endswith("preds.npz") else [(info, data)], "missing"),
        (lambda info, data: [(info, data + b"x" if info.name.endswith("meta.json") else data)], "bytes, the manifest"),
        (
            lambda info, data: (
                [(info, data)]
                + ([(tarfile.TarInfo("runs/run0001/preds.npz"), data)] if info.name.endswith("preds.npz") else [])
            ),
            "twice",
        ),  # fmt: skip
    ],
    ids=["missing-file", "size-changed", "duplicate"],
)
def test_missing_changed_or_duplicate_files_are_refused(made, tmp_path, edit, match):
    _, report, fresh = made
    refused(rewrite(report.path, tmp_path / "bad.tar", edit), fresh, match)


def _extra(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = ""):
    def edit(info, data):
        if info.name != "manifest.json":
            return [(info, data)]
        extra = tarfile.TarInfo(name)
        extra.type, extra.linkname = kind, linkname
        return [(extra, b"evil"), (info, data)]

    return edit


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (_extra("../escaped.txt"), "outside the data folder"),
        (_extra("/tmp/absolute.txt"), "outside the data folder"),
        (_extra("datasets/oxford-iiit-pet/images/link.jpg", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
        (_extra("runs/run0001/run.json.lnk", tarfile.LNKTYPE, "manifest.json"), "hard link"),
        (_extra("datasets/oxford-iiit-pet/images/dev.jpg", tarfile.CHRTYPE), "character device"),
        (_extra("runs/run0001/train.py"), "not a file a class bundle carries"),
        (_extra("datasets/oxford-iiit-pet/images/extra.jpg"), "not in the manifest"),
    ],
    ids=["dotdot", "absolute", "symlink", "hardlink", "device", "code", "extra-file"],
)
def test_unsafe_members_are_refused_before_anything_is_written(made, tmp_path, edit, match):
    _, report, fresh = made
    refused(rewrite(report.path, tmp_path / "unsafe.tar", edit), fresh, match)
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/absolute.txt").exists()


def _with_manifest(change):
    def edit(info, data):
        if info.name == "manifest.json":
            manifest = json.loads(data)
            change(manifest)
            data = json.dumps(manifest).encode()
        return [(info, data)]

    return edit


def test_incompatible_versions_are_refused(made, tmp_path):
    _, report, fresh = made
    edit = _with_manifest(lambda m: m["versions"].update(fastai="3.1.0", torch="2.99.0"))
    refused(rewrite(report.path, tmp_path / "future.tar", edit), fresh, r"fastai 3\.1\.0 \(this machine has 2\.8\.12\)")
    edit = _with_manifest(lambda m: m.update(version=BUNDLE_VERSION + 1))
    refused(rewrite(report.path, tmp_path / "format.tar", edit), fresh, "Update Pet Lab")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickle_is_refused_even_with_a_matching_manifest(made, tmp_path):
    """A rebuilt manifest cannot smuggle code: weights are read with weights_only=True before anything moves."""
    _, report, fresh = made

    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))

    payload = pickle.dumps({"w": Boom()})
    import hashlib

    def edit(info, data):
        if info.name == "runs/run0001/model.pt":
            data = payload
        if info.name == "manifest.json":
            manifest = json.loads(data)
            for f in manifest["files"]:
                if f["path"] == "runs/run0001/model.pt":
                    f["size"], f["sha256"] = len(payload), hashlib.sha256(payload).hexdigest()
            data = json.dumps(manifest).encode()
        return [(info, data)]

    refused(rewrite(report.path, tmp_path / "pickle.tar", edit), fresh, "cannot be used here")


def _replaced_member(name: str, payload: bytes):
    """A tar edit that puts payload in member `name` and a manifest that agrees (size and hash)."""
    import hashlib

    def edit(info, data):
        if info.name == name:
            data = payload
        if info.name == "manifest.json":
            manifest = json.loads(data)
            for f in manifest["files"]:
                if f["path"] == name:
                    f["size"], f["sha256"] = len(payload), hashlib.sha256(payload).hexdigest()
            data = json.dumps(manifest).encode()
        return [(info, data)]

    return edit


FEATURE_KEY = features.FeatureSpec("fp", "mobilenet_v2", True, 32, False, 1, 42, 8).key
FAST_CONFIG = records.RunConfig(
    dataset="fp", arch="mobilenet_v2", img_size=32, bs=8, seed=42,
    stages=(records.StageConfig(epochs=1, lr_max=1e-3, fast=True),),
)  # fmt: skip


def test_a_feature_cache_arrives_whole_and_is_used(made):
    """Every file its owner lists travels (batchnorm.npz too): the Training page counts it as cached."""
    from core.train import learners

    _, report, fresh = made
    carried = {Path(f.path).name for f in report.manifest.files if f.kind == "features"}
    assert carried == set(features.FEATURE_FILES) and "batchnorm.npz" in carried
    assert features.feature_spec(FAST_CONFIG, FAST_CONFIG.stages[0]).key == FEATURE_KEY
    import_bundle(report.path, fresh)
    assert learners.features_cached(FAST_CONFIG, fresh / "features")
    found = features.load_features(fresh / "features" / FEATURE_KEY)
    model = create_model("mobilenet_v2", len(CLASSES), pretrained=False)
    features.load_batchnorm_stats(model[0], found.bn_stats)  # the statistics the features were made with
    assert found.train_x.shape == (1, 4, 8)


def test_a_bundle_whose_feature_cache_is_incomplete_is_refused(made, tmp_path):
    """A version 1 bundle carried feature caches without batchnorm.npz: importing it would leave them unusable."""
    _, report, fresh = made
    bn = f"features/{FEATURE_KEY}/batchnorm.npz"

    def drop(info, data):
        if info.name == bn:
            return []
        if info.name == "manifest.json":
            manifest = json.loads(data)
            manifest["files"] = [f for f in manifest["files"] if f["path"] != bn]
            manifest["version"] = 1
            data = json.dumps(manifest).encode()
        return [(info, data)]

    refused(rewrite(report.path, tmp_path / "v1.tar", drop), fresh, rf"features/{FEATURE_KEY} lacks batchnorm\.npz")
    inconsistent = _replaced_member(f"features/{FEATURE_KEY}/valid_y.npy", _npy(np.arange(5)))
    refused(rewrite(report.path, tmp_path / "shapes.tar", inconsistent), fresh, "inconsistent shapes")


def test_a_run_whose_weights_do_not_fit_is_refused_and_nothing_is_written(made, tmp_path):
    """Weights for another number of classes: the run could not be opened here, so the import refuses it."""
    _, report, fresh = made
    buf = io.BytesIO()
    torch.save(create_model("mobilenet_v2", len(CLASSES) + 1, pretrained=False).state_dict(), buf)
    edit = _replaced_member("runs/run0001/model.pt", buf.getvalue())
    refused(rewrite(report.path, tmp_path / "misfit.tar", edit), fresh, "does not fit mobilenet_v2 with 2 classes")


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def test_import_replaces_a_local_cache_it_could_not_use(made):
    """A cache an earlier (version 1) import left without batchnorm.npz is replaced, not kept as 'already here'."""
    from core.train import learners

    _, report, fresh = made
    import_bundle(report.path, fresh)
    (fresh / "features" / FEATURE_KEY / "batchnorm.npz").unlink()
    assert not learners.features_cached(FAST_CONFIG, fresh / "features")
    again = import_bundle(report.path, fresh)
    assert f"features/{FEATURE_KEY}" in again.replaced and learners.features_cached(FAST_CONFIG, fresh / "features")
    assert not any(p.name.startswith(".old-") for p in (fresh / "features").iterdir())


def test_a_cache_from_an_older_bf16_extraction_stays_home(tmp_path, data_folder):
    """`<key>-bf16` folders (older versions cached bf16 extractions apart) are left out, with the reason."""
    import shutil

    make_data_folder(data_folder)
    shutil.copytree(data_folder / "features" / FEATURE_KEY, data_folder / "features" / f"{FEATURE_KEY}-bf16")
    report = write_bundle(data_folder, tmp_path / "class.tar", include_dataset=False)
    assert {Path(f.path).parent.name for f in report.manifest.files if f.kind == "features"} == {FEATURE_KEY}
    assert any(f"{FEATURE_KEY}-bf16" in w and "always fp32" in w for w in report.manifest.warnings)


def test_not_a_bundle(tmp_path, data_folder):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"hello")
    with pytest.raises(BundleError, match="not a readable bundle"):
        import_bundle(junk, data_folder)
    other = tmp_path / "other.tar"
    with tarfile.open(other, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    with pytest.raises(BundleError, match="not a Pet Lab class bundle"):
        import_bundle(other, data_folder)


def test_compressed_bundle_and_run_subset(tmp_path, data_folder):
    make_data_folder(data_folder)
    atomic_write_json(data_folder / "runs" / "broken" / "run.json", {"arch": "x"})  # skipped with a warning
    report = write_bundle(data_folder, tmp_path / "class.tar.gz", run_ids=["run0001"], include_dataset=False)
    assert report.path.read_bytes()[:2] == b"\x1f\x8b"  # gzip
    assert not any(f.kind == "dataset" for f in report.manifest.files)
    assert any("broken" in w for w in report.manifest.warnings)
    assert any("not in the bundle" in w for w in report.manifest.warnings)
    with pytest.raises(BundleError, match="No complete run with id nope"):
        write_bundle(data_folder, tmp_path / "x.tar", run_ids=["nope"])
    assert not (tmp_path / "x.tar").exists() and not (tmp_path / "x.tar.part").exists()


def test_command_line_import_and_refusal(made, tmp_path, capsys):
    from core.prep.__main__ import main

    _, report, fresh = made
    assert main(["import", str(report.path)]) == 0
    assert "Imported into" in capsys.readouterr().out
    assert [r.run_id for r in runs.list_runs(fresh / "runs")[0]] == ["run0001"]
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"junk")
    assert main(["import", str(junk)]) == 1
    assert "not a readable bundle" in capsys.readouterr().err


# ---- stored paths outside the data folder (issue 18, item 14) ------------------------------------------


def tampered(src: Path, dst: Path, member: str, change) -> Path:
    """The bundle with one member rewritten by change(bytes) -> bytes and its manifest entry made to match
    (what an attacker who recomputes the hashes produces)."""
    import hashlib

    with tarfile.open(src) as tar:
        new = change(tar.extractfile(member).read())

    def edit(info, data):
        if info.name == member:
            data = new
        if info.name == "manifest.json":
            manifest = json.loads(data)
            for f in manifest["files"]:
                if f["path"] == member:
                    f["size"], f["sha256"] = len(new), hashlib.sha256(new).hexdigest()
            data = json.dumps(manifest).encode()
        return [(info, data)]

    return rewrite(src, dst, edit)


def record_with(**fields):
    def change(data: bytes) -> bytes:
        record = json.loads(data)
        for key, value in fields.items():
            if key == "root":
                record["dataset"]["root"] = value
            else:
                record[key] = value
        return json.dumps(record).encode()

    return change


def index_with(paths):
    def change(data: bytes) -> bytes:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "index.npz"
            path.write_bytes(data)
            index = patches.load_index(path)
            index.paths = list(paths)
            patches.save_index(index, path)
            return path.read_bytes()

    return change


@pytest.mark.parametrize(
    ("member", "change"),
    [
        ("runs/run0001/run.json", record_with(valid_paths=[str(Path.home() / ".ssh" / "id_rsa"), "x.jpg"])),
        ("runs/run0001/run.json", record_with(valid_paths=["datasets/../../../etc/passwd", "x.jpg"])),
        ("runs/run0001/run.json", record_with(root="/etc")),
        ("runs/run0001/run.json", record_with(notes_file="/home/teacher/grades.csv")),
        ("patch_index/abc123.npz", index_with(["/etc/passwd", "datasets/oxford-iiit-pet/images/Bengal_1.jpg"])),
        ("patch_index/abc123.npz", index_with(["~/secret.jpg", "datasets/x.jpg"])),
    ],
    ids=["home-file", "dotdot", "dataset-root", "any-field", "index-absolute", "index-home"],
)
def test_a_bundle_storing_a_path_outside_the_data_folder_is_refused(made, tmp_path, member, change):
    """The review imported a bundle whose records listed absolute image paths (hashes recomputed to match); a
    student then downloaded a file of the teacher's home folder through the Interpretation page."""
    _, report, fresh = made
    refused(tampered(report.path, tmp_path / "paths.tar", member, change), fresh, "outside the data folder")


def test_a_run_trained_outside_the_data_folder_is_left_out_of_a_bundle(tmp_path, data_folder):
    """What the writer does with such runs, so that its own bundles always import."""
    make_data_folder(data_folder)
    elsewhere = make_pets_like(tmp_path / "elsewhere", n_per_class=2, classes=CLASSES)
    record = records.check_run(data_folder / "runs" / "run0001").to_json()
    record["dataset"]["root"] = str(elsewhere)
    record["valid_paths"] = sorted(str(p) for p in elsewhere.glob("*.jpg"))[:2]
    atomic_write_json(data_folder / "runs" / "run0001" / "run.json", record)
    report = write_bundle(data_folder, tmp_path / "class.tar")
    assert report.manifest.runs == [] and any("left out run run0001" in w for w in report.manifest.warnings)
    import_bundle(report.path, tmp_path / "classroom")  # and it imports
    with pytest.raises(BundleError, match="outside the data folder: it cannot be bundled"):
        write_bundle(data_folder, tmp_path / "one.tar", run_ids=["run0001"])


# ---- a killed import's leftovers (issue 18, item 15) ----------------------------------------------------

KILLED_IMPORT = """
import os, signal, sys
from pathlib import Path
from core.data import archives
from core.prep.bundle_import import import_bundle

real = archives._tar_filter

def killing(name, max_files, max_total_bytes):
    check, seen = real(name, max_files, max_total_bytes), [0]

    def filter_(member, dest):
        seen[0] += 1
        if seen[0] > 3:
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9, halfway through unpacking
        return check(member, dest)

    return filter_

archives._tar_filter = killing
import_bundle(Path(sys.argv[1]), Path(sys.argv[2]))
"""


def killed_import(bundle: Path, data: Path) -> list[Path]:
    """`make import` killed with -9 while unpacking, in its own process; the `.import-*` it leaves."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", KILLED_IMPORT, str(bundle), str(data)], cwd=root, timeout=300)
    assert done.returncode == -9
    return sorted(data.glob(".import-*"))


def test_a_killed_imports_leftovers_are_cleaned_when_old_and_no_import_runs(made):
    """The review: kill -9 during `make import` left `.import-*.partial` (the bundle's size) forever."""
    import os

    from core.store.repair import LEFTOVER_AGE_S, import_lock, remove_import_leftovers

    _, report, fresh = made
    [left] = killed_import(report.path, fresh)
    assert left.name.endswith(".partial") and any(left.rglob("*.jpg"))
    assert remove_import_leftovers(fresh) == []  # young: it may be an import still unpacking
    later = time.time() + LEFTOVER_AGE_S + 1
    with import_lock(fresh) as held:  # an import runs now (another process holds the lock)
        assert held
        assert remove_import_leftovers(fresh, now=later) == []
        with pytest.raises(BundleError, match="Another import into this data folder is running"):
            import_bundle(report.path, fresh)
    assert remove_import_leftovers(fresh, now=later) == [f"Removed {left.name}, left by an import that was stopped."]
    assert not left.exists()

    [left] = killed_import(report.path, fresh)
    old = time.time() - LEFTOVER_AGE_S - 60
    for path in [left, *left.iterdir()]:
        os.utime(path, (old, old))
    runs.list_runs(fresh / "runs")  # listing the runs repairs the data folder, as for other leftovers
    assert not left.exists()

    killed_import(report.path, fresh)
    result = import_bundle(report.path, fresh)  # the next import clears them at once (it holds the lock)
    assert "runs/run0001" in result.added and not list(fresh.glob(".import-*"))
