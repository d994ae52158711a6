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


def test_training_and_class_pages_in_chinese(page, browser_data, tmp_path):
    """The teacher's Training and Class pages with ?lang=zh: stored runs, the run's charts, the job queue."""
    from core import auth, job_records, jobs
    from core.auth import TEACHER, Identity
    from core.datasets import scan_dataset
    from core.session_store import SessionStore, new_token
    from tests.browser.conftest import env_dataset_for
    from tests.pages.helpers import stored_run, training_page_config
    from ui.auth import SIGN_IN_KEY

    password = "correct horse"
    data = tmp_path / "data"
    data.mkdir()
    _, images = browser_data
    spec = env_dataset_for(images)
    fingerprint = scan_dataset(spec).fingerprint
    run_id = stored_run(training_page_config(fingerprint), runs_dir=data / "runs", dataset=spec.name)
    teacher = Identity(TEACHER, "e" * 24)
    plan = [config for _name, config in jobs.lesson_plan(fingerprint)]
    done = jobs.submit(data, teacher, plan[0], spec)
    job_records.update_job(data, done.job_id, status="done", run_id=run_id, started=1.0, finished=5.0)
    running = jobs.submit(data, teacher, plan[1], spec)
    event = job_records.JobEvent(kind="batch", stage=1, epoch=0, n_epoch=1, iter=3, n_iter=10, loss=0.5, lr=1e-4)
    job_records.update_job(data, running.job_id, status="running", pid=None, host="elsewhere", updated=9e12, last=event)
    jobs.submit(data, teacher, plan[2], spec)  # queued
    token = new_token()  # the teacher's tab, signed in (as tests/pages/test_class_page.teacher_query)
    SessionStore(data / "sessions", token).update(
        {SIGN_IN_KEY: auth.teacher_token(token, auth.server_secret(data), password)}
    )
    env = {"PETLAB_TEACHER_PASSWORD": password, "PETLAB_LOCAL_WORKER": "0"}  # no worker: the jobs stay as written
    with streamlit_server(data, images, extra_env=env) as url:
        page.goto(f"{url}/training?s={token}&lang=zh")
        wait_ready(page)
        page.get_by_role("heading", name="4 · 训练记录").wait_for()
        page.get_by_role("button", name="打开它").first.click()  # the stored run: its loss chart and epochs
        wait_ready(page)
        page.get_by_role("heading", name=f"训练记录 {run_id}", exact=False).wait_for()
        page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot .main-svg").nth(2).wait_for()
        wait_ready(page)
        assert cjk_glyphs_render(page)
        page.set_viewport_size({"width": 1400, "height": 4000})
        page.wait_for_timeout(1500)
        assert_no_exception(page)
        screenshot(page, "zh_training")
        charts = " ".join(page.locator("[data-testid='stPlotlyChart']").all_inner_texts())
        assert "损失" in charts and "错误率" in charts and "轮" in charts  # axis titles and legends in the SVG
        assert_no_english_sentence(page)

        page.set_viewport_size({"width": 1400, "height": 1000})
        page.goto(f"{url}/class?s={token}&lang=zh")
        wait_ready(page)
        page.get_by_role("heading", name="3 · 训练队列").wait_for()
        page.locator("[data-testid='stDataFrame']").first.wait_for()
        wait_ready(page)
        page.set_viewport_size({"width": 1400, "height": 3000})
        page.wait_for_timeout(1500)
        assert_no_exception(page)
        screenshot(page, "zh_class")
        assert "阶段 2 · 轮 1/1 · 批次 3/10" in page.locator("[data-testid='stMain']").inner_text()
        assert_no_english_sentence(page)
