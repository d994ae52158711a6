"""AppTest: the teacher's Class page (queue the lesson, cancel, publish and delete runs, students' classes)
and the sidebar's job box on every page."""

import io
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core import auth
from core.auth import ENV_PASSWORD, STUDENT, Identity
from core.data.pets import pets_spec
from core.store import runs
from core.teach import classroom, job_records, jobs
from tests.factories import run_record, store_run
from ui.auth import SIGNED_IN_KEY
from ui.state import ACTIVE_DATASET

TIMEOUT = 120
ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
CLASS_PAGE = str(ROOT / "pages" / "class.py")
DATA_PAGE = str(ROOT / "pages" / "data.py")
PASSWORD = "correct horse"


@pytest.fixture
def class_mode(monkeypatch, pets_like):
    monkeypatch.setenv(ENV_PASSWORD, PASSWORD)
    monkeypatch.setenv("PETLAB_DATASET", str(pets_like))
    monkeypatch.setenv("PETLAB_LOCAL_WORKER", "0")  # jobs stay queued: no worker process in these tests


def as_teacher(at: AppTest, base: Path) -> AppTest:
    """This AppTest session signed in as the teacher, as after typing the password: the sign-in on the server,
    its id in the session's own memory (no URL or cookie involved)."""
    sign_in_id, _cookie = auth.start_sign_in(base, PASSWORD)
    at.session_state[SIGNED_IN_KEY] = sign_in_id
    return at


def open_page(script: str, query: dict | None = None, dataset=None, teacher: Path | None = None) -> AppTest:
    """Run a page; teacher: the data folder of a teacher's sign-in this session holds."""
    at = AppTest.from_file(script, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    if dataset is not None:
        at.session_state[ACTIVE_DATASET] = dataset
    if teacher is not None:
        as_teacher(at, teacher)
    return at.run()


def fake_run(base: Path, rid: str) -> None:
    """A stored run folder with a valid record (its weights are not a model: nothing here loads them)."""
    store_run(base / "runs", run_record(title=f"run {rid}", epochs=0), rid)


def test_students_cannot_open_the_class_page(class_mode):
    at = open_page(CLASS_PAGE)
    assert not at.exception
    assert any("teacher's" in e.value for e in at.error) and not at.header


def test_teacher_queues_the_lesson_and_cancels_a_job(class_mode, data_folder, pets_like):
    at = open_page(CLASS_PAGE, None, pets_spec(pets_like), teacher=data_folder)
    assert not at.exception
    assert [h.value for h in at.header] == ["1 · Class dataset and model", "2 · Queue the lesson", "3 · Training queue",
                                            "4 · Runs", "5 · Students' own classes"]  # fmt: skip
    at.select_slider(key="class_size").set_value(32)
    at.button(key="class_queue_go").click().run()
    assert not at.exception
    assert any("Queued 3 runs" in s.value for s in at.success)
    queued = job_records.list_jobs(data_folder)
    assert [j.status for j in queued] == ["queued"] * 3 and "mobilenet_v2 32px" in queued[0].title
    at.run()
    at.button(key=f"jobs_stop_page_{queued[-1].job_id}").click().run()
    assert [j.status for j in job_records.list_jobs(data_folder)] == ["queued", "queued", "cancelled"]


def test_teacher_publishes_and_deletes_runs_and_sets_the_class_dataset(class_mode, data_folder, pets_like):
    fake_run(data_folder, "aaaa1111")
    fake_run(data_folder, "bbbb2222")
    at = open_page(CLASS_PAGE, None, pets_spec(pets_like), teacher=data_folder)
    at.selectbox(key="class_run").set_value("bbbb2222")
    at.button(key="class_publish_run").click().run()
    assert classroom.read_class_settings(data_folder).model_run == "bbbb2222"
    at.selectbox(key="class_run").set_value("bbbb2222")
    at.button(key="class_delete_run").click().run()
    assert not at.exception
    assert [r.run_id for r in runs.list_runs(data_folder / "runs")[0]] == ["aaaa1111"]
    assert classroom.read_class_settings(data_folder).model_run is None  # the deleted class model is unpublished
    at.button(key="class_set_dataset").click().run()
    assert classroom.read_class_settings(data_folder).dataset == pets_spec(pets_like)


def test_teacher_publishes_a_students_classes(class_mode, data_folder, pets_like):
    student = Identity(STUDENT, "d" * 24)
    store = classroom.own_store(data_folder, student)
    for name in ("cup", "pen"):
        store.add_class(name)
        for shade in (1, 2):
            buf = io.BytesIO()
            Image.new("RGB", (20, 20), (shade * 40, len(name), 0)).save(buf, "PNG")
            store.add_photo(name, buf.getvalue())
    classroom.touch_session(data_folder, student)
    at = open_page(CLASS_PAGE, None, pets_spec(pets_like), teacher=data_folder)
    assert at.metric[0].value == "1"  # one student connected
    at.button(key=f"class_pub_{student.tab}").click().run()
    assert not at.exception
    assert at.session_state[ACTIVE_DATASET].root.endswith("published/class-student-1")  # no token in the name


def test_sidebar_job_box_on_every_page(class_mode, data_folder, pets_like):
    from core.data.datasets import scan_dataset

    scan = scan_dataset(pets_spec(pets_like))
    teacher = Identity(auth.TEACHER, "e" * 24)
    record = jobs.submit(data_folder, teacher, jobs.lesson_plan(scan.fingerprint, img_size=32)[0][1], scan.spec)
    student = open_page(APP)
    assert not student.exception
    assert any("1 queued" in c.value for c in student.sidebar.caption)
    assert not [b for b in student.sidebar.button if b.key.startswith("jobs_stop")]  # no Stop for a student
    teacher_at = open_page(APP, teacher=data_folder)
    assert [
        b.label for b in teacher_at.sidebar.button if b.key.startswith("jobs_stop")
    ] == []  # queued: cancel on Class
    job_records.update_job(data_folder, record.job_id, status="running", pid=None, host="elsewhere", updated=9e12)
    teacher_at.run()
    assert [b.label for b in teacher_at.sidebar.button if b.key.startswith("jobs_stop")] == ["⏹ Stop"]
    student.run()
    assert not [b for b in student.sidebar.button if b.key.startswith("jobs_stop")]


def test_students_start_on_the_class_dataset_and_model(class_mode, data_folder, tmp_path):
    from core.data.synthetic import make_pets_like
    from ui.state import ACTIVE_RUN

    other = pets_spec(make_pets_like(tmp_path / "class-set" / "images", n_per_class=3))
    fake_run(data_folder, "cccc3333")
    teacher = Identity(auth.TEACHER, "f" * 24)
    classroom.set_class_dataset(data_folder, teacher, other)
    classroom.set_class_model(data_folder, teacher, "cccc3333")
    student = open_page(APP)
    assert not student.exception
    assert student.session_state[ACTIVE_DATASET] == other  # not $PETLAB_DATASET: the class dataset
    assert student.session_state[ACTIVE_RUN] == "cccc3333"


def test_a_wrong_typed_job_record_breaks_no_page_and_the_teacher_cancels(class_mode, data_folder, pets_like):
    """Issue 18, item 13: one record with "created": "yesterday" made every page fail, the Class page included."""
    import json

    from core.data.datasets import scan_dataset

    scan = scan_dataset(pets_spec(pets_like))
    teacher = Identity(auth.TEACHER, "e" * 24)
    record = jobs.submit(data_folder, teacher, jobs.lesson_plan(scan.fingerprint, img_size=32)[0][1], scan.spec)
    bad = {**record.to_json(), "job_id": "20000101000000bad001", "created": "yesterday"}
    (data_folder / "jobs" / "20000101000000bad001.json").write_text(json.dumps(bad))
    student = open_page(APP)
    assert not student.exception
    assert any("1 queued" in c.value for c in student.sidebar.caption)  # the good job, in every sidebar
    at = open_page(CLASS_PAGE, None, pets_spec(pets_like), teacher=data_folder)
    assert not at.exception
    [note] = [w.value for w in at.warning if "could not be read" in w.value]
    assert "20000101000000bad001" in note and "created" in note
    at.button(key=f"jobs_stop_page_{record.job_id}").click().run()  # the teacher keeps control
    assert not at.exception
    assert [j.status for j in job_records.list_jobs(data_folder)] == ["cancelled"]
    at.button(key="jobs_clear_unreadable").click().run()
    assert not at.exception and not [w for w in at.warning if "could not be read" in w.value]


# ---- issue 19: the live room ---------------------------------------------------------------------


def test_students_follow_the_teachers_newest_class_dataset_and_model_without_a_reload(
    class_mode, data_folder, pets_like, tmp_path
):
    """Issue 19.3: a student's open tab (its session) takes the class dataset and model the teacher sets next,
    on its next run (the sidebar's polling starts it); no reload, and their own later choice is kept."""
    from core.data.synthetic import make_pets_like
    from ui.state import ACTIVE_RUN

    student = open_page(APP)
    assert student.session_state[ACTIVE_DATASET].root == str(pets_like.resolve())  # the server default
    other = pets_spec(make_pets_like(tmp_path / "class-set" / "images", n_per_class=3))
    fake_run(data_folder, "dddd4444")
    teacher = Identity(auth.TEACHER, "f" * 24)
    classroom.set_class_dataset(data_folder, teacher, other)
    classroom.set_class_model(data_folder, teacher, "dddd4444")
    student.run()
    assert not student.exception
    assert student.session_state[ACTIVE_DATASET] == other
    assert student.session_state[ACTIVE_RUN] == "dddd4444"
    student.session_state[ACTIVE_DATASET] = pets_spec(pets_like)  # the student picks another dataset
    student.run()
    assert student.session_state[ACTIVE_DATASET] == pets_spec(pets_like)  # kept: no newer class choice
    classroom.set_class_model(data_folder, teacher, None)  # unpublished: the tabs on it go back to ImageNet
    student.run()
    assert student.session_state[ACTIVE_RUN] is None


def test_back_to_the_server_default_resets_the_teachers_own_dataset(class_mode, data_folder, pets_like, tmp_path):
    """Issue 19.3: the button resets the class dataset and the teacher's own; Queue the lesson follows it."""
    from core.data.synthetic import make_pets_like

    other = pets_spec(make_pets_like(tmp_path / "other" / "images", n_per_class=3))
    classroom.set_class_dataset(data_folder, Identity(auth.TEACHER, "f" * 24), other)
    at = open_page(CLASS_PAGE, None, other, teacher=data_folder)
    at.button(key="class_reset_dataset").click().run()
    assert not at.exception
    assert classroom.read_class_settings(data_folder).dataset is None
    assert at.session_state[ACTIVE_DATASET].root == str(pets_like.resolve())  # $PETLAB_DATASET, the server default
    assert any(f"On **{pets_like.name}** (60 images)" in c.value for c in at.caption)  # Queue the lesson uses it


def test_published_classes_are_open_to_every_student(class_mode, data_folder, pets_like):
    """Issue 19.3: published classes show on every student's Data page (Class datasets) before the teacher makes
    them the class dataset, and a student can use them."""
    alice = Identity(STUDENT, "d" * 24)
    store = classroom.own_store(data_folder, alice)
    for name in ("cup", "pen"):
        store.add_class(name)
        for shade in (1, 2):
            buf = io.BytesIO()
            Image.new("RGB", (20, 20), (shade * 40, len(name), 0)).save(buf, "PNG")
            store.add_photo(name, buf.getvalue())
    spec = classroom.publish_classes(data_folder, Identity(auth.TEACHER, "f" * 24), alice.tab, "mugs")
    bob = open_page(DATA_PAGE)
    assert not bob.exception
    assert "🏫 Class datasets" in [t.label for t in bob.tabs]
    assert any("mugs \\(published\\)" in m.value and "cup (2 photos)" in m.value for m in bob.markdown)
    use = [b for b in bob.button if b.key.startswith("data_pub_")]
    use[0].click().run()
    assert bob.session_state[ACTIVE_DATASET] == spec


def four_photo_dataset(tmp_path):
    from core.data.synthetic import make_pets_like

    return pets_spec(make_pets_like(tmp_path / "tiny" / "images", n_per_class=2, classes=("Bengal", "beagle")))


def test_a_four_photo_dataset_is_refused_with_its_numbers_before_anything_is_queued(class_mode, data_folder, tmp_path):
    """Issue 19.4: the teacher's Queue them refuses a dataset too small to train (all three jobs used to fail)."""
    tiny = four_photo_dataset(tmp_path)
    at = open_page(CLASS_PAGE, None, tiny, teacher=data_folder)
    assert not at.exception
    refusal = [e.value for e in at.error if "4 images" in e.value]
    assert refusal and "gets none of them" in refusal[0] and "Add at least 1 more" in refusal[0]
    assert at.button(key="class_queue_go").disabled
    assert job_records.list_jobs(data_folder) == []
    training = open_page(str(ROOT / "pages" / "training.py"), None, tiny, teacher=data_folder)
    assert any("4 images" in e.value for e in training.error)  # the Training page says the numbers too
    assert not any("no training/validation split" in e.value for e in training.error)
    data = open_page(DATA_PAGE, None, tiny, teacher=data_folder)
    shown = " ".join(a.value for a in [*data.error, *data.warning])
    assert "4 images" in shown and "Only 0 validation" not in shown


def own_picker(at):
    return next(box for box in at.selectbox if box.label == "Add photos to")


def test_own_class_photo_counts_are_current_after_adding(class_mode, data_folder):
    """Issue 19.4: the class picker said "bears (0 photos)" after two were added."""
    at = open_page(DATA_PAGE)
    at.text_input(key="data_own_new").input("bears")
    at.button(key="data_own_add").click().run()
    assert own_picker(at).options == ["bears (0 photos)"]
    photos = []
    for shade in (10, 90):
        buf = io.BytesIO()
        Image.new("RGB", (24, 24), (shade, 40, 0)).save(buf, "PNG")
        photos.append((f"bear{shade}.png", buf.getvalue(), "image/png"))
    next(u for u in at.file_uploader if u.label == "Photos").set_value(photos)
    at.button(key="data_own_save").click().run()
    assert not at.exception
    assert any("Added 2 photos to bears" in s.value for s in at.success)
    assert own_picker(at).options == ["bears (2 photos)"]


def test_students_are_shown_by_name_or_number_never_by_token(class_mode, data_folder, pets_like):
    """Issue 19.8: the teacher tells students apart by the names they give (escaped), else "Student 3"."""
    student = open_page(APP)
    tab = student.query_params["s"]
    student.text_input(key="auth_name").input("  Ada **the great**\x07 ").run()
    assert not student.exception
    assert student.text_input(key="auth_name").value == "Ada **the great**"
    store = classroom.own_store(data_folder, Identity(STUDENT, tab))
    for name in ("cup", "pen"):
        store.add_class(name)
    at = open_page(CLASS_PAGE, None, pets_spec(pets_like), teacher=data_folder)
    text = " ".join(m.value for m in at.markdown)
    assert "Ada \\*\\*the great\\*\\* \\(1\\)" in text  # shown literally (escaped), with their number
    assert tab[:8] not in text and tab[:6] not in " ".join(t.value for t in at.text_input)


def test_the_teachers_page_speaks_plainly(class_mode, data_folder, pets_like):
    """Issue 19.8: no "worker: 1 threads · sqlite"."""
    at = open_page(CLASS_PAGE, None, pets_spec(pets_like), teacher=data_folder)
    worker_metric = next(m for m in at.metric if m.label == "training worker")
    assert worker_metric.value in ("ready", "training", "not running")
    assert not any("threads" in str(m.value) or "sqlite" in str(m.value) for m in at.metric)


def test_a_students_prediction_page_does_not_tell_them_to_train(class_mode):
    """Issue 19.8: students cannot train; the page points them at the runs there are and at asking."""
    at = open_page(str(ROOT / "pages" / "prediction.py"))
    assert not at.exception
    banner = at.info[0].value
    assert "Train a run on the Training page" not in banner and "Switch model" in banner


def test_a_students_request_reaches_the_teacher_who_approves_it(class_mode, data_folder, pets_like):
    """Issue 19.4: a student's Train asks the teacher; the Class page shows it by name with its numbers; Approve
    queues exactly that run, and the student's Training page says so."""
    from core.teach import requests

    student = open_page(APP)
    student.text_input(key="auth_name").input("Ben").run()
    query = {"s": student.query_params["s"]}
    training = open_page(str(ROOT / "pages" / "training.py"), query, pets_spec(pets_like))
    training.select_slider(key="train_size").set_value(32)
    training.button(key="train_go1").click().run()
    assert not training.exception and job_records.list_jobs(data_folder) == []
    assert any("waiting for the teacher" in i.value for i in training.info)
    teacher = open_page(CLASS_PAGE, None, pets_spec(pets_like), teacher=data_folder)
    line = next(m.value for m in teacher.markdown if "asks for" in m.value)
    assert "**Ben \\(1\\)**" in line and "60 images, 12 for validation" in line
    teacher.button(key=f"class_req_ok_{query['s']}").click().run()
    assert not teacher.exception
    queued = job_records.list_jobs(data_folder)
    assert len(queued) == 1 and queued[0].config.img_size == 32 and queued[0].status == "queued"
    assert requests.request_of(data_folder, query["s"]).job_id == queued[0].job_id
    assert any(
        "for Ben \\(1\\)" in c.value for c in teacher.caption
    )  # the queue says whose it is  # the queue says whose it is
    training.run()
    assert any("The teacher approved" in i.value for i in training.info)


def test_the_queue_table_shows_names_and_titles_as_plain_text(data_folder, pets_like):
    """The queue is an st.table (a long reason wraps instead of being cut off, issue 19), and st.table renders
    Markdown: a student's name is written out literally, never a link in the teacher's page."""
    from core.data.datasets import scan_dataset
    from core.teach import roster
    from tests.pages.helpers import training_page_config
    from ui.queue_table import queue_rows

    student = Identity(STUDENT, "f" * 24)
    roster.set_name(data_folder, student, "[free](http://evil.example)")
    spec = pets_spec(pets_like)
    teacher = Identity(auth.TEACHER, "e" * 24)
    record = jobs.submit(data_folder, teacher, training_page_config(scan_dataset(spec).fingerprint), spec)
    job_records.update_job(data_folder, record.job_id, status="failed", error="Boom *bold*", finished=3.0)
    (row,) = queue_rows(job_records.list_jobs(data_folder), {record.job_id: student.tab})
    assert row["for"].startswith("teacher\\, for \\[free\\]\\(http")  # every Markdown sign escaped
    assert row["why"] == "Boom \\*bold\\*" and row["took (s)"] == ""
