"""The Class page's sections (the teacher's, in class mode): the class dataset, the lesson queued in one go,
the runs to publish or delete, the students' own classes to publish. Every action goes through core.teach.classroom,
which checks who may (teacher_only here only says it on the page)."""

from __future__ import annotations

import time
from collections.abc import Callable

import streamlit as st

from core import quotas
from core.data.datasets import training_refusal
from core.i18n import _, listed, n_, num
from core.nets import models
from core.settings import data_dir
from core.teach import classroom, jobs, roster
from core.teach.classroom import ClassSettings
from core.teach.roster import markdown_safe
from core.train.lesson import WORKSHOP
from ui.auth import identity, teacher_only
from ui.jobs import submit_job
from ui.runs import list_runs_ui, run_label
from ui.state import active_dataset, scan_active, server_default_dataset, set_active_dataset, shown_name
from ui.tab_store import relabelled


def written(change: Callable, *args) -> None:
    """Apply a change of the class settings and show the page again; a full disk is a message (nothing changed)."""
    try:
        change(*args)
    except quotas.QuotaError as err:
        st.error(str(err))
        return
    st.rerun()


def class_dataset_ui(settings: ClassSettings) -> None:
    """The class dataset (every student's default) beside the teacher's own; make one the other, or go back."""
    base, mine, default = data_dir(), active_dataset(), server_default_dataset()
    st.markdown(
        _("**Class dataset** (every student's default): {class_dataset} · **your active dataset**: {mine}").format(
            class_dataset=markdown_safe(shown_name(settings.dataset)) if settings.dataset else _("the server default"),
            mine=markdown_safe(shown_name(mine)) if mine else _("none"),
        )
    )
    c1, c2 = st.columns(2)
    if c1.button(_("Make my active dataset the class dataset"), key="class_set_dataset", disabled=mine is None) and (
        teacher_only("change_class_dataset")
    ):
        written(classroom.set_class_dataset, base, identity(), mine)
    if not (settings.dataset or mine != default):
        return
    back = c2.button(_("Back to the server default"), key="class_reset_dataset",
                     help=_("The class dataset and your own active dataset go back to {name}.").format(
                         name=shown_name(default) if default else _("none")))  # fmt: skip
    if back and teacher_only("change_class_dataset"):
        try:
            classroom.set_class_dataset(base, identity(), None)  # every tab follows it, this one too
        except quotas.QuotaError as err:
            st.error(str(err))
        else:
            set_active_dataset(default)
            st.rerun()


def queue_lesson_ui() -> None:
    """The lesson's runs on the teacher's active dataset with the Training page's defaults, queued in one go."""
    scan = scan_active()
    if scan is None or scan.n_images == 0:
        st.info(_("Choose a dataset on the **Data** page to queue trainings on it."))
        return
    c1, c2, c3, c4 = st.columns(4)
    arch = c1.selectbox(_("Architecture"), models.arch_names(), index=models.arch_names().index(WORKSHOP.arch),
                        key="class_arch")  # fmt: skip
    size = c2.select_slider(
        _("Image size (px)"), [32, 48, 64, 96, 128, 160, 224], value=WORKSHOP.img_size, key="class_size"
    )
    epochs1 = c3.number_input(_("Stage 1 epochs"), 1, 50, WORKSHOP.epochs1, key="class_epochs1")
    epochs2 = c4.number_input(_("Stage 2 epochs"), 1, 50, WORKSHOP.epochs2, key="class_epochs2")
    plan = jobs.lesson_plan(scan.fingerprint, arch, int(size), int(epochs1), int(epochs2))
    names = [name for name, _c in plan]
    picked = st.multiselect(_("Runs to queue, in order"), names, default=names, format_func=_,
                            key=relabelled("class_plan", names, _))  # fmt: skip
    st.caption(
        _(
            "On **{dataset}** ({images}), with the Training page's other defaults, so students find these runs "
            "there already trained."
        ).format(
            dataset=markdown_safe(shown_name(scan.spec)),
            images=n_("{n} image", "{n} images", scan.n_images).format(n=num(scan.n_images)),
        )
    )
    refused = training_refusal(scan)  # too small to train: said here, with the numbers, before anything is queued
    if refused is not None:
        st.error(refused.message, icon="⛔")
    if st.button(_("Queue them"), type="primary", key="class_queue_go", disabled=not picked or refused is not None):
        queued = [submit_job(config, scan.spec) for name, config in plan if name in picked]
        if all(queued):
            st.success(
                n_(
                    "Queued {n} run. It trains even with this tab closed.",
                    "Queued {n} runs. They train one after another, even with this tab closed.",
                    len(queued),
                ).format(n=num(len(queued)))
            )


def class_runs_ui(settings: ClassSettings) -> None:
    """The class model (every student's default): publish a run as it, unpublish it, or delete a run for everyone."""
    found = list_runs_ui()
    if not found:
        st.caption(_("No runs yet."))
        return
    base = data_dir()
    labels = {r.run_id: run_label(r) for r in found}
    current = settings.model_run if settings.model_run in labels else None
    st.markdown(
        _("**Class model** (every student's default): {model}").format(
            model=markdown_safe(labels[current]) if current else _("ImageNet-pretrained")
        )
    )
    pick = st.selectbox(_("Run"), list(labels), format_func=labels.get, key=relabelled("class_run", labels, labels.get))
    c1, c2, c3 = st.columns(3)
    if c1.button(_("Publish as the class model"), key="class_publish_run") and teacher_only("publish"):
        written(classroom.set_class_model, base, identity(), pick)
    if current and c2.button(_("Unpublish"), key="class_unpublish_run") and teacher_only("publish"):
        written(classroom.set_class_model, base, identity(), None)
    with c3.popover(_("Delete run {run}").format(run=pick[:8])):
        st.write(_("Deletes {run} from the server for everyone.").format(run=labels[pick]))
        if st.button(_("Delete it"), type="primary", key="class_delete_run") and teacher_only("delete_run"):
            classroom.delete_class_run(base, identity(), pick)
            st.rerun()


def students_classes_ui() -> None:
    """Each student's own classes (private until published), with a name to publish them under."""
    base = data_dir()
    st.caption(
        _("Private to each student until you publish them; removed {hours} h after the student's last visit.").format(
            hours=num(classroom.STUDENT_SPACE_HOURS, 0)
        )
    )
    spaces = [s for s in classroom.student_spaces(base) if s.classes]
    if not spaces:
        st.caption(_("No student has made classes yet."))
    for space in spaces:
        c1, c2, c3 = st.columns([3, 2, 1], vertical_alignment="bottom")
        seen = time.strftime("%H:%M", time.localtime(space.last_seen))
        student = roster.profile(base, space.tab)
        classes = listed(
            _("{cls} ({n})").format(cls=markdown_safe(c), n=n_("{n} photo", "{n} photos", n).format(n=num(n)))
            for c, n in space.classes.items()
        )
        c1.markdown(
            _("**{student}** · seen {time} · {classes}").format(
                student=markdown_safe(student.label()), time=seen, classes=classes
            )
        )
        suggested = roster.clean_name(student.name) or f"student-{student.number}"
        name = c2.text_input(_("Publish as"), value=f"class-{suggested}", key=f"class_pub_name_{space.tab}")
        if c3.button(_("Publish"), key=f"class_pub_{space.tab}") and teacher_only("publish"):
            try:
                spec = classroom.publish_classes(base, identity(), space.tab, name)
            except ValueError as err:
                st.error(str(err))
            else:
                set_active_dataset(spec)
                st.success(
                    _(
                        "Published as {name}: every student finds it on the Data page (Class datasets), and it is "
                        "your active dataset now; make it the class dataset in section 1."
                    ).format(name=markdown_safe(spec.name))
                )
