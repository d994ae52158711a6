"""What a browser tab keeps: its token in the URL, its server-side store, and widget values that survive.

Streamlit forgets a widget's value when its page is left, and all session state on a reload. Each tab
carries a random token in the URL (?s=...) naming a small server-side store (core/store/session_store.py);
keep() restores a widget's value from it before the widget is drawn and saves it whenever it changed.
stop_page() and relabelled() keep widgets in step with what the browser shows.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.state.common import user_key_from_element_id

from core import auth
from core.settings import SESSIONS_DIR, data_dir, sub_dir
from core.store.session_store import SessionStore, StoreError, new_token, purge_expired, valid_token
from core.teach.classroom import student_space

TOKEN_PARAM = "s"
TAB_TOKEN = "_tab_token"
TAB_VALUES = "_tab_values"
KEPT_KEYS = "_kept_keys"  # every key keep() declared in this session
SHOWN_LABELS = "_shown_labels"  # widget key -> the option labels relabelled() saw it drawn with
PURGE_EVERY_S = 600.0
_last_purge = [0.0]
_MISSING = object()


SIGN_IN_KEY = "auth_teacher"  # where a sign-in was kept before issue 18 (now never written nor read): not copied
PRIVATE_KEYS = (SIGN_IN_KEY,)


def private_keys(token: str, values: dict[str, Any]) -> tuple[str, ...]:
    """What a copy of tab `token` must not take: the sign-in, and in class mode whatever points into the
    tab's private space (its own classes as the active dataset: a value whose "root" is in that space):
    the copy is another student."""
    keys = list(PRIVATE_KEYS)
    if auth.teacher_password() is not None:
        space = str(student_space(data_dir(), token)) + os.sep
        for key, value in values.items():
            root = value.get("root") if isinstance(value, dict) else None
            if isinstance(root, str) and (root.startswith(space) or root + os.sep == space):
                keys.append(key)
    return tuple(keys)


# tab token -> id of the browser session holding it, in this server process (a duplicated tab arrives
# with the same ?s= as a live one: it gets a token of its own, see claim_token)
_HOLDERS: dict[str, str] = {}
_HOLDERS_LOCK = threading.Lock()
MAX_HOLDERS = 2000  # beyond this, entries of sessions no longer connected are dropped


def session_alive(session_id: str) -> bool:
    """Whether a browser session of this server is connected (False without Streamlit's runtime, e.g. AppTest)."""
    return Runtime.exists() and Runtime.instance().is_active_session(session_id)


def _session_id() -> str | None:
    ctx = get_script_run_ctx(suppress_warning=True)
    return ctx.session_id if ctx is not None else None


def claim_token(token: str) -> str:
    """Hold token for this browser session; if another live session holds it, fork a fresh one.

    A browser's "Duplicate tab" copies the URL, ?s= and all: two live tabs would then share one
    store and its settings. The second gets a new token with a copy of the settings (and kept photos),
    less private_keys(). (The teacher's sign-in is in neither: it is the browser's cookie, ui.auth.)
    A reload is not a duplicate: the old session has disconnected by the time the new one runs.
    """
    me = _session_id()
    if me is None:
        return token
    with _HOLDERS_LOCK:
        holder = _HOLDERS.get(token)
        if holder is not None and holder != me and session_alive(holder):
            fresh = new_token()
            with contextlib.suppress(StoreError, OSError):
                source = SessionStore(sessions_dir(), token)
                laptop = auth.teacher_password() is None  # one user: their kept photos come along
                source.copy_to(fresh, exclude=private_keys(token, source.values()), blobs=laptop)
            token = fresh
        _HOLDERS[token] = me
        if len(_HOLDERS) > MAX_HOLDERS:
            for held, sid in list(_HOLDERS.items()):
                if sid != me and not session_alive(sid):
                    del _HOLDERS[held]
    return token


def _release_token(token: str) -> None:
    with _HOLDERS_LOCK:
        if _HOLDERS.get(token) == _session_id():
            del _HOLDERS[token]


def tab_token() -> str:
    """This tab's token: from the URL on a reload, else a new one (also for a duplicated tab); always in the URL."""
    token = st.session_state.get(TAB_TOKEN)
    if token is None:
        given = st.query_params.get(TOKEN_PARAM)
        token = claim_token(given) if valid_token(given) else claim_token(new_token())
        st.session_state[TAB_TOKEN] = token
        if time.time() - _last_purge[0] > PURGE_EVERY_S:
            _last_purge[0] = time.time()
            purge_expired(sessions_dir())
    if st.query_params.get(TOKEN_PARAM) != token:
        st.query_params[TOKEN_PARAM] = token  # a page change may drop it from the URL: put it back
    return token


def rotate_tab_token() -> str:
    """Give this tab a fresh token, keeping its store (call it on sign-in: a URL copied before reaches nothing)."""
    old = tab_store()
    token = new_token()
    old.move_to(token)
    _release_token(st.session_state[TAB_TOKEN])
    claim_token(token)
    st.session_state[TAB_TOKEN] = token
    st.query_params[TOKEN_PARAM] = token
    return token


def sessions_dir() -> Path:
    return sub_dir(SESSIONS_DIR)


def tab_store() -> SessionStore:
    """The store of this tab (reusable for anything a tab must keep across reloads; never a sign-in: ui.auth)."""
    return SessionStore(sessions_dir(), tab_token())


def tab_values() -> dict[str, Any]:
    """The tab's stored values, read from disk once per browser session."""
    if TAB_VALUES not in st.session_state:
        st.session_state[TAB_VALUES] = tab_store().values()
    return st.session_state[TAB_VALUES]


def recall(key: str, default: Any = None) -> Any:
    """A value this tab kept with remember() or keep(), or default."""
    return tab_values().get(key, default)


def remember(key: str, value: Any) -> None:
    """Keep a plain value (JSON-able) for this tab; a value the store refuses is simply not kept.

    Best effort: when the disk refuses the write (full), the value is kept for this browser session only
    (a reload forgets it) and the page goes on.
    """
    if recall(key, _MISSING) == value:
        return
    try:
        st.session_state[TAB_VALUES] = tab_store().update({key: value})
    except StoreError:
        return
    except OSError:
        st.session_state[TAB_VALUES] = {**tab_values(), key: value}


def forget(key: str) -> None:
    try:
        st.session_state[TAB_VALUES] = tab_store().update({}, remove=(key,))
    except StoreError:
        return
    except OSError:  # a full disk cannot rewrite the file: removing it still forgets (a sign-out must hold)
        with contextlib.suppress(OSError):
            tab_store().drop_values()
        st.session_state[TAB_VALUES] = {k: v for k, v in tab_values().items() if k != key}


def keep(
    key: str, options: Sequence | None = None, valid: Callable[[Any], bool] | None = None, default: Any = _MISSING
) -> str:
    """Declare a widget key whose value survives page changes and reloads; returns the key.

    Use it inline, before the widget exists: `st.slider("max_zoom", 1.0, 2.0, 1.1, key=keep("aug_max_zoom"))`.
    A live value is saved when it differs from the stored one (also one a callback wrote); a
    missing one (page left, tab reloaded) is restored. `options`/`valid` guard the restore: a
    stored value no longer allowed (a class of another dataset) is dropped and the widget's own
    default applies. `default` (the widget's own): a live default with nothing stored is not
    written (the widget shows it anyway), which spares a tab's first reruns one disk write per widget.
    """
    st.session_state.setdefault(KEPT_KEYS, set()).add(key)
    stored = recall(key, _MISSING)
    if key in st.session_state:
        current = st.session_state[key]
        if isinstance(current, tuple):
            current = list(current)
        if stored is _MISSING and default is not _MISSING and current == default:
            return key
        if stored is _MISSING or stored != current:
            remember(key, current)
        return key
    if stored is _MISSING:
        return key
    allowed = True
    if options is not None:
        choices = list(options)
        allowed = all(v in choices for v in stored) if isinstance(stored, list) else stored in choices
    if allowed and valid is not None:
        try:
            allowed = bool(valid(stored))
        except (TypeError, ValueError):
            allowed = False
    if allowed:
        st.session_state[key] = stored
    else:
        forget(key)
    return key


def stop_page() -> NoReturn:
    """End the page here, as st.stop() does, without leaving its undrawn widgets out of step with the browser.

    st.stop() is a premature stop: Streamlit then skips the clean-up a finished run does, so the
    server keeps the values of the widgets this run did not draw while the browser forgets them.
    When they are drawn again Streamlit believes the browser still shows those values and sends
    none: the browser draws each widget's default while the script reads the old value (issue 19:
    Augmentation's controls said seed 0 and 'reflection' while the grid used seed 1 and zeros).
    So the keep() widgets this run did not draw are forgotten here, as a finished run would; when
    they come back keep() restores them from the tab's store, and Streamlit sends that value.
    """
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is not None:
        drawn = {user_key_from_element_id(w) for w in ctx.shared.widget_ids_this_run.snapshot()}
        for key in st.session_state.get(KEPT_KEYS, set()) - drawn:
            if key in st.session_state:
                del st.session_state[key]
    st.stop()


def relabelled(key: str, options: Sequence, format_func: Callable[[Any], Any] = str) -> str:
    """Declare a choice widget whose options are shown through format_func; returns the key (use it inline).

    A choice widget's value travels between the server and the browser as its option's label. When the
    labels change while the choice stays (the tab switched language, a class's photo count grew, a
    run's title was translated), the browser kept showing the old label: the Class page's plan names
    stayed English after switching to Chinese (issue 19). When this run's labels differ from the last
    run's, the value is set again, and Streamlit sends it to the browser with the new labels.
    """
    shown = [str(format_func(option)) for option in options]
    seen = st.session_state.setdefault(SHOWN_LABELS, {})
    if seen.get(key, shown) != shown and key in st.session_state:
        value, allowed = st.session_state[key], list(options)
        many = isinstance(value, list | tuple) and value not in allowed  # a multiselect's list, not a tuple option
        if all(v in allowed for v in value) if many else value in allowed:
            st.session_state[key] = value
    seen[key] = shown
    return key
