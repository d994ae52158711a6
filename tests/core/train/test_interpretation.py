"""Interpretation from cached predictions: exact counts on hand-made probabilities."""

import numpy as np
import pytest

from core.train import interpretation as interp

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


# ---- reading the chart's selection (points arrive as dicts) -------------------------------------

CLASSES3 = ["Bengal", "Persian", "pug"]


def test_selected_cells_from_a_click_reads_the_axis_names():
    event = {"selection": {"points": [{"curve_number": 1, "point_index": 5, "x": "pug", "y": "Persian"}]}}
    assert interp.selected_cells(event, CLASSES3) == [(1, 2)]
    assert interp.selected_cells(event["selection"], CLASSES3) == [(1, 2)]  # the selection part alone


def test_selected_cells_customdata_as_list_or_typed_array_dict():
    listed = {"points": [{"customdata": [2, 0, 7]}]}
    as_dict = {"points": [{"customdata": {"0": 2, "1": 0, "2": 7}}]}  # a JSON'd typed array: no key 0
    assert interp.selected_cells(listed, CLASSES3) == [(2, 0)]
    assert interp.selected_cells(as_dict, CLASSES3) == [(2, 0)]


def test_selected_cells_from_point_index():
    markers = {"points": [{"curve_number": 1, "point_index": 7}]}  # row-major over the 3×3 markers
    heatmap = {"points": [{"curve_number": 0, "point_index": [2, 1]}]}
    assert interp.selected_cells(markers, CLASSES3) == [(2, 1)]
    assert interp.selected_cells(heatmap, CLASSES3) == [(2, 1)]
    assert interp.selected_cells({"points": [{"curve_number": 0, "point_index": 7}]}, CLASSES3) == []


def test_selected_cells_box_gives_every_cell_once_in_order():
    box = {
        "selection": {
            "points": [
                {"curve_number": 0, "point_index": [0, 1], "x": "Persian", "y": "Bengal"},
                {"curve_number": 1, "point_index": 1, "x": "Persian", "y": "Bengal"},  # the same cell's marker
                {"curve_number": 1, "point_index": 4, "x": "Persian", "y": "Persian"},
            ],
            "point_indices": [1, 1, 4],
            "box": [{"x": [0.5, 1.5], "y": [-0.5, 1.5]}],
            "lasso": [],
        }
    }
    assert interp.selected_cells(box, CLASSES3) == [(0, 1), (1, 1)]


def test_selected_cells_empty_stale_or_odd_never_raise():
    assert interp.selected_cells(None, CLASSES3) == []
    assert interp.selected_cells({}, CLASSES3) == []
    assert interp.selected_cells({"selection": {"points": []}}, CLASSES3) == []
    assert interp.selected_cells({"selection": {"points": None}}, CLASSES3) == []
    assert interp.selected_cells({"selection": "junk"}, CLASSES3) == []
    stale = {  # from a 37-class run, read against this 3-class run
        "points": [
            {"curve_number": 1, "point_index": 1200, "x": "beagle", "y": "boxer", "customdata": [30, 12, 4]},
            {"customdata": {"0": -1, "1": 2}},
            {"customdata": [0.5, 1]},
            {"customdata": [True, 1]},
            {"point_index": [5, 1]},
            "not a dict",
            {"x": None, "y": [1, 2], "customdata": "ab"},
        ]
    }
    assert interp.selected_cells(stale, CLASSES3) == []


def test_selected_cells_numeric_class_names():
    digits = [str(d) for d in range(10)]
    assert interp.selected_cells({"points": [{"x": 3, "y": "7"}]}, digits) == [(7, 3)]


def test_confusion_figure_selects_on_click_with_category_axes():
    cm = np.array([[3, 1], [0, 2]])
    fig = interp.confusion_figure(cm, ["0", "1"])
    assert "select" in fig.layout.clickmode
    assert fig.layout.dragmode not in ("select", "lasso")  # Streamlit drops click-selection in those modes
    assert fig.layout.xaxis.fixedrange and fig.layout.yaxis.fixedrange
    assert fig.layout.xaxis.type == "category" and fig.layout.yaxis.type == "category"
    markers = fig.data[1]
    # marker k sits on cell (k // n, k % n): what point_index on the marker trace means
    assert [(int(c[0]), int(c[1])) for c in markers.customdata] == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_aligned_paths_pads_missing_and_drops_extra_paths():
    assert interp.aligned_paths(["a.jpg", "b.jpg"], 4) == ["a.jpg", "b.jpg", "", ""]
    assert interp.aligned_paths(["a.jpg", "b.jpg", "c.jpg"], 2) == ["a.jpg", "b.jpg"]
    assert interp.aligned_paths(None, 2) == ["", ""]
    assert interp.aligned_paths(("a.jpg", None), 2) == ["a.jpg", ""]
