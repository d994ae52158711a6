"""The Lesson page's parts: which runs to show, the step in the URL, the presenter view, each step's output.

Every output comes from what is already on disk (the dataset scan, stored runs, their predictions,
an LR-finder curve kept with a run or a job): nothing is trained by moving between steps. A step
whose run is missing says what to run and offers it to the teacher (on a laptop, its only user).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace
from enum import StrEnum
from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from core.auth import Forbidden
from core.data import augmentation, datasets
from core.data.datasets import DatasetScan
from core.data.images import ImageError
from core.i18n import N_, _, n_, num, pct, translated_columns
from core.inside.activations import channel_order, feature_grid_figure
from core.nets import models
from core.quotas import QuotaError
from core.settings import data_dir, torch_home
from core.store import runs
from core.store.records import LRFinderResult
from core.store.runs import RunInfo
from core.teach import classroom, job_records, jobs
from core.teach.job_records import JobKind, JobStatus
from core.train import curves, learners, lesson, lr_finder
from core.train import interpretation as interp
from core.train import notebook as nbexport
from core.train.lesson import COURSE, WORKSHOP, LessonSettings, RunRole, Step, StepKey
from ui.auth import class_mode, identity
from ui.data import thumbnail
from ui.executor import run_job_ui
from ui.jobs import submit_shared_ui
from ui.layers import feature_maps, imagenet_or_message, model_id
from ui.live import FOLLOW_KEY, LEAD_KEY, note_following, redraw_soon, teacher_step
from ui.runs import run_predictions
from ui.state import runs_dir
from ui.tab_store import keep, recall
from ui.training import train_ui

STEP_PARAM = "step"  # ?step=7 opens step 7: the step widget's key, bound to the URL
PRESENT_PARAM = "present"  # ?present=1: the presenter view
SOURCE_KEY = "lesson_source"
LRFIND_KEY = "lesson_lrfind"  # LR-finder curves this tab ran from the Lesson page, by lr_finder_key
SHARED_KEY = "_lesson_shared"  # the step this teacher's tab last showed the class
STALE_KEY = "_lesson_stale"  # (the step widget's value from an old URL, the step shown) until the widget shows it


class Source(StrEnum):
    """Whose settings the lesson shows: the course's (what `make prepare` trains) or this tab's Training page."""

    COURSE = "course"
    TAB = "tab"


SOURCE_LABELS = {
    Source.COURSE: N_("The course's runs (resnet34 at 224 px, trained by `make prepare`)"),
    Source.TAB: N_("This tab's Training page settings"),
}
RANDOM_INIT = "random init (no pretraining)"  # the Training page's kept value of its "Initial weights" radio
# the Training page's kept widget keys and the LessonSettings field each one sets
TRAINING_KEYS = {
    "train_arch": "arch", "train_size": "img_size", "train_bs": "bs", "train_seed": "seed",
    "train_augment": "augment", "train_epochs1": "epochs1", "train_lr1": "lr1", "train_fast": "fast",
    "train_views": "views", "train_epochs2": "epochs2", "train_lo": "lr_lo", "train_hi": "lr_hi",
}  # fmt: skip


# ---- whose settings, which step -----------------------------------------------------------------------------


def tab_settings() -> LessonSettings:
    """The lesson with this tab's Training page values (WORKSHOP's where the tab has not changed one)."""
    changes = {}
    for key, name in TRAINING_KEYS.items():
        value, default = st.session_state.get(key, recall(key)), getattr(WORKSHOP, name)
        if value is None or isinstance(value, bool) != isinstance(default, bool):
            continue
        try:
            changes[name] = type(default)(value)
        except (TypeError, ValueError):
            continue
    settings = replace(WORKSHOP, **changes)
    return replace(
        settings,
        arch=settings.arch if settings.arch in models.ARCHS else WORKSHOP.arch,
        pretrained=st.session_state.get("train_init", recall("train_init")) != RANDOM_INIT,
        mistake_epochs=settings.epochs2,  # the Training page's mistake trains as long as its stage 2
        views=settings.views if settings.fast else lesson.default_views(settings.augment),
    )


def lesson_settings_ui(scan: DatasetScan) -> tuple[LessonSettings, dict[RunRole, RunInfo]]:
    """Choose whose runs the lesson shows; the course's by default when `make prepare` trained them here."""
    course_found = lesson.find_runs(COURSE, scan.fingerprint, runs_dir())
    default = Source.COURSE if RunRole.FROZEN in course_found else Source.TAB
    if SOURCE_KEY not in st.session_state and recall(SOURCE_KEY) is None:
        st.session_state[SOURCE_KEY] = default
    source = st.radio(_("Show"), list(Source), format_func=lambda s: _(SOURCE_LABELS[Source(s)]), horizontal=True,
                      key=keep(SOURCE_KEY, options=list(Source)))  # fmt: skip
    settings = COURSE if source == Source.COURSE else tab_settings()
    found = course_found if source == Source.COURSE else lesson.find_runs(settings, scan.fingerprint, runs_dir())
    return settings, found


def current_step() -> int:
    """The step this tab chose: ?step= in the URL (kept by the step widget); on opening the page without one, in
    class mode, the step the teacher shows the class. (class_step_ui may show the teacher's step instead.)"""
    chosen = st.session_state.get(STEP_PARAM)
    stale = st.session_state.get(STALE_KEY)
    if chosen is not None and stale is not None and chosen == stale[0]:
        return stale[1]  # the step widget still shows an old URL's step (step_nav_ui): the step shown is this
    if chosen is None:
        chosen = st.query_params.get(STEP_PARAM)
    if chosen is None and class_mode():
        shared = teacher_step()
        return shared.step if shared is not None else 1
    return lesson.clamp_step(chosen if chosen is not None else 1)


def _move(delta: int) -> None:
    _explore_alone()
    st.session_state[STEP_PARAM] = lesson.clamp_step(current_step() + delta)


def step_nav_ui(number: int) -> int:
    """Previous / Next (the ← and → keys) around a pagination bound to ?step=; returns the step shown."""
    st.session_state[STEP_PARAM] = number
    c1, c2, c3 = st.columns([2, 8, 2], vertical_alignment="center")
    c1.button("◀ " + _("Previous"), key="lesson_prev", shortcut="Left", on_click=_move, args=(-1,),
              disabled=number <= 1, width="stretch")  # fmt: skip
    c3.button(_("Next") + " ▶", key="lesson_next", shortcut="Right", on_click=_move, args=(1,),
              disabled=number >= len(lesson.STEPS), type="primary", width="stretch")  # fmt: skip
    with c2:
        shown = st.pagination(len(lesson.STEPS), key=STEP_PARAM, bind="query-params", max_visible_pages=11,
                              on_change=_explore_alone)  # fmt: skip
    if shown != number:
        # A page's first draw takes ?step= from the URL over the value set above: a following student opened an
        # older URL (a reload). The page shows the teacher's step; the sidebar's next poll reruns it, and then
        # the pagination and the URL show it too. Until then ← → and the toggle start from the step shown.
        st.session_state[STALE_KEY] = (shown, number)
        redraw_soon()
    else:
        st.session_state.pop(STALE_KEY, None)
    return number


# ---- follow the teacher (class mode) ------------------------------------------------------------------------


def class_step_ui(own: int, where=st) -> int:
    """Class mode: a student's *Follow the teacher* toggle, the teacher's *Students follow me*; the step to show.

    A following student sees the teacher's step. The leading teacher's tab shows the class the step it moves to,
    and follows a move made in another of the teacher's tabs (the laptop beside the projector). Otherwise, or
    without a shared step, `own` (the tab's ?step=). The sidebar's polling reruns a following page when the
    teacher's step changes (ui.live): nothing else runs for it. `where`: the container of the toggle.
    """
    who = identity()
    if not who.class_mode:
        return own
    if who.is_teacher:
        return _lead(own, where)
    if FOLLOW_KEY not in st.session_state and recall(FOLLOW_KEY) is None:
        st.session_state[FOLLOW_KEY] = True
    on = where.toggle(_("Follow the teacher"), key=keep(FOLLOW_KEY, default=True),
                      help=_("On: this page shows the step the teacher shows and moves when they move. Off, or "
                             "when you move yourself: explore on your own; turn it on to go back."))  # fmt: skip
    if not on:  # the sidebar says where the teacher is, with a link to that step
        note_following(None)
        return own
    shared = teacher_step()
    note_following(shared.step if shared is not None else 0)  # 0: none shared yet, the first one moves this page
    if shared is None:
        st.caption(_("The teacher is not showing the lesson now: move on your own until they do."))
        return own
    return shared.step


def _lead(own: int, where) -> int:
    """The signed-in teacher: share the step this tab moved to, else show the class's (moved in another tab)."""
    if LEAD_KEY not in st.session_state and recall(LEAD_KEY) is None:
        st.session_state[LEAD_KEY] = True
    lead = where.toggle(_("Students follow me"), key=keep(LEAD_KEY, default=True),
                        help=_("On: students whose *Follow the teacher* is on see the step you show here, within a "
                               "few seconds. Off: look ahead without moving the class."))  # fmt: skip
    if not lead:
        st.session_state.pop(SHARED_KEY, None)  # turned on again: the step shown then is shared at once
        note_following(None)
        return own
    number = own
    if own != st.session_state.get(SHARED_KEY):  # moved here (or the first step drawn): the class moves
        try:
            classroom.share_lesson_step(data_dir(), identity(), own)
        except (Forbidden, QuotaError, OSError) as err:
            st.warning(_("The class could not be moved to this step: {error}").format(error=err))
    else:  # not moved here: a move made in another of the teacher's tabs shows here too
        shared = teacher_step()
        number = shared.step if shared is not None else own
    st.session_state[SHARED_KEY] = number
    note_following(number)
    return number


def _explore_alone() -> None:
    """A student who moves by themselves while following the teacher stops following (the toggle says so)."""
    if st.session_state.get(FOLLOW_KEY) and not identity().is_teacher and teacher_step() is not None:
        st.session_state[FOLLOW_KEY] = False


# The presenter view's look. A metric's label and value are markdown paragraphs: they need rules of their own
# after the paragraphs' (a long label wraps instead of ending in "…"). The arrow keys make the page's focus
# ring show: a grey frame placed for the hidden header, so it goes.
PRESENTER_CSS = """
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stHeader"]
  {display: none !important}
.stMainBlockContainer {max-width: 100%; padding: 1.5rem 3rem}
.stMainBlockContainer [data-testid="stMarkdownContainer"] p, .stMainBlockContainer li {font-size: 1.45rem}
.stMainBlockContainer h2 {font-size: 2.8rem}
.stMainBlockContainer [data-testid="stCode"] code {font-size: 1.1rem}
.stMainBlockContainer [data-testid="stMetricLabel"] p {font-size: 1.15rem}
.stMainBlockContainer [data-testid="stMetricLabel"] *
  {white-space: normal !important; overflow: visible !important; text-overflow: clip !important}
.stMainBlockContainer [data-testid="stMetricValue"] p {font-size: 2.6rem; line-height: 1.2}
[data-testid="stMain"]:focus-visible::before {display: none}
"""
PRESENTER_CHART_FONT = 16  # px, the presenter view's chart type (Streamlit's theme uses about 12)


def presenter_ui(where=st) -> bool:
    """The presenter toggle (?present=1 in the URL): large type, no sidebar, for a projector."""
    on = where.toggle(_("Presenter view"), key=PRESENT_PARAM, bind="query-params",
                      help=_("Large type for a projector. ← and → move between steps; the URL (?step=) opens a step."))  # fmt: skip
    if on:
        st.html(f"<style>{PRESENTER_CSS}</style>")
    return on


def presenting() -> bool:
    return bool(st.session_state.get(PRESENT_PARAM))


def chart_ui(fig, key: str, where=st) -> None:
    """A plotly chart of a step's output; larger type in the presenter view."""
    if presenting():
        larger_type(fig, PRESENTER_CHART_FONT)
    where.plotly_chart(fig, key=key)


def larger_type(fig, size: int) -> None:
    """Set the chart's type size part by part: Streamlit's chart theme replaces the figure-wide font size.
    A size the figure already sets (the confusion matrix's class names) is kept."""

    def axis(ax) -> None:
        if ax.tickfont.size is None:
            ax.tickfont.size = size
        if ax.title.font.size is None:
            ax.title.font.size = size

    fig.for_each_xaxis(axis)
    fig.for_each_yaxis(axis)
    if fig.layout.legend.font.size is None:
        fig.update_layout(legend_font_size=size)
    if fig.layout.title.font.size is None:
        fig.update_layout(title_font_size=size + 2)


# ---- a step's text -------------------------------------------------------------------------------------------


def shown_root(scan: DatasetScan) -> str | None:
    """The dataset folder as code may show it: the full path for the teacher, its name only for a student."""
    return None if identity().is_teacher else Path(scan.spec.root).name


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
    note = None

    def live():
        nonlocal note
        note = st.empty()
        note.info(_("Running the LR finder…"))
        return lambda event: None

    # one thread: torch.set_flush_denormal (core.train.learners) holds for the calling thread only, and lr_find's huge
    # LRs make denormals; measured on the dev CPU (load ~8): 534 s with 2 threads, 59 s with 1 (mobilenet_v2 64 px)
    record = run_job_ui(
        lambda work: submit_shared_ui(
            lambda queue: jobs.submit_lr_find(data_dir(), identity(), config, scan.spec, queue=queue), work
        ),
        scan=scan,
        live=live,
        threads=1,
    )
    if note is not None:
        note.empty()
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


# ---- take the notebook home ----------------------------------------------------------------------------------


def notebook_download_ui(settings: LessonSettings, scan: DatasetScan, found: dict[RunRole, RunInfo], key: str) -> None:
    """*Download as notebook*: the lesson with these settings, in this tab's language, with the app's results."""
    results = {role: run.record for role, run in found.items()}
    teacher = identity().is_teacher  # a student's notebook names no server path
    nb = nbexport.lesson_notebook(settings, scan.spec, results, torch_home=str(torch_home()) if teacher else None,
                                  root_shown=shown_root(scan))  # fmt: skip
    st.download_button(
        _("Download as notebook"), nbexport.notebook_bytes(nb), file_name=nbexport.notebook_name(settings, scan.spec),
        mime="application/x-ipynb+json", key=key, icon=":material/download:",
        help=_("A Jupyter notebook of the whole lesson with these settings, in plain fastai, with this tab's "
               "language and Pet Lab's results to compare with."),
    )  # fmt: skip
