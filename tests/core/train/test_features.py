"""Feature cache: keyed by everything that changes it, written atomically, rebuilt when broken."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from core.train import features as feats


def spec(**kw) -> feats.FeatureSpec:
    base = feats.FeatureSpec(
        dataset="fp", arch="mobilenet_v2", pretrained=True, img_size=64, augment=False, views=2, seed=0, bs=8
    )
    return replace(base, **kw)


def sample() -> feats.FeatureSet:
    rng = np.random.default_rng(0)
    return feats.FeatureSet(
        train_x=rng.normal(size=(2, 5, 6)).astype(np.float32),
        train_y=np.arange(5) % 2,
        valid_x=rng.normal(size=(3, 6)).astype(np.float32),
        valid_y=np.array([0, 1, 1]),
        seconds=1.5,
        from_cache=False,
        bn_stats={"0.1.running_mean": np.zeros(4, np.float32), "0.1.running_var": np.ones(4, np.float32)},
    )


def test_key_changes_with_every_field():
    keys = {spec().key}
    for name, value in [("dataset", "x"), ("arch", "resnet18"), ("pretrained", False), ("img_size", 96),
                        ("augment", True), ("views", 3), ("seed", 1), ("bs", 16)]:  # fmt: skip
        keys.add(spec(**{name: value}).key)
    assert len(keys) == 9


def test_round_trip_and_broken_cache(tmp_path):
    folder = tmp_path / spec().key
    feats.write_features(folder, sample(), spec())
    back = feats.read_features(folder)
    assert back.from_cache and back.seconds == 1.5 and back.n_features == 6
    np.testing.assert_array_equal(back.train_x, sample().train_x)
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no temp folder left
    (folder / "valid_x.npy").write_bytes(b"broken")
    assert feats.read_features(folder) is None  # rebuilt by cached_features, never a crash


def test_views_switch_per_epoch():
    data = sample()
    ds = feats.FeatureViews(data.train_x, data.train_y)
    assert len(ds) == 5
    x0, y0 = ds[1]
    ds.view = 1
    x1, y1 = ds[1]
    assert y0 == y1 and torch.equal(x1, torch.from_numpy(data.train_x[1, 1]))
    assert not torch.equal(x0, x1)


def test_head_is_shared_with_the_model():
    body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    from fastai.layers import AdaptiveConcatPool2d, Flatten

    head = nn.Sequential(AdaptiveConcatPool2d(), Flatten(), nn.BatchNorm1d(8), nn.Linear(8, 2))
    model = nn.Sequential(body, head)
    with torch.no_grad():
        feats.trainable_head(model)[1].weight.fill_(0.5)
    assert torch.all(model[1][3].weight == 0.5)  # same module objects, trained in place
    x = torch.randn(2, 3, 8, 8)
    model.eval()
    pooled = feats.pooled_body(model)(x)  # (2, 8): avg and max pool of 4 channels
    assert pooled.shape == (2, 8)
    probs = feats.head_probs(model, pooled.detach().numpy(), torch.device("cpu"))
    np.testing.assert_allclose(probs, torch.softmax(model(x), 1).detach().numpy(), atol=1e-6)


def test_adapt_batchnorm_sets_the_datasets_statistics_and_changes_no_weight():
    torch.manual_seed(0)
    body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1), nn.BatchNorm2d(2))
    weights = {k: v.clone() for k, v in body.state_dict().items() if "running" not in k and "num_batches" not in k}
    x = torch.randn(32, 3, 8, 8) * 3 + 5  # far from the running stats' init (mean 0, var 1)
    feats.adapt_batchnorm(body, [(x[:16], None), (x[16:], None)], torch.device("cpu"))
    assert not body.training and body[1].momentum == 0.1  # back in eval mode, momentum restored
    conv = body[0](x)  # (32, 4, 6, 6): what the first BatchNorm normalises
    torch.testing.assert_close(body[1].running_mean, conv.mean((0, 2, 3)), atol=1e-4, rtol=1e-4)
    var_per_batch = torch.stack([c.var((0, 2, 3)) for c in conv.split(16)])  # unbiased, as BatchNorm keeps it
    torch.testing.assert_close(body[1].running_var, var_per_batch.mean(0), atol=1e-3, rtol=1e-3)
    for k, v in weights.items():
        assert torch.equal(body.state_dict()[k], v)
    with torch.no_grad():  # eval mode now normalises like train mode on a whole batch
        out_eval = body(x)
        body.train()
        out_train = body(x)
    assert (out_eval - out_train).abs().mean() < 0.05


def test_batchnorm_statistics_are_cached_with_the_features(tmp_path):
    body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    body[1].running_mean.fill_(2.0)
    stats = feats.batchnorm_stats(body)
    assert set(stats) == {"1.running_mean", "1.running_var", "1.num_batches_tracked"}
    folder = tmp_path / spec().key
    feats.write_features(folder, replace(sample(), bn_stats=stats), spec())
    back = feats.read_features(folder)
    fresh = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    feats.load_batchnorm_stats(fresh, back.bn_stats)
    assert torch.equal(fresh[1].running_mean, torch.full((4,), 2.0))
    assert spec().batchnorm == "adapted"  # in the key: caches made with ImageNet's statistics are not reused


def _recording(dl) -> list[int]:
    """Record the shuffled order a fastai DataLoader hands out (to put features back in dataset order)."""
    order: list[int] = []
    get_idxs = dl.get_idxs
    dl.get_idxs = lambda: order.extend(idxs := list(get_idxs())) or idxs
    return order


@pytest.fixture(scope="module")
def tiny_dls(tmp_path_factory):
    """fastai DataLoaders over 3 classes × 7 generated images (train 16 + 1 ragged at bs 4), 32 px."""
    from core.data.datasets import DatasetSpec, scan_dataset
    from core.data.synthetic import make_pets_like
    from core.store.records import RunConfig
    from core.train.learners import make_dls

    root = make_pets_like(tmp_path_factory.mktemp("adabn"), n_per_class=7, classes=("Bengal", "pug", "beagle"),
                          size=(40, 36), seed=3)  # fmt: skip
    scan = scan_dataset(DatasetSpec(name="adabn", kind="folder", root=str(root)))
    config = RunConfig(dataset=scan.fingerprint, img_size=32, bs=4, seed=0, stages=(), augment=True)
    return make_dls(scan.items, config, torch.device("cpu"))


@pytest.mark.parametrize("budget", [feats.STASH_BYTES, 0])  # batches kept in memory, or all spilled to disk
def test_one_pass_statistics_and_features_equal_the_two_pass_order(tiny_dls, tmp_path, budget):
    """adapted_features (images loaded once) = adapt_batchnorm, then extract on the loader re-made with the seed."""
    import copy
    import os

    from fastai.torch_core import set_seed

    from core.nets.models import create_model

    litter = tmp_path / ".stash-killed"  # what a killed extraction leaves: removed when a new stash spills
    litter.mkdir()
    os.utime(litter, (0, 0))

    torch.manual_seed(0)
    one = create_model("mobilenet_v2", 3, pretrained=False)
    two = copy.deepcopy(one)
    device = torch.device("cpu")
    set_seed(0)
    x1, y1 = feats.adapted_features(one, tiny_dls.train.new(shuffle=True, drop_last=False), device, tmp_path,
                                    budget=budget)  # fmt: skip
    set_seed(0)
    feats.adapt_batchnorm(two[0], tiny_dls.train.new(shuffle=True, drop_last=False), device)
    set_seed(0)
    dl = tiny_dls.train.new(shuffle=True, drop_last=False)  # the very same batches again (same seed)
    order = _recording(dl)
    x2, y2 = feats.extract(two, dl, device)
    stats1, stats2 = feats.batchnorm_stats(one[0]), feats.batchnorm_stats(two[0])
    assert stats1.keys() == stats2.keys()
    for name in stats1:
        np.testing.assert_array_equal(stats1[name], stats2[name])
    tracked = {int(v) for k, v in stats1.items() if k.endswith("num_batches_tracked")}
    assert len(tiny_dls.train_ds) % 4 and tracked == {len(dl) - 1}  # the ragged last batch is left out
    np.testing.assert_array_equal(x1[order], x2)  # the same numbers, x1 back in dataset order
    np.testing.assert_array_equal(y1[order], y2)
    np.testing.assert_array_equal(y1, [int(y) for _, y in tiny_dls.train_ds])  # dataset order
    assert not one[0].training  # eval mode again
    assert list(tmp_path.iterdir()) == ([] if budget == 0 else [litter])  # no stash left on disk, old litter gone
    assert all(p.is_contiguous() for p in one.parameters())  # back in NCHW after the channels_last pass
