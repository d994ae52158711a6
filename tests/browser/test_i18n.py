"""Browser: the translated pages opened with ?lang=zh are Chinese throughout, CJK renders; screenshots to look at."""

import os

import pytest

from tests.browser.conftest import assert_no_exception, screenshot, streamlit_server, wait_ready
from tests.browser.test_interpretation import write_run
from tests.pages.test_i18n import english_left

pytestmark = pytest.mark.browser


def main_text_lines(page) -> list[str]:
    """The main area's visible lines, less code blocks (code and its comments stay as they are)."""
    code = {line for block in page.locator("[data-testid='stCode']").all_inner_texts() for line in block.splitlines()}
    text = page.locator("[data-testid='stMain']").inner_text()
    return [line for line in text.splitlines() if line.strip() and line not in code]


def assert_no_english_sentence(page, allowed=()) -> None:
    left = {line: found for line in main_text_lines(page) if (found := english_left(line, allowed))}
    assert not left, f"English left on the page: {left}"


def cjk_glyphs_render(page) -> bool:
    """A CJK string takes the width of real glyphs (tofu boxes and missing fonts measure differently)."""
    return page.evaluate(
        """() => {
            const c = document.createElement('canvas').getContext('2d');
            c.font = '32px "Source Sans", sans-serif';
            const cjk = c.measureText('数据增强混淆矩阵').width;
            const tofu = c.measureText('\\u{10FFFF}\\u{10FFFF}\\u{10FFFF}\\u{10FFFF}').width;
            return document.fonts.check('32px "Noto Sans CJK SC"') && cjk > 200 && Math.abs(cjk - 2 * tofu) > 1;
        }"""
    )


def belong_to_dataset(run_dir, images) -> None:
    """Make the stored run one of the server's dataset (the run pickers offer the active dataset's runs)."""
    import json

    from core.datasets import scan_dataset
    from ui.state import env_dataset

    os.environ["PETLAB_DATASET"] = str(images)  # env_dataset() reads it, as the server will
    try:
        fingerprint = scan_dataset(env_dataset()).fingerprint
    finally:
        del os.environ["PETLAB_DATASET"]
    record = json.loads((run_dir / "run.json").read_text())
    record["config"]["dataset"] = fingerprint
    (run_dir / "run.json").write_text(json.dumps(record))


def test_translated_pages_in_chinese(page, browser_data, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _, images = browser_data
    run_id, _ = write_run(data, images)
    belong_to_dataset(data / "runs" / run_id, images)
    with streamlit_server(data, images) as url:
        page.goto(f"{url}/?lang=zh")
        wait_ready(page)
        page.get_by_role("heading", name="3 · 探索").wait_for()
        page.locator("[data-testid='stPlotlyChart']").nth(2).wait_for()
        sidebar = page.locator("[data-testid='stSidebar']").inner_text()
        assert "数据集" in sidebar and "模型" in sidebar and "数据增强" in sidebar  # navigation and sidebar
        assert cjk_glyphs_render(page)
        assert_no_english_sentence(page)
        page.set_viewport_size({"width": 1400, "height": 4200})
        page.wait_for_timeout(1500)
        assert_no_exception(page)
        screenshot(page, "zh_data")

        page.set_viewport_size({"width": 1400, "height": 1000})
        page.goto(f"{url}/augmentation?lang=zh")
        wait_ready(page)
        page.get_by_role("heading", name="fastai 代码").wait_for()
        page.locator("[data-testid='stPlotlyChart']").first.wait_for()
        assert_no_english_sentence(page)
        page.set_viewport_size({"width": 1400, "height": 3000})
        page.wait_for_timeout(1500)
        assert_no_exception(page)
        screenshot(page, "zh_augmentation")

        page.set_viewport_size({"width": 1400, "height": 1000})
        page.goto(f"{url}/interpretation?lang=zh")
        wait_ready(page)
        page.get_by_text("当前没有训练记录").wait_for()
        page.locator("[data-testid='stSelectbox']").filter(has_text="当前训练记录").click()
        page.get_by_role("option", name="browser run", exact=False).click()
        wait_ready(page)
        page.get_by_role("heading", name="混淆矩阵").wait_for()
        page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot .main-svg").first.wait_for()
        wait_ready(page)
        # the run picker's own text (ui/runs.py, shared with Training) is translated with the Training page
        picker = page.locator("[data-testid='stSelectbox']").first.inner_text()
        lines = [line for line in main_text_lines(page) if line not in picker.splitlines()]
        assert not {line: f for line in lines if (f := english_left(line, ("browser run",)))}
        assert "sidebar" not in page.url and "lang=zh" in page.url  # the link keeps its language
        page.set_viewport_size({"width": 1400, "height": 3600})
        page.wait_for_timeout(1500)
        assert_no_exception(page)
        screenshot(page, "zh_interpretation")
