"""Interpretation from cached predictions: exact counts on hand-made probabilities."""

import numpy as np
import pytest

from core import interpretation as interp

CLASSES = ["cat", "dog", "pug"]
# 6 images: targets and hand-set probabilities (rows sum to 1)
TARGETS = np.array([0, 0, 1, 1, 2, 2])
PROBS = np.array(
    [
        [0.8, 0.1, 0.1],  # cat -> cat
        [0.2, 0.7, 0.1],  # cat -> dog
        [0.1, 0.8, 0.1],  # dog -> dog
        [0.1, 0.3, 0.6],  # dog -> pug
        [0.05, 0.05, 0.9],  # pug -> pug
        [0.1, 0.6, 0.3],  # pug -> dog
    ]
)
PATHS = [f"img{i}.jpg" for i in range(6)]


def test_confusion_matrix_and_tables():
    cm = interp.confusion_matrix(TARGETS, PROBS.argmax(1), 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 1], [0, 1, 1]])
    assert interp.error_rate(PROBS, TARGETS) == pytest.approx(0.5)
    confused = interp.most_confused(cm, CLASSES, min_val=1)
    assert confused.values.tolist() == [["cat", "dog", 1], ["dog", "pug", 1], ["pug", "dog", 1]]
    assert interp.most_confused(cm, CLASSES, min_val=2).empty
    per_class = interp.per_class_error(cm, CLASSES)
    assert per_class["error_rate"].tolist() == [0.5, 0.5, 0.5]
    assert per_class.set_index("class").loc["cat", "most often called"] == "dog"
    np.testing.assert_array_equal(interp.cell_items(PROBS, TARGETS, actual=2, predicted=1), [5])


def test_top_losses_order_and_values():
    top = interp.top_losses(PROBS, TARGETS, CLASSES, PATHS, k=2)
    # p(actual): img1 0.2, then img3 and img5 tie at 0.3 (stable order keeps img3 first)
    assert top["path"].tolist() == ["img1.jpg", "img3.jpg"]
    assert top["loss"].tolist() == pytest.approx([-np.log(0.2), -np.log(0.3)])
    assert top["predicted"].tolist() == ["dog", "pug"] and top["actual"].tolist() == ["cat", "dog"]


def test_figure_is_readable_at_37_classes():
    classes = [f"breed_{i}" for i in range(37)]
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 37, 500)
    preds = np.where(rng.random(500) < 0.9, targets, rng.integers(0, 37, 500))
    fig = interp.confusion_figure(interp.confusion_matrix(targets, preds, 37), classes)
    assert fig.layout.height >= 37 * 20 and len(fig.data) == 2
    assert len(fig.data[1].x) == 37 * 37  # one selectable point per cell


def test_scoreboard_lists_published_numbers():
    board = interp.scoreboard(0.05, "mobilenet_v2", 6)
    assert len(board) == 5
    assert board["error_rate"].is_monotonic_decreasing
    assert board["accuracy"].iloc[0] == pytest.approx(0.5921)
    assert board["model"].str.contains("this run: mobilenet_v2 (6 classes: not comparable", regex=False).sum() == 1
