"""Not sure, honestly: kNN distance on pooled body features, calibrated on held-out images, cached per run."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from core.nets.models import LoadedModel, create_model, offline_weights_file, preprocess
from core.predict import novelty
from core.predict import prediction as pred


def colour_model() -> nn.Sequential:
    """Hand-set Sequential(body, head) in fastai's layout: features = mean (R, G, B) after ReLU.

    Logits: class 0 ("red") = 10·(R + G − B), class 1 ("blue") = −class 0. Yellow (R and G high)
    gets *larger* logits than any red training image, so its energy is lower: the energy rule calls
    it very familiar, though no training image looks like it.
    """
    conv = nn.Conv2d(3, 3, 1, bias=False)
    linear = nn.Linear(3, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        linear.weight.copy_(torch.tensor([[10.0, 10.0, -10.0], [-10.0, -10.0, 10.0]]))
        linear.bias.zero_()
    body = nn.Sequential(conv, nn.ReLU())
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), linear)
    return nn.Sequential(body, head).eval()


def solid(rgb: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", (40, 40), rgb)


def reds(seed: int, n: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [solid((int(rng.integers(200, 256)), int(rng.integers(110, 170)), 0)) for _ in range(n)]


def blues(seed: int, n: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [solid((0, int(rng.integers(110, 170)), int(rng.integers(200, 256)))) for _ in range(n)]


@pytest.fixture(scope="module")
def colours():
    model = colour_model()
    loaded = LoadedModel(model, "mobilenet_v2", ["red", "blue"], "colours", "run", img_size=16, run_id="colours")
    train, valid = reds(0, 10) + blues(1, 10), reds(2, 10) + blues(3, 10)
    fn = novelty.body_features(model)
    reference = novelty.calibrate(
        novelty.image_features(fn, train, 16), novelty.image_features(fn, valid, 16), k=3, in_rate=0.95
    )
    return loaded, train, valid, reference


def test_new_rule_flags_what_the_energy_rule_missed(colours):
    loaded, train, valid, reference = colours
    yellow = solid((255, 255, 0))
    # the old rule: energy above that of 95 % of the training images
    energies = [pred.energy_score(pred.logits_of(loaded.model, preprocess(img, 16))[0]) for img in train]
    energy_line = float(np.quantile(energies, 0.95))
    old = pred.predict(loaded, yellow, k=2)
    assert old.top == "red" and old.top_prob > 0.99
    assert old.energy < energy_line  # "more familiar than the training images": missed
    rule = pred.rule_for(reference)
    new = pred.predict(loaded, yellow, k=2, rule=rule, reference=reference)
    assert new.not_sure
    assert new.reasons == [r for r in new.reasons if "unlike the training images" in r] and new.reasons
    assert new.probs == pytest.approx(old.probs)  # same forward, same softmax
    assert new.distance > reference.threshold
    ordinary = [pred.predict(loaded, img, k=2, rule=rule, reference=reference) for img in reds(7, 5) + blues(8, 5)]
    assert not any(p.not_sure for p in ordinary)


def test_features_and_logits_match_the_model():
    torch.manual_seed(0)
    model = create_model("mobilenet_v2", 3, pretrained=False).eval()
    x = torch.randn(2, 3, 32, 32)
    feats, logits = novelty.features_and_logits(model, x)
    assert feats.shape == (2, 2 * 1280)  # AdaptiveConcatPool2d: max and average of 1280 channels
    with torch.no_grad():
        assert torch.allclose(logits, model(x), atol=1e-5)
    assert not model.training


def test_knn_distance_exact():
    ref = novelty.normalise(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    q = novelty.normalise(np.array([[2.0, 0.0]]))
    d1 = novelty.knn_distance(ref, q, k=1)
    d2 = novelty.knn_distance(ref, q, k=2)
    assert d1 == pytest.approx([0.0], abs=1e-6)
    assert d2 == pytest.approx([np.sqrt(2 - 2 / np.sqrt(2))], abs=1e-6)  # 45° away
    assert novelty.knn_distance(ref, q, k=10) == pytest.approx([np.sqrt(2)], abs=1e-6)  # k capped at N
    loo = novelty.knn_distance(ref, ref, k=1, leave_one_out=True)  # never its own zero distance
    assert loo == pytest.approx([np.sqrt(2 - 2 / np.sqrt(2))] * 3, abs=1e-6)
    with pytest.raises(ValueError):
        novelty.knn_distance(np.zeros((0, 2)), q, k=1)


def test_calibrate_flags_the_stated_share_of_held_out_images():
    rng = np.random.default_rng(0)
    train, held = rng.normal(size=(200, 8)), rng.normal(size=(100, 8))
    ref = novelty.calibrate(train, held, k=5, in_rate=0.95)
    assert ref.held_out and len(ref.calibration) == 100
    assert (ref.calibration > ref.threshold).mean() == pytest.approx(0.05, abs=0.011)
    assert np.linalg.norm(ref.features, axis=1) == pytest.approx(np.ones(200), abs=1e-5)
    alone = novelty.calibrate(train, None, k=5, in_rate=0.9)  # no validation split: leave-one-out
    assert not alone.held_out and len(alone.calibration) == 200
    assert "training images" in alone.describe() and "10%" in alone.describe()
    with pytest.raises(ValueError):
        novelty.calibrate(train[:1], None, k=5, in_rate=0.95)


def test_balanced_sample_is_capped_balanced_and_seeded():
    paths = [f"a{i}" for i in range(50)] + [f"b{i}" for i in range(5)] + [f"c{i}" for i in range(50)]
    labels = ["a"] * 50 + ["b"] * 5 + ["c"] * 50
    picked = novelty.balanced_sample(paths, labels, cap=25, seed=0)
    assert len(picked) == 25
    counts = {lab: sum(p.startswith(lab) for p in picked) for lab in "abc"}
    assert counts == {"a": 10, "b": 5, "c": 10}  # the small class gives all it has, the others share the rest
    assert picked == novelty.balanced_sample(list(reversed(paths)), list(reversed(labels)), cap=25, seed=0)
    assert novelty.balanced_sample(paths[:3], labels[:3], cap=10) == ["a0", "a1", "a2"]


def test_reference_cache_round_trip_and_rebuild(tmp_path, colours):
    *_, reference = colours
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"weights")
    path = novelty.cache_path(tmp_path / "novelty", "run1", weights, novelty.NoveltySpec())
    assert path.name.startswith("run1-") and path.suffix == ".npz"
    builds = []

    def build():
        builds.append(1)
        return reference

    first, from_disk = novelty.cached_reference(path, build)
    again, from_disk_again = novelty.cached_reference(path, build)
    assert (from_disk, from_disk_again, len(builds)) == (False, True, 1)
    assert np.array_equal(again.features, reference.features)
    assert again.threshold == pytest.approx(reference.threshold) and again.k == reference.k
    assert again.held_out is True
    path.write_bytes(b"not an npz")  # damaged: rebuilt, never raises
    assert novelty.load_reference(path) is None
    novelty.cached_reference(path, build)
    assert len(builds) == 2
    np.savez(path.with_name("pickled.npz"), features=np.array([{"x": 1}], dtype=object))
    assert novelty.load_reference(path.with_name("pickled.npz")) is None  # object arrays are never unpickled
    weights.write_bytes(b"retrained weights, other size")  # "retrain anyway": same run id, new reference
    assert novelty.cache_path(tmp_path / "novelty", "run1", weights, novelty.NoveltySpec()) != path


def test_build_reference_skips_unreadable_images_and_caps(colours):
    loaded, *_ = colours
    images = {f"r{i}.png": img for i, img in enumerate(reds(0, 6))} | {
        f"b{i}.png": img for i, img in enumerate(blues(1, 6))
    }
    train = [(p, "red" if p.startswith("r") else "blue") for p in images] + [("broken.png", "red")]
    valid = [("r0.png", "red"), ("b0.png", "blue")]
    spec = novelty.NoveltySpec(k=2, max_reference=8, max_calibration=2)
    ref = novelty.build_reference(novelty.body_features(loaded.model), 16, train, valid, spec, lambda p: images.get(p))
    assert ref.n_reference <= 8 and len(ref.calibration) == 2
    with pytest.raises(ValueError, match="no readable training image"):
        novelty.build_reference(novelty.body_features(loaded.model), 16, [("x", "red")], [], spec, lambda p: None)


@pytest.mark.skipif(offline_weights_file() is None, reason="needs the offline mobilenet_v2 weights")
def test_a_fast_runs_reference_reads_its_cached_features(tmp_path, machine_precision):
    """A run trained on cached features: the reference comes from the cache, and those are the page's features."""
    from dataclasses import replace

    from core.data.datasets import DatasetSpec, scan_dataset
    from core.data.images import load_image_file
    from core.data.synthetic import make_pets_like
    from core.store import records
    from core.store.runs import load_run_model
    from core.train import features, training

    root = make_pets_like(tmp_path / "images", n_per_class=8, classes=("Bengal", "pug", "beagle"), size=(48, 40))
    scan = scan_dataset(DatasetSpec(name="tiny", kind="folder", root=str(root)))
    fast = records.StageConfig(epochs=1, lr_max=1e-2, fast=True)
    config = records.RunConfig(dataset=scan.fingerprint, img_size=32, bs=8, seed=0, stages=(fast,))
    run = training.train_run(config, scan, tmp_path / "runs", tmp_path / "features").run
    loaded, record = load_run_model(run.path), records.read_record(run.path)
    spec = novelty.NoveltySpec(k=2, max_reference=9, max_calibration=4)
    reference = novelty.reference_from_run(tmp_path / "features", record, loaded.model, spec)
    found = features.run_features(tmp_path / "features", record.config, loaded.model)
    assert reference is not None and reference.held_out and reference.n_reference == 9  # 3 per class
    rows = {tuple(r) for r in novelty.normalise(found.train_x[0])}
    assert all(tuple(r) in rows for r in reference.features)  # cached rows, not recomputed ones
    # the cached validation features are close to what the Prediction page computes for those images
    # (fastai crops then resizes; the page resizes a box, whose antialiasing also reads the pixels just
    # outside it): far closer than the images are to their nearest training images
    images = [load_image_file(p).image for p in record.valid_paths]
    page = novelty.normalise(novelty.image_features(novelty.body_features(loaded.model), images, record.img_size))
    cached = novelty.normalise(found.valid_x)
    knn = novelty.knn_distance(novelty.normalise(found.train_x[0]), cached, spec.k)
    assert np.linalg.norm(page - cached, axis=1).max() < 0.25 * np.median(knn)
    # not the body's features any more: a stage that trained the body, or other BatchNorm statistics
    unfrozen = replace(config, stages=(fast, records.StageConfig(epochs=1, lr_max=1e-4, unfreeze=True)))
    assert features.run_features(tmp_path / "features", unfrozen, loaded.model) is None
    with torch.no_grad():
        next(m for m in loaded.model[0].modules() if isinstance(m, nn.BatchNorm2d)).running_mean.add_(0.01)
    assert novelty.reference_from_run(tmp_path / "features", record, loaded.model, spec) is None
