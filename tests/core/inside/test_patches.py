"""Top-patch index: a hand-set conv whose best image and position are known."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from core.inside import patches
from core.inside.receptive_field import ReceptiveField
from core.nets.models import IMAGENET_MEAN, IMAGENET_STD


def colour_net() -> nn.Sequential:
    """Stage '0.0': channel 0 = red (un-normalised), channel 1 = green; 1x1 conv so rf is one pixel."""
    conv = nn.Conv2d(3, 2, 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        for ch in (0, 1):  # undo the normalisation so the unit reads the raw [0, 1] value
            conv.weight[ch, ch] = IMAGENET_STD[ch]
            conv.bias[ch] = IMAGENET_MEAN[ch]
    return nn.Sequential(nn.Sequential(conv), nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))


def make_images(folder: Path) -> list[str]:
    """Ten grey 16x16 images; image 3 has a bright red dot at (5, 9), image 7 a dimmer one at (12, 2)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(10):
        arr = np.full((16, 16, 3), 100, dtype=np.uint8)
        if i == 3:
            arr[5, 9] = (255, 0, 0)
        if i == 7:
            arr[12, 2] = (200, 0, 0)
        if i == 5:
            arr[:, :, 1] = 250  # the greenest image
        path = folder / f"img_{i}.png"
        Image.fromarray(arr).save(path)
        paths.append(str(path))
    return paths


def test_hand_set_conv_top_patch(tmp_path):
    paths = make_images(tmp_path / "imgs")
    (tmp_path / "imgs" / "broken.png").write_bytes(b"not an image")
    paths.append(str(tmp_path / "imgs" / "broken.png"))
    seen = []
    index = patches.build_patch_index(
        colour_net(), "0.0", paths, size=16, k=3, batch_size=4, progress=lambda d, t: seen.append((d, t))
    )
    assert index.grid == (16, 16) and index.n_channels == 2
    best = index.top(0)
    assert best[0][:3] == (paths[3], 5, 9)
    assert best[0][3] == pytest.approx(1.0, abs=1e-5)
    assert best[1][:3] == (paths[7], 12, 2)
    assert best[1][3] == pytest.approx(200 / 255, abs=1e-5)
    assert index.top(1)[0][0] == paths[5]
    assert index.skipped == [paths[-1]]
    assert seen[-1] == (11, 11) and len(seen) == 3


def test_fewer_images_than_k(tmp_path):
    paths = make_images(tmp_path / "imgs")[:2]
    index = patches.build_patch_index(colour_net(), "0.0", paths, size=16, k=5)
    assert index.values.shape == (2, 5)
    assert len(index.top(0)) == 2
    assert (index.image_ids[:, 2:] == -1).all()


def test_save_load_roundtrip_without_pickle(tmp_path):
    paths = make_images(tmp_path / "imgs")
    index = patches.build_patch_index(colour_net(), "0.0", paths, size=16, k=3)
    path = tmp_path / "idx.npz"
    patches.save_index(index, path)
    with np.load(path, allow_pickle=False) as data:
        assert all(data[name].dtype != object for name in data.files)
    back = patches.load_index(path)
    assert back.top(0) == index.top(0) and back.grid == index.grid and back.stage == "0.0"


def test_load_or_build_caches_and_rebuilds_broken(tmp_path, monkeypatch):
    paths = make_images(tmp_path / "imgs")
    calls = []
    real = patches.build_patch_index

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(patches, "build_patch_index", counting)
    first = patches.load_or_build_index(colour_net(), "m1", "fp", "0.0", paths, size=16, k=3)
    again = patches.load_or_build_index(colour_net(), "m1", "fp", "0.0", paths, size=16, k=3)
    assert len(calls) == 1 and again.top(0) == first.top(0)
    key = patches.index_key("m1", "fp", "0.0", 16, 3)
    assert key != patches.index_key("m2", "fp", "0.0", 16, 3)
    patches.index_path(key).write_bytes(b"garbage")
    patches.load_or_build_index(colour_net(), "m1", "fp", "0.0", paths, size=16, k=3)
    assert len(calls) == 2


def test_top_patches_cropped_to_receptive_field(tmp_path):
    paths = make_images(tmp_path / "imgs")
    index = patches.build_patch_index(colour_net(), "0.0", paths, size=16, k=2)
    crops = patches.top_patches(index, 0, ReceptiveField(size=3, jump=1.0, offset=0.0))
    crop, path, value = crops[0]
    assert path == paths[3] and crop.size == (3, 3)
    arr = np.asarray(crop)
    assert tuple(arr[1, 1]) == (255, 0, 0)  # the red dot sits in the centre of its field
    assert tuple(arr[0, 0]) == (100, 100, 100)


def test_a_requested_index_loads_the_run_it_names_and_refuses_other_weights(tmp_path):
    """The worker rebuilds the page's model from the request: a run by id, checked against the page's weights name."""
    import dataclasses
    import json
    from dataclasses import asdict

    from core.data.synthetic import make_pets_like
    from core.store.runs import load_run_model
    from tests.factories import run_record, store_run

    images = make_pets_like(tmp_path / "images", n_per_class=3, classes=("Bengal", "pug"), size=(40, 40))
    store_run(tmp_path / "runs", run_record(classes=("Bengal", "pug"), title="t"), "r1", weights=None)
    loaded = load_run_model(tmp_path / "runs" / "r1")  # as the page loads it
    mid = patches.model_key(loaded.model, "run", "mobilenet_v2", "r1")
    paths = tuple(sorted(str(p) for p in images.iterdir()))
    request = patches.PatchIndexRequest("run", "mobilenet_v2", mid, "fp-n6", "0.0.3", 32, paths, run_id="r1")
    assert patches.PatchIndexRequest.from_json(json.loads(json.dumps(asdict(request)))) == request
    index = patches.build_requested_index(request, tmp_path, tmp_path / "runs")
    assert request.path(tmp_path).is_file() and patches.load_index(request.path(tmp_path)).paths == list(paths)
    assert index.n_channels == 24  # mobilenet_v2 features.3
    stale = dataclasses.replace(request, model_id=f"{mid}x", fingerprint="other")  # the run was retrained since
    with pytest.raises(ValueError, match="model changed"):
        patches.build_requested_index(stale, tmp_path, tmp_path / "runs")
    assert not stale.path(tmp_path).exists()
