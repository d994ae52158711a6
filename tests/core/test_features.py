"""Feature cache: keyed by everything that changes it, written atomically, rebuilt when broken."""

from dataclasses import replace

import numpy as np
import torch
from torch import nn

from core import features as feats


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
