"""AppTest: the Interpretation page on a stored run (hand-made predictions in the real run format)."""

from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from core.settings import sub_dir
from core.store import runs
from core.store.records import EpochRow
from tests.factories import run_config, run_record, store_run
from ui.state import ACTIVE_RUN

TIMEOUT = 120
PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "interpretation.py")


def make_run(pets_like, dataset: str = "test") -> str:
    """A run folder exactly as train_run writes it, with known predictions (trained on `dataset`, a fingerprint)."""
    classes = ["Bengal", "Persian", "Siamese", "beagle", "boxer", "pug"]
    paths = sorted(str(p) for p in Path(pets_like).glob("*.jpg"))[:12]
    targets = np.array([classes.index(Path(p).name.rsplit("_", 1)[0]) for p in paths])
    probs = np.full((12, 6), 0.02, np.float32)
    probs[np.arange(12), targets] = 0.9
    probs[0] = [0.1, 0.8, 0.02, 0.02, 0.03, 0.03]  # one mistake: Bengal called Persian
    epochs = [EpochRow(0, 0, train_loss=1.0, valid_loss=0.9, error_rate=1 / 12)]
    record = run_record(run_config(dataset, img_size=64), classes, epochs, "tiny test run", valid_paths=tuple(paths))
    return store_run(sub_dir("runs"), record, "testrun", None, runs.Preds(probs, targets))


def test_interpretation_without_run_explains():
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("No run is active" in i.value for i in at.info)


def test_interpretation_shows_matrix_tables_and_images(pets_like):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_RUN] = make_run(pets_like)
    at.run()
    assert not at.exception
    assert [h.value for h in at.header] == [
        "Scoreboard",
        "Confusion matrix",
        "Top losses",
        "Most confused",
        "Per-class error",
    ]
    assert at.metric[0].value == "8.33%"
    assert len(at.get("plotly_chart")) == 1
    assert at.selectbox(key="interp_cell").value == (0, 1)  # the one mistake comes first
    captions = [c for img in at.get("image") for c in img.captions]
    assert "p=0.80" in captions  # the mistaken image in the selected cell
    assert "Persian / Bengal / 2.30 / 0.10" in captions  # top loss: predicted / actual / loss / prob
    tables = [df.value for df in at.dataframe]
    assert any("Parkhi" in " ".join(map(str, t.get("model", []))) for t in tables if hasattr(t, "get"))
    at.number_input(key="interp_min_val").set_value(2).run()
    assert any("No pair" in s.value for s in at.success)


def test_stale_selection_from_another_run_never_raises(pets_like):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_RUN] = make_run(pets_like)
    at.session_state["interp_shown"] = ("testrun", [(30, 12), ("x", None), (5, 0)])  # 37 classes' cells
    at.session_state["interp_cell"] = (30, 12)
    at.run()
    assert not at.exception
    shown = [m.value for m in at.markdown if m.value.startswith("**actual")]
    assert shown == ["**actual pug, predicted Bengal**: 0 images"]  # the one valid cell of the stale list
    at.session_state["interp_shown"] = ("another-run", [(0, 1)])
    at.run()
    assert not at.exception
    shown = [m.value for m in at.markdown if m.value.startswith("**actual")]
    assert shown == ["**actual Bengal, predicted Persian**: 1 image"]  # the picker's cell, not the old run's


def test_object_array_preds_are_a_warning_not_a_traceback(pets_like):
    """The review: a preds.npz with object arrays surfaced numpy's allow_pickle error as a traceback."""
    run_id = make_run(pets_like)
    np.savez(sub_dir("runs") / run_id / runs.PREDS_FILE, probs=np.array([{"x": 1}], dtype=object), targets=[0])
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_RUN] = run_id
    at.run()
    assert not at.exception
    assert any("Python objects" in w.value for w in at.warning)


def test_wrong_typed_run_json_is_one_warning_everywhere(pets_like):
    """The review: "created": "yesterday" took down every page (sidebar sort); "classes": 5 broke this page."""
    import json

    good = make_run(pets_like)
    for name, change in (("bad1", {"created": "yesterday"}), ("bad2", {"classes": 5}), ("bad3", {"epochs": "oops"})):
        folder = sub_dir("runs") / name
        folder.mkdir()
        (folder / "model.pt").write_bytes((sub_dir("runs") / good / "model.pt").read_bytes())
        record = json.loads((sub_dir("runs") / good / "run.json").read_text())
        (folder / "run.json").write_text(json.dumps({**record, **change}))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_RUN] = "bad2"
    at.run()
    assert not at.exception  # the broken run is not offered (the picker lists only valid runs)
    assert any("No run is active" in i.value for i in at.info)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_RUN] = good
    at.run()
    assert not at.exception and at.metric[0].value == "8.33%"  # the good run beside them still works


def test_fewer_valid_paths_than_predictions_is_a_note_not_a_crash(pets_like):
    """A record listing fewer validation paths than preds.npz has rows: the top losses and the confusion
    cells index past the list; the page shows the images it has and says how many paths are missing."""
    import json

    run_id = make_run(pets_like)
    record_file = sub_dir("runs") / run_id / "run.json"
    record = json.loads(record_file.read_text())
    record["valid_paths"] = record["valid_paths"][:3]  # rows 3..11 have no path
    record_file.write_text(json.dumps(record))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_RUN] = run_id
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Persian / Bengal / 2.30 / 0.10" in [c for img in at.get("image") for c in img.captions]  # row 0: a path
    captions = [c.value for c in at.caption]
    assert "Bengal / Bengal / 0.11 / 0.90 (image missing)" in captions  # a top loss past the list
    assert any("9 validation image paths were not recorded" in c for c in captions), captions
    at.selectbox(key="interp_cell").set_value((1, 1)).run()  # Persian rows 10 and 11: past the list
    assert not at.exception, [e.value for e in at.exception]
    assert {"(image 10 is no longer on disk)", "(image 11 is no longer on disk)"} <= {c.value for c in at.caption}
