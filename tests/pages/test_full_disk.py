"""AppTest with the data folder's disk full (issue 18, item 5): every page of every tab still opens, the
teacher still signs in and is told, heavy writes are refused with a message, nothing stored is lost.

The full disk is simulated in this process: creating or writing any file under the data folder raises
OSError(ENOSPC), as the kernel does, and the free space reads as 3 MB. (tests/browser/test_abuse.py fills a
real tmpfs where the machine allows mounting one.)
"""

from __future__ import annotations

import builtins
import errno
import os
import pathlib
import tempfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import quotas
from core.auth import ENV_PASSWORD, STUDENT, Identity
from core.teach import classroom
from ui.auth import FIRST_SEEN_KEY

TIMEOUT = 180
ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGES = ["data", "augmentation", "training", "interpretation", "layers", "prediction"]
PASSWORD = "correct horse"


def no_space(path) -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", str(path))


@pytest.fixture
def full_disk(monkeypatch, data_folder, class_mode):
    """The class has used the server for a while (its folders exist), then the data folder's disk is full:
    every new file, folder or write under it fails from now on."""
    for page in PAGES:
        assert not tab(page=page, old=False).exception
    from core import auth

    sign_in_id, _cookie = auth.start_sign_in(data_folder, PASSWORD)  # a teacher who signed in before it filled

    def under(path) -> bool:
        try:
            return os.path.abspath(os.fspath(path)).startswith(str(data_folder))
        except TypeError:  # a file descriptor
            return False

    real_open, real_mkstemp = builtins.open, tempfile.mkstemp
    real_touch, real_mkdir = pathlib.Path.touch, pathlib.Path.mkdir
    real_write_text, real_write_bytes = pathlib.Path.write_text, pathlib.Path.write_bytes

    def open_(file, mode="r", *args, **kwargs):
        if under(file) and any(c in mode for c in "wax+") and not ("a" in mode and os.path.exists(file)):
            raise no_space(file)  # appending to an existing lock file writes no block
        return real_open(file, mode, *args, **kwargs)

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and under(dir):
            raise no_space(dir)
        return real_mkstemp(*args, dir=dir, **kwargs)

    def touch(self, *args, **kwargs):
        if under(self) and not self.exists():
            raise no_space(self)
        return real_touch(self, *args, **kwargs)  # an mtime needs no block

    def mkdir(self, *args, **kwargs):
        if under(self) and not self.exists():
            raise no_space(self)
        return real_mkdir(self, *args, **kwargs)

    def refuse(real):
        def write(self, *args, **kwargs):
            if under(self):
                raise no_space(self)
            return real(self, *args, **kwargs)

        return write

    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(pathlib.Path, "touch", touch)
    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)
    monkeypatch.setattr(pathlib.Path, "write_text", refuse(real_write_text))
    monkeypatch.setattr(pathlib.Path, "write_bytes", refuse(real_write_bytes))
    monkeypatch.setattr(quotas, "free_bytes", lambda path: 3 * quotas.MB)
    return sign_in_id


@pytest.fixture
def class_mode(monkeypatch, pets_like):
    monkeypatch.setenv(ENV_PASSWORD, PASSWORD)
    monkeypatch.setenv("PETLAB_DATASET", str(pets_like))
    monkeypatch.setenv("PETLAB_LOCAL_WORKER", "0")


def tab(query: dict | None = None, page: str | None = None, old: bool = True) -> AppTest:
    """A tab of the app (app.py, or one page with `page`), open long enough that it sends heartbeats."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    if old:
        at.session_state[FIRST_SEEN_KEY] = 0.0  # opened long ago: this run writes its heartbeat
    at.run()
    if page:
        at.switch_page(f"pages/{page}.py").run()
    return at


def test_every_page_opens_on_a_full_disk_and_the_teacher_still_signs_in(full_disk):
    """The review: with the disk full, every page of every tab failed with `No space left on device` from the
    sidebar heartbeat, the teacher's sign-in included."""
    for page in PAGES:
        at = tab(page=page)
        assert not at.exception, (page, at.exception)
    teacher = tab()
    teacher.text_input(key="auth_password").input(PASSWORD)
    teacher.button(key="auth_sign_in").click().run()
    assert not teacher.exception
    assert any("teacher" in s.value for s in teacher.sidebar.success)  # kept by the server process: the disk said no
    assert any("disk is nearly full: 3 MB free" in w.value for w in teacher.sidebar.warning)
    teacher.button(key="auth_sign_out").click().run()  # every sign-in ends, the one the disk refused too
    assert not teacher.exception and not any("teacher" in s.value for s in teacher.sidebar.success)


def test_the_class_page_says_the_disk_is_full_and_refuses_changes_with_a_message(full_disk):
    from ui.auth import SIGNED_IN_KEY

    at = AppTest.from_file(str(ROOT / "pages" / "class.py"), default_timeout=TIMEOUT)
    at.session_state[SIGNED_IN_KEY] = full_disk  # the teacher's session, signed in before the disk filled
    at.run()
    assert not at.exception
    assert any("disk is nearly full: 3 MB free" in w.value for w in at.warning)
    assert [m.label for m in at.metric][-1] == "free disk space"
    at.button(key="class_set_dataset").click().run()  # class.json cannot be written: a message
    assert not at.exception
    assert any("nothing new can be stored now" in e.value for e in at.error)


def test_a_student_is_told_why_nothing_new_is_stored(data_folder, full_disk):
    student = tab()
    student.text_input(key="data_own_new").input("my_cat")
    student.button(key="data_own_add").click().run()
    assert not student.exception
    assert any(
        "The server's disk is nearly full (3 MB free; Pet Lab keeps 500 MB free)" in e.value for e in student.error
    )
    assert not (data_folder / "students").exists()


def test_heartbeats_and_tab_settings_are_best_effort(data_folder, full_disk):
    student = Identity(STUDENT, "s" * 22)
    assert classroom.touch_session(data_folder, student) is False  # said, never raised
    at = tab()
    at.session_state["data_seed"] = 5  # a kept widget value the store cannot write: kept for the session
    at.run()
    assert not at.exception
