"""Browser: the Augmentation page shows its grid, gallery, histograms and code."""

import pytest

from tests.browser.conftest import assert_no_exception, screenshot, wait_ready


@pytest.mark.browser
def test_augmentation_grid(app_server, page):
    # a fresh server serves a deep link from pages/ without the app frame until app.py has run once
    page.goto(app_server)
    page.get_by_text("Pet Lab").first.wait_for()  # app.py has run: st.navigation now owns the URLs
    page.goto(f"{app_server}/augmentation")
    wait_ready(page)
    page.get_by_text("Pet Lab").first.wait_for()  # the shared sidebar: the page runs inside app.py
    page.get_by_role("heading", name="Augmentation: one photo, many training samples").wait_for()
    page.locator("[data-testid='stPlotlyChart']").first.wait_for(timeout=180_000)
    wait_ready(page)
    assert_no_exception(page)
    assert page.locator("[data-testid='stImage']").count() >= 9 + 7 + 2
    assert "aug_transforms(" in page.locator("[data-testid='stCode']").inner_text()

    page.get_by_role("button", name="New samples").click()
    page.locator("[data-testid='stCode']").filter(has_text="seed 1").wait_for()  # the rerun with the new seed
    wait_ready(page)
    assert_no_exception(page)
    screenshot(page, "augmentation")
    page.get_by_role("heading", name="What the model receives").scroll_into_view_if_needed()
    screenshot(page, "augmentation-tensor")
