"""Training requests in the UI: a student asks for a run (Training page), the teacher answers (Class page)."""

from __future__ import annotations

import time

import streamlit as st

from core.auth import Forbidden
from core.data.datasets import DatasetError, DatasetScan, DatasetSpec
from core.i18n import _, listed, n_, num
from core.settings import data_dir
from core.store import records
from core.store.records import RunConfig
from core.teach import job_records, jobs, requests, roster
from core.teach.requests import RequestStatus, TrainingRequest
from core.teach.roster import markdown_safe
from ui.auth import identity
from ui.jobs import job_queue, start_worker_if_needed
from ui.notices import Level, notices_ui, notify
from ui.runs import activate_run
from ui.state import scan_of, shown_name

ASKED = "train_request"  # the notice place of a student's request (ui.notices)
REQUESTS = "class_requests"  # the notice place of the Class page's requests


def _job_active(job_id: str) -> bool:
    try:
        return bool(job_id) and job_records.load_job(data_dir(), job_id).active
    except job_records.JobError:
        return False


def request_training_ui(config: RunConfig, scan_: DatasetScan) -> None:
    """A student's Train click in class mode: ask the teacher for exactly this run (refused with numbers if too small)."""
    try:
        asked = requests.ask(data_dir(), identity(), config, scan_, scan_fn=scan_of, job_active=_job_active)
    except (DatasetError, records.ConfigError, Forbidden, ValueError, OSError) as err:
        st.error(str(err))
        return
    notify(ASKED, _("Asked the teacher to train **{title}**. This page shows the answer.").format(
        title=asked.config.title(_)), Level.SUCCESS)  # fmt: skip
    st.rerun()


def my_request_ui() -> None:
    """Class mode, a student: their request and where it stands: waiting, declined, queued or training, trained (with Use it)."""
    who = identity()
    if not who.class_mode or who.is_teacher:
        return
    notices_ui(ASKED)
    request = requests.request_of(data_dir(), who.tab)
    if request is None:
        st.caption(
            _("In class mode the teacher trains: a **Train** button here asks the teacher to train that run for you.")
        )
        return
    title = request.config.title(_)
    if request.status == RequestStatus.PENDING:
        c1, c2 = st.columns([4, 1], vertical_alignment="center")
        c1.info(
            _("🙋 You asked for **{title}** on {dataset} at {time}: waiting for the teacher.").format(
                title=title, dataset=markdown_safe(shown_name(request.dataset)), time=_clock(request.created)
            )
        )
        if c2.button(_("Withdraw"), key="train_request_withdraw"):
            requests.withdraw(data_dir(), who)
            st.rerun()
        return
    if request.status == RequestStatus.DECLINED:
        st.warning(_("The teacher declined your request for **{title}**. You may ask again.").format(title=title))
        return
    try:
        job = job_records.load_job(data_dir(), request.job_id)
    except job_records.JobError:
        return
    if job.active:
        ahead = job_records.jobs_ahead(job_records.index(data_dir()), job.job_id)
        where = n_("{n} job ahead of it", "{n} jobs ahead of it", ahead).format(n=num(ahead)) if ahead else None
        st.info(
            _("✅ The teacher approved **{title}**: {where}. The sidebar shows its progress.").format(
                title=title, where=where or _("training now")
            )
        )
    elif job.status == job_records.JobStatus.DONE and job.run_id:
        c1, c2 = st.columns([4, 1], vertical_alignment="center")
        c1.success(_("🎉 Your run **{title}** is trained (run `{run}`).").format(title=title, run=job.run_id[:8]))
        c2.button(_("Use it"), key="train_request_use", on_click=activate_run, args=(job.run_id,))
    else:
        st.error(
            _("Your run **{title}** did not finish: {why}").format(
                title=title, why=job.shown_error() or job.status.label
            )
        )


def _clock(when: float) -> str:
    return time.strftime("%H:%M", time.localtime(when))


def _approve(tab: str) -> None:
    """Button callback (the teacher): queue the requested run."""

    def queue(config: RunConfig, spec: DatasetSpec) -> str:
        record = jobs.submit(data_dir(), identity(), config, spec, queue=job_queue())
        start_worker_if_needed()
        return record.job_id

    try:
        requests.approve(data_dir(), identity(), tab, queue, scan_fn=scan_of)
    except (DatasetError, records.ConfigError, Forbidden, job_records.JobError, ValueError, OSError) as err:
        notify(REQUESTS, str(err), Level.ERROR)


def _decline(tab: str) -> None:
    try:
        requests.decline(data_dir(), identity(), tab)
    except (Forbidden, ValueError, OSError) as err:
        notify(REQUESTS, str(err), Level.ERROR)


def request_line(request: TrainingRequest) -> str:
    """One request as the teacher reads it (markdown): who, what, on which data, with the numbers."""
    classes = listed(
        _("{cls} ({n})").format(cls=markdown_safe(c), n=num(n)) for c, n in sorted(request.classes.items())
    )
    return _("**{who}** asks for **{title}** on {dataset}: {images}, {valid} for validation · {classes}").format(
        who=markdown_safe(roster.label_of(data_dir(), request.tab)),
        title=request.config.title(_),
        dataset=markdown_safe(shown_name(request.dataset)),
        images=n_("{n} image", "{n} images", request.n_images).format(n=num(request.n_images)),
        valid=num(request.n_valid),
        classes=classes,
    )


def requests_ui() -> None:
    """The Class page's requests: each pending one with Approve (queue it) and Decline."""
    notices_ui(REQUESTS)
    pending = [r for r in requests.all_requests(data_dir()) if r.status == RequestStatus.PENDING]
    if not pending:
        st.caption(_("No requests waiting. A student's Train button on the Training page asks you here."))
        return
    for request in pending:
        c1, c2, c3 = st.columns([6, 1, 1], vertical_alignment="center")
        c1.markdown(request_line(request) + " · " + _clock(request.created))
        c2.button(_("Approve"), key=f"class_req_ok_{request.tab}", type="primary", on_click=_approve,
                  args=(request.tab,))  # fmt: skip
        c3.button(_("Decline"), key=f"class_req_no_{request.tab}", on_click=_decline, args=(request.tab,))
