"""Browser: the Data page on a generated dataset, a zip upload, and your own classes."""

import io
import zipfile

import pytest

from core.data.synthetic import draw_example
from tests.browser.conftest import assert_no_exception, screenshot, wait_ready

pytestmark = pytest.mark.browser


def jpeg(idx: int, seed: int) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    draw_example(idx, np.random.default_rng(seed)).save(buf, "JPEG")
    return buf.getvalue()


def test_data_page_renders_dataset(page, app_server):
    page.goto(app_server)
    wait_ready(page)
    page.get_by_role("heading", name="3 · Explore").wait_for()
    page.locator("[data-testid='stPlotlyChart']").nth(2).wait_for()  # balance, sizes, histograms
    page.locator("[data-testid='stImage']").nth(11).wait_for()  # the 12-image sample grid
    assert "72" in page.locator("[data-testid='stSidebar']").inner_text()  # 6 classes x 12 images
    page.set_viewport_size({"width": 1400, "height": 4200})
    page.wait_for_timeout(1500)
    assert_no_exception(page)
    screenshot(page, "data")


def test_zip_upload_becomes_the_dataset(page, app_server, tmp_path):
    archive = tmp_path / "my-pets.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for n in range(4):
            zf.writestr(f"cats/{n}.jpg", jpeg(0, n))
            zf.writestr(f"dogs/{n}.jpg", jpeg(3, n))
        zf.writestr("readme.txt", "not an image")
    page.goto(app_server)
    wait_ready(page)
    page.get_by_role("tab", name="Upload a .zip").click()
    panel = page.locator("[data-testid='stTabPanel']:visible")  # the zip tab
    panel.locator("input[type='file']").set_input_files(str(archive))
    page.get_by_role("button", name="Extract and use").click()
    page.get_by_role("heading", name="2 · Label: my-pets").wait_for()
    wait_ready(page)
    page.get_by_role("heading", name="3 · Explore").wait_for()
    assert "1 file skipped" in page.inner_text("body")
    sidebar = page.locator("[data-testid='stSidebar']").inner_text()
    assert "my-pets" in sidebar and "8" in sidebar
    assert_no_exception(page)
    screenshot(page, "data-zip")


def test_own_classes_become_the_dataset(page, app_server, tmp_path):
    page.goto(app_server)
    wait_ready(page)
    page.get_by_role("tab", name="Your own classes").click()
    for idx, name in enumerate(["alpha", "beta"]):
        box = page.get_by_label("New class name")
        box.fill(name)
        box.press("Enter")
        page.get_by_role("button", name="Add class").click()
        wait_ready(page)
        page.locator(f"input[aria-label='Add photos to'][value='{name} (0 photos)']").wait_for()
        files = []
        for n in range(2):
            path = tmp_path / f"{name}{n}.jpg"
            path.write_bytes(jpeg(idx, n))
            files.append(str(path))
        # the previous class's uploader (keyed per class) is gone once the rerun has finished
        page.wait_for_function("document.querySelectorAll(\"[data-testid='stFileUploader']\").length === 2")
        uploader = (
            page.locator("[data-testid='stFileUploader']").filter(has_text="Photos").locator("input[type='file']")
        )
        uploader.set_input_files(files)
        wait_ready(page)
        page.get_by_role("button", name="Add these photos").click()
        page.get_by_text(f"Added 2 photos to {name}.").wait_for()
    page.get_by_role("button", name="Use my classes").click()
    page.get_by_role("heading", name="2 · Label: Your own classes").wait_for()
    wait_ready(page)
    assert_no_exception(page)
    screenshot(page, "data-own-classes")
