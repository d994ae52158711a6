"""Class (the teacher's page in class mode): who is here, the class dataset, the training queue, runs.

The page is live: the sidebar's polling reruns it when the queue, the runs, the class settings or the
students' classes and requests change (ui/live.py); the running job's bar refreshes on its own.
"""

import streamlit as st

from core.i18n import _, p_
from core.settings import data_dir
from core.teach import classroom
from ui.auth import identity, sign_in_attempts_ui
from ui.classroom import class_dataset_ui, class_runs_ui, queue_lesson_ui, students_classes_ui
from ui.frame import ensure_app_frame
from ui.queue_table import queue_table_ui, who_is_here_ui
from ui.requests import requests_ui
from ui.sidebar import disk_warning_ui
from ui.tab_store import stop_page

ensure_app_frame()
st.title("🏫 " + p_("navigation", "Class"))
if not identity().is_teacher:  # app.py registers this page for the teacher only; this is the page's own check
    st.error(_("The Class page is the teacher's: sign in from the sidebar."))
    stop_page()
st.caption(
    _(
        "Everything the students share: the class dataset and model, the training queue (the worker trains "
        "while you teach, even with this tab closed), and the students' own classes."
    )
)
who_is_here_ui()
disk_warning_ui()
sign_in_attempts_ui()
settings = classroom.read_class_settings(data_dir())

st.header(_("1 · Class dataset and model"))
class_dataset_ui(settings)

st.header(_("2 · Queue the lesson"))
queue_lesson_ui()

st.header(_("3 · Training queue"))
st.subheader(_("Students' requests"))
requests_ui()
st.subheader(_("Jobs"))
queue_table_ui()

st.header(_("4 · Runs"))
class_runs_ui(settings)

st.header(_("5 · Students' own classes"))
students_classes_ui()
