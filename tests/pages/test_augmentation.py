"""AppTest: the Augmentation page on a generated Pets-like folder."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.data.pets import pets_spec
from ui.state import ACTIVE_DATASET

TIMEOUT = 180
PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "augmentation.py")


def make(pets_like) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    return at


def test_page_shows_grid_gallery_histograms_and_code(pets_like):
    at = make(pets_like)
    at.session_state["aug_size"] = 128  # keep it light on a 2-core machine
    at.run()
    assert not at.exception
    assert at.title[0].value.startswith("🎛️ Augmentation")
    assert len(at.get("image")) >= 9 + 7 + 2  # 3x3 grid, resize gallery, sample + normalised tensor
    assert len(at.get("plotly_chart")) == 1
    code = at.code[0].value
    assert "aug_transforms(" in code and "Resize(460)" in code and "seed 0" in code
    assert [h.value for h in at.header] == [
        "Resize methods and padding modes",
        "What the model receives",
        "The fastai code",
    ]


def test_new_samples_bumps_seed_and_controls_update_code(pets_like):
    at = make(pets_like)
    at.session_state["aug_size"] = 128
    at.run()
    at.button(key="aug_new").click().run()
    assert not at.exception
    assert at.session_state["aug_seed"] == 1
    assert "seed 1" in at.code[0].value
    at.toggle(key="aug_presize").set_value(False).run()
    at.radio(key="aug_item_tfm").set_value("resize").run()
    at.radio(key="aug_method").set_value("pad").run()
    at.radio(key="aug_pad_mode").set_value("zeros").run()
    assert not at.exception
    assert "Resize(128, method='pad', pad_mode='zeros')" in at.code[0].value
    at.select_slider(key="aug_rows").set_value(2).run()
    assert not at.exception
    assert "range(4)" in at.code[0].value


def test_without_dataset_asks_for_an_image():
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = None
    at.run()
    assert not at.exception
    assert any("Pick an image" in i.value for i in at.info)


def test_uploaded_bad_file_is_an_error_and_good_file_works(pets_like):
    import io

    from PIL import Image

    at = make(pets_like)
    at.session_state["aug_size"] = 128
    at.session_state["aug_source"] = "Upload"
    at.run()
    at.file_uploader(key="aug_upload").set_value(("oops.png", b"no pixels here", "image/png")).run()
    assert not at.exception
    assert any("oops.png" in e.value for e in at.error)
    buf = io.BytesIO()
    Image.new("RGBA", (90, 60), (10, 200, 30, 128)).save(buf, "PNG")
    at.file_uploader(key="aug_upload").set_value(("ok.png", buf.getvalue(), "image/png")).run()
    assert not at.exception
    assert not at.error
    assert len(at.get("image")) >= 18
