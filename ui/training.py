"""Training in the UI: a run trained with its live display and Stop, the outcome after the rerun, another tab's run."""

from __future__ import annotations

import time

import streamlit as st

from core import curves, models, quotas, records, training, training_lock
from core.features import shown_progress
from core.i18n import N_, _, num
from core.schedules import lr_text
from ui.auth import class_mode, identity, teacher_only
from ui.frame import background_training
from ui.jobs import queue_training_ui
from ui.notices import Level, notices_ui, notify
from ui.requests import request_training_ui
from ui.runs import activate_run, features_dir
from ui.state import runs_dir


class LiveTraining:
    """Placeholders the trainer's events update: progress bar, live loss chart, per-epoch table."""

    def __init__(self, config: records.RunConfig):
        self.status = st.empty()
        self.bar = st.progress(0.0, text=_("Preparing data and model…"))
        self.chart = st.empty()
        self.table = st.empty()
        self.epochs: list[dict] = []
        self.batches: list[tuple[float, float]] = []
        self.config = config
        self.last_draw = 0.0

    def __call__(self, event: dict) -> None:
        kind = event["kind"]
        if kind == "extract":
            self.bar.progress(
                min(1.0, event["i"] / max(1, event["n"])),
                text=_("Extracting body features: {what}").format(what=shown_progress(event["what"])),
            )
        elif kind == "stage":
            stage = event["stage"]
            describe = self.config.stages[stage].describe(_) if stage < len(self.config.stages) else event["describe"]
            self.status.info(
                _("Stage {stage}/{n}: {describe}").format(stage=stage + 1, n=len(self.config.stages), describe=describe)
            )
        elif kind == "batch":
            done = (event["epoch"] + event["iter"] / event["n_iter"]) / event["n_epoch"]
            x = len(self.epochs) + event["iter"] / event["n_iter"]
            self.batches.append((x, event["loss"]))
            text = _("epoch {epoch}/{n_epoch} · batch {iter}/{n_iter} · loss {loss} · lr {lr}").format(
                epoch=event["epoch"] + 1,
                n_epoch=event["n_epoch"],
                iter=event["iter"],
                n_iter=event["n_iter"],
                loss=num(event["loss"], 3),
                lr=lr_text(event["lr"]),
            )
            self.bar.progress(min(1.0, done), text=text)
            if time.perf_counter() - self.last_draw > 1.0:
                self.last_draw = time.perf_counter()
                self.chart.plotly_chart(curves.loss_figure(self.epochs, self.batches), key=f"live_{x}")
        elif kind == "epoch":
            self.epochs.append(event["row"])
            self.chart.plotly_chart(curves.loss_figure(self.epochs, self.batches), key=f"live_ep_{len(self.epochs)}")
            self.table.dataframe(curves.epochs_table(self.epochs), hide_index=True)


TRAIN_RUNNING = "train_running_here"  # this tab is training (its own lock is not "another training")
TRAIN_OVERLAY = "train_overlay"
STOPPED = N_("Stopped: nothing was saved. The buttons are ready for another run.")
BUSY_HELP = N_("Another tab is training in this data folder (its progress is shown at the top); one run at a time.")


def outcome_place(n_stages: int) -> str:
    """The notice place (ui.notices) of the last training's outcome for a run of n_stages stages: its stage's section."""
    return f"train_stage{n_stages}"


def outcome_ui(n_stages: int) -> None:
    """The outcome of the last training of a run with n_stages stages (trained, opened, stopped), shown once."""
    notices_ui(outcome_place(n_stages))


def train_ui(config: records.RunConfig, scan, retrain: bool = False) -> None:
    """Train (or open) a run with a live display and a Stop button, then rerun so the whole page shows it.

    A Stop click (like any click during a run) interrupts the script; the `finally` then leaves
    "Stopped: nothing was saved" for the next run of the page. Errors stay on the page as messages.
    """
    if class_mode():  # the worker trains it; the teacher queues it, a student asks the teacher for it
        if identity().is_teacher:
            queue_training_ui(config, scan.spec, retrain, (st.session_state.get("train_lrfind_history") or [None])[-1])
        else:
            request_training_ui(config, scan)
        return
    n_stages = len(config.stages)
    st.session_state[TRAIN_RUNNING] = True
    st.button("⏹ " + _("Stop training"), key=f"train_stop_{config.run_id}", type="secondary",
              help=_("Stops after the current batch: nothing is saved."))  # fmt: skip
    live = LiveTraining(config)
    lr_record = (st.session_state.get("train_lrfind_history") or [None])[-1]
    outcome = "interrupted"
    try:
        with background_training():  # in the server process: cores − 1 torch threads, this thread niced
            result = training.train_run(
                config, scan, runs_dir(), features_dir(), on_event=live, lr_finder=lr_record, retrain=retrain
            )
        outcome = "done"
    except training_lock.TrainingBusy as err:
        outcome = "busy"
        st.warning(_("{error} Wait for it to finish (its progress is shown above).").format(error=err))
    except training_lock.TrainingStopped:
        pass  # the Stop of another tab (or of this one, through the stop file)
    except (records.ConfigError, models.WeightsUnavailable, quotas.QuotaError) as err:  # QuotaError: a full disk
        outcome = "error"
        st.error(str(err))
    finally:
        st.session_state[TRAIN_RUNNING] = False
        if outcome == "interrupted":
            notify(outcome_place(n_stages), _(STOPPED), Level.WARNING)
    if outcome == "interrupted":
        st.rerun()
    if outcome != "done":
        return
    rid = result.run.run_id
    activate_run(rid)
    if TRAIN_OVERLAY in st.session_state:  # the overlay widget keeps its own selection: put the new run in it
        st.session_state[TRAIN_OVERLAY] = [rid, *(i for i in st.session_state[TRAIN_OVERLAY] if i != rid)][:4]
    done = _("Opened the stored run {run} (now the active model).") if result.reused else None
    done = done or _("Trained and stored run {run} (now the active model).")
    notify(outcome_place(n_stages), done.format(run=rid), Level.SUCCESS)
    st.rerun()  # the whole page (and the sidebar) from the top: buttons, stage 2, runs list, overlay


def progress_title(progress: dict | None) -> str:
    """The title of the training a progress file describes, in the current language where its config says."""
    progress = progress or {}
    try:
        return records.config_from_dict(progress["config"]).title(_)
    except (KeyError, TypeError, ValueError):  # written before the config was in it, or damaged
        return progress.get("title") or _("a run")


@st.fragment(run_every=2.0)
def other_training_ui() -> None:
    """Shown while another tab trains in this data folder: its progress, refreshed every 2 s."""
    progress = training_lock.read_progress(runs_dir())
    if not training_lock.training_running(runs_dir()):
        st.success(_("The other training has finished: reload the page to see its run."))
        return
    st.info(
        _("Another tab is training **{title}**. One training at a time per data folder.").format(
            title=progress_title(progress)
        )
    )
    last = (progress or {}).get("last") or {}
    if last.get("kind") == "batch":
        done = (last["epoch"] + last["iter"] / last["n_iter"]) / last["n_epoch"]
        text = _("epoch {epoch}/{n_epoch} · loss {loss}").format(
            epoch=last["epoch"] + 1, n_epoch=last["n_epoch"], loss=num(last["loss"], 3)
        )
        st.progress(min(1.0, done), text=text)
    epochs = (progress or {}).get("epochs") or []
    if epochs:
        st.dataframe(curves.epochs_table(epochs), hide_index=True)
    if st.button(_("Ask it to stop"), key="train_stop_other") and teacher_only("stop"):
        training_lock.request_stop(runs_dir())
