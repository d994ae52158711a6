"""Browser: train a tiny run through the real UI, then open Interpretation on it."""

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
