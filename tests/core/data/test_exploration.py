"""Data page figures and tables, computed without Streamlit."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.data import exploration
from core.data.datasets import scan_dataset
from core.data.labels import label_files
from core.data.pets import pets_spec


def test_class_balance_colours_cats_and_dogs(pets_like):
    items = scan_dataset(pets_spec(pets_like)).items
    fig = exploration.class_balance_figure(items)
    names = [trace.name for trace in fig.data]
    assert names == ["cat breeds (3)", "dog breeds (3)"]
    assert list(fig.data[0].x) == ["Bengal", "Persian", "Siamese"] and list(fig.data[0].y) == [10, 10, 10]


def test_class_balance_plain_names():
    items = pd.DataFrame({"label": ["cat", "cat", "dog"]})
    fig = exploration.class_balance_figure(items)
    assert len(fig.data) == 1 and list(fig.data[0].y) == [2, 1]


def test_size_figure_and_summary(pets_like):
    items = scan_dataset(pets_spec(pets_like)).items
    fig = exploration.size_figure(items)
    assert len(fig.data[0].x) == 60
    summary = exploration.size_summary(items)
    assert summary["largest side"] >= summary["median width"]


def test_sample_rows_filter_and_seed(pets_like):
    items = scan_dataset(pets_spec(pets_like)).items
    rows = exploration.sample_rows(items, ["pug"], 5, seed=1)
    assert len(rows) == 5 and set(rows["label"]) == {"pug"}
    assert rows.equals(exploration.sample_rows(items, ["pug"], 5, seed=1))
    assert len(exploration.sample_rows(items, ["nope"], 5, seed=1)) == 0


def test_thumbnail_is_square(pets_like, tmp_path):
    """One thumbnail for every grid (issue 19 item 10: top losses came in different sizes): any shape, one size."""
    from PIL import Image

    from core.data.images import ImageError, square_thumbnail

    thumb = square_thumbnail(next(pets_like.glob("*.jpg")), 50)
    assert thumb.size == (50, 50) and thumb.mode == "RGB"
    for size, mode in (((400, 90), "RGB"), ((90, 400), "L"), ((33, 17), "RGBA")):
        Image.new(mode, size).save(tmp_path / "odd.png")
        assert square_thumbnail(tmp_path / "odd.png", 160).size == (160, 160)
    (tmp_path / "broken.jpg").write_bytes(b"no")
    with pytest.raises(ImageError):
        square_thumbnail(tmp_path / "broken.jpg")


def test_label_examples_per_class():
    result = label_files(["a_1.jpg", "a_2.jpg", "a_3.jpg", "b_1.jpg"], r"^(.+)_\d+\.jpg$")
    table = exploration.label_examples(result, per_class=2)
    assert table["label"].tolist() == ["a", "a", "b"]


def test_normalisation_is_exact_for_a_flat_image():
    # a flat image equal to the ImageNet mean normalises to exactly 0 with std 0
    mean_rgb = tuple(int(round(m * 255)) for m in exploration.IMAGENET_MEAN)
    table = exploration.normalisation_table(Image.new("RGB", (16, 16), mean_rgb))
    rows = table.set_index("statistic")[["R", "G", "B"]].astype(float)  # a row per statistic, a column per channel
    np.testing.assert_allclose(rows.loc["mean after"], 0, atol=0.01)
    np.testing.assert_allclose(rows.loc["std after"], 0, atol=1e-9)
    np.testing.assert_allclose(rows.loc["ImageNet std"], exploration.IMAGENET_STD, atol=1e-3)
    _, normed = exploration.normalise(Image.new("RGB", (2, 2), (255, 255, 255)))
    np.testing.assert_allclose(normed[0, 0], (1 - exploration.IMAGENET_MEAN) / exploration.IMAGENET_STD)
    assert len(exploration.channel_histogram_figure(Image.new("RGB", (8, 8))).data) == 6
