"""Browser: a deep link on a freshly started server still opens inside app.py's frame."""

import pytest

from tests.browser.conftest import assert_no_exception, streamlit_server, wait_ready

pytestmark = pytest.mark.browser


def test_first_visit_by_deep_link_gets_navigation_and_sidebar(page, browser_data, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _, images = browser_data
    with streamlit_server(data, images) as url:
        page.goto(f"{url}/augmentation")  # nobody has loaded the root on this server yet
        wait_ready(page)
        page.get_by_role("heading", name="Augmentation", exact=False).first.wait_for()
        sidebar = page.locator("[data-testid='stSidebar']")
        sidebar.get_by_text("Pet Lab").wait_for()
        nav = page.locator("[data-testid='stSidebarNav']").inner_text()
        assert "1 · Data" in nav and "4 · Use the model" in nav
        assert "app" not in nav.split()  # not the pages/-folder fallback listing
        assert_no_exception(page)
