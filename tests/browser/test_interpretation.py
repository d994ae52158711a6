"""Browser: a real mouse click on a confusion-matrix cell shows that cell's images, then a box selection."""

from pathlib import Path

import numpy as np
import pytest

from tests.browser.conftest import assert_no_exception, screenshot, streamlit_server, wait_ready

pytestmark = pytest.mark.browser


def write_run(data: Path, images: Path, title: str = "browser run") -> tuple[str, list[str]]:
    """A stored run in the real format with known predictions over the browser dataset's images.

    title: as someone typed it (stays as it is in every language), or "" for the title the trainer writes
    (shown in the tab's language).
    """
    from core.data.datasets import scan_dataset
    from core.store import runs
    from core.store.records import EpochRow
    from tests.browser.conftest import env_dataset_for
    from tests.factories import run_config, run_record, store_run

    label = lambda p: Path(p).name.rsplit("_", 1)[0]  # noqa: E731
    every = sorted(str(p) for p in Path(images).glob("*.jpg"))
    classes = sorted({label(p) for p in every})
    paths = [p for c in classes for p in [q for q in every if label(q) == c][:4]]  # 4 validation images a class
    targets = np.array([classes.index(label(p)) for p in paths])
    probs = np.full((len(paths), len(classes)), 0.01, np.float32)
    probs[np.arange(len(paths)), targets] = 0.9
    last = len(classes) - 1
    for i in np.nonzero(targets == 0)[0][:3]:  # three of class 0 called class 1: the picker's default cell
        probs[i] = 0.01
        probs[i, 1] = 0.9
    for i in np.nonzero(targets == last)[0][:2]:  # two of the last class called class 0: the cell we click
        probs[i] = 0.01
        probs[i, 0] = 0.8
    config = run_config(scan_dataset(env_dataset_for(images)).fingerprint, img_size=64)
    epochs = [EpochRow(0, 0, train_loss=1.0, valid_loss=0.9, error_rate=0.2)]
    record = run_record(config, classes, epochs, title=title or None, valid_paths=tuple(paths))
    store_run(data / "runs", record, "browserrun", None, runs.Preds(probs, targets))
    return "browserrun", classes


def cell_centre(page, actual: str, predicted: str) -> tuple[float, float]:
    """Page coordinates of a heatmap cell, from plotly's own axes (category name -> pixel)."""
    return page.evaluate(
        """([actual, predicted]) => {
            const gd = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
            const fl = gd._fullLayout, box = gd.getBoundingClientRect();
            const x = fl.xaxis.l2p(fl.xaxis.d2l(predicted)) + fl._size.l + box.left;
            const y = fl.yaxis.l2p(fl.yaxis.d2l(actual)) + fl._size.t + box.top;
            return [x, y];
        }""",
        [actual, predicted],
    )


def shown_cells(page) -> list[str]:
    return [
        t for t in page.locator("[data-testid='stMarkdownContainer'] p").all_inner_texts() if t.startswith("actual ")
    ]


def test_click_and_box_select_on_the_confusion_matrix(page, browser_data, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _, images = browser_data
    run_id, classes = write_run(data, images)
    first, last = classes[0], classes[-1]
    page.set_viewport_size({"width": 1400, "height": 1800})
    with streamlit_server(data, images) as url:
        page.goto(f"{url}/interpretation")
        wait_ready(page)
        page.get_by_role("heading", name="Interpretation").first.wait_for()
        page.get_by_text("No run is active").wait_for()
        page.locator("[data-testid='stSelectbox']").filter(has_text="Active run").click()
        page.get_by_role("option", name="browser run", exact=False).click()
        wait_ready(page)
        page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot .main-svg").first.wait_for()
        wait_ready(page)
        assert shown_cells(page) == [f"actual {first}, predicted {classes[1]}: 3 images"]  # the picker's default

        x, y = cell_centre(page, last, first)
        page.mouse.move(x, y)
        page.mouse.click(x, y)
        page.get_by_text(f"actual {last}, predicted {first}: 2 images").wait_for(timeout=120_000)
        wait_ready(page)
        assert shown_cells(page) == [f"actual {last}, predicted {first}: 2 images"]
        picker = page.locator("[data-testid='stSelectbox']").filter(has_text="Cell")
        shown = picker.inner_text() + " ".join(i.input_value() for i in picker.locator("input").all())
        assert f"actual {last} → predicted {first}" in shown, shown  # chart and picker agree
        page.wait_for_function(
            "() => [...document.querySelectorAll(\"[data-testid='stImage'] img\")]"
            ".filter(i => i.complete && i.naturalWidth > 0 && i.alt !== 'logo').length >= 2",
            timeout=120_000,
        )
        assert_no_exception(page)
        screenshot(page, "interpretation_cell_click")

        # the toolbar's box tool, then a box around the first two diagonal cells: every cell's images, no crash
        page.locator("[data-testid='stPlotlyChart']").hover()
        page.locator("[data-testid='stPlotlyChart'] .modebar-btn[data-val='select']").click()
        x0, y0 = cell_centre(page, first, first)
        x1, y1 = cell_centre(page, classes[1], classes[1])
        page.mouse.move(x0 - 8, y0 - 8)
        page.mouse.down()
        page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=5)
        page.mouse.move(x1 + 8, y1 + 8, steps=5)
        page.mouse.up()
        page.get_by_text(f"actual {classes[1]}, predicted {classes[1]}", exact=False).wait_for(timeout=120_000)
        wait_ready(page)
        cells = shown_cells(page)
        assert f"actual {first}, predicted {first}: 1 image" in cells
        assert f"actual {classes[1]}, predicted {classes[1]}: 4 images" in cells
        assert_no_exception(page)
        screenshot(page, "interpretation_box_select")

        # issue 19 item 10: the photos of a grid (cells, top losses) came at their own sizes; one size now, square
        page.get_by_role("heading", name="Top losses").scroll_into_view_if_needed()
        for caption, least in ((r"^p=[0-9.]+$", 5), (r"^\S+ / \S+ / [0-9.]+ / [0-9.]+$", 9)):  # cells, top losses
            sizes = image_sizes(page, caption)
            assert len(sizes) >= least and len(set(sizes)) == 1 and sizes[0][0] == sizes[0][1], sizes


def image_sizes(page, caption: str) -> list[tuple[int, int]]:
    """The drawn (width, height) of the loaded photos whose caption matches the regular expression."""
    page.wait_for_function(
        "() => [...document.querySelectorAll(\"[data-testid='stImage'] img\")].every(i => i.complete)"
    )
    found = page.evaluate(
        """(pattern) => [...document.querySelectorAll("[data-testid='stImage']")]
            .filter(e => new RegExp(pattern).test(e.innerText.trim()))
            .map(e => e.querySelector('img').getBoundingClientRect())
            .map(r => [Math.round(r.width), Math.round(r.height)])""",
        caption,
    )
    return [tuple(size) for size in found]
