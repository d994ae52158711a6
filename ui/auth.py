"""Who is this tab: laptop user, teacher or student; the sidebar sign-in; the one guard pages call.

A tab is known by the per-tab token of ui.tab_store (`?s=…` in the URL, naming its server-side store):
a reload keeps it, and a student's private space is keyed by it. The teacher's sign-in is never in the
URL nor in the tab's store (issue 18: whoever saw the URL became the teacher once the teacher's
connection dropped). It is a record on the server (core.auth.start_sign_in), proven by this connection
having typed the password, or by the cookie the server gave the browser that typed it (a new connection of
that browser: a reload, a reconnect, another tab). Every check reads the record, so Sign out (which ends
every sign-in) and a password change take effect in every session at its next rerun; the sidebar's
3-second job box reruns a session whose role changed, so a connected tab follows within seconds.
"""

from __future__ import annotations

import contextlib
import json
import time

import streamlit as st

from core import auth
from core.auth import LAPTOP_USER, STUDENT, TEACHER, Forbidden, Identity
from core.i18n import _, n_, num
from core.settings import auth_dir, data_dir
from core.teach import classroom, roster
from core.teach.own_classes import OwnClassesStore
from ui.notices import Level, notices_ui, notify
from ui.tab_store import recall, remember, rotate_tab_token, tab_token

PASSWORD_KEY = "auth_password"
NAME_KEY = "auth_name"  # the student's display name (widget key, and kept in the tab's store)
NAME_SYNCED = "_auth_name_synced"  # this session checked that the profile holds the tab's kept name
SIGN_IN_ANSWER = "auth_sign_in_answer"  # notice place (ui.notices): what the last wrong attempt was told
ERROR_SHOWN_S = 20.0  # for a while, not one run: a rerun (the class page's live reruns) must not swallow it
BEAT_KEY = "auth_last_beat"
FIRST_SEEN_KEY = "auth_first_seen"
BEAT_SECONDS = 10.0
SIGNED_IN_KEY = "auth_sign_in"  # this session's sign-in id (server memory: no URL or store carries it)
COOKIE_KEY = "auth_cookie"  # the cookie this session's browser is to keep ("" to forget it)
ROLE_KEY = "auth_role_drawn"  # the role the last full run drew (a change reruns the app)


def class_mode() -> bool:
    return auth.teacher_password() is not None


def client_address() -> str | None:
    """The address this tab connects from (None on the server itself, or without a server: AppTest)."""
    try:
        address = st.context.ip_address
    except Exception:  # no client context (a bare script run)
        return None
    return address if isinstance(address, str) and address else None


def client() -> str:
    """This connection's computer as limits count it (core.auth.client_key of its address)."""
    return auth.client_key(client_address())


def _signed_in(password: str) -> bool:
    """Whether this session holds a live sign-in: its own (it typed the password) or its browser's cookie's."""
    base = data_dir()
    if auth.sign_in_valid(base, st.session_state.get(SIGNED_IN_KEY), password):
        return True
    found = auth.cookie_sign_in(st.context.cookies.get(auth.SIGN_IN_COOKIE))
    if found is not None and auth.sign_in_valid(base, found[0], password, secret=found[1]):
        st.session_state[SIGNED_IN_KEY] = found[0]
        return True
    st.session_state.pop(SIGNED_IN_KEY, None)
    return False


def identity() -> Identity:
    """This tab's identity: LAPTOP_USER without a teacher password, else the teacher or a student."""
    password = auth.teacher_password()
    if password is None:
        return LAPTOP_USER
    return Identity(TEACHER if _signed_in(password) else STUDENT, tab_token(), client())


def heartbeat(who: Identity) -> None:
    """Tell the Class page this tab is connected: once it has been open BEAT_SECONDS, then at most that often.

    Called by every full run and by the sidebar job box's polling, so an open tab keeps beating; a tab
    opened and dropped at once (a script opening tabs) never writes anything. Best effort: never raises.
    """
    if not who.class_mode:
        return
    now = time.time()
    first = st.session_state.setdefault(FIRST_SEEN_KEY, now)
    if now - first < BEAT_SECONDS or now - st.session_state.get(BEAT_KEY, 0.0) < BEAT_SECONDS:
        return
    st.session_state[BEAT_KEY] = now
    classroom.touch_session(data_dir(), who, client_address())


def teacher_only(action: str) -> bool:
    """The guard an action calls before it runs: True for the teacher (or a laptop), else an error and False."""
    try:
        auth.require(identity(), action)
    except Forbidden as err:
        st.error(str(err))
        return False
    return True


def own_classes_store() -> OwnClassesStore:
    """The 'Your own classes' store this tab edits: the teacher's, or the student's private one."""
    return classroom.own_store(data_dir(), identity())


def rerun_if_role_changed() -> None:
    """From a fragment (the sidebar's job box): rerun the whole app when this session's role changed since the
    last full run drew it (signed out elsewhere, the password changed), so a connected tab follows at once."""
    drawn = st.session_state.get(ROLE_KEY)
    if drawn is not None and drawn != identity().role:
        st.rerun(scope="app")


def _sign_in() -> None:
    password = auth.teacher_password()
    given = st.session_state.get(PASSWORD_KEY, "")
    st.session_state[PASSWORD_KEY] = ""
    if password is None or not given:  # nothing typed (or this press already handled, its box emptied): no guess
        return
    base = data_dir()
    attempt = auth.attempt_sign_in(base, given, password, client())
    if attempt.ok:
        classroom.forget_session(base, identity(), client_address())  # this tab is no student any more
        sign_in_id, cookie = auth.start_sign_in(base, password, client())
        rotate_tab_token()  # a URL copied before the sign-in reaches nothing of this tab's
        st.session_state[SIGNED_IN_KEY] = sign_in_id
        st.session_state[COOKIE_KEY] = cookie
        st.session_state.pop(BEAT_KEY, None)
    elif attempt.checked:
        said = (
            _("Wrong teacher password. Next try in {s} s.").format(s=num(attempt.wait, 0))
            if attempt.wait >= 1
            else _("Wrong teacher password.")
        )
        notify(SIGN_IN_ANSWER, said, Level.ERROR, seconds=ERROR_SHOWN_S, replace=True)
    else:
        said = _(
            "Too many wrong passwords from this computer: sign-in is paused for {s} s (the teacher sees the "
            "attempts on the Class page)."
        ).format(s=num(attempt.wait, 0))
        notify(SIGN_IN_ANSWER, said, Level.ERROR, seconds=ERROR_SHOWN_S, replace=True)


def _sign_out() -> None:
    with contextlib.suppress(OSError, Forbidden):  # the class stops following (best effort: the sign-out must hold)
        classroom.end_lesson(data_dir(), identity())
    auth.end_sign_ins(data_dir())  # every sign-in, every browser: a tab someone else holds is a student now
    st.session_state.pop(SIGNED_IN_KEY, None)
    st.session_state[COOKIE_KEY] = ""
    st.session_state.pop(BEAT_KEY, None)


def _name_changed() -> None:
    """Text-input callback: keep the cleaned name with the tab and in the student's profile (the teacher reads it)."""
    who = identity()
    if who.is_teacher:
        return
    try:
        name = roster.set_name(data_dir(), who, st.session_state.get(NAME_KEY, ""))
    except (ValueError, OSError):
        return
    st.session_state[NAME_KEY] = name
    remember(NAME_KEY, name)


def name_ui(who: Identity) -> None:
    """A student's display name: shown to the teacher (queue, requests, classes), never trusted for anything."""
    if NAME_KEY not in st.session_state:
        st.session_state[NAME_KEY] = roster.clean_name(recall(NAME_KEY, ""))
    kept = st.session_state[NAME_KEY]
    if kept and not st.session_state.get(NAME_SYNCED):  # a duplicated tab: same name, a profile of its own
        st.session_state[NAME_SYNCED] = True
        if roster.profile(data_dir(), who.tab).name != kept:
            roster.set_name(data_dir(), who, kept)
    st.text_input(
        _("Your name"),
        key=NAME_KEY,
        max_chars=roster.MAX_NAME,
        on_change=_name_changed,
        placeholder=_("so the teacher knows who you are"),
        help=_("Shown to the teacher next to your classes, requests and jobs. Nothing else: it signs nothing in."),
    )


def _keep_cookie() -> None:
    """Give this browser the sign-in cookie (or take it away after Sign out): a few lines of script, no URL."""
    value = st.session_state.get(COOKIE_KEY)
    if value is None:
        return
    age = auth.TEACHER_HOURS * 3600 if value else 0
    cookie = f"{auth.SIGN_IN_COOKIE}={value}; path=/; max-age={age}; SameSite=Strict"
    st.html(f"<script>document.cookie = {json.dumps(cookie)};</script>", unsafe_allow_javascript=True)
    if not value:
        st.session_state.pop(COOKIE_KEY, None)


def sign_in_ui() -> Identity:
    """The sidebar's role line and teacher sign-in (class mode only); returns this tab's identity."""
    who = identity()
    heartbeat(who)
    st.session_state[ROLE_KEY] = who.role
    if not who.class_mode:
        return who
    _keep_cookie()
    if who.role == TEACHER:
        st.success(_("Signed in as the **teacher**."), icon=":material/school:")
        st.button(
            _("Sign out"),
            key="auth_sign_out",
            on_click=_sign_out,
            help=_("Ends the teacher's sign-in everywhere: in every browser and tab, at once."),
        )
        return who
    st.caption(_("Class mode: you can look at and try everything; the teacher trains and manages the class."))
    name_ui(who)
    with st.expander(_("Teacher sign-in"), icon=":material/lock:"):
        st.text_input(_("Teacher password"), type="password", key=PASSWORD_KEY)
        st.button(_("Sign in"), key="auth_sign_in", on_click=_sign_in)
        notices_ui(SIGN_IN_ANSWER)
    return who


def sign_in_attempts_ui() -> None:
    """The Class page: the computers that typed wrong teacher passwords in the last hour (also in the log file)."""
    guessers = auth.sign_in_report(data_dir())
    if not guessers:
        return
    st.warning(
        n_(
            "Wrong teacher passwords in the last hour from {n} computer. If it was not you, someone is guessing: "
            "each wrong password makes that computer wait longer; change the password if in doubt.",
            "Wrong teacher passwords in the last hour from {n} computers. If it was not you, someone is guessing: "
            "each wrong password makes that computer wait longer; change the password if in doubt.",
            len(guessers),
        ).format(n=num(len(guessers))),
        icon=":material/lock:",
    )
    st.dataframe(
        [
            {
                _("computer"): g.client,
                _("wrong passwords"): g.failures,
                _("refused while waiting"): g.refused,
                _("last"): time.strftime("%H:%M:%S", time.localtime(g.last)),
                _("may try again in (s)"): round(g.wait),
            }
            for g in guessers
        ],
        hide_index=True,
    )
    st.caption(_("Every sign-in and wrong password is logged in `{file}`.").format(
        file=auth_dir(data_dir()) / auth.LOG_FILE))  # fmt: skip


__all__ = ["Forbidden", "Identity", "STUDENT", "TEACHER", "identity", "teacher_only"]
