"""Browser: upload a generated photo on /prediction and read the top class the page shows."""

import re

import numpy as np
import pytest

from core.data.synthetic import draw_example
from tests.browser.conftest import assert_no_exception, screenshot, wait_ready


@pytest.mark.browser
def test_prediction_upload_shows_top_class(app_server, page, tmp_path):
    photo = tmp_path / "my_pet.png"
    draw_example(4, np.random.default_rng(3), (320, 260)).save(photo)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 definitely not a whole jpeg")

    # a fresh server serves a deep link from pages/ without the app frame until app.py has run once
    page.goto(app_server)
    page.get_by_text("Pet Lab").first.wait_for()  # app.py has run: st.navigation now owns the URLs
    page.goto(f"{app_server}/prediction")
    wait_ready(page)
    page.get_by_text("Pet Lab").first.wait_for()  # the shared sidebar: the page runs inside app.py
    page.get_by_role("heading", name="Prediction: what's your pet?").wait_for()
    page.get_by_text("1000 ImageNet labels").wait_for()  # the model banner (after loading the model)
    page.locator("[data-testid='stFileUploader']").wait_for()

    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files([str(photo), str(broken)])
    page.locator("[data-testid='stPlotlyChart']").first.wait_for(timeout=180_000)
    wait_ready(page)
    assert_no_exception(page)

    main = page.locator("[data-testid='stMain']")
    text = main.inner_text()
    assert "broken.jpg" in page.locator("[data-testid='stAlert']").all_inner_texts().__str__()
    # a confident answer is an h3 "<class> — NN%", an unsure one a warning "Not sure. Best guess <class> (NN%)"
    verdict = main.locator("h3, [data-testid='stAlert']").filter(has_text=re.compile(r"— \d+%|Not sure\. Best guess"))
    assert verdict.count() == 1  # one good file predicted, the broken one reported
    verdict_text = verdict.first.inner_text()
    assert re.search(r"\d+%", verdict_text)
    assert "inference time" in text and "ms" in text
    page.locator("[data-testid='stImage']").nth(1).wait_for()  # photo + Grad-CAM overlay
    page.locator("[data-testid='stPlotlyChart']").first.scroll_into_view_if_needed()
    shot = screenshot(page, "prediction")
    assert shot.stat().st_size > 10_000
    print(f"top class shown: {verdict_text!r}")
