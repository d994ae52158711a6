"""Class (the teacher's page in class mode): who is here, the class dataset, the training queue, runs."""

import time

import streamlit as st

from core import classroom, jobs, models, runs, worker
from core.settings import data_dir
from ui.auth import identity, teacher_only
from ui.frame import ensure_app_frame
from ui.jobs import queue_table_ui, submit_job
from ui.runs import list_runs_ui, run_label
from ui.state import active_dataset, runs_dir, scan_active, set_active_dataset

ensure_app_frame()
st.title("🏫 Class")
if not identity().is_teacher:  # app.py registers this page for the teacher only; this is the page's own check
    st.error("The Class page is the teacher's: sign in from the sidebar.")
    st.stop()
base = data_dir()
st.caption(
    "Everything the students share: the class dataset and model, the training queue (the worker trains "
    "while you teach, even with this tab closed), and the students' own classes."
)

# ---- who is here ----------------------------------------------------------------------------------
here = classroom.active_sessions(base)
beat = worker.worker_info(base) if worker.worker_running(base) else None
c1, c2, c3 = st.columns(3)
c1.metric("students connected", here.get("student", 0), help=f"tabs seen in the last {classroom.ACTIVE_SECONDS:.0f} s")
c2.metric("teacher tabs", here.get("teacher", 0))
c3.metric("worker", f"{beat['threads']} threads · {beat['queue']}" if beat else "not running")

# ---- the class dataset and model --------------------------------------------------------------------
st.header("1 · Class dataset and model")
settings = classroom.read_class_settings(base)
mine = active_dataset()
st.markdown(
    f"**Class dataset** (every student's default): {settings.dataset.name if settings.dataset else 'the server default'}"
    f" · **your active dataset**: {mine.name if mine else 'none'}"
)
c1, c2 = st.columns(2)
if c1.button("Make my active dataset the class dataset", key="class_set_dataset", disabled=mine is None) and (
    teacher_only("change_class_dataset")
):
    classroom.set_class_dataset(base, identity(), mine)
    st.rerun()
if (
    settings.dataset
    and c2.button("Back to the server default", key="class_reset_dataset")
    and (teacher_only("change_class_dataset"))
):
    classroom.set_class_dataset(base, identity(), None)
    st.rerun()

# ---- queue the lesson ---------------------------------------------------------------------------------
st.header("2 · Queue the lesson")
scan = scan_active()
if scan is None or scan.n_images == 0:
    st.info("Choose a dataset on the **Data** page to queue trainings on it.")
else:
    c1, c2, c3, c4 = st.columns(4)
    arch = c1.selectbox("Architecture", models.arch_names(), index=models.arch_names().index("mobilenet_v2"),
                        key="class_arch")  # fmt: skip
    size = c2.select_slider("Image size (px)", [32, 48, 64, 96, 128, 160, 224], value=64, key="class_size")
    epochs1 = c3.number_input("Stage 1 epochs", 1, 50, 2, key="class_epochs1")
    epochs2 = c4.number_input("Stage 2 epochs", 1, 50, 1, key="class_epochs2")
    plan = jobs.lesson_plan(scan.fingerprint, arch, int(size), int(epochs1), int(epochs2))
    picked = st.multiselect("Runs to queue, in order", [name for name, _ in plan], default=[name for name, _ in plan],
                            key="class_plan")  # fmt: skip
    st.caption(f"On **{scan.spec.name}** ({scan.n_images:,} images), with the Training page's other defaults, so "
               "students find these runs there already trained.")  # fmt: skip
    if st.button("Queue them", type="primary", key="class_queue_go", disabled=not picked):
        queued = [submit_job(config, scan.spec) for name, config in plan if name in picked]
        if all(queued):
            st.success(f"Queued {len(queued)} run(s). They train one after another, even with this tab closed.")

# ---- the queue ----------------------------------------------------------------------------------------
st.header("3 · Training queue")
queue_table_ui()

# ---- runs ---------------------------------------------------------------------------------------------
st.header("4 · Runs")
found = list_runs_ui()
if not found:
    st.caption("No runs yet.")
else:
    labels = {r.run_id: run_label(r) for r in found}
    current = settings.model_run if settings.model_run in labels else None
    st.markdown(f"**Class model** (every student's default): {labels[current] if current else 'ImageNet-pretrained'}")
    pick = st.selectbox("Run", list(labels), format_func=labels.get, key="class_run")
    c1, c2, c3 = st.columns(3)
    if c1.button("Publish as the class model", key="class_publish_run") and teacher_only("publish"):
        classroom.set_class_model(base, identity(), pick)
        st.rerun()
    if current and c2.button("Unpublish", key="class_unpublish_run") and teacher_only("publish"):
        classroom.set_class_model(base, identity(), None)
        st.rerun()
    with c3.popover(f"Delete run {pick[:8]}"):
        st.write(f"Deletes {labels[pick]} from the server for everyone.")
        if st.button("Delete it", type="primary", key="class_delete_run") and teacher_only("delete_run"):
            if pick == current:
                classroom.set_class_model(base, identity(), None)
            runs.delete_run(runs_dir() / pick)
            st.rerun()

# ---- students' own classes ------------------------------------------------------------------------------
st.header("5 · Students' own classes")
st.caption(f"Private to each student until you publish them; removed {classroom.STUDENT_SPACE_HOURS:.0f} h after "
           "the student's last visit.")  # fmt: skip
spaces = [s for s in classroom.student_spaces(base) if s.classes]
if not spaces:
    st.caption("No student has made classes yet.")
for space in spaces:
    c1, c2, c3 = st.columns([3, 2, 1], vertical_alignment="bottom")
    seen = time.strftime("%H:%M", time.localtime(space.last_seen))
    c1.markdown(f"`{space.tab[:8]}` · seen {seen} · " + ", ".join(f"{c} ({n})" for c, n in space.classes.items()))
    name = c2.text_input("Publish as", value=f"class-{space.tab[:6]}", key=f"class_pub_name_{space.tab}")
    if c3.button("Publish", key=f"class_pub_{space.tab}") and teacher_only("publish"):
        try:
            spec = classroom.publish_classes(base, identity(), space.tab, name)
        except ValueError as err:
            st.error(str(err))
        else:
            set_active_dataset(spec)
            st.success(f"Published as {spec.name}, now your active dataset: make it the class dataset in section 1.")
