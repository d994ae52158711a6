"""Roles: laptop vs class mode, the teacher-only actions, and the signed tab / teacher tokens."""

import os
import stat

import pytest

from core import auth, settings
from core.auth import LAPTOP_USER, Forbidden, Identity


def test_no_password_is_laptop_mode(tmp_path, monkeypatch):
    monkeypatch.delenv(auth.ENV_PASSWORD, raising=False)
    assert auth.teacher_password(tmp_path) is None


def test_password_from_env_or_secrets(tmp_path, monkeypatch):
    monkeypatch.delenv(auth.ENV_PASSWORD, raising=False)
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('teacher_password = "from-secrets"\n')
    assert auth.teacher_password(tmp_path) == "from-secrets"
    monkeypatch.setenv(auth.ENV_PASSWORD, "from-env")
    assert auth.teacher_password(tmp_path) == "from-env"


def test_broken_secrets_file_is_laptop_mode(tmp_path, monkeypatch):
    monkeypatch.delenv(auth.ENV_PASSWORD, raising=False)
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text("teacher_password = [unclosed\n")
    assert auth.teacher_password(tmp_path) is None


def test_check_password_exact_only():
    assert auth.check_password("s3cret", "s3cret")
    assert not auth.check_password("s3cre", "s3cret")
    assert not auth.check_password("", "s3cret")
    assert auth.check_password("pâté", "pâté")  # non-ASCII passwords compare as bytes


def test_students_are_refused_every_teacher_action():
    student = Identity(auth.STUDENT, "a" * 24)
    for action in auth.TEACHER_ACTIONS:
        assert auth.allowed(LAPTOP_USER, action)
        assert auth.allowed(Identity(auth.TEACHER, "b" * 24), action)
        with pytest.raises(Forbidden, match="only the teacher"):
            auth.require(student, action)
    with pytest.raises(ValueError):
        auth.allowed(student, "fly")


def test_server_secret_is_private_and_stable(tmp_path):
    key = auth.server_secret(tmp_path)
    assert len(key) == 32 and auth.server_secret(tmp_path) == key
    assert stat.S_IMODE(os.stat(tmp_path / settings.SECRET_FILE).st_mode) == 0o600


def test_teacher_token_bound_to_tab_password_and_time(tmp_path):
    key = auth.server_secret(tmp_path)
    tab, other = "a" * 24, "b" * 24
    token = auth.teacher_token(tab, key, "pw", now=1000.0)
    assert auth.teacher_token_valid(token, tab, key, "pw", now=1000.0 + 3600)
    assert not auth.teacher_token_valid(token, other, key, "pw", now=1000.0)  # another tab
    assert not auth.teacher_token_valid(token, tab, key, "new password", now=1000.0)  # password changed
    assert not auth.teacher_token_valid(token, tab, key, "pw", now=1000.0 + auth.TEACHER_HOURS * 3600 + 1)
    expires, sig = token.split(".")
    assert not auth.teacher_token_valid(f"{int(expires) + 99999}.{sig}", tab, key, "pw", now=1000.0)
    assert not auth.teacher_token_valid("garbage", tab, key, "pw")
