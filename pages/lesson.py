"""Lesson: lesson 1 step by step as the course runs it, each step's code beside its real output; a presenter view."""

import streamlit as st

from core.i18n import _
from core.train import lesson
from ui.frame import ensure_app_frame
from ui.lesson import (
    class_step_ui,
    current_step,
    lesson_settings_ui,
    notebook_download_ui,
    presenter_ui,
    step_nav_ui,
)
from ui.lesson_steps import step_output_ui, step_text_ui
from ui.state import scan_active
from ui.tab_store import stop_page

ensure_app_frame()
toggles = st.container(horizontal=True, gap="large")  # the presenter view; class mode: follow the teacher, or lead
presenting = presenter_ui(toggles)
if not presenting:
    st.title(_("🎓 Lesson: what's your pet?"))
    st.caption(
        _(
            "Lesson 1 in the course's order, one step at a time: the fastai code, what goes in and what comes out, "
            "and the real output from the runs stored here (nothing retrains when you move). The arrow keys move "
            "between steps; the presenter view is for a projector."
        )
    )

scan = scan_active()
if scan is None or scan.n_images == 0:
    st.info(_("Choose a dataset on the **Data** page first."))
    stop_page()

with st.container(border=False) if not presenting else st.expander(_("Settings and notebook")):
    settings, found = lesson_settings_ui(scan)
    notebook_download_ui(settings, scan, found, key="lesson_notebook")

number = step_nav_ui(class_step_ui(current_step(), toggles))  # class mode: the teacher's step, followed or led
item = lesson.STEPS[number - 1]
st.header(f"{number} · {_(item.title)}")
code_side, output_side = st.columns([1, 1] if presenting else [2, 3], gap="large")  # a projector: code in large type
with code_side:
    step_text_ui(item, settings, scan)
with output_side:
    step_output_ui(item, settings, scan, found)
