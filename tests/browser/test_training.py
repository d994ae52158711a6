"""Browser: train a tiny run through the real UI, then open Interpretation on it."""

import re

import pytest

from tests.browser.conftest import assert_no_exception, screenshot, wait_ready


@pytest.mark.browser
def test_train_tiny_run_then_interpret(app_server, page):
    page.goto(app_server)  # the app frame; then the sidebar link, so the page runs inside app.py
    wait_ready(page)
    page.get_by_text("Pet Lab").first.wait_for()
    page.get_by_role("link", name="Training").click()
    wait_ready(page)
    page.get_by_role("heading", name="Training").first.wait_for()
    page.locator("[data-testid='stPlotlyChart']").first.wait_for(timeout=180_000)  # the one-cycle schedule
    assert_no_exception(page)

    epochs = page.get_by_label("Epochs").first  # stage 1: one epoch at the default 64 px, cached features
    epochs.fill("1")
    epochs.press("Enter")
    wait_ready(page)
    page.get_by_role("button", name="▶ Train stage 1 (frozen)").click()
    page.get_by_text("Trained and stored run").wait_for(timeout=300_000)
    wait_ready(page)
    assert_no_exception(page)
    assert page.get_by_text("Already trained").count() >= 1
    screenshot(page, "training")

    page.get_by_role("link", name="Interpretation").click()  # same session: the new run is active
    wait_ready(page)
    page.get_by_role("heading", name="Confusion matrix").wait_for(timeout=180_000)
    page.locator("[data-testid='stPlotlyChart']").first.wait_for(timeout=180_000)
    wait_ready(page)
    assert_no_exception(page)
    assert page.get_by_role("heading", name="Top losses").count() == 1
    page.get_by_role("heading", name="Per-class error").wait_for(timeout=180_000)
    page.locator("[data-testid='stImage']").nth(8).wait_for(timeout=180_000)  # the top-losses grid (9 by default)
    wait_ready(page)
    screenshot(page, "interpretation")


@pytest.mark.browser
def test_use_valley_then_train_and_the_sidebar_follows(app_server, page):
    """Real mouse clicks: Use valley sets lr_max; after training the page and the sidebar show the new run."""
    page.goto(app_server)
    wait_ready(page)
    page.get_by_role("link", name="Training").click()
    wait_ready(page)
    page.get_by_role("heading", name="Training").first.wait_for()
    sidebar = page.locator("[data-testid='stSidebar']")

    page.get_by_role("button", name="Run the LR finder").click()
    valley = page.get_by_role("button", name=re.compile(r"Use valley \(.+\) as lr_max"))
    valley.wait_for(timeout=480_000)
    wait_ready(page)
    value = float(re.search(r"\((.+)\)", valley.inner_text()).group(1))
    valley.click()
    wait_ready(page)
    assert_no_exception(page)
    lr_max = page.get_by_label("lr_max").first
    for _ in range(120):  # the rerun that draws the new value may start after wait_ready returned
        if float(lr_max.input_value()) == pytest.approx(value, rel=1e-9):
            break
        page.wait_for_timeout(500)
    wait_ready(page)
    assert float(lr_max.input_value()) == pytest.approx(value, rel=1e-9)  # shown as the button said
    screenshot(page, "training_use_valley")

    epochs = page.get_by_label("Epochs").first
    epochs.fill("1")
    epochs.press("Enter")
    wait_ready(page)
    page.get_by_role("button", name="▶ Train stage 1 (frozen)").click()
    done = page.get_by_text("Trained and stored run")
    done.wait_for(timeout=300_000)
    wait_ready(page)
    assert_no_exception(page)
    run_id = re.search(r"run ([0-9a-f]{16})", done.inner_text()).group(1)
    assert page.get_by_role("button", name="▶ Train stage 1 (frozen)").count() == 0
    assert page.get_by_role("button", name="⏹ Stop training").count() == 0
    assert page.get_by_role("button", name="▶ Unfreeze and train stage 2").count() == 1
    screenshot(page, "training_after_run")
    switch = sidebar.locator("[data-testid='stSelectbox']").filter(
        has_text="Switch model"
    )  # not the language picker; "Switch model": its text or its input's value
    shown = switch.inner_text() + " ".join(switch.locator("input").evaluate_all("els => els.map(e => e.value)"))
    assert run_id[:8] in shown, shown
    assert f"run {run_id[:8]}" in sidebar.inner_text()  # the "Model:" line
