"""Training: LR finder, frozen and unfrozen fit_one_cycle, the cached-feature path, stopping."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from core.data.datasets import DatasetSpec, scan_dataset
from core.data.synthetic import make_pets_like
from core.nets import inference
from core.store import records, runs, training_lock
from core.store.runs import load_run_model
from core.train import learners, lr_finder, training
from core.train.features import head_probs

CLASSES = ("Bengal", "Persian", "beagle", "pug")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """4 classes × 10 generated images, and folders for runs and features shared by this module."""
    base = tmp_path_factory.mktemp("training")
    root = make_pets_like(base / "images", n_per_class=10, classes=CLASSES, size=(48, 40), seed=1)
    scan = scan_dataset(DatasetSpec(name="tiny", kind="folder", root=str(root)))
    return scan, base / "runs", base / "features"


def config(scan, *stages, **kw) -> records.RunConfig:
    return records.RunConfig(dataset=scan.fingerprint, img_size=48, bs=8, seed=0, stages=stages, **kw)


FAST = records.StageConfig(epochs=4, lr_max=1e-2, fast=True, views=2)
SLOW = records.StageConfig(epochs=3, lr_max=1e-2)
UNFROZEN = records.StageConfig(epochs=3, lr_max=1e-3, lr_min=1e-5, unfreeze=True)


def test_lr_finder_returns_curve_and_suggestions(tiny):
    scan, runs_dir, features_dir = tiny
    for stage in (SLOW, FAST):
        result = lr_finder.find_lr(config(scan, stage), scan, runs_dir, features_dir, num_it=20)
        assert len(result.lrs) == len(result.losses) >= 15
        assert result.lrs == sorted(result.lrs) and result.lrs[0] < 1e-5  # exponential sweep upwards
        assert {"valley", "minimum", "steep"} <= set(result.suggestions) <= set(lr_finder.SUGGESTIONS)
        assert all(result.lrs[0] / 10 <= lr <= result.lrs[-1] for lr in result.suggestions.values())
        assert result.fast == stage.fast
    assert not any(p.name.startswith(".lrfind") for p in runs_dir.iterdir())  # temp checkpoints removed


def test_the_lr_finder_works_under_the_training_lock(tiny, tmp_path):
    """Its `.lrfind-*` folder is made and removed under the lock, so no repair of runs/ can pull it away."""
    scan, _, features_dir = tiny
    runs_dir = tmp_path / "runs"
    with training_lock.training_lock(runs_dir):  # a training (or a repair) holds the data folder
        with pytest.raises(training_lock.TrainingBusy):
            lr_finder.find_lr(config(scan, FAST), scan, runs_dir, features_dir, num_it=5)
        assert not any(p.name.startswith(".lrfind") for p in runs_dir.iterdir())
    seen = []
    orig = learners.make_learner

    def spy(dls, model, cfg, path):
        seen.append((path.name, training_lock.training_running(runs_dir)))
        return orig(dls, model, cfg, path)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(learners, "make_learner", spy)
        lr_finder.find_lr(config(scan, FAST), scan, runs_dir, features_dir, num_it=5)
    assert seen and seen[0][0].startswith(".lrfind-") and seen[0][1]  # its folder, used while the lock is held
    assert not any(p.name.startswith(".lrfind") for p in runs_dir.iterdir())


def test_frozen_then_unfrozen_lower_the_loss(tiny, tmp_path, machine_precision):
    scan, _, features_dir = tiny
    runs_dir = tmp_path / "runs"  # a run's id does not name its precision: each precision trains its own
    frozen = training.train_run(config(scan, SLOW), scan, runs_dir, features_dir)
    epochs = frozen.run.record.epochs
    assert [e.epoch for e in epochs] == [0, 1, 2]
    assert epochs[-1].train_loss < epochs[0].train_loss
    assert epochs[-1].error_rate < 1 - 1 / len(CLASSES)  # better than chance

    both = training.train_run(config(scan, SLOW, UNFROZEN), scan, runs_dir, features_dir)
    assert both.run.record.trained_stages == (1,)  # stage 1 came from the stored frozen run
    stage1 = [e for e in both.run.record.epochs if e.stage == 1]
    assert len(stage1) == 3 and stage1[-1].train_loss < stage1[0].train_loss

    again = training.train_run(config(scan, SLOW), scan, runs_dir, features_dir)
    assert again.reused and again.run.run_id == frozen.run.run_id


def test_cached_head_loads_into_full_model_with_same_predictions(tiny, tmp_path, machine_precision):
    """The head trained on cached features gives the full model's predictions, whatever precision training uses."""
    scan, _, _ = tiny
    runs_dir, features_dir = tmp_path / "runs", tmp_path / "features"
    cfg = config(scan, FAST)
    result = training.train_run(cfg, scan, runs_dir, features_dir)
    record = result.run.record
    assert record.epochs[-1].train_loss < record.epochs[0].train_loss
    assert "BatchNorm" in record.notes
    loaded = load_run_model(result.run.path)  # the ordinary run format: Sequential(body, head)
    assert loaded.classes == list(CLASSES) and loaded.img_size == 48

    # Full network on the valid images (fastai's valid pipeline) vs the head on cached valid features.
    dls = learners.make_dls(scan.items, cfg, torch.device("cpu"))
    with torch.no_grad():
        full = torch.cat([torch.softmax(loaded.model(xb.cpu()), 1) for xb, _ in dls.valid]).numpy()
    preds = runs.load_preds(result.run.path)
    # cached features come through the fast path (BatchNorm folded, channels_last): equal to float rounding,
    # which the head can amplify to ~1e-5 in a probability (the fast path's own test allows 1e-4)
    np.testing.assert_allclose(full, preds.probs, atol=1e-4)
    from core.train.features import read_features

    (cache,) = [p for p in features_dir.iterdir() if not p.name.startswith(".")]
    features = read_features(cache)
    assert features.train_x.shape[0] == FAST.views
    np.testing.assert_allclose(head_probs(loaded.model, features.valid_x, torch.device("cpu")), full, atol=1e-4)


def test_stop_button_leaves_no_run(tiny):
    scan, runs_dir, features_dir = tiny
    cfg = config(scan, records.StageConfig(epochs=2, lr_max=1e-3))
    before = sorted(p.name for p in runs_dir.iterdir())

    seen = []

    def press_stop(event):
        if event.kind in (records.EventKind.BATCH, records.EventKind.EPOCH):
            seen.append(training_lock.read_progress(runs_dir))  # what another tab reads meanwhile
            training_lock.request_stop(runs_dir)

    with pytest.raises(training_lock.TrainingStopped):
        training.train_run(cfg, scan, runs_dir, features_dir, on_event=press_stop)
    after = sorted(p.name for p in runs_dir.iterdir())
    assert [n for n in after if not n.startswith(".train.lock")] == [n for n in before if n != ".train.lock"]
    assert runs.find_run(runs_dir, cfg) is None and not training_lock.training_running(runs_dir)
    assert training_lock.read_progress(runs_dir) is None and not training_lock.stop_requested(runs_dir)
    progress = seen[0]
    assert progress.config == cfg and progress.run_id == cfg.run_id and progress.shown_title() == cfg.title()
    assert progress.status == training_lock.ProgressStatus.TRAINING and progress.last.kind in (
        records.EventKind.BATCH,
        records.EventKind.EPOCH,
    )


def test_wrong_dataset_and_bad_config_are_clear_errors(tiny):
    scan, runs_dir, features_dir = tiny
    with pytest.raises(records.ConfigError, match="fingerprint"):
        training.train_run(records.RunConfig(dataset="other", stages=(SLOW,)), scan, runs_dir, features_dir)
    with pytest.raises(records.ConfigError, match="first, frozen"):
        records.validate(config(scan, SLOW, records.StageConfig(epochs=1, lr_max=1e-3, fast=True)))
    with pytest.raises(records.ConfigError, match="earlier stage"):
        no_parent = config(scan, SLOW, UNFROZEN, pretrained=False)  # its frozen stage was never trained
        lr_finder.find_lr(no_parent, scan, Path(runs_dir), features_dir, num_it=10)


def test_training_refuses_one_class(tmp_path):
    root = make_pets_like(tmp_path / "one", n_per_class=8, classes=("fashion",), size=(40, 40))
    scan = scan_dataset(DatasetSpec(name="one", kind="folder", root=str(root)))
    with pytest.raises(records.ConfigError, match="at least two classes; this dataset has one class"):
        training.train_run(config(scan, SLOW), scan, tmp_path / "runs", tmp_path / "features")
    with pytest.raises(records.ConfigError, match="at least two classes"):
        lr_finder.find_lr(config(scan, FAST), scan, tmp_path / "runs", tmp_path / "features", num_it=5)
    assert runs.list_runs(tmp_path / "runs")[0] == []


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """160 real Fashion-MNIST images (16 per class) as `Ankle_boot_3.png` files, from Debian's package."""
    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed (make system-deps installs it)")
    from bench.train_speed import write_fashion

    base = tmp_path_factory.mktemp("fashion")
    root = write_fashion(base / "images", per_class=16)
    scan = scan_dataset(DatasetSpec(name="fashion", kind="folder", root=str(root), pattern=r"^(.+)_\d+\.png$"))
    return scan, base / "runs", base / "features"


def test_stage2_after_the_fast_stage1_continues_from_it(fashion, tmp_path, machine_precision):
    """The head trained on cached features must see the same features when stage 2 trains the body.

    Before BatchNorm adaptation the cached features came from ImageNet's running statistics while
    stage 2 normalises with batch statistics: stage 2's first batch loss was ~5x stage 1's valid
    loss and the lesson's slice(1e-6, 1e-4) made the error far worse (25 % -> 67 % at 64 px).
    """
    scan, _, features_dir = fashion
    runs_dir = tmp_path / "runs"
    fast = records.StageConfig(epochs=3, lr_max=3e-3, fast=True)
    lesson = records.StageConfig(epochs=1, lr_max=1e-4, lr_min=1e-6, unfreeze=True)
    cfg = records.RunConfig(dataset=scan.fingerprint, img_size=32, bs=16, seed=0, stages=(fast, lesson))
    stage1 = training.train_run(cfg.parent(), scan, runs_dir, features_dir).run.record.epochs[-1]
    events = []
    both = training.train_run(cfg, scan, runs_dir, features_dir, on_event=events.append).run.record
    first = next(e.loss for e in events if e.kind == records.EventKind.BATCH and e.stage == 1)
    assert first < 1.5 * stage1.valid_loss + 0.2, (first, stage1)
    assert both.error_rate <= stage1.error_rate + 0.07  # 2 of 32 valid images


def test_lr_finder_is_cheap_only_on_cached_features(tmp_path, machine_precision):
    import numpy as np

    from core.store.records import RunConfig, StageConfig
    from core.train.features import FeatureSet, FeatureSpec, write_features

    fast = RunConfig(dataset="fp", img_size=32, stages=(StageConfig(epochs=1, lr_max=1e-3, fast=True),))
    slow = RunConfig(dataset="fp", img_size=32, stages=(StageConfig(epochs=1, lr_max=1e-3),))
    assert not lr_finder.cheap(fast, tmp_path)  # nothing cached yet
    spec = FeatureSpec(dataset="fp", arch=fast.arch, pretrained=True, img_size=32, augment=False, views=1,
                       seed=fast.seed, bs=fast.bs)  # fmt: skip
    x = np.zeros((1, 4, 8), np.float32)
    bn = {"0.0.0.1.running_mean": np.zeros(32, np.float32)}
    write_features(
        tmp_path / spec.key, FeatureSet(x, np.zeros(4, np.int64), x[0], np.zeros(4, np.int64), 0.0, False, bn), spec
    )
    assert lr_finder.cheap(fast, tmp_path)
    (tmp_path / spec.key / "batchnorm.npz").unlink()  # an old cache without BatchNorm statistics: extracted again
    assert not lr_finder.cheap(fast, tmp_path)
    assert not lr_finder.cheap(slow, tmp_path)  # images through the whole network: not cheap
    two_stages = RunConfig(dataset="fp", img_size=32, stages=(fast.stages[0], StageConfig(1, 1e-4, unfreeze=True)))
    assert not lr_finder.cheap(two_stages, tmp_path)  # stage 2's finder runs the whole network


@pytest.mark.parametrize("precision", inference.PRECISIONS)
def test_the_training_page_and_interpretation_show_one_error_rate(tiny, tmp_path, monkeypatch, precision):
    """One model, one error rate: the last epoch's (Training page) is the stored predictions' (Interpretation).

    Two-stage runs (stage 1 fast and fastai's frozen fit, then unfrozen), under every precision the app
    can choose (fp32 on CPUs; bf16 or fp16 training steps on CUDA, forced here on the CPU).
    """
    from core.train import interpretation

    scan, _, features_dir = tiny
    monkeypatch.setenv(inference.PRECISION_ENV, precision)
    one = records.StageConfig(epochs=1, lr_max=1e-2, fast=True)
    two = records.StageConfig(epochs=1, lr_max=1e-3, lr_min=1e-5, unfreeze=True)
    for first in (one, replace(one, fast=False)):
        parent = training.train_run(config(scan, first), scan, tmp_path / "runs", features_dir).run
        run = training.train_run(config(scan, first, two), scan, tmp_path / "runs", features_dir).run
        assert run.record.trained_stages == (1,)  # stage 2 continued from the stored stage 1, as the page does
        assert parent.record.precision == ("fp32" if first.fast else precision)  # a head always trains in fp32
        assert run.record.precision == precision
        for stored in (parent, run):
            preds = runs.load_preds(stored.path)
            shown = stored.record.epochs[-1].error_rate
            assert interpretation.error_rate(preds.probs, preds.targets) == pytest.approx(shown, abs=1e-6)
            assert preds.error_rate == pytest.approx(shown, abs=1e-6)
    # and the stored predictions are the model's own, computed in fp32 (what Prediction computes on any machine)
    loaded = load_run_model(run.path)
    dls = learners.make_dls(scan.items, config(scan, first, two), torch.device("cpu"))
    with torch.no_grad():
        full = torch.cat([torch.softmax(loaded.model(xb.cpu()), 1) for xb, _ in dls.valid]).numpy()
    np.testing.assert_allclose(runs.load_preds(run.path).probs, full, atol=1e-4)
