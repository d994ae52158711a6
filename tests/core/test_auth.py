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


def test_a_sign_in_is_proven_by_its_cookie_and_ends_on_sign_out_or_a_new_password(tmp_path):
    sign_in_id, cookie = auth.start_sign_in(tmp_path, "pw word!", now=1000.0)
    found = auth.cookie_sign_in(cookie)
    assert found is not None and found[0] == sign_in_id
    assert auth.sign_in_valid(tmp_path, sign_in_id, "pw word!", secret=found[1], now=1000.0 + 3600)
    assert not auth.sign_in_valid(
        tmp_path, sign_in_id, "pw word!", secret=found[1] + "x", now=1000.0
    )  # a forged cookie
    assert not auth.sign_in_valid(tmp_path, sign_in_id, "new password", now=1000.0)  # the password changed
    assert not auth.sign_in_valid(tmp_path, sign_in_id, "pw word!", now=1000.0 + auth.TEACHER_HOURS * 3600 + 1)
    stored = (tmp_path / "auth" / "sign_ins" / f"{sign_in_id}.json").read_text()
    assert found[1] not in stored and "pw word!" not in stored  # the file alone is no cookie and holds no password
    for junk in ("garbage", "../../x.y", f"{sign_in_id}.", None, "a" * 300):
        assert auth.cookie_sign_in(junk) is None
    assert not auth.sign_in_valid(tmp_path, "../../etc/passwd", "pw word!")
    other, _ = auth.start_sign_in(tmp_path, "pw word!", now=1000.0)
    assert auth.end_sign_ins(tmp_path) == 2  # Sign out: every sign-in, every browser
    assert not auth.sign_in_valid(tmp_path, sign_in_id, "pw word!", now=1000.0)
    assert not auth.sign_in_valid(tmp_path, other, "pw word!", now=1000.0)


def test_client_key_counts_computers_not_connections():
    assert auth.client_key(None) == auth.client_key("127.0.0.1") == auth.client_key("::1") == auth.LOCAL_CLIENT
    assert auth.client_key("10.0.0.7") == "10.0.0.7" == auth.client_key("::ffff:10.0.0.7")
    a = auth.client_key("2001:db8:1:2:aaaa::1")
    assert a == auth.client_key("2001:db8:1:2:ffff:1234::9") == "2001:db8:1:2::/64"  # any address of its /64
    assert a != auth.client_key("2001:db8:1:3::1") and auth.client_key("not an address") == auth.LOCAL_CLIENT


def test_guessing_waits_grow_per_computer_and_a_refused_guess_is_not_checked(tmp_path):
    """The attack: 1 s per wrong guess per session, so 30 sessions guessed 20.7 times a second."""
    t = 10_000.0
    first = auth.attempt_sign_in(tmp_path, "guess0", "right", "10.0.0.66", now=t)
    assert not first.ok and first.checked and first.wait == pytest.approx(1.0)
    refused = auth.attempt_sign_in(tmp_path, "right", "right", "10.0.0.66", now=t + 0.5)  # another tab, same computer
    assert not refused.ok and not refused.checked  # even the right password: not checked while it must wait
    checked = [first]
    for step in range(130):  # 30 tabs of one computer guessing every second for 130 s
        for tab in range(30):
            attempt = auth.attempt_sign_in(tmp_path, f"g{step}-{tab}", "right", "10.0.0.66", now=t + 1 + step)
            if attempt.checked:
                checked.append(attempt)
    assert len(checked) == 8  # waits of 1, 2, 4 … 64 s: eight guesses in 131 s, whatever the number of tabs
    assert auth.attempt_sign_in(tmp_path, "right", "right", "10.0.0.7", now=t + 131).ok  # the teacher's computer
    [report] = auth.sign_in_report(tmp_path, now=t + 131)
    assert report.client == "10.0.0.66" and report.failures == 8 and report.refused > 3000 and report.wait > 0
    log = (tmp_path / "auth" / auth.LOG_FILE).read_text()
    assert log.count("wrong teacher password from 10.0.0.66") == 8 and "signed in from 10.0.0.7" in log


def test_the_whole_network_shares_an_hourly_limit_that_never_locks_out_a_first_try(tmp_path, monkeypatch):
    monkeypatch.setattr(auth, "GUESS_SERVER_PER_HOUR", 10)
    t = 50_000.0
    for i in range(10):  # ten computers, each on its second wrong password: the network's hour is used up
        for k in range(2):
            assert auth.attempt_sign_in(tmp_path, "x", "right", f"10.0.1.{i}", now=t + i * 10 + k * 2).checked
    late = auth.attempt_sign_in(tmp_path, "x", "right", "10.0.1.3", now=t + 600)  # its own wait is long over
    assert not late.checked and late.wait > 2000  # refused until the hour has passed
    assert auth.attempt_sign_in(tmp_path, "right", "right", "10.0.2.1", now=t + 600).ok  # a first try: checked
    assert auth.attempt_sign_in(tmp_path, "right", "right", auth.LOCAL_CLIENT, now=t + 600).ok  # the server itself
