"""Who is this tab: laptop user, teacher or student; the sidebar sign-in; the one guard pages call.

A tab is known by the per-tab token of ui.state (`?s=…` in the URL, naming its server-side store):
a reload keeps it, and a student's private space is keyed by it. The teacher's sign-in is kept in
that server-side store, never in the URL: a token signed for this very tab with a key derived from
the password (core.auth), so changing the password signs everyone out and Sign out really ends it.
Signing in gives the tab a fresh token first (ui.state.rotate_tab_token): a URL copied before the
sign-in reaches nothing.
"""

from __future__ import annotations

import time

import streamlit as st

from core import auth, classroom, roster
from core.auth import LAPTOP_USER, STUDENT, TEACHER, Forbidden, Identity
from core.i18n import _
from core.own_classes import OwnClassesStore
from core.settings import data_dir
from ui.state import SIGN_IN_KEY, forget, recall, remember, rotate_tab_token, tab_token

PASSWORD_KEY = "auth_password"
NAME_KEY = "auth_name"  # the student's display name (widget key, and kept in the tab's store)
NAME_SYNCED = "_auth_name_synced"  # this session checked that the profile holds the tab's kept name
ERROR_KEY = "auth_error"
BEAT_KEY = "auth_last_beat"
BEAT_SECONDS = 10.0
FAILED_SIGN_IN_DELAY = 1.0  # seconds a wrong password costs: guessing is slow


@st.cache_resource(show_spinner=False)
def _secret(base: str) -> bytes:
    return auth.server_secret(base)


def class_mode() -> bool:
    return auth.teacher_password() is not None


def identity() -> Identity:
    """This tab's identity: LAPTOP_USER without a teacher password, else the teacher or a student."""
    password = auth.teacher_password()
    if password is None:
        return LAPTOP_USER
    tab = tab_token()
    signed_in = auth.teacher_token_valid(recall(SIGN_IN_KEY), tab, _secret(str(data_dir())), password)
    return Identity(TEACHER if signed_in else STUDENT, tab)


def heartbeat(who: Identity) -> None:
    """Tell the Class page this tab is connected (at most every BEAT_SECONDS per tab)."""
    if not who.class_mode or time.time() - st.session_state.get(BEAT_KEY, 0.0) < BEAT_SECONDS:
        return
    st.session_state[BEAT_KEY] = time.time()
    classroom.touch_session(data_dir(), who)


def can(action: str) -> bool:
    """Whether this tab may perform action: to hide or disable a button (the guard still checks)."""
    return auth.allowed(identity(), action)


def teacher_only(action: str) -> bool:
    """The guard an action calls before it runs: True for the teacher (or a laptop), else an error and False."""
    try:
        auth.require(identity(), action)
    except Forbidden as err:
        st.error(str(err))
        return False
    return True


def require_teacher(action: str) -> None:
    """teacher_only, ending the script run when refused (for actions that cannot simply be skipped)."""
    if not teacher_only(action):
        st.stop()


def own_classes_store() -> OwnClassesStore:
    """The 'Your own classes' store this tab edits: the teacher's, or the student's private one."""
    return classroom.own_store(data_dir(), identity())


def _sign_in() -> None:
    password = auth.teacher_password()
    given = st.session_state.get(PASSWORD_KEY, "")
    st.session_state[PASSWORD_KEY] = ""
    if password is not None and auth.check_password(given, password):
        tab = rotate_tab_token()
        remember(SIGN_IN_KEY, auth.teacher_token(tab, _secret(str(data_dir())), password))
        st.session_state.pop(BEAT_KEY, None)
    else:
        time.sleep(FAILED_SIGN_IN_DELAY)
        st.session_state[ERROR_KEY] = _("Wrong teacher password.")


def _sign_out() -> None:
    forget(SIGN_IN_KEY)
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


def sign_in_ui() -> Identity:
    """The sidebar's role line and teacher sign-in (class mode only); returns this tab's identity."""
    who = identity()
    heartbeat(who)
    if not who.class_mode:
        return who
    if who.role == TEACHER:
        st.success(_("Signed in as the **teacher**."), icon=":material/school:")
        st.button(_("Sign out"), key="auth_sign_out", on_click=_sign_out)
        return who
    st.caption(_("Class mode: you can look at and try everything; the teacher trains and manages the class."))
    name_ui(who)
    with st.expander(_("Teacher sign-in"), icon=":material/lock:"):
        st.text_input(_("Teacher password"), type="password", key=PASSWORD_KEY)
        st.button(_("Sign in"), key="auth_sign_in", on_click=_sign_in)
        if err := st.session_state.pop(ERROR_KEY, None):
            st.error(err)
    return who


__all__ = ["Forbidden", "Identity", "STUDENT", "TEACHER", "can", "identity", "require_teacher", "teacher_only"]
