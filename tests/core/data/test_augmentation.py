"""fastai's transforms on one image: a flip is a flip, seeds reproduce, the shown code is the code run."""

import random

import numpy as np
import pytest
import torch
from fastai.vision.augment import Flip

from core.data import augmentation as aug
from core.data.synthetic import draw_example


@pytest.fixture(scope="module")
def image():
    return draw_example(2, np.random.default_rng(0), (120, 96))  # 120 wide, 96 high


def as_tensor(img) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255  # (3, H, W)


def test_flip_with_p1_is_the_mirror_image(image):
    out = aug.augment_batch(image, [], [Flip(p=1.0)], n=3, seed=0)  # (3, 3, 96, 120)
    mirror = as_tensor(image).flip(-1)
    assert out.shape == (3, 3, 96, 120)
    for sample in out:
        assert torch.allclose(sample, mirror, atol=1e-4)
    assert not torch.allclose(out[0], as_tensor(image), atol=1e-2)


def test_flip_with_p0_is_the_identity(image):
    out = aug.augment_batch(image, [], [Flip(p=0.0)], n=2, seed=0)
    assert torch.allclose(out[0], as_tensor(image), atol=1e-4)


def test_same_seed_reproduces_and_other_seed_differs(image):
    config = aug.AugConfig(size=64, item_size=128)
    a = aug.augment_batch(image, aug.item_tfms(config), aug.batch_tfms(config), n=4, seed=7)
    b = aug.augment_batch(image, aug.item_tfms(config), aug.batch_tfms(config), n=4, seed=7)
    c = aug.augment_batch(image, aug.item_tfms(config), aug.batch_tfms(config), n=4, seed=8)
    assert a.shape == (4, 3, 64, 64)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # the samples inside one grid differ from each other too
    assert not torch.equal(a[0], a[1])


def test_seeding_leaves_global_generators_alone(image):
    random.seed(123)
    torch.manual_seed(123)
    expected = (random.random(), torch.rand(1).item())
    random.seed(123)
    torch.manual_seed(123)
    aug.augment_grid(image, aug.AugConfig(size=32, item_size=64), n=2, seed=5)
    assert (random.random(), torch.rand(1).item()) == expected


@pytest.mark.parametrize(
    "config",
    [
        aug.AugConfig(size=48, item_size=96),  # presizing
        aug.AugConfig(size=48, presize=False, method="pad", pad_mode="zeros"),
        aug.AugConfig(size=48, presize=False, method="squish"),
        aug.AugConfig(size=48, presize=False, item_tfm="random_resized_crop", min_scale=0.3),
    ],
)
def test_grid_has_requested_size_and_count(image, config):
    grid = aug.augment_grid(image, config, n=9, seed=0)
    assert len(grid) == 9
    assert all(g.size == (48, 48) and g.mode == "RGB" for g in grid)


def test_lighting_off_and_affine_off_gives_resize_only(image):
    config = aug.AugConfig(size=48, presize=False, method="squish", do_flip=False, max_rotate=0, max_zoom=1, max_warp=0)
    config = aug.AugConfig(**{**config.__dict__, "max_lighting": 0.0})
    assert aug.batch_tfms(config) == []
    grid = aug.augment_batch(image, aug.item_tfms(config), [], n=2, seed=0)
    assert torch.equal(grid[0], grid[1])  # squish is deterministic


def test_resize_gallery_pad_modes_differ(image):
    gallery = aug.resize_gallery(image, size=64, seed=0)
    assert len(gallery) == 7
    pads = [np.asarray(v) for k, v in gallery.items() if k.startswith("pad")]
    assert len(pads) == 3
    # a 120x96 image padded to a square: the padding rows differ between reflection, zeros and border
    assert not np.array_equal(pads[0], pads[1]) and not np.array_equal(pads[1], pads[2])
    zeros = pads[1]
    assert zeros[0].max() == 0  # the top padding row is black with zeros


def test_normalise_uses_imagenet_stats():
    x = torch.full((1, 3, 4, 4), 0.5)
    out = aug.normalise(x)
    expected = (0.5 - torch.tensor(aug.imagenet_stats[0])) / torch.tensor(aug.imagenet_stats[1])
    assert torch.allclose(out[0, :, 0, 0], expected, atol=1e-6)


def test_normalised_view_and_histograms(image):
    x = aug.augment_batch(image, [], [], n=1, seed=0)
    norm = aug.normalise(x)
    view = aug.normalised_view(norm[0])
    assert view.size == image.size
    arr = np.asarray(view)
    assert arr.min() == 0 and arr.max() == 255
    fig = aug.channel_histograms(x[0], norm[0], bins=20)
    assert len(fig.data) == 6
    assert sum(fig.data[0].y) == image.size[0] * image.size[1]


def test_histograms_of_a_flat_colour():
    x = torch.full((1, 3, 8, 8), 0.3)
    fig = aug.channel_histograms(x[0], aug.normalise(x)[0], bins=60)
    assert all(sum(trace.y) == 64 for trace in fig.data)
    assert all(max(trace.y) == 64 for trace in fig.data)  # one bin holds every pixel


def test_shown_code_produces_the_grid(image):
    config = aug.AugConfig(size=48, item_size=96, max_rotate=25.0)
    code = aug.fastai_code(config, n=4, seed=3)
    assert "Resize(96)" in code and "max_rotate=25.0" in code and "import *" not in code
    namespace: dict = {}
    exec(compile(code, "<shown code>", "exec"), namespace)
    shown = namespace["preview"](image).as_subclass(torch.Tensor).clamp(0, 1)
    page = aug.augment_batch(image, aug.item_tfms(config), aug.batch_tfms(config), n=4, seed=3)
    assert torch.equal(shown, page)


@pytest.mark.parametrize("shape", [(1, 1), (400, 6), (6, 400)])
def test_extreme_shapes_still_give_square_samples(shape):
    from PIL import Image

    img = Image.new("RGB", shape, (200, 50, 50))
    for config in (
        aug.AugConfig(size=32, item_size=64),
        aug.AugConfig(size=32, presize=False, item_tfm="random_resized_crop"),
        aug.AugConfig(size=32, presize=False, method="pad"),
    ):
        assert [g.size for g in aug.augment_grid(img, config, n=2, seed=0)] == [(32, 32)] * 2
    assert all(v.size == (32, 32) for v in aug.resize_gallery(img, size=32).values())


def test_shown_datablock_labels_a_full_path_by_its_file_name():
    """The DataBlock comment's get_y, applied as fastai applies it (to the full path), gives the breed."""
    import re
    from pathlib import Path

    code = aug.fastai_code(aug.AugConfig())
    get_y = re.search(r"get_y=(.+),  #", code).group(1)
    namespace: dict = {}
    exec(compile(code, "<shown code>", "exec"), namespace)
    labeller = eval(get_y, namespace)
    assert labeller(Path("/home/me/.petlab/datasets/oxford-iiit-pet/images/great_pyrenees_173.jpg")) == (
        "great_pyrenees"
    )
