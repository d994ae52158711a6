"""AppTest for the Layers page on the offline ImageNet mobilenet_v2 and a generated dataset."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.data.datasets import DatasetSpec

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


def test_occlusion_button(app, monkeypatch):
    """The map is computed when asked for, then shown from st.cache_data: a rerun (any widget) does not redo it."""
    import json

    from core.inside import occlusion

    calls = []
    real = occlusion.occlusion_map
    monkeypatch.setattr(occlusion, "occlusion_map", lambda *a, **k: calls.append(k) or real(*a, **k))
    app.session_state["viz_occ_patch"] = 64
    app.session_state["viz_occ_stride"] = 32
    app.run()
    assert not [c for c in app.get("plotly_chart") if c.key == "viz_occ_prob"]  # nothing until asked
    app.button(key="viz_occ_go").click()
    app.run()
    assert not app.exception, app.exception
    [chart] = [c for c in app.get("plotly_chart") if c.key == "viz_occ_prob"]
    heat = json.loads(chart.proto.spec)["data"][0]["z"]  # plotly sends arrays as {"bdata", "shape": "6, 6"}
    shape = [int(n) for n in heat["shape"].split(",")] if isinstance(heat, dict) else [len(heat), len(heat[0])]
    assert shape == [6, 6]  # 224 px, 64 px square, stride 32: 0..160 step 32 = 6 positions
    app.run()
    assert [c for c in app.get("plotly_chart") if c.key == "viz_occ_prob"] and len(calls) == 1  # from the cache
    app.select_slider(key="viz_occ_stride").set_value(16).run()
    assert not [c for c in app.get("plotly_chart") if c.key == "viz_occ_prob"]  # other settings: asked again


def test_resnet_run_without_imagenet_weights(pets_like, monkeypatch):
    """A fine-tuned resnet18 run is active but resnet18's ImageNet weights are not on this machine."""
    from core.nets import models
    from core.storage import atomic_write_json
    from ui.state import runs_dir

    def offline(arch):
        raise models.WeightsUnavailable(f"ImageNet weights for {arch} are not on this machine (test).")

    monkeypatch.setattr(models, "_pretrained_torchvision", offline)
    run = runs_dir() / "run-resnet"
    run.mkdir(parents=True)
    models.save_weights(models.create_model("resnet18", 6, pretrained=False), run / models.WEIGHTS_FILE)
    classes = ["Bengal", "Persian", "Siamese", "beagle", "pug", "samoyed"]
    config = {"dataset": "pets-like", "arch": "resnet18", "stages": [{"epochs": 1, "lr_max": 1e-3}]}
    record = {"arch": "resnet18", "classes": classes, "img_size": 64, "title": "tiny run", "config": config}
    atomic_write_json(run / models.RECORD_FILE, record)

    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.session_state["active_dataset"] = DatasetSpec(name="pets-like", kind="folder", root=str(pets_like))
    at.session_state["active_run"] = "run-resnet"
    at.session_state["viz_stage"] = "layer1"
    at.session_state["viz_cmp_on"] = True
    at.run()
    assert not at.exception, at.exception
    assert any("tiny run" in m.value for m in at.markdown)
    warnings = [w.value for w in at.warning]
    assert any("not on this machine" in w for w in warnings)  # the Filters tab explains, no crash
    infos = [i.value for i in at.info]
    assert any("not on this machine" in i for i in infos)  # the ImageNet column of the comparison
    assert any("(B, 64, 16, 16)" in c.value for c in at.caption)  # resnet18 layer1 at 64 px


def test_filter_change_note_says_when_the_body_did_not_change():
    import numpy as np

    from ui.layers import filter_change_note

    value, note = filter_change_note(np.zeros(32))  # a frozen-only run: ImageNet's filters exactly
    assert value == "0 (unchanged)" and "did not change" in note and "frozen-only" in note
    value, note = filter_change_note(np.array([0.01, 0.02, 0.03]))
    assert value == "2.00%" and "barely moves" in note


def test_channel_grid_follows_the_stages_channel_count(app):
    """features.3 has 24 channels: the grid offers 16 or all 24 (not 32 and 64 that showed 24 anyway)."""
    app.run()
    assert not app.exception, app.exception
    slider = app.select_slider(key="viz_nshow")
    assert slider.options == ["16", "24"] and slider.value == 24
    assert any("strongest 24 channels" in spec.proto.spec for spec in app.get("plotly_chart"))
    app.selectbox(key="viz_stage").set_value("features.1").run()  # 16 channels: nothing to choose
    assert not app.exception, app.exception
    assert not [s for s in app.select_slider if s.key == "viz_nshow"]
    assert any("strongest 16 channels" in spec.proto.spec for spec in app.get("plotly_chart"))
    assert app.number_input(key="viz_channel").max == 15


def test_channel_counts():
    from ui.layers import channel_counts

    assert channel_counts(24) == [16, 24]
    assert channel_counts(16) == [16]
    assert channel_counts(8) == [8]
    assert channel_counts(1280) == [16, 32, 64]


def test_class_mode_patch_index_is_a_worker_job_a_student_may_ask_for(app, data_folder, monkeypatch):
    from core.auth import ENV_PASSWORD
    from core.teach import job_records, jobs

    monkeypatch.setenv(ENV_PASSWORD, "correct horse")  # class mode; this tab is a student's
    monkeypatch.setenv("PETLAB_LOCAL_WORKER", "0")  # the test runs the queue itself
    app.session_state["viz_stage"] = "stem (features.0)"
    app.run()
    app.number_input(key="viz_patch_n").set_value(12).run()
    with monkeypatch.context() as m:
        m.setattr(jobs, "STUDENT_PATCH_IMAGES", 10)  # too many for a student: refused where it runs
        app.button(key="viz_patch_build").click().run()
        assert any("at most 10 images" in e.value for e in app.error)
    assert job_records.list_jobs(data_folder) == []
    app.button(key="viz_patch_build").click().run()
    assert not app.exception, app.exception
    [job] = job_records.list_jobs(data_folder)
    assert job.kind == "patch_index" and job.queued_by.startswith("student:") and len(job.patch.paths) == 12
    assert any("Queued for the worker" in c.value for c in app.caption)
    assert not app.tabs[2].get("image")  # not built in the page

    queue = jobs.make_queue(data_folder)
    while (task := queue.huey.dequeue()) is not None:
        queue.huey.execute(task)
    assert job_records.list_jobs(data_folder)[0].status == "done"
    app.run()
    assert not app.exception, app.exception
    assert len(app.tabs[2].get("image")) == 9  # read from the index the worker saved


def test_a_damaged_queue_tells_the_student_leaves_no_ghost_and_the_teacher_repairs_it(
    app, data_folder, pets_like, monkeypatch
):
    """Issue 18, item 12: with jobs/queue.db damaged, Build raised DatabaseError, left a job "queued" forever
    and refused the student's later requests as still waiting."""
    from core.auth import ENV_PASSWORD
    from core.data.pets import pets_spec
    from core.teach import job_records, jobs
    from tests.core.teach.test_jobs import damage_queue_file
    from tests.pages.test_class_page import CLASS_PAGE, open_page

    monkeypatch.setenv(ENV_PASSWORD, "correct horse")  # class mode; this tab is a student's
    monkeypatch.setenv("PETLAB_LOCAL_WORKER", "0")
    jobs.make_queue(data_folder)
    damage_queue_file(data_folder)
    app.session_state["viz_stage"] = "stem (features.0)"
    app.run()
    app.number_input(key="viz_patch_n").set_value(12).run()
    for _ in range(2):
        app.button(key="viz_patch_build").click().run()
        assert not app.exception, app.exception
        assert any("nothing was queued" in e.value for e in app.error)
        assert not any("one at a time" in e.value for e in app.error)
        assert job_records.list_jobs(data_folder) == []  # no ghost

    teacher = open_page(CLASS_PAGE, None, pets_spec(pets_like), teacher=data_folder)
    assert not teacher.exception
    assert any("cannot take new jobs" in e.value for e in teacher.error)
    teacher.button(key="jobs_repair_queue").click().run()
    assert not teacher.exception and any("repaired" in s.value for s in teacher.success)
    assert not any("cannot take new jobs" in e.value for e in teacher.error)
    app.button(key="viz_patch_build").click().run()
    assert not app.error
    [job] = job_records.list_jobs(data_folder)
    assert job.kind == "patch_index" and job.status == "queued"
