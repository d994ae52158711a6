"""The class on disk: private student spaces, heartbeats, cleaning, publishing, class settings."""

import io
import os

import pytest
from PIL import Image

from core import settings
from core.auth import LAPTOP_USER, STUDENT, TEACHER, Forbidden, Identity
from core.data.datasets import DatasetSpec
from core.teach import classroom

ALICE = Identity(STUDENT, "a" * 24)
BOB = Identity(STUDENT, "b" * 24)
TEACH = Identity(TEACHER, "c" * 24)


def jpeg(shade: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (shade, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


def fill(store, classes=("cat", "dog")):
    for name in classes:
        store.add_class(name)
        for shade in (10, 20):
            store.add_photo(name, jpeg(shade + len(name)))


def test_each_student_edits_only_their_own_classes(tmp_path):
    teacher = classroom.own_store(tmp_path, TEACH)
    fill(teacher)
    alice = classroom.own_store(tmp_path, ALICE)
    bob = classroom.own_store(tmp_path, BOB)
    alice.add_class("my_cat")
    assert alice.classes() == {"my_cat": 0}
    assert bob.classes() == {}  # Bob does not see Alice's class
    assert teacher.classes() == {"cat": 2, "dog": 2}  # nor does anyone else's store change
    assert classroom.own_store(tmp_path, LAPTOP_USER).root == teacher.root  # a laptop edits as today


def test_teacher_classes_are_read_only_to_students(tmp_path):
    fill(classroom.own_store(tmp_path, TEACH))
    seen = classroom.teacher_store(tmp_path, ALICE)
    assert seen.classes() == {"cat": 2, "dog": 2}
    photo = seen.photos("cat")[0].name
    for change in (
        lambda: seen.add_class("mine"),
        lambda: seen.add_photo("cat", jpeg(99)),
        lambda: seen.remove_photo("cat", photo),
        lambda: seen.remove_class("cat"),
    ):
        with pytest.raises(Forbidden):
            change()
    assert classroom.own_store(tmp_path, TEACH).classes() == {"cat": 2, "dog": 2}
    classroom.teacher_store(tmp_path, TEACH).remove_photo("cat", photo)  # the teacher still can
    assert classroom.own_store(tmp_path, TEACH).classes()["cat"] == 1


def test_bad_tab_names_no_space(tmp_path):
    for bad in ("../x", "a/b", ""):
        with pytest.raises(ValueError):
            classroom.student_space(tmp_path, bad)


def test_runs_on_private_classes_are_hidden_from_other_students(tmp_path):
    alice_root = str(classroom.student_space(tmp_path, ALICE.tab) / "own")
    private = alice_root
    shared = str(tmp_path / "datasets" / "oxford-iiit-pet" / "images")
    assert classroom.run_visible(private, ALICE, tmp_path)
    assert not classroom.run_visible(private, BOB, tmp_path)
    assert classroom.run_visible(private, TEACH, tmp_path)
    assert classroom.run_visible(shared, BOB, tmp_path)
    assert classroom.run_visible("", BOB, tmp_path)


def test_heartbeats_count_connected_tabs(tmp_path):
    classroom.touch_session(tmp_path, ALICE, now=1000.0)
    classroom.touch_session(tmp_path, BOB, now=1000.0)
    classroom.touch_session(tmp_path, TEACH, now=1000.0)
    assert classroom.active_sessions(tmp_path, now=1010.0) == {"teacher": 1, "student": 2}
    classroom.touch_session(tmp_path, ALICE, now=1100.0)
    assert classroom.active_sessions(tmp_path, within=60, now=1110.0) == {"teacher": 0, "student": 1}
    assert classroom.active_sessions(tmp_path / "none") == {"teacher": 0, "student": 0}


def test_old_student_spaces_are_cleaned(tmp_path):
    fill(classroom.own_store(tmp_path, ALICE))
    fill(classroom.own_store(tmp_path, BOB))
    now = 1_000_000.0
    classroom.touch_session(tmp_path, ALICE, now=now - 25 * 3600)  # last seen yesterday
    classroom.touch_session(tmp_path, BOB, now=now - 3600)
    removed = classroom.clean_student_spaces(tmp_path, max_age_hours=24, now=now)
    assert removed == [ALICE.tab]
    assert not classroom.student_space(tmp_path, ALICE.tab).exists()
    assert classroom.own_store(tmp_path, BOB).classes() == {"cat": 2, "dog": 2}
    assert not (tmp_path / settings.HEARTBEATS_DIR / classroom.heartbeat_name(ALICE)).exists()


def test_teacher_publishes_a_students_classes(tmp_path):
    fill(classroom.own_store(tmp_path, ALICE))
    with pytest.raises(Forbidden):
        classroom.publish_classes(tmp_path, BOB, ALICE.tab, "stolen")
    spec = classroom.publish_classes(tmp_path, TEACH, ALICE.tab, "Alice's pets")
    assert spec.root.endswith(os.path.join("published", "Alice_s_pets"))
    from core.data.datasets import scan_dataset

    assert scan_dataset(spec).classes == ["cat", "dog"]
    with pytest.raises(ValueError, match="two classes"):
        classroom.publish_classes(tmp_path, TEACH, BOB.tab, "empty")


def test_class_settings_teacher_only(tmp_path):
    assert classroom.read_class_settings(tmp_path) == classroom.ClassSettings()
    spec = DatasetSpec(name="pets", kind="folder", root=str(tmp_path))
    with pytest.raises(Forbidden):
        classroom.set_class_dataset(tmp_path, ALICE, spec)
    with pytest.raises(Forbidden):
        classroom.set_class_model(tmp_path, ALICE, "abc")
    classroom.set_class_dataset(tmp_path, TEACH, spec)
    classroom.set_class_model(tmp_path, TEACH, "abc123")
    stored = classroom.read_class_settings(tmp_path)
    assert (stored.dataset, stored.model_run) == (spec, "abc123")
    assert 0 < stored.dataset_changed < stored.model_changed  # each choice says when it was made
    (tmp_path / settings.CLASS_FILE).write_text("{broken")
    assert classroom.read_class_settings(tmp_path) == classroom.ClassSettings()


# ---- tabs are free: heartbeats count machines and leave little on disk (issue 18, item 17) -----------


def test_one_machine_counts_once_however_many_tabs_it_opens(tmp_path):
    """A script opened 5-37 tabs a second and the Class page counted 409 students: heartbeats are per machine
    (its address, hashed) and role; only tabs on the server itself (no address) count one by one."""
    for n in range(50):
        assert classroom.touch_session(tmp_path, Identity(STUDENT, f"{n:03d}" + "t" * 20), "10.0.0.7", now=1000.0)
    classroom.touch_session(tmp_path, ALICE, "10.0.0.8", now=1000.0)
    classroom.touch_session(tmp_path, TEACH, "10.0.0.8", now=1000.0)  # the teacher's laptop is no student
    classroom.touch_session(tmp_path, BOB, None, now=1000.0)  # a tab on the server itself
    assert classroom.active_sessions(tmp_path, now=1010.0) == {"teacher": 1, "student": 3}
    names = sorted(p.name for p in (tmp_path / settings.HEARTBEATS_DIR).iterdir())
    assert len(names) == 4 and not any("10.0.0" in n for n in names)  # no address stored in the clear


def test_a_tab_that_signs_in_is_no_student_any_more(tmp_path):
    before = Identity(STUDENT, TEACH.tab)
    classroom.touch_session(tmp_path, before, "10.0.0.9", now=1000.0)
    assert classroom.active_sessions(tmp_path, now=1001.0)["student"] == 1
    classroom.forget_session(tmp_path, before, "10.0.0.9")
    classroom.touch_session(tmp_path, TEACH, "10.0.0.9", now=1001.0)
    assert classroom.active_sessions(tmp_path, now=1002.0) == {"teacher": 1, "student": 0}


def test_old_heartbeats_go_within_the_hour_and_nothing_else_is_made(tmp_path):
    classroom.touch_session(tmp_path, ALICE, now=1_000_000.0 - 2 * 3600)
    classroom.touch_session(tmp_path, BOB, now=1_000_000.0 - 60)
    classroom.clean_student_spaces(tmp_path, now=1_000_000.0)
    assert [p.name for p in (tmp_path / settings.HEARTBEATS_DIR).iterdir()] == [classroom.heartbeat_name(BOB)]
    assert not (tmp_path / settings.STUDENTS_DIR).exists()  # a heartbeat makes no student space


# ---- the lesson step the class follows ------------------------------------------------------------------------


def test_only_the_teacher_sets_the_lesson_step_and_only_a_change_is_announced(tmp_path):
    from core.store import live
    from core.store.live import Channel
    from core.train.lesson import STEPS

    assert classroom.lesson_step(tmp_path) is None  # nobody leads before the teacher shows a step
    with pytest.raises(Forbidden):
        classroom.share_lesson_step(tmp_path, ALICE, 9)  # a student (with any URL) moves nobody
    assert classroom.lesson_step(tmp_path) is None and live.version(tmp_path, Channel.LESSON) == "0"
    assert classroom.share_lesson_step(tmp_path, TEACH, 7).step == 7
    stamp = live.version(tmp_path, Channel.LESSON)
    assert stamp != "0" and classroom.lesson_step(tmp_path).step == 7
    classroom.share_lesson_step(tmp_path, TEACH, 7)  # the same step again: nothing written, no tab reruns
    assert live.version(tmp_path, Channel.LESSON) == stamp
    assert live.version(tmp_path, Channel.CLASS) == "0"  # no page reruns as a whole for a step
    assert classroom.share_lesson_step(tmp_path, TEACH, 99).step == len(STEPS)  # any number is a step
    assert classroom.share_lesson_step(tmp_path, TEACH, -3).step == 1
    assert classroom.lesson_step(tmp_path).step == 1
    with pytest.raises(Forbidden):
        classroom.end_lesson(tmp_path, BOB)
    classroom.end_lesson(tmp_path, TEACH)  # the teacher signs out: nobody is led
    assert classroom.lesson_step(tmp_path) is None
    classroom.end_lesson(tmp_path, TEACH)  # again: nothing to end, no error


def test_yesterdays_or_a_broken_lesson_step_leads_nobody(tmp_path):
    shared = classroom.share_lesson_step(tmp_path, TEACH, 4)
    later = shared.at + classroom.LESSON_STEP_HOURS * 3600 + 1
    assert classroom.lesson_step(tmp_path, now=shared.at + 60).step == 4
    assert classroom.lesson_step(tmp_path, now=later) is None
    for broken in ('{"step": 40, "at": 1e12}', '{"step": "4", "at": 1e12}', '{"step": true, "at": 1e12}', "[4]", "{"):
        (tmp_path / settings.LESSON_FILE).write_text(broken)
        assert classroom.lesson_step(tmp_path) is None, broken
