"""The Lesson page's steps: each step's text (the fastai code with this tab's settings) and its real output, from
what is already on disk (the dataset scan, stored runs, their predictions, an LR-finder curve kept with a run or a
job). Nothing trains by moving between steps; a step whose run is missing says what to run and offers it to the
teacher (on a laptop, its only user)."""

from __future__ import annotations

import contextlib
import os

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from core.data import augmentation, datasets
from core.data.datasets import DatasetScan
from core.data.images import ImageError
from core.i18n import N_, _, n_, num, pct, translated_columns
from core.inside.activations import channel_order, feature_grid_figure
from core.nets import models
from core.settings import data_dir
from core.store import runs
from core.store.records import EventKind, LRFinderResult
from core.store.runs import RunInfo
from core.teach import job_records, jobs
from core.teach.job_records import JobKind, JobStatus
from core.train import curves, learners, lesson, lr_finder
from core.train import interpretation as interp
from core.train.lesson import COURSE, LessonSettings, RunRole, Step, StepKey
from ui.auth import identity
from ui.data import thumbnail
from ui.executor import run_job_ui
from ui.jobs import submit_shared_ui
from ui.layers import feature_maps, imagenet_or_message, model_id
from ui.lesson import LRFIND_KEY, chart_ui, shown_root
from ui.progress import LiveBar
from ui.runs import run_predictions
from ui.state import runs_dir
from ui.tab_store import recall
from ui.training import train_ui

# ---- a step's text -------------------------------------------------------------------------------------------


def step_text_ui(item: Step, settings: LessonSettings, scan: DatasetScan) -> None:
    """The explanation, what goes in and comes out, today's code and course-v3's where it differs."""
    st.markdown(_(item.explanation))
    st.markdown(_("**Goes in:** {what}").format(what=_(item.goes_in)) + "  \n"
                + _("**Comes out:** {what}").format(what=_(item.comes_out)))  # fmt: skip
    st.code(lesson.step_code(item, settings, scan.spec, shown_root(scan)), language="python", wrap_lines=True)
    v1 = lesson.step_v1(item, settings, scan.spec)
    if v1:
        st.caption(_("In course-v3 (fastai v1):"))
        st.code(v1, language="python", wrap_lines=True)
    label = _(lesson.EXPLORE_LABELS[item.explore])
    try:
        st.page_link(item.explore.value, label=label, icon=":material/arrow_forward:")
    except StreamlitPageNotFoundError:  # the page run on its own (AppTest): no navigation to link into
        st.caption("→ " + label)


# ---- a step's output -----------------------------------------------------------------------------------------


def step_output_ui(item: Step, settings: LessonSettings, scan: DatasetScan, found: dict[RunRole, RunInfo]) -> None:
    """The step's real output, from the dataset or the stored runs; what to run when it is missing."""
    draw = {
        StepKey.DOWNLOAD: lambda: _download(scan),
        StepKey.LABEL: lambda: _labels(scan),
        StepKey.DATA: lambda: _split(scan, settings),
        StepKey.BATCH: lambda: _batch(scan, settings),
        StepKey.LEARNER: lambda: _learner(scan, settings),
        StepKey.LR_FIND: lambda: _lr_find(scan, settings, found),
        StepKey.INTERPRET: lambda: _interpret(found[RunRole.FROZEN]),
    }
    missing = [role for role in item.runs[:1] if role not in found]
    if missing:
        _not_prepared(missing[0], settings, scan)
    elif item.key in draw:
        draw[item.key]()
    else:
        _epochs(item, found)


def _download(scan: DatasetScan) -> None:
    c1, c2 = st.columns(2)
    c1.metric(n_("image", "images", scan.n_images), num(scan.n_images))
    c2.metric(_("dataset"), scan.spec.name if scan.spec.kind != "pets" else "URLs.PETS")
    st.dataframe({_("file"): scan.items["rel"].head(8).tolist()}, hide_index=True)


def _labels(scan: DatasetScan) -> None:
    c1, c2 = st.columns(2)
    c1.metric(n_("class", "classes", len(scan.classes)), num(len(scan.classes)))
    c2.metric(_("left out (no match)"), num(len(scan.unmatched)))
    rows = scan.items.groupby("label", sort=True).head(1).head(8)
    st.dataframe({_("file"): rows["rel"].tolist(), _("label"): rows["label"].tolist()}, hide_index=True)


def _split(scan: DatasetScan, settings: LessonSettings) -> None:
    n_valid = int(scan.items["is_valid"].sum())
    c1, c2, c3 = st.columns(3)
    c1.metric(_("training set"), num(scan.n_images - n_valid))
    c2.metric(_("validation set"), num(n_valid))
    c3.metric(_("batches per epoch"), num(learners.n_train_batches(scan, settings.bs)))
    st.dataframe(translated_columns(datasets.split_counts(scan.items)).head(8), hide_index=True)


@st.cache_data(max_entries=16, show_spinner=False)
def _batch_images(paths: tuple[str, ...], size: int, augment: bool, seed: int):
    return augmentation.training_batch(list(paths), size, augment, seed)


def _batch(scan: DatasetScan, settings: LessonSettings) -> None:
    train = scan.items[~scan.items["is_valid"]]
    rows = train.sample(n=min(9, len(train)), random_state=settings.seed)
    try:
        images = _batch_images(tuple(rows["path"]), settings.img_size, settings.augment, settings.seed)
    except (OSError, ValueError) as err:
        st.warning(_("These images could not be read: {error}").format(error=err))
        return
    cols = st.columns(3)
    for i, (image, label) in enumerate(zip(images, rows["label"], strict=True)):
        cols[i % 3].image(image, caption=label, width="stretch")


def _photo(path: str, side: int = 160):
    """The app's one grid thumbnail (ui.data.thumbnail), or None when the file is gone or unreadable."""
    try:
        return thumbnail(path, side)
    except ImageError:
        return None


def _learner(scan: DatasetScan, settings: LessonSettings) -> None:
    groups = learners.n_groups(settings.arch)
    st.markdown(_("**{arch}**, ImageNet-pretrained: {groups} layer groups; the body (groups 1 to {body}) is frozen, "
                  "the new head (group {groups}) trains.").format(arch=settings.arch, groups=groups, body=groups - 1))  # fmt: skip
    loaded, why = imagenet_or_message(settings.arch)
    if loaded is None:
        st.info(why)
        return
    path = scan.items["path"].iloc[0]
    image = _photo(path, 448)
    if image is None:
        return
    label, stage = models.ARCHS[settings.arch].stages[len(models.ARCHS[settings.arch].stages) // 2]
    act, _probs = feature_maps(model_id(loaded), stage, f"{path}-{os.path.getmtime(path)}", 224, loaded, image)
    c1, c2 = st.columns([1, 3])
    c1.image(image, caption=scan.items["label"].iloc[0], width="stretch")
    title = _("Feature maps of {stage}: the 16 strongest channels").format(stage=_(label))
    chart_ui(feature_grid_figure(act, channel_order(act)[:16], ncols=8, title=title), "lesson_maps", c2)


def _epochs(item: Step, found: dict[RunRole, RunInfo]) -> None:
    """fastai's epoch table and the loss curve of the step's run, its error rate beside the one it is compared to."""
    run = found[item.runs[0]]
    rows = run.record.epochs
    shown = [(role, found[role]) for role in item.runs if role in found and found[role].error_rate is not None]
    for col, (role, other) in zip(st.columns(max(1, len(shown))), shown, strict=False):
        versus = shown[1][1].error_rate if other is run and len(shown) > 1 else None
        change = None if versus is None else other.error_rate - versus
        level = change is not None and abs(change) < 5e-5  # no change at 2 decimals: grey, no arrow (not a red ↑)
        col.metric(_(ROLE_LABELS[role]), pct(other.error_rate, 2), delta=None if change is None else pct(change, 2),
                   delta_color="off" if level else "inverse", delta_arrow="off" if level else "auto")  # fmt: skip
    st.dataframe(curves.epochs_table(rows), hide_index=True)
    chart_ui(curves.loss_figure(rows), f"lesson_loss_{item.key}")
    st.caption(run.title)


ROLE_LABELS = {  # the error-rate metrics' labels
    RunRole.FROZEN: N_("error rate, stage 1 (frozen)"),
    RunRole.MISTAKE: N_("error rate, the mistake"),
    RunRole.UNFROZEN: N_("error rate, stage 2 (slice)"),
    RunRole.BIGGER_FROZEN: N_("error rate, bigger model frozen"),
    RunRole.BIGGER_UNFROZEN: N_("error rate, bigger model"),
}


def _interpret(run: RunInfo) -> None:
    try:
        preds = run_predictions(
            str(run.path), (run.path / models.WEIGHTS_FILE).stat().st_mtime, len(run.record.classes)
        )
    except (ValueError, OSError) as err:
        st.warning(_("This run's stored predictions cannot be used ({error}).").format(error=err))
        return
    classes, probs, targets = list(run.record.classes), preds.probs, preds.targets
    paths = interp.aligned_paths(run.record.valid_paths, len(targets))
    top = interp.top_losses(probs, targets, classes, paths, k=min(6, len(targets)))
    cols = st.columns(6)
    for j, row in enumerate(top.itertuples()):
        image = _photo(row.path) if row.path else None
        if image is not None:
            cols[j].image(image, caption=f"{row.predicted} / {row.actual} / {row.loss:.2f}", width="stretch")
    st.caption(_("Top losses. Caption: predicted / actual / loss."))
    cm = interp.confusion_matrix(targets, probs.argmax(1), len(classes))
    c1, c2 = st.columns([3, 2])
    chart_ui(interp.confusion_figure(cm, classes), "lesson_confusion", c1)
    c2.dataframe(translated_columns(interp.most_confused(cm, classes, 1)).head(10), hide_index=True)


def _lr_find(scan: DatasetScan, settings: LessonSettings, found: dict[RunRole, RunInfo]) -> None:
    config = found[RunRole.UNFROZEN].record.config
    result = lr_finder_result(config)
    if result is None:
        st.info(_("The LR finder has not run for these settings yet: it runs a mock training over the whole "
                  "unfrozen network (as long as a short epoch)."))  # fmt: skip
        if identity().is_teacher and st.button(_("Run the LR finder"), key="lesson_lrfind_go"):
            _run_lr_finder(config, scan)
        return
    chart_ui(curves.lr_finder_figure([result]), "lesson_lrfind_chart")
    for name, lr in result.suggestions.items():
        st.markdown(f"- **{name}** `{lr:.1e}`: {_(lr_finder.SUGGESTION_TEXT[name])}")
    st.caption(_("The lesson picks slice({lo}, {hi}): the top well below the loss's minimum.").format(
        lo=lesson.py_float(settings.lr_lo), hi=lesson.py_float(settings.lr_hi)))  # fmt: skip


def lr_finder_result(config) -> LRFinderResult | None:
    """The stage-2 LR finder's curve: the one kept with the stage-2 run, a finished job's, or this tab's."""
    key = lr_finder.lr_finder_key(config)
    run = runs.find_run(runs_dir(), config)
    stored = run.record.lr_finder if run is not None else None
    if stored is not None and stored.stage == lr_finder.UNFROZEN:  # `make prepare` keeps stage 2's curve with its run
        return stored
    if (kept := _kept_lr_finder().get(key)) is not None:  # a curve a tab kept before it became a job's result
        return kept
    found = job_records.list_jobs(data_dir(), kind=JobKind.LR_FIND, key=key)  # a job's, on a laptop or the worker
    done = job_records.find_job(found, JobKind.LR_FIND, key, (JobStatus.DONE,))
    return done.result if done is not None else None


def _kept_lr_finder() -> dict[str, LRFinderResult]:
    """The curves this tab ran from the Lesson page before they were job results, by lr_finder_key (kept in the
    tab's store: parsed back, and a value that no longer parses is left out)."""
    stored, kept = recall(LRFIND_KEY), {}
    for key, value in stored.items() if isinstance(stored, dict) else ():
        with contextlib.suppress(ValueError):  # a RecordError: not a curve
            kept[key] = LRFinderResult.from_json(value)
    return kept


def _run_lr_finder(config, scan: DatasetScan) -> None:
    """The stage-2 LR finder as a job (ui.executor): run here on a laptop, queued for the worker in class mode."""
    live = LiveBar(_("Running the LR finder…"), (EventKind.EXTRACT, EventKind.LR_FIND))
    # one thread: measured on the dev CPU at load ~8, 534 s with 2 threads and 59 s with 1 (mobilenet_v2 64 px). Not
    # torch.set_flush_denormal (the flag reaches the pool's threads): likely OpenMP spin-waits on a busy CPU.
    record = run_job_ui(
        lambda work: submit_shared_ui(
            lambda queue: jobs.submit_lr_find(data_dir(), identity(), config, scan.spec, queue=queue), work
        ),
        scan=scan,
        live=live,
        threads=1,
    )
    live.clear()
    if record is None:
        return
    if record.active:
        st.info(_("Queued: the curve appears here when the worker has run it."))
    elif record.status == JobStatus.DONE:
        st.rerun()
    else:
        st.error(record.shown_error())


def _not_prepared(role: RunRole, settings: LessonSettings, scan: DatasetScan) -> None:
    """Say what trains the missing run; the teacher (a laptop's user) can start it here."""
    config = lesson.wanted_config(settings, role, scan.fingerprint, runs_dir())
    st.info(_("Not prepared yet: this step shows the run **{title}**.").format(title=config.title(_)))
    if settings == COURSE:
        st.markdown(_("`make prepare` trains the course's runs (best on a machine with a GPU), or choose "
                      "*This tab's Training page settings* above for runs this computer trains in minutes."))  # fmt: skip
    else:
        st.markdown(_("Train it here or on the **Training** page with these settings."))
    if config.pretrained and not models.ARCHS[config.arch].offline and not models.weights_cached(config.arch):
        st.warning(_("It needs {arch}'s ImageNet weights, which are not on this machine: `make prepare` fetches "
                     "them where a network is.").format(arch=config.arch))  # fmt: skip
    if identity().is_teacher and st.button("▶ " + _("Train it now"), key=f"lesson_train_{role}", type="primary"):
        train_ui(config, scan)
