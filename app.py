"""Pet Lab: the frame. Page config, navigation, the shared sidebar, then the chosen page."""

from pathlib import Path

import streamlit as st

from core.i18n import _, p_
from core.store.live import Channel
from ui.auth import TEACHER, identity, sign_in_ui
from ui.frame import ensure_app_frame
from ui.i18n import language_picker_ui
from ui.jobs import jobs_status_ui
from ui.live import note_drawn
from ui.runs import sidebar_run_picker_ui
from ui.sidebar import sidebar
from ui.state import follow_class
from ui.tab_store import tab_token

ASSETS = Path(__file__).resolve().parent / "assets"

st.set_page_config(page_title="Pet Lab", page_icon=str(ASSETS / "petlab.svg"), layout="wide")
st.logo(str(ASSETS / "petlab.svg"))
ensure_app_frame()  # also sets this run's language (?lang=, the picker, the browser)

PAGES = {
    _("The lesson"): [
        st.Page("pages/lesson.py", title=_("Lesson"), icon=":material/co_present:"),
    ],
    _("1 · Data"): [
        st.Page("pages/data.py", title=_("Data"), icon=":material/photo_library:", default=True),
        st.Page("pages/augmentation.py", title=_("Augmentation"), icon=":material/auto_awesome_motion:"),
    ],
    _("2 · Train"): [
        st.Page("pages/training.py", title=_("Training"), icon=":material/model_training:"),
        st.Page("pages/interpretation.py", title=_("Interpretation"), icon=":material/grid_on:"),
    ],
    _("3 · Inside the network"): [
        st.Page("pages/layers.py", title=_("Layers"), icon=":material/layers:"),
    ],
    _("4 · Use the model"): [
        st.Page("pages/prediction.py", title=_("Prediction"), icon=":material/online_prediction:"),
    ],
}
who = identity()
CLASS_PAGE = st.Page("pages/class.py", title=p_("navigation", "Class"), icon=":material/school:")
if who.role == TEACHER:  # class mode, signed in: the teacher's own page
    PAGES[_("5 · Teach")] = [CLASS_PAGE]

page = st.navigation(PAGES)
tab_token()  # ?s=<token> in the URL: this tab's settings survive page changes and reloads
if who.class_mode:  # live: the sidebar's polling reruns the page when what it shows changed elsewhere
    note_drawn((Channel.CLASS, Channel.ROSTER) if page.url_path == CLASS_PAGE.url_path else (Channel.CLASS,),
               page.url_path)  # fmt: skip
    follow_class(announce=not who.is_teacher)  # the teacher's newest class dataset and model reach this tab
live_box = st.sidebar.container() if who.class_mode else None  # the polling box first: the teacher's step, the job
slot = st.sidebar.empty()
sidebar(slot)
with st.sidebar:
    sidebar_run_picker_ui()
    sign_in_ui()
if live_box is not None:
    with live_box:
        jobs_status_ui()  # after sign_in_ui (which notes the role the box compares with), drawn above it
with st.sidebar:
    language_picker_ui()
page.run()
sidebar(slot)  # again after the page: a dataset or run chosen by this very run shows at once
