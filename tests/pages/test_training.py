"""AppTest: the Training page trains a tiny run, stores it, makes it active and lists it."""

from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from core.data.pets import pets_spec
from core.settings import sub_dir
from core.store.records import LRFinderResult
from ui.state import ACTIVE_DATASET, ACTIVE_RUN

TIMEOUT = 300
PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "training.py")
APP = str(Path(__file__).resolve().parents[2] / "app.py")


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
    assert run_id and any(run_id in str(table.value) for table in at.table)  # the runs table
    assert any(c.value.startswith("Precision: ") for c in at.caption)  # which precision the run trained in
    # The page shows the finished run at once: no Train/Stop buttons, stage 2 ready, the run overlaid.
    assert any("Already trained" in s.value for s in at.success)
    assert not [b for b in at.button if b.key in ("train_go1", f"train_stop_{run_id}")]
    go2 = at.button(key="train_go2")
    assert go2.label == "▶ Unfreeze and train stage 2" and not go2.disabled  # stage 2 can start from it
    assert not any("Train stage 1" in i.value for i in at.info)
    assert run_id in at.multiselect(key="train_overlay").value
    epochs = next(df.value for df in at.dataframe if "train_loss" in df.value.columns)
    assert epochs["stage"].tolist() == [1] and epochs["epoch"].tolist() == [1]  # 1-based, as in "stage 1/2"

    at.run()  # the same config again: found, not retrained
    assert not at.exception
    assert any("Already trained" in s.value for s in at.success)
    assert not any("Trained and stored run" in s.value for s in at.success)  # the message was shown once
    assert not at.button(key="train_go2").disabled
    assert not any("older Pet Lab" in w.value for w in at.warning)  # one number: the last epoch is the stored one

    # a run an older Pet Lab trained in bf16: validated in bf16, predictions stored in fp32 -> two numbers, said so
    from core.storage import atomic_write_bytes, atomic_write_json, read_json
    from core.store import runs

    folder = sub_dir("runs") / run_id
    atomic_write_json(folder / "run.json", {**read_json(folder / "run.json"), "precision": "bf16"})
    preds = runs.load_preds(folder)
    wrong = np.roll(np.eye(preds.n_classes, dtype=np.float32)[preds.targets], 1, axis=1)
    atomic_write_bytes(folder / runs.PREDS_FILE, runs.Preds(wrong, preds.targets).to_npz())  # every one wrong
    at.run()
    assert not at.exception
    assert any("older Pet Lab that validated in bf16" in w.value and "100.0%" in w.value for w in at.warning)


def test_use_valley_sets_lr_max(pets_like):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    lrs = [1e-7 * 1.2**i for i in range(40)]
    at.session_state["train_lrfind_history"] = [
        LRFinderResult(lrs, [2.0] * 40, {"valley": 2.5e-3}, {"valley": (2.5e-3, 1.5)}, "frozen", True, 1.0)
    ]
    at.run()
    assert at.number_input(key="train_lr1").value == 3e-3
    at.button(key="train_use_valley").click().run()
    assert not at.exception
    assert at.number_input(key="train_lr1").value == 2.5e-3
    assert any("lr_max=2.5e-03" in chart.proto.spec for chart in at.get("plotly_chart"))  # the schedule follows


def test_stop_says_nothing_was_saved_and_buttons_come_back(pets_like, monkeypatch):
    from core.store import runs, training_lock

    monkeypatch.setattr(training_lock, "stop_requested", lambda runs_dir: True)  # Stop pressed before the first batch
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.run()
    at.select_slider(key="train_size").set_value(32)
    at.number_input(key="train_epochs1").set_value(1)
    at.toggle(key="train_fast").set_value(False)
    at.button(key="train_go1").click().run()
    assert not at.exception
    assert any("Stopped: nothing was saved" in w.value for w in at.warning)
    assert not at.button(key="train_go1").disabled
    assert not [b for b in at.button if b.key.startswith("train_stop_")]
    assert runs.list_runs(sub_dir("runs"))[0] == []


def test_one_class_dataset_is_refused_with_a_message(tmp_path):
    from core.data.synthetic import make_pets_like

    one = make_pets_like(tmp_path / "one", n_per_class=12, classes=("fashion",))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(one)
    at.run()
    assert not at.exception
    assert any("Only one class (fashion)" in e.value for e in at.error)  # core.data.datasets.check_dataset says why
    assert not [b for b in at.button if b.key == "train_go1"]


def other_dataset_run(pets_like) -> str:
    """A stored run whose record says it was trained on another dataset."""
    from tests.factories import run_config, run_record, store_run

    record = run_record(run_config("another-fingerprint"), title="mobilenet_v2 32px: 1 ep", dataset="fashion")
    return store_run(sub_dir("runs"), record, "otherrun", weights=None)


def test_runs_list_shows_the_active_datasets_runs_with_a_dataset_column(pets_like):
    other = other_dataset_run(pets_like)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.run()
    assert not at.exception
    assert any("No runs on this dataset yet" in c.value for c in at.caption)
    at.toggle(key="train_all_runs").set_value(True).run()
    table = next(t.value for t in at.table if "dataset" in getattr(t.value, "columns", []))
    assert table["run"].tolist() == [other] and table["dataset"].tolist() == ["fashion"]
    assert "fashion" in at.selectbox(key="train_pick").options[0]  # labels name the dataset too


def test_sidebar_switcher_starts_on_the_imagenet_model_and_offers_this_datasets_runs(pets_like, monkeypatch):
    from ui.runs import NO_RUN, SIDEBAR_RUN_KEY

    monkeypatch.setenv("PETLAB_DATASET", str(pets_like))
    other_dataset_run(pets_like)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    picker = at.sidebar.selectbox(key=SIDEBAR_RUN_KEY)
    assert picker.index == 0 and picker.value == NO_RUN  # never "Choose an option"
    assert picker.options == ["ImageNet-pretrained (no run)"]  # the other dataset's run is not offered
    # (that the switcher follows a run trained on the page is tested in the browser: AppTest of app.py
    # reruns once per run through ensure_app_frame, which drops button clicks)


def test_wrong_typed_run_json_is_one_warning_line(pets_like):
    """The review: a run.json with "created": "yesterday" raised in the runs sort on every page."""
    import json

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


def test_random_init_is_labelled(pets_like):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.run()
    at.radio(key="train_init").set_value("random init (no pretraining)").run()
    assert not at.exception
    assert any("random init" in w.value for w in at.warning)


def test_prepared_full_runs_open_as_already_trained_with_fast_on(pets_like):
    """`make prepare` stores full fastai runs; the page (Fast on by default) finds them and continues from them."""
    from dataclasses import replace

    from core.data.datasets import scan_dataset
    from core.prep.prepare import PrepOptions, lesson_runs, run_config
    from tests.pages.helpers import stored_run

    fingerprint = scan_dataset(pets_spec(pets_like)).fingerprint
    options = PrepOptions(run_arch="mobilenet_v2", img_size=64, bs=16)  # the lesson's recipe at the page's size
    frozen = run_config(lesson_runs()["resnet34-frozen"], fingerprint, options)
    unfrozen = run_config(lesson_runs()["resnet34-unfrozen"], fingerprint, options)
    assert not frozen.stages[0].fast and unfrozen.stages[0] == frozen.stages[0]
    frozen_id, unfrozen_id = stored_run(frozen), stored_run(unfrozen)

    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    at.run()
    at.checkbox(key="train_augment").check()  # the lesson's settings: augment, fit_one_cycle(4) at fastai's 1e-3
    at.number_input(key="train_epochs1").set_value(4)
    at.number_input(key="train_lr1").set_value(1e-3).run()
    assert not at.exception
    assert at.toggle(key="train_fast").value  # Fast stays the default
    assert [s.value for s in at.success if s.value.startswith(f"Already trained: {frozen_id[:8]}")]
    assert any("full fastai way" in c.value for c in at.caption)
    assert not [b for b in at.button if b.key == "train_go1"]
    at.button(key="train_open1").click().run()  # the prepared run becomes the active model
    assert not at.exception and at.session_state[ACTIVE_RUN] == frozen_id

    at.number_input(key="train_epochs2").set_value(2).run()  # stage 2 continues from the full run: prepared too
    assert not at.exception
    assert [b for b in at.button if b.key == "train_open2"] and not [b for b in at.button if b.key == "train_go2"]
    at.button(key="train_open2").click().run()
    assert at.session_state[ACTIVE_RUN] == unfrozen_id

    fast = replace(frozen, stages=(replace(frozen.stages[0], fast=True, views=2),))
    assert runs_found(fast) == (frozen, frozen_id)  # the lookup itself, both ways
    assert runs_found(replace(frozen, stages=(replace(frozen.stages[0], fast=True, views=2), *unfrozen.stages[1:]))) \
        == (unfrozen, unfrozen_id)  # fmt: skip


def runs_found(config):
    from core.store import runs

    found_config, run = runs.find_frozen_run(sub_dir("runs"), config, views=2)
    return found_config, run.run_id if run else None


def test_a_learning_rate_reads_the_same_everywhere(pets_like):
    """Issue 19 item 10: the button said "Use valley (1.4e-03)" while the run title said 1.45e-03. One format
    (core.nets.schedules.lr_text) on the button, the suggestion list, the chart's legend, the schedule's title, the
    number input and the run title; the value applied is the value shown."""
    import json

    from core.store.records import RunConfig, StageConfig

    valley = 0.0014454397707459258  # what lr_find returns: more digits than anyone reads
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[ACTIVE_DATASET] = pets_spec(pets_like)
    lrs = [1e-7 * 1.2**i for i in range(40)]
    at.session_state["train_lrfind_history"] = [
        LRFinderResult(lrs, [2.0] * 40, {"valley": valley}, {"valley": (valley, 1.5)}, "frozen", True, 1.0)
    ]
    at.run()
    button = at.button(key="train_use_valley")
    assert button.label == "Use valley (1.45e-03) as lr_max"
    assert any("`1.45e-03`" in m.value for m in at.markdown)
    button.click().run()
    assert not at.exception
    lr = at.number_input(key="train_lr1")
    assert lr.value == 1.45e-3 and lr.proto.format == "%.2e"  # shown in the box as 1.45e-3
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    assert any(
        s["layout"].get("title", {}).get("text", "").startswith("fit_one_cycle(2, lr_max=1.45e-03)") for s in specs
    )
    assert any(t.get("name") == "valley: 1.45e-03" for s in specs for t in s["data"])
    title = RunConfig(dataset="x", stages=(StageConfig(epochs=2, lr_max=lr.value, fast=True),)).title()
    assert title.endswith("@ 1.45e-03")
