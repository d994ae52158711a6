"""AppTest: the Training page trains a tiny run, stores it, makes it active and lists it."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.pets import pets_spec
from ui.state import ACTIVE_DATASET, ACTIVE_RUN

TIMEOUT = 300
PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "training.py")


def test_training_page_without_dataset_explains():
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = None
    at.run()
    assert not at.exception
    assert any("Data" in i.value for i in at.info)


def test_training_page_trains_tiny_run_and_lists_it(pets_like):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.run()
    assert not at.exception
    assert at.title[0].value.startswith("🏋️ Training")
    assert [h.value for h in at.header][:3] == [
        "1 · Model and data",
        "2 · Stage 1: body frozen",
        "3 · Stage 2: unfreeze, discriminative learning rates",
    ]
    assert any("BatchNorm" in c.value for c in at.caption)  # the cached-feature difference is stated
    assert len(at.get("plotly_chart")) == 1  # the one-cycle schedule, drawn before training

    at.select_slider(key="train_size").set_value(32)
    at.number_input(key="train_epochs1").set_value(1)
    at.button(key="train_go1").click().run()
    assert not at.exception
    assert any("Trained and stored run" in s.value for s in at.success)
    run_id = at.session_state[ACTIVE_RUN]
    assert run_id and any(run_id in str(df.value) for df in at.dataframe)
    assert any(c.value.startswith("Precision: ") for c in at.caption)  # which precision the run trained in

    at.run()  # the same config again: found, not retrained
    assert not at.exception
    assert any("Already trained" in s.value for s in at.success)
    assert at.button(key="train_go2") is not None


def test_random_init_is_labelled(pets_like):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.run()
    at.radio(key="train_init").set_value("random init (no pretraining)").run()
    assert not at.exception
    assert any("random init" in w.value for w in at.warning)


def test_wrong_typed_run_json_is_one_warning_line(pets_like):
    """The review: a run.json with "created": "yesterday" raised in the runs sort on every page."""
    import json

    from core.settings import sub_dir

    folder = sub_dir("runs") / "badrun"
    folder.mkdir()
    (folder / "model.pt").write_bytes(b"w")
    config = {"dataset": "x", "stages": [{"epochs": 1, "lr_max": 1e-3}]}
    record = {"arch": "mobilenet_v2", "classes": ["a", "b"], "img_size": 64, "title": "t", "config": config}
    (folder / "run.json").write_text(json.dumps({**record, "created": "yesterday"}))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.run()
    assert not at.exception
    skipped = [w.value for w in at.warning if "Skipped run folder" in w.value]
    assert skipped == ["Skipped run folder badrun: run.json.created should be a number, not 'yesterday'"]
