"""The Lesson page's frame: the lesson's settings and the runs they show, the step in the URL and its arrows,
following or leading the class, the presenter view, and the notebook to take home. Each step's text and output:
ui.lesson_steps."""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from pathlib import Path

import streamlit as st

from core.auth import Forbidden
from core.data.datasets import DatasetScan
from core.i18n import N_, _
from core.nets import models
from core.quotas import QuotaError
from core.settings import data_dir, torch_home
from core.store.runs import RunInfo
from core.teach import classroom
from core.train import lesson
from core.train import notebook as nbexport
from core.train.lesson import COURSE, WORKSHOP, LessonSettings, RunRole
from ui.auth import class_mode, identity
from ui.live import FOLLOW_KEY, LEAD_KEY, note_following, redraw_soon, teacher_step
from ui.state import runs_dir
from ui.tab_store import keep, recall

STEP_PARAM = "step"  # ?step=7 opens step 7: the step widget's key, bound to the URL
PRESENT_PARAM = "present"  # ?present=1: the presenter view
SOURCE_KEY = "lesson_source"
LRFIND_KEY = "lesson_lrfind"  # LR-finder curves this tab ran from the Lesson page, by lr_finder_key
SHARED_KEY = "_lesson_shared"  # the step this teacher's tab last showed the class
STALE_KEY = "_lesson_stale"  # (the step widget's value from an old URL, the step shown) until the widget shows it


class Source(StrEnum):
    """Whose settings the lesson shows: the course's (what `make prepare` trains) or this tab's Training page."""

    COURSE = "course"
    TAB = "tab"


SOURCE_LABELS = {
    Source.COURSE: N_("The course's runs (resnet34 at 224 px, trained by `make prepare`)"),
    Source.TAB: N_("This tab's Training page settings"),
}
RANDOM_INIT = "random init (no pretraining)"  # the Training page's kept value of its "Initial weights" radio
# the Training page's kept widget keys and the LessonSettings field each one sets
TRAINING_KEYS = {
    "train_arch": "arch", "train_size": "img_size", "train_bs": "bs", "train_seed": "seed",
    "train_augment": "augment", "train_epochs1": "epochs1", "train_lr1": "lr1", "train_fast": "fast",
    "train_views": "views", "train_epochs2": "epochs2", "train_lo": "lr_lo", "train_hi": "lr_hi",
}  # fmt: skip


# ---- whose settings, which step -----------------------------------------------------------------------------


def tab_settings() -> LessonSettings:
    """The lesson with this tab's Training page values (WORKSHOP's where the tab has not changed one)."""
    changes = {}
    for key, name in TRAINING_KEYS.items():
        value, default = st.session_state.get(key, recall(key)), getattr(WORKSHOP, name)
        if value is None or isinstance(value, bool) != isinstance(default, bool):
            continue
        try:
            changes[name] = type(default)(value)
        except (TypeError, ValueError):
            continue
    settings = replace(WORKSHOP, **changes)
    return replace(
        settings,
        arch=settings.arch if settings.arch in models.ARCHS else WORKSHOP.arch,
        pretrained=st.session_state.get("train_init", recall("train_init")) != RANDOM_INIT,
        mistake_epochs=settings.epochs2,  # the Training page's mistake trains as long as its stage 2
        views=settings.views if settings.fast else lesson.default_views(settings.augment),
    )


def lesson_settings_ui(scan: DatasetScan) -> tuple[LessonSettings, dict[RunRole, RunInfo]]:
    """Choose whose runs the lesson shows; the course's by default when `make prepare` trained them here."""
    course_found = lesson.find_runs(COURSE, scan.fingerprint, runs_dir())
    default = Source.COURSE if RunRole.FROZEN in course_found else Source.TAB
    if SOURCE_KEY not in st.session_state and recall(SOURCE_KEY) is None:
        st.session_state[SOURCE_KEY] = default
    source = st.radio(_("Show"), list(Source), format_func=lambda s: _(SOURCE_LABELS[Source(s)]), horizontal=True,
                      key=keep(SOURCE_KEY, options=list(Source)))  # fmt: skip
    settings = COURSE if source == Source.COURSE else tab_settings()
    found = course_found if source == Source.COURSE else lesson.find_runs(settings, scan.fingerprint, runs_dir())
    return settings, found


def current_step() -> int:
    """The step this tab chose: ?step= in the URL (kept by the step widget); on opening the page without one, in
    class mode, the step the teacher shows the class. (class_step_ui may show the teacher's step instead.)"""
    chosen = st.session_state.get(STEP_PARAM)
    stale = st.session_state.get(STALE_KEY)
    if chosen is not None and stale is not None and chosen == stale[0]:
        return stale[1]  # the step widget still shows an old URL's step (step_nav_ui): the step shown is this
    if chosen is None:
        chosen = st.query_params.get(STEP_PARAM)
    if chosen is None and class_mode():
        shared = teacher_step()
        return shared.step if shared is not None else 1
    return lesson.clamp_step(chosen if chosen is not None else 1)


def _move(delta: int) -> None:
    _explore_alone()
    st.session_state[STEP_PARAM] = lesson.clamp_step(current_step() + delta)


def step_nav_ui(number: int) -> int:
    """Previous / Next (the ← and → keys) around a pagination bound to ?step=; returns the step shown."""
    st.session_state[STEP_PARAM] = number
    c1, c2, c3 = st.columns([2, 8, 2], vertical_alignment="center")
    c1.button("◀ " + _("Previous"), key="lesson_prev", shortcut="Left", on_click=_move, args=(-1,),
              disabled=number <= 1, width="stretch")  # fmt: skip
    c3.button(_("Next") + " ▶", key="lesson_next", shortcut="Right", on_click=_move, args=(1,),
              disabled=number >= len(lesson.STEPS), type="primary", width="stretch")  # fmt: skip
    with c2:
        shown = st.pagination(len(lesson.STEPS), key=STEP_PARAM, bind="query-params", max_visible_pages=11,
                              on_change=_explore_alone)  # fmt: skip
    if shown != number:
        # A page's first draw takes ?step= from the URL over the value set above: a following student opened an
        # older URL (a reload). The page shows the teacher's step; the sidebar's next poll reruns it, and then
        # the pagination and the URL show it too. Until then ← → and the toggle start from the step shown.
        st.session_state[STALE_KEY] = (shown, number)
        redraw_soon()
    else:
        st.session_state.pop(STALE_KEY, None)
    return number


# ---- follow the teacher (class mode) ------------------------------------------------------------------------


def class_step_ui(own: int, where=st) -> int:
    """Class mode: a student's *Follow the teacher* toggle, the teacher's *Students follow me*; the step to show.

    A following student sees the teacher's step. The leading teacher's tab shows the class the step it moves to,
    and follows a move made in another of the teacher's tabs (the laptop beside the projector). Otherwise, or
    without a shared step, `own` (the tab's ?step=). The sidebar's polling reruns a following page when the
    teacher's step changes (ui.live): nothing else runs for it. `where`: the container of the toggle.
    """
    who = identity()
    if not who.class_mode:
        return own
    if who.is_teacher:
        return _lead(own, where)
    if FOLLOW_KEY not in st.session_state and recall(FOLLOW_KEY) is None:
        st.session_state[FOLLOW_KEY] = True
    on = where.toggle(_("Follow the teacher"), key=keep(FOLLOW_KEY, default=True),
                      help=_("On: this page shows the step the teacher shows and moves when they move. Off, or "
                             "when you move yourself: explore on your own; turn it on to go back."))  # fmt: skip
    if not on:  # the sidebar says where the teacher is, with a link to that step
        note_following(None)
        return own
    shared = teacher_step()
    note_following(shared.step if shared is not None else 0)  # 0: none shared yet, the first one moves this page
    if shared is None:
        st.caption(_("The teacher is not showing the lesson now: move on your own until they do."))
        return own
    return shared.step


def _lead(own: int, where) -> int:
    """The signed-in teacher: share the step this tab moved to, else show the class's (moved in another tab)."""
    if LEAD_KEY not in st.session_state and recall(LEAD_KEY) is None:
        st.session_state[LEAD_KEY] = True
    lead = where.toggle(_("Students follow me"), key=keep(LEAD_KEY, default=True),
                        help=_("On: students whose *Follow the teacher* is on see the step you show here, within a "
                               "few seconds. Off: look ahead without moving the class."))  # fmt: skip
    if not lead:
        st.session_state.pop(SHARED_KEY, None)  # turned on again: the step shown then is shared at once
        note_following(None)
        return own
    number = own
    if own != st.session_state.get(SHARED_KEY):  # moved here (or the first step drawn): the class moves
        try:
            classroom.share_lesson_step(data_dir(), identity(), own)
        except (Forbidden, QuotaError, OSError) as err:
            st.warning(_("The class could not be moved to this step: {error}").format(error=err))
    else:  # not moved here: a move made in another of the teacher's tabs shows here too
        shared = teacher_step()
        number = shared.step if shared is not None else own
    st.session_state[SHARED_KEY] = number
    note_following(number)
    return number


def _explore_alone() -> None:
    """A student who moves by themselves while following the teacher stops following (the toggle says so)."""
    if st.session_state.get(FOLLOW_KEY) and not identity().is_teacher and teacher_step() is not None:
        st.session_state[FOLLOW_KEY] = False


# The presenter view's look. A metric's label and value are markdown paragraphs: they need rules of their own
# after the paragraphs' (a long label wraps instead of ending in "…"). The arrow keys make the page's focus
# ring show: a grey frame placed for the hidden header, so it goes.
PRESENTER_CSS = """
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stHeader"]
  {display: none !important}
.stMainBlockContainer {max-width: 100%; padding: 1.5rem 3rem}
.stMainBlockContainer [data-testid="stMarkdownContainer"] p, .stMainBlockContainer li {font-size: 1.45rem}
.stMainBlockContainer h2 {font-size: 2.8rem}
.stMainBlockContainer [data-testid="stCode"] code {font-size: 1.1rem}
.stMainBlockContainer [data-testid="stMetricLabel"] p {font-size: 1.15rem}
.stMainBlockContainer [data-testid="stMetricLabel"] *
  {white-space: normal !important; overflow: visible !important; text-overflow: clip !important}
.stMainBlockContainer [data-testid="stMetricValue"] p {font-size: 2.6rem; line-height: 1.2}
[data-testid="stMain"]:focus-visible::before {display: none}
"""
PRESENTER_CHART_FONT = 16  # px, the presenter view's chart type (Streamlit's theme uses about 12)


def presenter_ui(where=st) -> bool:
    """The presenter toggle (?present=1 in the URL): large type, no sidebar, for a projector."""
    on = where.toggle(_("Presenter view"), key=PRESENT_PARAM, bind="query-params",
                      help=_("Large type for a projector. ← and → move between steps; the URL (?step=) opens a step."))  # fmt: skip
    if on:
        st.html(f"<style>{PRESENTER_CSS}</style>")
    return on


def presenting() -> bool:
    return bool(st.session_state.get(PRESENT_PARAM))


def chart_ui(fig, key: str, where=st) -> None:
    """A plotly chart of a step's output; larger type in the presenter view."""
    if presenting():
        larger_type(fig, PRESENTER_CHART_FONT)
    where.plotly_chart(fig, key=key)


def larger_type(fig, size: int) -> None:
    """Set the chart's type size part by part: Streamlit's chart theme replaces the figure-wide font size.
    A size the figure already sets (the confusion matrix's class names) is kept."""

    def axis(ax) -> None:
        if ax.tickfont.size is None:
            ax.tickfont.size = size
        if ax.title.font.size is None:
            ax.title.font.size = size

    fig.for_each_xaxis(axis)
    fig.for_each_yaxis(axis)
    if fig.layout.legend.font.size is None:
        fig.update_layout(legend_font_size=size)
    if fig.layout.title.font.size is None:
        fig.update_layout(title_font_size=size + 2)


# ---- a step's text -------------------------------------------------------------------------------------------


def shown_root(scan: DatasetScan) -> str | None:
    """The dataset folder as code may show it: the full path for the teacher, its name only for a student."""
    return None if identity().is_teacher else Path(scan.spec.root).name


# ---- take the notebook home ----------------------------------------------------------------------------------


def notebook_download_ui(settings: LessonSettings, scan: DatasetScan, found: dict[RunRole, RunInfo], key: str) -> None:
    """*Download as notebook*: the lesson with these settings, in this tab's language, with the app's results."""
    results = {role: run.record for role, run in found.items()}
    teacher = identity().is_teacher  # a student's notebook names no server path
    nb = nbexport.lesson_notebook(settings, scan.spec, results, torch_home=str(torch_home()) if teacher else None,
                                  root_shown=shown_root(scan))  # fmt: skip
    st.download_button(
        _("Download as notebook"), nbexport.notebook_bytes(nb), file_name=nbexport.notebook_name(settings, scan.spec),
        mime="application/x-ipynb+json", key=key, icon=":material/download:",
        help=_("A Jupyter notebook of the whole lesson with these settings, in plain fastai, with this tab's "
               "language and Pet Lab's results to compare with."),
    )  # fmt: skip
