"""AppTest for the Layers page on the offline ImageNet mobilenet_v2 and a generated dataset."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.datasets import DatasetSpec

TIMEOUT = 300
PAGE = Path(__file__).resolve().parents[2] / "pages" / "layers.py"


@pytest.fixture
def app(pets_like):
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.session_state["active_dataset"] = DatasetSpec(name="pets-like", kind="folder", root=str(pets_like))
    at.session_state["viz_stage"] = "features.3"  # (B, 24, 56, 56): quick
    return at


def test_first_load_shows_feature_grid(app):
    app.run()
    assert not app.exception, app.exception
    assert app.title[0].value.startswith("🔬 Layers")
    assert [t.label for t in app.tabs][:3] == ["Feature maps", "Filters", "Top patches"]
    assert any("Prediction:" in m.value for m in app.markdown)
    assert any("strongest" in c.value for c in app.caption)
    assert app.dataframe  # the stage table
    assert not app.error


def test_heavy_sections_on_request(app):
    app.session_state["viz_stage"] = "stem (features.0)"
    app.run()
    app.toggle(key="viz_proj_on").set_value(True)
    app.toggle(key="viz_cmp_on").set_value(True)
    app.number_input(key="viz_patch_n").set_value(12)
    app.run()
    assert not app.exception, app.exception
    app.button(key="viz_patch_build").click()
    app.run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert len(app.tabs[2].get("image")) == 9  # the 3x3 grid of top patches from the saved index
    assert len(app.tabs[3].get("image")) == 3  # the image, deconvnet, guided backprop
    # the comparison shows the random-init column and the ImageNet column, and says no run is chosen
    assert any("No fine-tuned run chosen" in i.value for i in app.info)


def test_occlusion_button(app):
    app.session_state["viz_occ_patch"] = 64
    app.session_state["viz_occ_stride"] = 32
    app.run()
    app.button(key="viz_occ_go").click()
    app.run()
    assert not app.exception, app.exception
    assert "viz_occ_result" in app.session_state
    result = app.session_state["viz_occ_result"][1]
    assert result.prob.shape == (6, 6)  # 224 px, 64 px square, stride 32: 0..160 step 32 = 6 positions
