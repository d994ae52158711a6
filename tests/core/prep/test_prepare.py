"""make prepare end to end, offline: Pets archive and ImageNet weights served on 127.0.0.1, tiny runs,
then bundle, import into a fresh data folder: same runs listed, same top-5 predicted, same caches found."""

import functools
import http.server
import os
import shutil
import tarfile
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import settings
from core.data import pets
from core.data.datasets import scan_dataset
from core.data.synthetic import make_pets_like
from core.inside import patches
from core.nets import inference, models
from core.predict.prediction import predict
from core.prep import prepare
from core.prep.bundle import write_bundle
from core.prep.bundle_import import import_bundle
from core.store import runs
from core.store.records import EventKind
from core.train import features, learners, lr_finder


@pytest.fixture
def mirror(tmp_path):
    """A loopback HTTP server holding a tiny Pets-shaped archive and mobilenet_v2's checkpoint file."""
    serve = tmp_path / "serve"
    src = tmp_path / "src" / pets.FOLDER_NAME
    make_pets_like(src / "images", n_per_class=6, classes=("Bengal", "Persian", "beagle", "pug"))
    (src / "annotations").mkdir()
    (src / "annotations" / "list.txt").write_text("# Image CLASS-ID SPECIES BREED ID\n")
    serve.mkdir()
    with tarfile.open(serve / pets.ARCHIVE_NAME, "w:gz") as tar:
        tar.add(src, arcname=pets.FOLDER_NAME)
    shutil.copyfile(models.offline_weights_file(), serve / models.MOBILENET_FILE)
    (serve / "broken").mkdir()
    (serve / "broken" / models.MOBILENET_FILE).write_bytes(b"not the checkpoint")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(serve))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def quick_options(url: str, **overrides) -> prepare.PrepOptions:
    """The lesson's resnet34 recipe with mobilenet_v2 at 32 px, 1 epoch per stage (the test's CPU budget)."""
    options = {
        "archs": ("mobilenet_v2",),
        "runs": ("resnet34-unfrozen",),
        "url": f"{url}/{pets.ARCHIVE_NAME}",
        "weights_url": url,
        "run_arch": "mobilenet_v2",
        "img_size": 32,
        "bs": 8,
        "epochs": 1,
        "patch_images": 12,
    }
    return prepare.PrepOptions(**{**options, **overrides})


def test_lesson_runs_are_the_courses():
    lesson = prepare.lesson_runs()
    r34, r50 = lesson["resnet34-unfrozen"], lesson["resnet50-unfrozen"]
    assert (r34.arch, r34.img_size, r34.bs) == ("resnet34", 224, 64)
    assert [(s.epochs, s.lr_max, s.lr_min, s.unfreeze) for s in r34.stages] == [
        (4, 1e-3, None, False),
        (2, 1e-4, 1e-6, True),
    ]
    assert [(s.epochs, s.lr_max, s.unfreeze) for s in lesson["resnet34-mistake"].stages] == [
        (4, 1e-3, False),
        (1, 1e-3, True),
    ]
    assert (r50.arch, r50.img_size, r50.bs) == ("resnet50", 299, 32)
    assert [(s.epochs, s.lr_min) for s in r50.stages] == [(8, None), (3, 1e-6)]
    assert not any(s.fast for r in lesson.values() for s in r.stages)  # fastai's own frozen training
    quick = prepare.PrepOptions.quick(url="http://mirror/pets.tgz")
    assert quick.runs == ("resnet34-frozen", "resnet34-mistake", "resnet34-unfrozen") and "resnet50" not in quick.archs
    assert quick.url == "http://mirror/pets.tgz"
    config = prepare.run_config(r34, "fp", prepare.PrepOptions())
    assert config.augment and config.pretrained and config.seed == 42


def test_prepare_bundle_import_round_trip(mirror, data_folder, tmp_path, monkeypatch):
    """Prepared on a machine that trains in bf16 (a GPU, a CPU with native bf16), imported on an fp32 CPU."""
    monkeypatch.setattr(models, "offline_weights_file", lambda: None)  # the weights must come from the mirror
    monkeypatch.setenv("PETLAB_PRECISION", "bf16")
    events = []
    report = prepare.prepare(quick_options(mirror), events.append)
    assert report.failed == []
    assert "dataset" in report.done and "weights mobilenet_v2" in report.done
    assert (data_folder / "torch" / "hub" / "checkpoints" / models.MOBILENET_FILE).is_file()
    assert any(s.startswith("run resnet34-unfrozen (stage 1 of 2)") for s in report.done)
    assert any(s.startswith("features mobilenet_v2 32px") for s in report.done)
    n_stages = len(models.ARCHS["mobilenet_v2"].stages)
    assert len([s for s in report.done if s.startswith("patch indexes")]) == 2 * n_stages  # ImageNet + the run
    assert len(list((data_folder / settings.PATCH_INDEX_DIR).glob("*.npz"))) == 2 * n_stages
    assert any(e.status == "progress" for e in events)
    found, _ = runs.list_runs(data_folder / "runs")
    assert len(found) == 2  # the frozen parent and the unfrozen run, as the lesson stores them
    unfrozen = next(r for r in found if len(r.record.config.stages) == 2)
    assert unfrozen.record.lr_finder.stage == "unfrozen"  # lr_find before stage 2, kept for the Lesson page
    assert "valley" in unfrozen.record.lr_finder.suggestions

    again = prepare.prepare(quick_options(mirror))  # every result exists: nothing is redone
    assert again.done == [] and again.failed == []

    bundle = write_bundle(data_folder, tmp_path / "class.tar")
    assert {r.run_id for r in bundle.manifest.runs} == {r.run_id for r in found}
    assert all(r.scores["error_rate"] is not None for r in bundle.manifest.runs)
    assert bundle.manifest.versions["fastai"] and bundle.manifest.machine["device"]
    assert not any("annotations" in f.path for f in bundle.manifest.files)  # unused by the app: left out

    fresh = tmp_path / "classroom"
    monkeypatch.setenv("PETLAB_DATA", str(fresh))
    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.setenv("PETLAB_PRECISION", "fp32")
    result = import_bundle(bundle.path, fresh)
    assert result.conflicts == [] and result.kept == []
    imported, warnings = runs.list_runs(fresh / "runs")
    assert warnings == []
    assert [(r.run_id, r.title) for r in imported] == [(r.run_id, r.title) for r in found]

    photo = Image.open(sorted((pets.find_pets(data_folder)).glob("*.jpg"))[0]).convert("RGB")
    for run in found:
        here = predict(runs.load_run_model(run.path), photo)
        there = predict(runs.load_run_model(fresh / "runs" / run.run_id), photo)
        assert there.labels == here.labels and there.probs == pytest.approx(here.probs, abs=1e-6)
        valid = (fresh / "runs" / run.run_id / "run.json").read_text()
        assert str(fresh) in valid and str(data_folder) not in valid  # image paths point into this data folder
    for index_file in (fresh / settings.PATCH_INDEX_DIR).glob("*.npz"):
        index = patches.load_index(index_file)
        assert all(Path(p).is_file() and str(p).startswith(str(fresh)) for p in index.paths)

    # the Layers page finds the indexes under its own keys (same model key, sample and dataset fingerprint)
    from ui import layers

    scan = scan_dataset(pets.pets_spec(pets.find_pets(fresh)))
    for run_id in report.run_ids.values():  # the lesson runs asked for (not the frozen parent)
        loaded = runs.load_run_model(fresh / "runs" / run_id)
        for _, stage in models.ARCHS["mobilenet_v2"].stages:
            assert layers.patch_index_path(layers.model_id(loaded), f"{scan.fingerprint}-n12", stage, 32).is_file()

    # the Training page's Fast twin of the prepared frozen run finds the prepared features: the LR finder trains
    # a head on them (no extraction); and they are the features this fp32 CPU computes itself
    frozen = next(r for r in imported if len(r.record.config.stages) == 1)
    stage = frozen.record.config.stages[0]
    fast = replace(
        frozen.record.config,
        stages=(replace(stage, fast=True, views=prepare.feature_spec(frozen.record.config).views),),
    )
    assert runs.find_frozen_run(fresh / "runs", fast, views=fast.stages[0].views)[1].run_id == frozen.run_id
    assert learners.features_cached(fast, fresh / "features") and lr_finder.cheap(fast, fresh / "features")
    seen = []
    found_lr = lr_finder.find_lr(fast, scan, fresh / "runs", fresh / "features", num_it=10, on_event=seen.append)
    assert found_lr.fast and not any(e.kind == EventKind.EXTRACT for e in seen)
    cache = features.load_features(
        features.features_folder(fresh / "features", prepare.feature_spec(frozen.record.config))
    )
    body = models.create_model(fast.arch, len(frozen.record.classes), pretrained=True)
    features.load_batchnorm_stats(body[0], cache.bn_stats)  # the ImageNet body with the cache's AdaBN statistics
    dls = learners.make_dls(scan.items, fast, torch.device("cpu"))
    here = torch.cat([inference.features_of(body, xb.cpu()) for xb, _ in dls.valid]).numpy()
    np.testing.assert_allclose(cache.valid_x, here, atol=1e-4 * float(np.abs(here).max()))

    # the classroom's prepare finds everything and downloads nothing (the mirror is not even asked)
    offline = prepare.prepare(quick_options("http://127.0.0.1:9"))
    assert offline.done == [] and offline.failed == []


def test_a_bad_checkpoint_fails_its_step_with_a_message(mirror, monkeypatch, data_folder):
    monkeypatch.setattr(models, "offline_weights_file", lambda: None)
    options = quick_options(mirror, weights_url=f"{mirror}/broken", runs=(), features=False, patch_indexes=False)
    report = prepare.prepare(options)
    assert [step for step, _ in report.failed] == ["weights mobilenet_v2"]
    assert "Could not download mobilenet_v2" in report.failed[0][1]
    assert not (data_folder / "torch" / "hub" / "checkpoints" / models.MOBILENET_FILE).exists()


def test_a_local_folder_is_copied_into_the_data_folder(tmp_path, data_folder, monkeypatch):
    """--local with an extracted folder: the images land in the data folder, so they are bundled."""
    source = make_pets_like(tmp_path / "elsewhere" / "images", n_per_class=2, classes=("Bengal", "pug"))
    options = prepare.PrepOptions(archs=(), runs=(), local=str(source.parent), features=False, patch_indexes=False)
    assert prepare.prepare(options).failed[0][0] == "dataset"  # outside the shared folders: refused
    monkeypatch.setenv("PETLAB_FOLDERS", f"{tmp_path / 'elsewhere'}{os.pathsep}{data_folder}")
    report = prepare.prepare(options)
    assert report.done == ["dataset"] and report.failed == []
    assert pets.find_pets(data_folder) == pets.pets_folder(data_folder) / "images"
    assert sorted(p.name for p in pets.find_pets(data_folder).glob("*.jpg")) == sorted(
        p.name for p in source.glob("*.jpg")
    )
    assert prepare.prepare(options).skipped == ["dataset"]  # already there: not copied again
    with pytest.raises(ValueError, match="Unknown lesson run"):
        prepare.prepare(prepare.PrepOptions(archs=(), runs=("resnet99-frozen",), local=str(source.parent)))
