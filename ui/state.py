"""Session-wide state every page shares: the data folder, the active dataset, the active model."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NoReturn

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.state.common import user_key_from_element_id

from core import auth, quotas
from core.data import datasets, pets
from core.data.datasets import DatasetScan, DatasetSpec
from core.data.labels import PETS_PATTERN
from core.i18n import N_, _, current, n_, num
from core.nets import models
from core.settings import RUNS_DIR, SESSIONS_DIR, data_dir, sub_dir
from core.store import records, runs
from core.store.session_store import SessionStore, StoreError, new_token, purge_expired, valid_token
from core.teach.classroom import ClassSettings, read_class_settings, run_visible, student_space
from core.teach.roster import markdown_safe

ACTIVE_DATASET = "active_dataset"
ACTIVE_RUN = "active_run"
OWN_CLASSES_NAME = N_("Your own classes")  # the name of the Data page's own-classes dataset, shown translated
# A model held by st.cache_resource is shared by every tab: hook-based work on it takes this lock.
MODEL_LOCK = threading.Lock()


def env_dataset() -> DatasetSpec | None:
    """A folder named by $PETLAB_DATASET (a teacher's class server, the browser tests)."""
    folder = os.environ.get("PETLAB_DATASET")
    if not folder:
        return None
    label_from = os.environ.get("PETLAB_LABEL", "regex")
    return DatasetSpec(
        name=Path(folder).name,
        kind="folder",
        root=str(Path(folder).resolve()),
        label_from=label_from,
        pattern=PETS_PATTERN,
    )


def server_default_dataset() -> DatasetSpec | None:
    """The server's default dataset: $PETLAB_DATASET, else Oxford-IIIT Pet when it is in the data folder."""
    spec = env_dataset()
    if spec is None:
        images = pets.find_pets(data_dir())
        spec = pets.pets_spec(images) if images else None
    return spec


def class_dataset(settings: ClassSettings | None = None) -> DatasetSpec | None:
    """Everyone's default: the teacher's class dataset (class mode), else the server's default."""
    settings = settings or read_class_settings(data_dir())
    return settings.dataset or server_default_dataset()


def active_dataset() -> DatasetSpec | None:
    """The dataset this browser tab works on: chosen on the Data page (kept across reloads), else the class's."""
    if ACTIVE_DATASET not in st.session_state:
        spec = _spec_from_plain(recall(ACTIVE_DATASET))
        if spec is not None and not _visible_here(spec):
            spec = None  # another student's private classes (a copied tab's setting): never this tab's
        st.session_state[ACTIVE_DATASET] = spec if spec is not None else class_dataset()
    return st.session_state[ACTIVE_DATASET]


CLASS_SEEN = "class_seen"  # the teacher's choices this tab has followed (ClassSeen, kept in the tab's store)


@dataclass(frozen=True)
class ClassSeen:
    """The teacher's choices a tab has followed: when the class dataset and model last changed, and the model."""

    dataset: float = 0.0  # ClassSettings.dataset_changed
    model: float = 0.0  # ClassSettings.model_changed
    run: str | None = None  # ClassSettings.model_run

    @classmethod
    def recalled(cls, value: Any) -> ClassSeen | None:
        """The kept value parsed back, or None for a new tab (or a value that is not one)."""
        try:
            return records.parse_dataclass(cls, value, CLASS_SEEN)
        except ValueError:  # a RecordError
            return None


def follow_class(announce: bool = True) -> None:
    """Make the teacher's newest class dataset and model this tab's (class mode; once per full run, cheap).

    The newest decision wins: a tab that chose its own dataset keeps it until the teacher changes the
    class dataset, then it follows (and says so in a toast); the student can switch back on the Data
    page. Publishing a class model makes it everyone's active model; unpublishing it moves only the
    tabs still on it back to the ImageNet model. A new tab starts on the class's choices.
    """
    settings = read_class_settings(data_dir())
    now = ClassSeen(settings.dataset_changed, settings.model_changed, settings.model_run)
    seen = st.session_state.get(CLASS_SEEN) or ClassSeen.recalled(recall(CLASS_SEEN))
    if seen is None:
        seen = now  # a new tab: active_dataset() and sync_active_run() start on the class's choices
    else:
        if settings.dataset_changed > seen.dataset:
            spec = class_dataset(settings)
            set_active_dataset(spec)
            if spec is not None and announce:
                st.toast(_("Class dataset: **{name}**").format(name=markdown_safe(shown_name(spec))),
                         icon=":material/school:")  # fmt: skip
        if settings.model_changed > seen.model:
            if settings.model_run is not None:
                st.session_state[ACTIVE_RUN] = settings.model_run
                if announce:
                    st.toast(_("The teacher published a class model: it is now your active model."),
                             icon=":material/school:")  # fmt: skip
            elif st.session_state.get(ACTIVE_RUN, recall(ACTIVE_RUN)) == seen.run:
                st.session_state[ACTIVE_RUN] = None  # the withdrawn class model: back to ImageNet
        seen = now
    st.session_state[CLASS_SEEN] = seen
    if _tab_values():  # a tab that keeps anything keeps this too; one that did nothing writes nothing
        remember(CLASS_SEEN, records.to_json(seen))


def _visible_here(spec: DatasetSpec) -> bool:
    """False for a dataset in another student's private space (class mode); the teacher sees every one."""
    from ui.auth import identity  # ui.auth builds on this module's tab store

    return run_visible(spec.root, identity(), data_dir())


def shown_name(spec: DatasetSpec) -> str:
    """A dataset's name as shown: the own-classes dataset's name is translated, others are folder names."""
    return _(spec.name) if spec.kind == "own" and spec.name == OWN_CLASSES_NAME else spec.name


def set_active_dataset(spec: DatasetSpec | None) -> None:
    st.session_state[ACTIVE_DATASET] = spec
    remember(ACTIVE_DATASET, records.to_json(spec) if spec is not None else None)


def _spec_from_plain(value: Any) -> DatasetSpec | None:
    """A DatasetSpec back from its stored dict (the one parser); None for anything that is not exactly one."""
    if not isinstance(value, dict) or set(value) != {f.name for f in fields(DatasetSpec)}:
        return None  # a spec of another layout (older or newer): the class's dataset instead
    try:
        return records.parse_dataclass(DatasetSpec, value, ACTIVE_DATASET)
    except ValueError:  # a RecordError: a field of the wrong type
        return None


@st.cache_data(max_entries=16, show_spinner=False)  # the spinner is scan_active's (in the tab's language)
def scan(spec: DatasetSpec, signature: str, lang: str = "en") -> DatasetScan:
    """Cached scan_dataset; `signature` (names, sizes, mtimes) invalidates it when files change.

    `lang` is in the key because the scan's reasons for skipped files are written in the tab's language.
    """
    return datasets.scan_dataset(spec)


SIGNATURE_TTL_S = 30.0  # a file rewritten in place (same name) shows within this; adds, removes, renames at once
MAX_WATCHED_DIRS = 2000
_SIGNATURES: dict[str, tuple[float, tuple[tuple[str, int], ...], str]] = {}
_SIGNATURES_LOCK = threading.Lock()


def _folders(root: str) -> list[str]:
    """root and every folder under it, as the dataset walk sees them (hidden names skipped, links not followed)."""
    found, stack = [], [root]
    while stack and len(found) < MAX_WATCHED_DIRS:
        folder = stack.pop()
        found.append(folder)
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            stack += [e.path for e in entries if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
    return found


def _stamps(folders: list[str]) -> tuple[tuple[str, int], ...] | None:
    try:
        return tuple((f, os.stat(f).st_mtime_ns) for f in folders)
    except OSError:
        return None


def dataset_signature(root: Path) -> str:
    """datasets.folder_signature, remembered server-wide: a rerun pays a stat per folder, not one per image.

    Adding, removing or renaming an image changes its folder's mtime, so the signature is recomputed
    at once; a file rewritten in place under the same name is seen within SIGNATURE_TTL_S. (The full
    walk stats every image: ~0.1 s for Pets' 7,390 files on the 2-core dev machine, and the sidebar
    alone asks twice per rerun of every page.)
    """
    key, now = str(root), time.monotonic()
    with _SIGNATURES_LOCK:
        entry = _SIGNATURES.get(key)
    if entry is not None:
        when, stamps, signature = entry
        if now - when < SIGNATURE_TTL_S and _stamps([f for f, _ in stamps]) == stamps:
            return signature
    stamps = _stamps(_folders(key))
    signature = datasets.folder_signature(root)
    if stamps is not None:
        with _SIGNATURES_LOCK:
            if len(_SIGNATURES) > 64:
                _SIGNATURES.clear()
            _SIGNATURES[key] = (now, stamps, signature)
    return signature


def scan_active() -> DatasetScan | None:
    """Scan of the active dataset, or None (with the error shown) when it cannot be scanned."""
    spec = active_dataset()
    if spec is None:
        return None
    try:
        with st.spinner(_("Scanning images (headers only)…")):
            return scan(spec, dataset_signature(Path(spec.root)), current().lang)
    except (datasets.DatasetError, ValueError) as err:
        st.error(_("The active dataset cannot be read: {error}").format(error=err))
        return None


def runs_dir() -> Path:
    return sub_dir(RUNS_DIR)


@st.cache_resource(max_entries=4, show_spinner=False)
def _cached_run_model(run_dir: str, stamp: float) -> models.LoadedModel:
    return runs.load_run_model(Path(run_dir))


def cached_run_model(run_dir: str, stamp: float) -> models.LoadedModel:
    """A run's model, shared by every tab: read-only, eval mode, never trained in place."""
    with st.spinner(_("Loading the fine-tuned model…")):  # shown only when loading takes over half a second
        return _cached_run_model(run_dir, stamp)


@st.cache_resource(max_entries=6, show_spinner=False)
def _cached_imagenet(arch: str, pretrained: bool) -> models.LoadedModel:
    return models.load_imagenet(arch, pretrained)


def cached_imagenet(arch: str, pretrained: bool = True) -> models.LoadedModel:
    """The ImageNet classifier (or random init), shared by every tab: read-only."""
    with st.spinner(_("Loading the ImageNet model…")):
        return _cached_imagenet(arch, pretrained)


def sync_active_run() -> str | None:
    """The active run id, restored after a reload and saved whenever a page changed it."""
    if ACTIVE_RUN not in st.session_state:
        restored = recall(ACTIVE_RUN)
        if not isinstance(restored, str):
            restored = read_class_settings(data_dir()).model_run  # class mode: the published class model
        st.session_state[ACTIVE_RUN] = restored
    elif st.session_state[ACTIVE_RUN] != recall(ACTIVE_RUN):
        remember(ACTIVE_RUN, st.session_state[ACTIVE_RUN])
    return st.session_state[ACTIVE_RUN]


def active_run_dir() -> Path | None:
    run_id = sync_active_run()
    if not run_id:
        return None
    path = runs_dir() / run_id
    return path if (path / models.WEIGHTS_FILE).is_file() else None


def active_model() -> models.LoadedModel:
    """The active fine-tuned run if one is chosen, else the offline ImageNet-pretrained mobilenet_v2."""
    run_dir = active_run_dir()
    if run_dir is not None:
        try:
            return cached_run_model(str(run_dir), (run_dir / models.WEIGHTS_FILE).stat().st_mtime)
        except Exception as err:  # a broken run never takes the page down
            st.warning(
                _("Run {run} could not be loaded ({error}); using the ImageNet model instead.").format(
                    run=run_dir.name, error=err
                )
            )
    return cached_imagenet(models.OFFLINE_ARCH)


def active_model_title() -> str:
    """One line naming the model pages will use: the active run's title, else the ImageNet default."""
    run_dir = active_run_dir()
    if run_dir is None:
        return _("ImageNet-pretrained {arch} (no run chosen)").format(arch=models.OFFLINE_ARCH)
    try:
        record = records.read_record(run_dir)
    except (ValueError, OSError):
        return _("run {run} (record unreadable)").format(run=run_dir.name)
    return _("{title} · run `{run}`").format(title=record.shown_title() or record.arch, run=run_dir.name[:8])


def sidebar(slot=None) -> None:
    """The shared sidebar: active dataset and active model, drawn into `slot` (an st.sidebar.empty()).

    app.py draws it before the page and again after it, so a dataset or run chosen by this very
    run shows at once (a page that stops early keeps the first drawing).
    """
    with slot.container() if slot is not None else st.sidebar:
        st.markdown("### 🐾 Pet Lab")
        spec = active_dataset()
        if spec is None:
            st.info(_("No dataset yet: choose one on the **Data** page."))
        else:
            result = scan_active()
            if result is not None:
                st.markdown(_("**Dataset:** {name}").format(name=shown_name(spec)))
                c1, c2 = st.columns(2)
                c1.metric(n_("image", "images", result.n_images), num(result.n_images))
                c2.metric(n_("class", "classes", len(result.classes)), len(result.classes))
        st.markdown(_("**Model:** {title}").format(title=active_model_title()))
        from ui.auth import identity  # ui.auth builds on this module's tab store

        if identity().is_teacher:  # the server's paths are for whoever runs it, not for students
            st.caption(_("Data folder: `{folder}`").format(folder=data_dir()))
            disk_warning_ui()


def disk_warning_ui() -> None:
    """A warning (for the teacher's eyes) when the data folder's disk nears the free-space floor."""
    disk = quotas.disk_state(data_dir())
    if disk.nearly_full:
        st.warning(
            _(
                "The data folder's disk is nearly full: {free} MB free. Below {floor} MB, Pet Lab refuses new "
                "photos, kept uploads, trainings and caches. Delete old runs or datasets, or free space on the disk."
            ).format(free=num(disk.free / quotas.MB, 0), floor=num(disk.floor / quotas.MB, 0)),
            icon=":material/hard_drive:",
        )


# ---------------------------------------------------------------- settings that survive a page change and a reload
# Streamlit forgets a widget's value when its page is left, and all session state on a reload.
# Each tab carries a random token in the URL (?s=...) naming a small server-side store
# (core/store/session_store.py); keep() restores a widget's value from it before the widget is drawn
# and saves it whenever it changed.
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
    tab's private space (its own classes as the active dataset): the copy is another student."""
    keys = list(PRIVATE_KEYS)
    spec = _spec_from_plain(values.get(ACTIVE_DATASET))
    if auth.teacher_password() is not None and spec is not None:
        space = str(student_space(data_dir(), token)) + os.sep
        if str(spec.root).startswith(space) or str(spec.root) + os.sep == space:
            keys.append(ACTIVE_DATASET)
    return tuple(keys)


# tab token -> id of the browser session holding it, in this server process (a duplicated tab arrives
# with the same ?s= as a live one: it gets a token of its own, see claim_token)
_HOLDERS: dict[str, str] = {}
_HOLDERS_LOCK = threading.Lock()
MAX_HOLDERS = 2000  # beyond this, entries of sessions no longer connected are dropped


def session_alive(session_id: str) -> bool:
    """Whether a browser session of this server is connected (False without Streamlit's runtime, e.g. AppTest)."""
    from streamlit.runtime import Runtime

    return Runtime.exists() and Runtime.instance().is_active_session(session_id)


def _session_id() -> str | None:
    ctx = get_script_run_ctx(suppress_warning=True)
    return ctx.session_id if ctx is not None else None


def claim_token(token: str) -> str:
    """Hold token for this browser session; if another live session holds it, fork a fresh one.

    A browser's "Duplicate tab" copies the URL, ?s= and all: two live tabs would then share one
    store and its settings. The second gets a new token with a copy of the settings (and kept photos),
    less PRIVATE_KEYS. (The teacher's sign-in is in neither: it is the browser's cookie, ui.auth.)
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


def _tab_values() -> dict[str, Any]:
    """The tab's stored values, read from disk once per browser session."""
    if TAB_VALUES not in st.session_state:
        st.session_state[TAB_VALUES] = tab_store().values()
    return st.session_state[TAB_VALUES]


def recall(key: str, default: Any = None) -> Any:
    """A value this tab kept with remember() or keep(), or default."""
    return _tab_values().get(key, default)


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
        st.session_state[TAB_VALUES] = {**_tab_values(), key: value}


def forget(key: str) -> None:
    try:
        st.session_state[TAB_VALUES] = tab_store().update({}, remove=(key,))
    except StoreError:
        return
    except OSError:  # a full disk cannot rewrite the file: removing it still forgets (a sign-out must hold)
        with contextlib.suppress(OSError):
            tab_store().drop_values()
        st.session_state[TAB_VALUES] = {k: v for k, v in _tab_values().items() if k != key}


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
