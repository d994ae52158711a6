"""Pet Lab: the frame. Page config, navigation, the shared sidebar, then the chosen page."""

from pathlib import Path

import streamlit as st

from ui.auth import TEACHER, identity, sign_in_ui
from ui.frame import ensure_app_frame
from ui.jobs import jobs_status_ui
from ui.runs import sidebar_run_picker_ui
from ui.state import sidebar, tab_token

ASSETS = Path(__file__).resolve().parent / "assets"

st.set_page_config(page_title="Pet Lab", page_icon=str(ASSETS / "petlab.svg"), layout="wide")
st.logo(str(ASSETS / "petlab.svg"))
ensure_app_frame()

PAGES = {
    "1 · Data": [
        st.Page("pages/data.py", title="Data", icon=":material/photo_library:", default=True),
        st.Page("pages/augmentation.py", title="Augmentation", icon=":material/auto_awesome_motion:"),
    ],
    "2 · Train": [
        st.Page("pages/training.py", title="Training", icon=":material/model_training:"),
        st.Page("pages/interpretation.py", title="Interpretation", icon=":material/grid_on:"),
    ],
    "3 · Inside the network": [
        st.Page("pages/layers.py", title="Layers", icon=":material/layers:"),
    ],
    "4 · Use the model": [
        st.Page("pages/prediction.py", title="Prediction", icon=":material/online_prediction:"),
    ],
}
who = identity()
if who.role == TEACHER:  # class mode, signed in: the teacher's own page
    PAGES["5 · Teach"] = [st.Page("pages/class.py", title="Class", icon=":material/school:")]

page = st.navigation(PAGES)
tab_token()  # ?s=<token> in the URL: this tab's settings survive page changes and reloads
slot = st.sidebar.empty()
sidebar(slot)
with st.sidebar:
    sidebar_run_picker_ui()
    sign_in_ui()
    if who.class_mode:
        jobs_status_ui()
page.run()
sidebar(slot)  # again after the page: a dataset or run chosen by this very run shows at once
