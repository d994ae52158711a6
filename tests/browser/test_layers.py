"""Browser: /layers renders a feature-map grid, then every section on request, with no exception."""

import pytest

from tests.browser.conftest import assert_no_exception, screenshot, wait_ready


def open_tab(page, name: str):
    page.get_by_role("tab", name=name).click()
    wait_ready(page)
    return page.locator("[data-testid='stTabPanel']:visible")


def images_loaded(page, at_least: int) -> None:
    page.wait_for_function(
        f"() => [...document.querySelectorAll(\"[data-testid='stTabPanel']:not([hidden]) [data-testid='stImage'] img\")]"
        f".filter(i => i.complete && i.naturalWidth > 0).length >= {at_least}",
        timeout=180_000,
        polling=500,
    )


@pytest.mark.browser
def test_layers_sections_render(app_server, page):
    page.set_viewport_size({"width": 1400, "height": 2000})  # Streamlit scrolls inside the page: show it all
    # a fresh server serves a deep link from pages/ without the app frame until app.py has run once
    page.goto(app_server)
    wait_ready(page)
    page.get_by_text("Pet Lab").first.wait_for()
    page.goto(f"{app_server}/layers")
    wait_ready(page)
    page.get_by_text("Pet Lab").first.wait_for()  # the shared sidebar: the page runs inside app.py
    page.get_by_role("heading", name="Layers: what each layer sees").wait_for()
    panel = page.locator("[data-testid='stTabPanel']:visible")
    panel.locator("[data-testid='stPlotlyChart']").first.wait_for(timeout=180_000)  # the feature-map grid
    panel.locator(".js-plotly-plot .main-svg").first.wait_for()
    wait_ready(page)
    assert "Prediction:" in page.locator("[data-testid='stMain']").inner_text()
    images_loaded(page, 1)  # the chosen channel over the image
    assert_no_exception(page)
    screenshot(page, "layers_feature_maps")

    open_tab(page, "Filters")
    images_loaded(page, 2)  # ImageNet vs random-init first conv

    panel = open_tab(page, "Top patches")
    page.get_by_role("button", name="Build the index").click()
    page.get_by_role("button", name="Build the index").wait_for(state="detached", timeout=180_000)
    wait_ready(page)
    images_loaded(page, 9)  # 3x3 grid of crops from the saved index
    assert_no_exception(page)
    screenshot(page, "layers_top_patches")

    panel = open_tab(page, "Projection")
    panel.get_by_text("Compute projections").click()
    panel.get_by_text("guided backprop").first.wait_for(timeout=180_000)
    wait_ready(page)
    images_loaded(page, 3)

    panel = open_tab(page, "Occlusion")
    panel.get_by_role("button", name="Compute occlusion map").click()
    panel.locator("[data-testid='stPlotlyChart']").nth(1).wait_for(timeout=180_000)
    wait_ready(page)
    images_loaded(page, 1)
    assert_no_exception(page)
    screenshot(page, "layers_occlusion")

    panel = open_tab(page, "Grad-CAM")
    images_loaded(page, 2)

    panel = open_tab(page, "Compare networks")
    panel.get_by_text("Compare the three networks").click()
    panel.locator("[data-testid='stPlotlyChart']").nth(1).wait_for(timeout=180_000)  # random init and ImageNet
    wait_ready(page)
    assert "No fine-tuned run chosen" in panel.inner_text()
    assert_no_exception(page)
    shot = screenshot(page, "layers_compare")
    assert shot.stat().st_size > 10_000
