"""Training: lr_find, fit_one_cycle with the body frozen, then unfrozen with discriminative LRs."""

import streamlit as st

from core.i18n import _
from core.store import runs
from core.train.lesson import RunRole, find_runs
from ui.frame import ensure_app_frame
from ui.lesson import notebook_download_ui, tab_settings
from ui.lr_finder import lr_finder_ui
from ui.requests import my_request_ui
from ui.runs import runs_overview_ui, shown_run_ui
from ui.state import runs_dir
from ui.train_settings import model_and_data_ui, schedule_ui, stage1_settings_ui, stage2_settings_ui
from ui.training import busy_help, stage1_ui, stage2_ui, trainable_scan_ui

ensure_app_frame()
st.title(_("🏋️ Training: fine-tune a pretrained network"))
st.caption(
    _(
        "Lesson 1: fine-tune an ImageNet-pretrained CNN. `lr_find` → `fit_one_cycle` with the body frozen → "
        "`unfreeze()` and `fit_one_cycle` again with `slice(lo, hi)`. Every run is stored: asking for a config "
        "that was already trained opens it instantly."
    )
)
my_request_ui()  # class mode, a student: the Train buttons ask the teacher; where the request stands
scan = trainable_scan_ui()  # ends the page here, saying why, when this dataset cannot train
busy = busy_help()  # why the Train buttons wait (another tab trains here), with its progress; None: they may go

st.header(_("1 · Model and data"))
model = model_and_data_ui()

st.header(_("2 · Stage 1: body frozen"))
settings = stage1_settings_ui(model)
config1 = settings.config(RunRole.FROZEN, scan.fingerprint)
with st.expander(_("LR finder (`learn.lr_find()`)"), expanded=True):
    st.caption(
        _(
            "A mock training that raises the LR exponentially each batch and records the loss. "
            "Pick an LR where the loss is still falling steeply, before it explodes."
        )
    )
    lr_finder_ui(config1, scan, bool(busy), busy)
schedule_ui(settings, scan)
# a full fastai run of these settings (`make prepare`) counts as trained with Fast on, and the other way round
config1, existing1 = runs.find_frozen_run(runs_dir(), config1, views=settings.views)
stage1_ui(config1, existing1, settings.fast, scan, busy)
shown_run_ui()  # the run just trained or opened: its curves and epochs

st.header(_("3 · Stage 2: unfreeze, discriminative learning rates"))
if existing1 is None:
    st.info(_("Train stage 1 with the settings above first: stage 2 continues from that stored run."))
else:
    stage2_ui(stage2_settings_ui(settings), config1, scan, busy)

settings = tab_settings()  # this tab's values, stage 2's included when stage 1 is not trained yet
notebook_download_ui(settings, scan, find_runs(settings, scan.fingerprint, runs_dir()), key="train_notebook")

st.header(_("4 · Runs"))
runs_overview_ui(scan.fingerprint)
