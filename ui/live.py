"""Live pages in class mode: a tab reruns by itself when something it shows changed elsewhere (core.store.live).

app.py notes the stamps each full run starts from (`note_drawn`); the sidebar's polling fragment
(ui.jobs.jobs_status_ui, every POLL_SECONDS) calls `rerun_if_changed`, which costs one `os.stat` per
channel and reruns the whole page only when a stamp moved. Students watch the CLASS channel; the
teacher's Class page also watches ROSTER (students' classes, names and requests).

The teacher's Lesson step (LESSON) reruns no page as a whole: the poll reads the step again only when its
stamp moved, reruns a Lesson page that follows it when the step differs from the one drawn
(`note_following`), and on every other page draws where the teacher is, with a link back (`teacher_link_ui`).
"""

from __future__ import annotations

import contextlib

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from core.i18n import _
from core.settings import data_dir
from core.store import live
from core.store.live import Channel
from core.teach import classroom
from core.teach.classroom import LessonStep
from core.train import lesson

DRAWN_KEY = "_live_drawn"  # the stamps this tab's page was last drawn from
CHANNELS_KEY = "_live_channels"  # the channels the current page watches
PAGE_KEY = "_live_page"  # the url path of the page this tab shows
FOLLOWED_KEY = "_live_followed"  # the teacher's step this tab's Lesson page drew while following (None: not)
REDRAW_KEY = "_live_redraw"  # the page asks the next poll to rerun it (a widget that could not show its value)
TEACHER_SEEN = "_live_teacher_step"  # (LESSON stamp, the teacher's step) as this tab last read them
FOLLOW_KEY = "lesson_follow"  # a student's "Follow the teacher" toggle on the Lesson page (ui.lesson)
LEAD_KEY = "lesson_lead"  # the teacher's "Students follow me" toggle on the Lesson page (ui.lesson)
LESSON_PAGE = "pages/lesson.py"
LESSON_URL_PATH = "lesson"


def note_drawn(channels: tuple[Channel, ...] = (Channel.CLASS,), page: str = "") -> None:
    """Call at the start of a full run, before reading what the page shows: the stamps it is drawn from.

    page: the url path of the page this run shows (the polling box links back to the Lesson elsewhere).
    """
    st.session_state[CHANNELS_KEY] = tuple(channels)
    st.session_state[DRAWN_KEY] = live.versions(data_dir(), tuple(channels))
    st.session_state[PAGE_KEY] = page
    st.session_state[FOLLOWED_KEY] = None  # the Lesson page says so again when it follows


def note_following(step: int | None) -> None:
    """The Lesson page: this run drew the teacher's `step` and follows it (None: it does not follow)."""
    st.session_state[FOLLOWED_KEY] = step


def redraw_soon() -> None:
    """Ask the sidebar's next poll to rerun the whole page (the Lesson page's step widget, seeded from an old URL)."""
    st.session_state[REDRAW_KEY] = True


def teacher_step() -> LessonStep | None:
    """The step the teacher shows the class (class mode): one stat, and one small read only when it changed."""
    base = data_dir()
    stamp = live.version(base, Channel.LESSON)
    seen = st.session_state.get(TEACHER_SEEN)
    if seen is None or seen[0] != stamp:
        seen = (stamp, classroom.lesson_step(base))
        st.session_state[TEACHER_SEEN] = seen
    shared = seen[1]
    return shared if shared is not None and shared.current() else None


def changed() -> bool:
    """Whether a watched stamp moved since the page was drawn (one stat per channel)."""
    channels = st.session_state.get(CHANNELS_KEY)
    if not channels:
        return False
    return live.versions(data_dir(), channels) != st.session_state.get(DRAWN_KEY)


def rerun_if_changed() -> None:
    """From a polling fragment: rerun the whole page when something it shows changed (else nothing): a watched
    stamp, or the teacher's step on a Lesson page that follows it."""
    if changed() or st.session_state.pop(REDRAW_KEY, False):
        st.rerun(scope="app")
    followed = st.session_state.get(FOLLOWED_KEY)
    if followed is not None:
        shared = teacher_step()
        if shared is not None and shared.step != followed:
            st.rerun(scope="app")


def teacher_link_ui(is_teacher: bool) -> None:
    """From the polling box: where the teacher is in the lesson and a link to that step, on every page but a
    Lesson page that follows or leads (it shows the step itself)."""
    with_class = st.session_state.get(LEAD_KEY if is_teacher else FOLLOW_KEY, True)
    if st.session_state.get(PAGE_KEY) == LESSON_URL_PATH and with_class:
        return
    shared = teacher_step()
    if shared is None:
        return
    title = _(lesson.STEPS[shared.step - 1].title)
    where = _("The class is at step {n}: **{title}**") if is_teacher else _("The teacher is at step {n}: **{title}**")
    st.caption(where.format(n=shared.step, title=title))
    label = _("Open step {n}").format(n=shared.step)
    with contextlib.suppress(StreamlitPageNotFoundError):  # a page run on its own (AppTest): no navigation
        st.page_link(LESSON_PAGE, label=label, icon=":material/co_present:", query_params={"step": str(shared.step)})
