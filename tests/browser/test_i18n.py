"""Browser: every page opened with ?lang=zh is Chinese throughout, CJK renders (also in charts), nothing is cut off.

One class-mode server; the tab is the signed-in teacher's (so the Class page is registered too) with a
stored run active, so each page shows its main content. Each page saves `zh_<page>.png` in
tests/browser/screenshots/ to look at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from tests.browser.conftest import (
    assert_no_exception,
    broken_words,
    screenshot,
    sign_in_browser,
    streamlit_server,
    wait_ready,
)
from tests.browser.test_interpretation import write_run
from tests.pages.test_i18n import CJK, english_left, plain_words

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"
# the stored run's title is the trainer's (English on disk): every page shows it in Chinese
ZH_TITLE = "mobilenet_v2，64 像素：冻结训练 1 轮（学习率 1e-03）"


def main_text_lines(page) -> list[str]:
    """The main area's visible lines, less code blocks (code and its comments stay as they are) and text drawn
    at font size 0 (Streamlit's own texts that ui/i18n's CSS replaces with a translation, checked apart)."""
    code = {line for block in page.locator("[data-testid='stCode']").all_inner_texts() for line in block.splitlines()}
    hidden = set(
        page.evaluate(
            """() => [...document.querySelectorAll('[data-testid="stMain"] *')]
                .filter(e => getComputedStyle(e).fontSize === '0px')
                .flatMap(e => [...e.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent.trim()))"""
        )
    )
    text = page.locator("[data-testid='stMain']").inner_text()
    return [line for line in text.splitlines() if line.strip() and line not in code and line.strip() not in hidden]


def english_lines(lines: list[str], allowed=()) -> dict[str, list[str]]:
    return {line: found for line in lines if (found := english_left(line, allowed))}


def assert_no_english_sentence(page, allowed=()) -> None:
    left = english_lines(main_text_lines(page), allowed)
    assert not left, f"English left on the page: {left}"


def chart_texts(page) -> list[str]:
    """The text plotly drew in the visible charts (titles, axis titles, tick labels, colour bars, legends)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .main-svg text')]
            .filter(t => t.getClientRects().length > 0).map(t => t.textContent.trim()).filter(Boolean)"""
    )


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


def cut_off_texts(page) -> tuple[int, list[str]]:
    """How many visible labels were measured, and those whose text does not fit its box (ellipsis or
    clipped): buttons, tabs, metric labels and values, widget labels, expander headers, navigation links;
    a selectbox's chosen value; and tables (st.dataframe's grid or st.table) wider than their place, whose
    last columns are cut off (issue 19: the normalisation table, the runs table's 当前, the queue's 原因)."""
    return page.evaluate(
        """() => {
            const sel = ['button p', '[data-baseweb="tab"] p', '[data-testid="stMetricLabel"] p',
                '[data-testid="stMetricValue"] div', '[data-testid="stWidgetLabel"] p',
                '[data-testid="stExpander"] summary p', '[data-testid="stSidebarNavLink"] span'].join(',');
            const visible = e => e.getClientRects().length > 0 && e.clientWidth > 0;
            const shown = [...document.querySelectorAll(sel)].filter(visible);
            const cut = shown.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent.trim());
            const canvas = document.createElement('canvas').getContext('2d');
            // the main area's choices (the sidebar's run picker is narrow by design: the title is written above it)
            const values = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stSelectbox"] input')]
                .filter(visible);
            for (const input of values) {
                const style = getComputedStyle(input);
                canvas.font = style.font;
                const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
                if (canvas.measureText(input.value).width > room + 1) cut.push('selectbox: ' + input.value);
            }
            const tables = [...document.querySelectorAll(
                '[data-testid="stDataFrame"] .dvn-scroller, [data-testid="stTable"]')].filter(visible);
            for (const table of tables) {
                if (table.scrollWidth > table.clientWidth + 1) {
                    const frame = table.closest('[data-testid="stDataFrame"], [data-testid="stTable"]');
                    cut.push('table: ' + frame.innerText.trim().split('\\n')[0]);
                }
            }
            return [shown.length + values.length + tables.length, cut];
        }"""
    )


def short_labels(page) -> list[str]:
    """The visible buttons, tabs, widget labels and metric labels (texts too short for english_left)."""
    return page.evaluate(
        """() => [...document.querySelectorAll(['button p', '[data-baseweb="tab"] p',
                '[data-testid="stMetricLabel"] p', '[data-testid="stWidgetLabel"] p'].join(','))]
            .filter(e => e.getClientRects().length > 0).map(e => e.textContent.trim()).filter(Boolean)"""
    )


@pytest.fixture(scope="module")
def zh_server(tmp_path_factory):
    """A class-mode server, a stored run of its dataset, a tab with that run active and the data folder (the
    tests give their browser the teacher's sign-in with sign_in_browser)."""
    from core.data.synthetic import make_pets_like
    from core.store.session_store import SessionStore, new_token
    from ui.state import ACTIVE_RUN

    base = tmp_path_factory.mktemp("zh-browser")
    data = base / "petlab-data"
    data.mkdir()
    images = make_pets_like(base / "pets" / "images", n_per_class=8)
    run_id, classes = write_run(data, images, title="")
    token = new_token()
    SessionStore(data / "sessions", token).update({ACTIVE_RUN: run_id})
    env = {"PETLAB_TEACHER_PASSWORD": PASSWORD, "PETLAB_LOCAL_WORKER": "0"}  # no worker: jobs stay queued
    with streamlit_server(data, images, env) as url:
        yield url, token, base, tuple(classes), data


def upload_photo(page, base) -> None:
    from core.data.synthetic import draw_example

    zone = page.locator("[data-testid='stFileUploaderDropzone']").first
    zone.wait_for()
    shown = zone.evaluate(  # Streamlit's own "Upload" and "200MB per file", replaced by ui/i18n's CSS
        """z => [z.querySelector('button p'), z.querySelector('[data-testid=stFileUploaderDropzoneInstructions] span')]
            .map(e => getComputedStyle(e, '::after').content)"""
    )
    assert shown == ['"上传"', '"每个文件最大 50 MB"'], shown
    photo = base / "my_pet.png"
    draw_example(4, np.random.default_rng(3), (320, 260)).save(photo)
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(photo))
    page.locator("[data-testid='stPlotlyChart']").first.wait_for(timeout=180_000)


def camera(page, base) -> None:
    """The camera source: Streamlit's own permission line and button, shown in Chinese by ui/i18n's CSS."""
    page.get_by_role("radio", name="摄像头").or_(page.get_by_role("button", name="摄像头", exact=True)).first.click()
    page.locator("[data-testid='stCameraInput']").wait_for()
    wait_ready(page)
    shown = page.locator("[data-testid='stCameraInput']").evaluate(
        """e => [[e.querySelector('[data-testid=stCameraInputWebcamComponent] p'), '::before'],
                 [e.querySelector('[data-testid=stCameraInputWebcamComponent] p a'), '::after'],
                 [e.querySelector('[data-testid=stCameraInputButton]'), '::after']]
            .map(([el, pseudo]) => getComputedStyle(el, pseudo).content)"""
    )
    assert shown == ['"本应用想使用你的摄像头。"', '"了解如何允许访问。"', '"拍照"'], shown


def occlusion_tab(page, base) -> None:
    page.get_by_role("tab", name="遮挡敏感度").click()
    panel = page.locator("[data-testid='stTabPanel']:visible")
    panel.get_by_role("button", name="计算遮挡敏感度图").click()
    panel.locator("[data-testid='stPlotlyChart'] .main-svg").nth(1).wait_for(timeout=180_000)


def patches_tab(page, base) -> None:
    """Class mode: the index is a job for the worker (none runs for this server: it stays queued)."""
    page.get_by_role("tab", name="最强激活图块").click()
    panel = page.locator("[data-testid='stTabPanel']:visible")
    panel.get_by_role("button", name="建立索引").click()
    wait_ready(page)
    panel.get_by_text("已交给后台进程排队", exact=False).wait_for()


def filters_tab(page, base) -> None:
    page.get_by_role("tab", name="卷积核").click()
    page.locator("[data-testid='stTabPanel']:visible [data-testid='stImage']").first.wait_for(timeout=180_000)


def compare_tab(page, base) -> None:
    page.get_by_role("tab", name="反卷积投影").click()
    page.locator("[data-testid='stTabPanel']:visible").get_by_text("计算投影").click()
    wait_ready(page)
    page.get_by_role("tab", name="对比网络").click()
    panel = page.locator("[data-testid='stTabPanel']:visible")
    panel.get_by_text("对比三个网络").click()
    panel.locator("[data-testid='stPlotlyChart'] .main-svg").nth(2).wait_for(timeout=180_000)  # 3 networks


@dataclass(frozen=True)
class BrowserCase:
    name: str
    path: str  # "" is the app's default page
    charts: int = 0  # plotly charts to wait for before looking
    act: Callable | None = None  # (page, base): what to do once the page is there
    height: int = 3000  # the viewport for the screenshot: the whole page, no inner scrolling
    title: bool = False  # the page names the run (its title, in Chinese) in its main area


CASES = [
    BrowserCase("home", "", charts=3, height=4200),
    BrowserCase("augmentation", "augmentation", charts=1),
    BrowserCase("augmentation_camera", "augmentation", charts=1, act=camera, height=2000),
    BrowserCase("training", "training", charts=1, height=4000),
    BrowserCase("interpretation", "interpretation", charts=1, height=3600),
    BrowserCase("layers", "layers", charts=2, height=2400, title=True),
    BrowserCase("layers_occlusion", "layers", charts=1, act=occlusion_tab, height=2000),
    BrowserCase("layers_patches", "layers", charts=1, act=patches_tab, height=2000),
    BrowserCase("layers_filters", "layers", charts=1, act=filters_tab, height=2000, title=True),
    BrowserCase("layers_compare", "layers", charts=1, act=compare_tab, height=2000, title=True),
    BrowserCase("prediction", "prediction", act=upload_photo, height=2400, title=True),
    BrowserCase("class", "class", height=3600),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_page_in_chinese(case, zh_server, page):
    url, token, base, classes, data = zh_server  # class names stay as they are
    sign_in_browser(page.context, url, data, PASSWORD)  # the teacher's browser
    page.goto(f"{url}/{case.path}?lang=zh&s={token}")
    wait_ready(page)
    page.locator("[data-testid='stMain'] h1").first.wait_for()
    page.wait_for_function(  # the charts drawn (plotly's SVG), not just their frames
        f"() => document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .main-svg').length >= {case.charts}",
        timeout=180_000,
        polling=500,
    )
    if case.act is not None:
        case.act(page, base)
    wait_ready(page)
    assert_no_exception(page)
    assert "lang=zh" in page.url  # the link keeps its language
    assert cjk_glyphs_render(page)
    sidebar = page.locator("[data-testid='stSidebar']").inner_text().splitlines()
    assert "数据增强" in sidebar and "网络层" in sidebar  # navigation in Chinese
    page.set_viewport_size({"width": 1400, "height": case.height})
    page.wait_for_timeout(1500)  # charts re-lay out to the new size
    shot = screenshot(page, f"zh_{case.name}")
    assert shot.stat().st_size > 10_000
    allowed = classes
    main = main_text_lines(page)
    left = english_lines(main + sidebar, allowed)
    left.update(english_lines(chart_texts(page), allowed))
    short = [t for t in short_labels(page) if not CJK.search(t) and plain_words(t, allowed)]
    measured, cut = cut_off_texts(page)
    assert measured >= 8  # the check looked at something (the sidebar's links alone are 8)
    title_left = [line for line in main + sidebar if "ep frozen" in line]  # issue 19: run titles stayed English
    if case.title:
        assert any(ZH_TITLE in line for line in main), [line for line in main if "mobilenet_v2" in line]
    problems = {
        "English left": left,
        "labels left in English": short,
        "text cut off": cut,
        "run title in English": title_left,
        "word broken across lines": broken_words(page),
    }
    assert not any(problems.values()), {what: found for what, found in problems.items() if found}


def test_training_and_class_pages_in_chinese(page, browser_data, tmp_path):
    """The teacher's Training and Class pages with ?lang=zh: stored runs, the run's charts, the job queue."""
    from core.auth import TEACHER, Identity
    from core.data.datasets import scan_dataset
    from core.store.records import EventKind, TrainEvent
    from core.store.session_store import new_token
    from core.teach import job_records, jobs
    from tests.browser.conftest import env_dataset_for
    from tests.pages.helpers import stored_run, training_page_config

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
    event = TrainEvent(EventKind.BATCH, stage=1, epoch=0, n_epoch=1, iter=3, n_iter=10, loss=0.5, lr=1e-4)
    job_records.update_job(data, running.job_id, status="running", pid=None, host="elsewhere", updated=9e12, last=event)
    jobs.submit(data, teacher, plan[2], spec)  # queued
    token = new_token()  # the teacher's tab
    env = {"PETLAB_TEACHER_PASSWORD": password, "PETLAB_LOCAL_WORKER": "0"}  # no worker: the jobs stay as written
    with streamlit_server(data, images, extra_env=env) as url:
        sign_in_browser(page.context, url, data, password)  # the teacher's browser
        page.goto(f"{url}/training?s={token}&lang=zh")
        wait_ready(page)
        page.get_by_role("heading", name="4 · 训练好的模型").wait_for()
        page.get_by_role("button", name="打开它").first.click()  # the stored run: its loss chart and epochs
        wait_ready(page)
        page.get_by_role("heading", name=f"模型 {run_id}", exact=False).wait_for()
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
        page.locator("[data-testid='stTable']").first.wait_for()  # the queue
        wait_ready(page)
        page.set_viewport_size({"width": 1400, "height": 3000})
        page.wait_for_timeout(1500)
        assert_no_exception(page)
        screenshot(page, "zh_class")
        assert "阶段 2 · 轮 1/1 · 批次 3/10" in page.locator("[data-testid='stMain']").inner_text()
        assert_no_english_sentence(page)


def widget_text(page, label: str) -> str:
    """What a selectbox or multiselect shows (its chips, its input's value), found by its label."""
    named = page.locator("[data-testid='stWidgetLabel']").get_by_text(label, exact=True)
    widget = page.locator("[data-testid='stMultiSelect'], [data-testid='stSelectbox']").filter(has=named).first
    return widget.evaluate("e => e.innerText + ' ' + [...e.querySelectorAll('input')].map(i => i.value).join(' ')")


def pick_language(page, name: str) -> None:
    """The sidebar's language picker, with the mouse."""
    picker = page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").filter(has_text="🌐")
    for attempt in range(5):  # the class-mode sidebar's job box reruns every 3 s and may close an open list
        picker.get_by_role("button", name="Open").click()
        try:
            page.get_by_role("option", name=name).click(timeout=5_000)
            break
        except Exception:
            if attempt == 4:
                page.screenshot(path="/tmp/zh19explore/pick_fail.png")
                raise
    wait_ready(page)


def test_switching_language_mid_session_translates_the_choices_already_made(page, browser_data, tmp_path):
    """Issue 19 item 9: after switching to Chinese in the sidebar, the Class page's plan names and its run
    selectbox stayed English. A widget's value travels as its option's label; the browser kept the English
    labels until the page told it the new ones (ui.i18n re-sends the kept and marked widgets' values)."""
    from core.data.datasets import scan_dataset
    from core.store.session_store import SessionStore, new_token
    from tests.browser.conftest import env_dataset_for
    from tests.pages.helpers import stored_run, training_page_config
    from ui.state import ACTIVE_RUN

    password = "correct horse"
    data = tmp_path / "data"
    data.mkdir()
    _, images = browser_data
    spec = env_dataset_for(images)
    config = training_page_config(scan_dataset(spec).fingerprint)
    run_id = stored_run(config, runs_dir=data / "runs", dataset=spec.name)
    token = new_token()
    SessionStore(data / "sessions", token).update({ACTIVE_RUN: run_id})
    env = {"PETLAB_TEACHER_PASSWORD": password, "PETLAB_LOCAL_WORKER": "0"}
    with streamlit_server(data, images, extra_env=env) as url:
        sign_in_browser(page.context, url, data, password)  # the teacher's browser
        page.goto(f"{url}/class?s={token}&lang=en")
        wait_ready(page)
        page.get_by_role("heading", name="2 · Queue the lesson").wait_for()
        assert "stage 1: body frozen" in widget_text(page, "Runs to queue, in order")
        assert "2 ep frozen, cached features @ 3e-03" in widget_text(page, "Run")

        pick_language(page, "简体中文")
        page.get_by_role("heading", name="2 · 把本课的训练加入队列").wait_for()
        wait_ready(page)
        plan, run = widget_text(page, "要加入队列的训练（按顺序）"), widget_text(page, "模型")
        assert "阶段 1：冻结主干" in plan and "stage 1" not in plan, plan
        assert "冻结训练 2 轮（缓存特征，学习率 3e-03）" in run and "ep frozen" not in run, run
        sidebar_model = widget_text(page, "切换模型")  # the sidebar's run picker
        assert "冻结训练 2 轮" in sidebar_model and "ep frozen" not in sidebar_model, sidebar_model
        assert_no_exception(page)
        screenshot(page, "zh_class_after_switch")

        pick_language(page, "English")
        page.get_by_role("heading", name="2 · Queue the lesson").wait_for()
        wait_ready(page)
        assert "stage 1: body frozen" in widget_text(page, "Runs to queue, in order")
        assert "2 ep frozen, cached features @ 3e-03" in widget_text(page, "Run")
