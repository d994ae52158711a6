"""Browser: a tab's settings survive moving between pages and a reload (?s=<token> in the URL)."""

import re

import numpy as np
import pytest

from core.data.synthetic import draw_example, make_folder_dataset
from tests.browser.conftest import assert_no_exception, screenshot, wait_ready

pytestmark = pytest.mark.browser


def go_to(page, title: str, heading: str) -> None:
    """Click a page in the sidebar navigation, as a student does."""
    page.locator("[data-testid='stSidebarNav']").get_by_role("link", name=title).click()
    page.get_by_role("heading", name=heading).wait_for()
    wait_ready(page)


def code_text(page) -> str:
    page.locator("[data-testid='stCode']").first.wait_for()
    return page.locator("[data-testid='stCode']").first.inner_text()


def test_settings_dataset_and_photo_survive_pages_and_reload(page, app_server, tmp_path):
    make_folder_dataset(tmp_path / "shoes" / "shoes", n_per_class=10, classes=("boot", "sandal"))
    photo = tmp_path / "my cat.jpg"
    draw_example(2, np.random.default_rng(5), (120, 90)).save(photo, "JPEG")

    page.goto(app_server)
    wait_ready(page)
    page.get_by_role("heading", name="3 · Explore").wait_for()
    token = re.search(r"[?&]s=([A-Za-z0-9_-]+)", page.url).group(1)

    # a class chip, then another dataset (a folder wrapped in one more folder): the chip goes
    page.locator("[data-testid='stImage']").nth(11).wait_for()  # the sample grid is drawn
    wait_ready(page)
    chooser = page.get_by_role("combobox", name="Show only these classes")
    chooser.click()
    chooser.fill("Bengal")
    page.get_by_role("option", name="Bengal").click()
    page.keyboard.press("Escape")
    wait_ready(page)
    assert page.locator("[data-testid='stMultiSelect'] [data-tag]:visible").filter(has_text="Bengal").count() == 1
    page.get_by_role("tab", name="Local folder").click()
    panel = page.locator("[data-testid='stTabPanel']:visible")
    panel.get_by_label("Folder of images (searched recursively)").fill(str(tmp_path / "shoes"))
    panel.get_by_text("the parent folder's name").click()
    panel.get_by_role("button", name="Use this folder").click()
    page.get_by_role("heading", name="2 · Label: shoes").wait_for()
    page.get_by_role("heading", name="3 · Explore").wait_for()
    wait_ready(page)
    assert page.locator("[data-testid='stMultiSelect'] [data-tag]:visible").filter(has_text="Bengal").count() == 0
    body = page.inner_text("body")
    assert "Only one class" not in body  # labelled from below the wrapping folder: boot, sandal
    sidebar = page.locator("[data-testid='stSidebar']").inner_text()
    assert "shoes" in sidebar and "20" in sidebar

    # Augmentation knobs and an uploaded photo
    go_to(page, "Augmentation", "Augmentation: one photo, many training samples")
    wait_ready(page)  # during a rerun the old and the new checkbox can both be in the page for a moment
    page.locator("[data-testid='stCheckbox']").filter(has_text="do_flip").first.click()
    seed_box = page.get_by_label("Seed")
    seed_box.fill("7")
    seed_box.press("Enter")
    page.locator("[data-testid='stCode']").filter(has_text="do_flip=False").wait_for()
    page.locator("[data-testid='stCode']").filter(has_text="seed 7").wait_for()
    page.get_by_role("radio", name="Upload").or_(page.get_by_role("button", name="Upload", exact=True)).first.click()
    wait_ready(page)
    page.locator("input[type='file']").first.set_input_files(str(photo))
    page.get_by_text("first sample, pixels in [0, 1]").wait_for()
    wait_ready(page)

    go_to(page, "Data", "3 · Explore")
    assert token in page.url
    go_to(page, "Augmentation", "Augmentation: one photo, many training samples")
    page.get_by_text("uploaded earlier in this tab").wait_for()
    code = code_text(page)
    assert "do_flip=False" in code and "seed 7" in code

    page.reload()
    wait_ready(page)
    page.get_by_role("heading", name="Augmentation: one photo, many training samples").wait_for()
    page.get_by_text("uploaded earlier in this tab").wait_for()
    wait_ready(page)
    assert f"s={token}" in page.url
    code = code_text(page)
    assert "do_flip=False" in code and "seed 7" in code
    assert "shoes" in page.locator("[data-testid='stSidebar']").inner_text()  # the dataset, after a reload
    assert_no_exception(page)
    screenshot(page, "state-after-reload")
