"""Browser: the Augmentation page shows its grid, gallery, histograms and code."""

import pytest

from tests.browser.conftest import assert_no_exception, broken_words, screenshot, wait_ready


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
    page.wait_for_function("() => [...document.querySelectorAll('img')].every(i => i.complete)")
    assert broken_words(page) == []  # issue 19 item 10: "pad_mode='reflecti" / "on'" under a narrow photo
    screenshot(page, "augmentation")
    page.get_by_role("heading", name="What the model receives").scroll_into_view_if_needed()
    screenshot(page, "augmentation-tensor")


def controls_and_grid(page) -> dict:
    """What the controls show (seed box, checked padding mode) and what the grid was made with (its caption, its code)."""
    seed_box = page.get_by_label("Seed").input_value()
    radio = page.locator("[data-testid='stRadio']").filter(has_text="Padding mode")
    mode = radio.locator("input:checked").evaluate("e => e.closest('label').innerText.trim()")
    caption = page.get_by_text("training samples of the same photo").inner_text()
    code = page.locator("[data-testid='stCode']").inner_text()
    return {
        "controls": (int(seed_box), mode),
        "grid": (int(caption.rsplit("seed ", 1)[1].rstrip(".")), code.split("pad_mode='", 1)[1].split("'")[0]),
    }


@pytest.mark.browser
def test_controls_agree_with_the_grid_after_the_first_upload(app_server, page, tmp_path):
    """Issue 19 item 6: New samples → zeros → Upload → a photo, in a fresh tab. The controls said seed 0 and
    'reflection' while the grid used seed 1 and zeros: st.stop() before the controls (no photo yet) left
    their values on the server while the browser forgot them, so when they came back the browser drew
    the defaults. Every click is a real mouse click; the photo goes through the file chooser."""
    import numpy as np

    from core.data.synthetic import draw_example

    photo = tmp_path / "outside.png"
    draw_example(2, np.random.default_rng(5), (300, 240)).save(photo)
    page.goto(app_server)
    page.get_by_text("Pet Lab").first.wait_for()
    page.goto(f"{app_server}/augmentation")
    wait_ready(page)
    page.locator("[data-testid='stCode']").wait_for(timeout=180_000)
    wait_ready(page)
    page.get_by_role("button", name="New samples").click()
    page.locator("[data-testid='stCode']").filter(has_text="seed 1").wait_for()
    wait_ready(page)
    page.locator("[data-testid='stRadio']").filter(has_text="Padding mode").get_by_text("zeros", exact=True).click()
    page.locator("[data-testid='stCode']").filter(has_text="pad_mode='zeros'").first.wait_for()
    wait_ready(page)
    assert controls_and_grid(page) == {"controls": (1, "zeros"), "grid": (1, "zeros")}

    upload = page.get_by_role("radio", name="Upload").or_(page.get_by_role("button", name="Upload", exact=True))
    upload.first.click()  # the image source: no photo yet
    wait_ready(page)
    page.get_by_text("Pick an image above").wait_for()
    with page.expect_file_chooser() as chooser:
        page.locator("[data-testid='stFileUploaderDropzone'] button").click()
    chooser.value.set_files(str(photo))
    page.locator("[data-testid='stCode']").wait_for(timeout=180_000)
    wait_ready(page)
    assert_no_exception(page)
    assert controls_and_grid(page) == {"controls": (1, "zeros"), "grid": (1, "zeros")}

    page.get_by_role("button", name="New samples").click()  # and they stay together from there on
    page.locator("[data-testid='stCode']").filter(has_text="seed 2").wait_for()
    wait_ready(page)
    assert controls_and_grid(page) == {"controls": (2, "zeros"), "grid": (2, "zeros")}
    screenshot(page, "augmentation-upload")
