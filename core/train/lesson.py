"""Lesson 1 as the course runs it: its steps in order, the settings they run with, the runs that show them.

The one definition every part of Pet Lab reads. `make prepare` trains COURSE's runs
(core.prep.prepare), the Class page queues `plan()` (core.teach.jobs), the Training page starts from
WORKSHOP's values, the Lesson page presents STEPS, and the notebook export (core.train.notebook) writes
each step's `code` with a tab's settings. A step's code is today's fastai; `v1` is course-v3's call
where it differs (`ImageDataBunch`, `cnn_learner`, `max_lr=`), since students meet both.

The code reproduces Pet Lab's runs: the same file order, split, seeds (`set_seed(seed + i)` before
stage i), transforms and model, and every run after stage 1 starts from the saved stage-1 model in a
fresh learner, as a stored run's stage 2 does. tests/core/train/test_notebook.py runs it and compares.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from core.data.datasets import DatasetSpec
from core.i18n import N_
from core.nets.models import DEFAULT_ARCH, OFFLINE_ARCH
from core.store import runs
from core.store.records import RunConfig, StageConfig
from core.store.runs import RunInfo

FASTAI_LR = 1e-3  # fastai's defaults.lr: the lesson's fit_one_cycle(4) passes no LR
LESSON_SLICE = (1e-6, 1e-4)  # fit_one_cycle(2, lr_max=slice(1e-6, 1e-4)) after lr_find


class StepKey(StrEnum):
    """The lesson's steps, in the course's order."""

    DOWNLOAD = "download"
    LABEL = "label"
    DATA = "data"
    BATCH = "batch"
    LEARNER = "learner"
    FIT = "fit"
    INTERPRET = "interpret"
    MISTAKE = "mistake"
    LR_FIND = "lr_find"
    UNFROZEN = "unfrozen"
    BIGGER = "bigger"


class RunRole(StrEnum):
    """The lesson's trained runs, each shown by one or more steps."""

    FROZEN = "frozen"  # fit_one_cycle(4), body frozen
    MISTAKE = "mistake"  # unfreeze, fit_one_cycle(1) at the default LR
    UNFROZEN = "unfrozen"  # unfreeze, fit_one_cycle(2, lr_max=slice(1e-6, 1e-4))
    BIGGER_FROZEN = "bigger-frozen"  # resnet50 at 299 px, frozen
    BIGGER_UNFROZEN = "bigger-unfrozen"  # ... then unfrozen with the slice


class Explore(StrEnum):
    """The page where a step can be explored further (its file, as app.py registers it)."""

    DATA = "pages/data.py"
    AUGMENTATION = "pages/augmentation.py"
    TRAINING = "pages/training.py"
    INTERPRETATION = "pages/interpretation.py"
    LAYERS = "pages/layers.py"


EXPLORE_LABELS = {  # translated where shown
    Explore.DATA: N_("Explore it on the Data page"),
    Explore.AUGMENTATION: N_("Explore it on the Augmentation page"),
    Explore.TRAINING: N_("Explore it on the Training page"),
    Explore.INTERPRETATION: N_("Explore it on the Interpretation page"),
    Explore.LAYERS: N_("Explore it on the Layers page"),
}


@dataclass(frozen=True)
class LessonSettings:
    """Everything the lesson's runs depend on besides the dataset: one tab's choice, or a preset below."""

    arch: str
    img_size: int
    bs: int
    augment: bool  # fastai aug_transforms on the training batches (course-v3: ds_tfms=get_transforms())
    epochs1: int  # stage 1, body frozen
    lr1: float
    epochs2: int  # stage 2, unfrozen with slice(lr_lo, lr_hi)
    lr_lo: float = LESSON_SLICE[0]
    lr_hi: float = LESSON_SLICE[1]
    mistake_epochs: int = 1
    mistake_lr: float = FASTAI_LR  # the same LR for every layer group: the mistake
    fast: bool = False  # stage 1 on cached body features (Pet Lab's fast path; the notebook trains the plain way)
    views: int = 1  # augmented views per image in that cache
    seed: int = 42
    pretrained: bool = True
    bigger_arch: str = "resnet50"
    bigger_size: int = 299
    bigger_bs: int = 32
    bigger_epochs1: int = 8
    bigger_epochs2: int = 3

    def stage1(self) -> StageConfig:
        """Stage 1: fit_one_cycle(epochs1, lr1) with the body frozen."""
        return StageConfig(epochs=self.epochs1, lr_max=self.lr1, fast=self.fast, views=self.views if self.fast else 1)

    def stage2(self) -> StageConfig:
        """Stage 2: unfreeze, fit_one_cycle(epochs2, lr_max=slice(lr_lo, lr_hi))."""
        return StageConfig(epochs=self.epochs2, lr_max=self.lr_hi, lr_min=self.lr_lo, unfreeze=True)

    def mistake(self) -> StageConfig:
        """The lesson's mistake: unfreeze, fit_one_cycle(mistake_epochs) at one LR for every layer group."""
        return StageConfig(epochs=self.mistake_epochs, lr_max=self.mistake_lr, unfreeze=True)

    def config(self, role: RunRole, fingerprint: str) -> RunConfig:
        """The RunConfig of one of the lesson's runs on the dataset with this fingerprint."""
        base = RunConfig(dataset=fingerprint, arch=self.arch, pretrained=self.pretrained, img_size=self.img_size,
                         augment=self.augment, bs=self.bs, seed=self.seed, stages=(self.stage1(),))  # fmt: skip
        if role in (RunRole.BIGGER_FROZEN, RunRole.BIGGER_UNFROZEN):
            bigger = replace(self, arch=self.bigger_arch, img_size=self.bigger_size, bs=self.bigger_bs,
                             epochs1=self.bigger_epochs1, epochs2=self.bigger_epochs2)  # fmt: skip
            return bigger.config(RunRole.FROZEN if role == RunRole.BIGGER_FROZEN else RunRole.UNFROZEN, fingerprint)
        later = {RunRole.FROZEN: (), RunRole.MISTAKE: (self.mistake(),), RunRole.UNFROZEN: (self.stage2(),)}[role]
        return replace(base, stages=(*base.stages, *later))

    def configs(self, fingerprint: str) -> dict[RunRole, RunConfig]:
        """Every run of the lesson, in the course's order."""
        return {role: self.config(role, fingerprint) for role in RunRole}


def default_views(augment: bool) -> int:
    """Augmented views per image in the feature cache: two when augmenting (each epoch sees a new one), else one."""
    return 2 if augment else 1


# The course's recipe (course-v3 lesson 1, fastai v1 → today's API): what `make prepare` trains.
COURSE = LessonSettings(arch=DEFAULT_ARCH, img_size=224, bs=64, augment=True, epochs1=4, lr1=FASTAI_LR, epochs2=2)

# The same lesson at a laptop's scale: the Training page's defaults and the Class page's queue. Stage 1 on
# cached body features trains in seconds on a CPU; mobilenet_v2's ImageNet weights ship offline.
WORKSHOP = LessonSettings(arch=OFFLINE_ARCH, img_size=64, bs=16, augment=False, epochs1=2, lr1=3e-3, epochs2=1,
                          fast=True, bigger_arch=DEFAULT_ARCH, bigger_size=128, bigger_bs=16, bigger_epochs1=2,
                          bigger_epochs2=1)  # fmt: skip

# The Class page's "Queue the lesson": the runs students need, the useful ones first (names shown translated).
PLAN = (
    (RunRole.FROZEN, N_("stage 1: body frozen")),
    (RunRole.UNFROZEN, N_("stage 2: unfrozen, slice(1e-6, 1e-4)")),
    (RunRole.MISTAKE, N_("the mistake: unfrozen at 1e-3")),
)


def plan(settings: LessonSettings, fingerprint: str) -> list[tuple[str, RunConfig]]:
    """The runs the Class page queues, in order, as (name marked for translation, config)."""
    return [(name, settings.config(role, fingerprint)) for role, name in PLAN]


# ---- the steps -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One step of the lesson: what it does, its code (a template over code_context()), and what shows it.

    Texts are marked with N_ and translated where shown; `code` and `v1` are Python templates whose
    `{names}` come from code_context().
    """

    key: StepKey
    title: str
    explanation: str
    goes_in: str
    comes_out: str
    code: str
    explore: Explore
    runs: tuple[RunRole, ...] = ()  # the runs whose results show this step (none: it needs the dataset only)
    v1: str = ""  # course-v3's fastai v1 call where it differs from today's

    @property
    def number(self) -> int:
        return STEPS.index(self) + 1


STEPS: tuple[Step, ...] = (
    Step(
        StepKey.DOWNLOAD,
        N_("Download the data"),
        N_(
            "The Oxford-IIIT Pet dataset: 37 breeds of cats and dogs, about 7,400 photos. `untar_data` downloads "
            "and unpacks it once and returns its folder; `get_image_files` lists the photos."
        ),
        N_("a URL (or a folder on this machine)"),
        N_("a folder of image files"),
        "path = {path_code}\nfiles = get_image_files(path)\nlen(files), files[:3]",
        Explore.DATA,
        v1="path = untar_data(URLs.PETS)\npath_img = path/'images'\nfnames = get_image_files(path_img)",
    ),
    Step(
        StepKey.LABEL,
        N_("Label by regex"),
        N_(
            "The label is in the file name: `great_pyrenees_173.jpg` is a great pyrenees. A regular expression "
            "with one group captures it; files it does not match are left out."
        ),
        N_("file names and a pattern"),
        N_("one label per file"),
        "{label_code}\nitems = [f for f in sorted(files, key=lambda f: f.relative_to(path).as_posix()){item_filter}]"
        "  # labelled files, in Pet Lab's order\n[(f.name, label(f)) for f in items[:5]]",
        Explore.DATA,
        v1="pat = r'/([^/]+)_\\d+.jpg$'  # course-v3 matched the whole path",
    ),
    Step(
        StepKey.DATA,
        N_("Build the data"),
        N_(
            "A DataBlock says how to get the images and their labels, how to split off a validation set (a random "
            "20 % the model never trains on) and how to resize and augment them; `dataloaders` then serves them "
            "in batches."
        ),
        N_("labelled files, a split, transforms, a batch size"),
        N_("DataLoaders: batches of (images, labels) for training and validation"),
        "valid_idx = np.sort(np.random.default_rng({split_seed}).permutation(len(items))[:int({valid_pct} * len(items))])"
        "  # Pet Lab's random {valid_share}\n\n"
        "def make_dls(size={size}, bs={bs}):\n"
        "    dblock = DataBlock(blocks=(ImageBlock, CategoryBlock), get_y=label, splitter=IndexSplitter(valid_idx),\n"
        "                       item_tfms=Resize(size), batch_tfms={batch_tfms})\n"
        "    set_seed({seed})  # every run draws the same shuffles and augmentations\n"
        "    return dblock.dataloaders(items, bs=bs, num_workers=0)\n\n"
        "dls = make_dls()\nlen(dls.train_ds), len(dls.valid_ds), dls.vocab",
        Explore.DATA,
        v1="data = ImageDataBunch.from_name_re(path_img, fnames, pat, ds_tfms=get_transforms(), size={size},\n"
        "    bs={bs}).normalize(imagenet_stats)",
    ),
    Step(
        StepKey.BATCH,
        N_("Look at a batch"),
        N_(
            "Always look at the data before training: are the labels right, are the photos what you expect? "
            "These are training images as the model receives them, after resizing and augmentation."
        ),
        N_("the DataLoaders"),
        N_("a grid of training images with their labels"),
        "dls.show_batch(max_n=9, figsize=(7, 8))",
        Explore.AUGMENTATION,
        v1="data.show_batch(rows=3, figsize=(7, 6))",
    ),
    Step(
        StepKey.LEARNER,
        N_("Create the learner"),
        N_(
            "Transfer learning: the body of a network pretrained on ImageNet already finds edges, textures and "
            "parts of animals; fastai cuts off its last layer and adds a new head with one output per breed. "
            "The body starts frozen: only the head will train."
        ),
        N_("the DataLoaders and an ImageNet-pretrained architecture"),
        N_("a Learner: the body's feature maps and a new, untrained head"),
        "def make_learner(arch={arch_code}, size={size}, bs={bs}):\n"
        "    dls = make_dls(size, bs)  # fresh data loaders: each run starts from the same random state\n"
        "    set_seed({seed})  # the same new head\n"
        "    learn = vision_learner(dls, arch, metrics=error_rate{pretrained_arg})\n"
        "{freeze_line}"
        "    return learn\n\n"
        "learn = make_learner()\nlearn.model[1]  # the new head; learn.model[0] is the pretrained body",
        Explore.LAYERS,
        v1="learn = cnn_learner(data, models.{arch}, metrics=error_rate)",
    ),
    Step(
        StepKey.FIT,
        N_("Train the head: fit_one_cycle"),
        N_(
            "Train with the one-cycle policy: the learning rate warms up, then anneals. Each epoch the model "
            "sees every training image once; the error rate is measured on the validation set."
        ),
        N_("the learner, epochs and a learning rate"),
        N_("one row per epoch: training and validation loss, error rate"),
        "set_seed({seed})\nlearn.fit_one_cycle({epochs1}{lr1_arg})\nlearn.save('stage-1')",
        Explore.TRAINING,
        runs=(RunRole.FROZEN,),
    ),
    Step(
        StepKey.INTERPRET,
        N_("Interpret the results"),
        N_(
            "Where does the model go wrong? The images with the highest loss are the ones it got most "
            "confidently wrong; the confusion matrix and `most_confused` show which breeds it mixes up, "
            "often ones people mix up too."
        ),
        N_("the trained learner and the validation set"),
        N_("top losses, a confusion matrix, the most confused pairs"),
        "interp = ClassificationInterpretation.from_learner(learn)\n"
        "interp.plot_top_losses(9, figsize=(15, 11))\n"
        "interp.plot_confusion_matrix(figsize=(12, 12), dpi=60)\n"
        "interp.most_confused(min_val=2)",
        Explore.INTERPRETATION,
        runs=(RunRole.FROZEN,),
        v1="interp = ClassificationInterpretation.from_learner(learn)\nlosses, idxs = interp.top_losses()\n"
        "interp.plot_top_losses(9, figsize=(15, 11))",
    ),
    Step(
        StepKey.MISTAKE,
        N_("Unfreeze: the mistake"),
        N_(
            "Unfreezing trains every layer. With one learning rate for all of them, the early layers, which "
            "already know general edges and textures, are changed as hard as the new head, and the error rate "
            "gets worse. The lesson makes this mistake on purpose."
        ),
        N_("the stage-1 model, every layer trainable, one learning rate"),
        N_("a worse error rate than stage 1"),
        "learn = make_learner().load('stage-1')  # start again from the saved stage 1\nlearn.unfreeze()\n"
        "set_seed({seed2})  # Pet Lab seeds stage i with seed + i\nlearn.fit_one_cycle({mistake_epochs}{mistake_lr_arg})",
        Explore.TRAINING,
        runs=(RunRole.MISTAKE, RunRole.FROZEN),
        v1="learn.unfreeze()\nlearn.fit_one_cycle(1)",
    ),
    Step(
        StepKey.LR_FIND,
        N_("Find a learning rate: lr_find"),
        N_(
            "A mock training that raises the learning rate a little each batch and records the loss. Pick a "
            "rate where the loss still falls steeply, well before it shoots up."
        ),
        N_("the stage-1 model, unfrozen"),
        N_("the loss against the learning rate, with suggestions"),
        "learn = make_learner().load('stage-1')\nlearn.unfreeze()\nlearn.lr_find()",
        Explore.TRAINING,
        runs=(RunRole.UNFROZEN,),
        v1="learn.load('stage-1')\nlearn.lr_find()\nlearn.recorder.plot()",
    ),
    Step(
        StepKey.UNFROZEN,
        N_("Unfreeze with discriminative learning rates"),
        N_(
            "`slice(1e-6, 1e-4)` gives the first layer group the smallest rate and the head the largest, spread "
            "evenly between them: early layers barely move, later ones adapt to the pets. The error rate "
            "improves on stage 1."
        ),
        N_("the stage-1 model, unfrozen, a slice of learning rates"),
        N_("a better error rate than stage 1"),
        "learn = make_learner().load('stage-1')\nlearn.unfreeze()\n"
        "set_seed({seed2})\nlearn.fit_one_cycle({epochs2}, lr_max=slice({lr_lo}, {lr_hi}))",
        Explore.TRAINING,
        runs=(RunRole.UNFROZEN, RunRole.FROZEN),
        v1="learn.unfreeze()\nlearn.fit_one_cycle(2, max_lr=slice(1e-6, 1e-4))",
    ),
    Step(
        StepKey.BIGGER,
        N_("A bigger model"),
        N_(
            "The same recipe with a deeper network and larger images: more capacity, more detail, a lower error "
            "rate, at a higher cost (smaller batches, longer epochs; on a laptop CPU, hours)."
        ),
        N_("a deeper architecture, larger images, a smaller batch size"),
        N_("a lower error rate"),
        "learn = make_learner({bigger_arch_code}, size={bigger_size}, bs={bigger_bs})\n"
        "set_seed({seed})\nlearn.fit_one_cycle({bigger_epochs1}{lr1_arg})\nlearn.save('stage-1-bigger')\n\n"
        "learn = make_learner({bigger_arch_code}, size={bigger_size}, bs={bigger_bs}).load('stage-1-bigger')\n"
        "learn.unfreeze()\nset_seed({seed2})\nlearn.fit_one_cycle({bigger_epochs2}, lr_max=slice({lr_lo}, {lr_hi}))",
        Explore.TRAINING,
        runs=(RunRole.BIGGER_UNFROZEN, RunRole.BIGGER_FROZEN, RunRole.UNFROZEN),
        v1="data = ImageDataBunch.from_name_re(path_img, fnames, pat, ds_tfms=get_transforms(), size=299,\n"
        "    bs=32).normalize(imagenet_stats)\n"
        "learn = cnn_learner(data, models.resnet50, metrics=error_rate)\nlearn.fit_one_cycle(8)\n"
        "learn.unfreeze()\nlearn.fit_one_cycle(3, max_lr=slice(1e-6, 1e-4))",
    ),
)


def step(key: StepKey | str) -> Step:
    """The step with this key."""
    return next(s for s in STEPS if s.key == StepKey(key))


def clamp_step(number: object) -> int:
    """A step number from anywhere (a URL, a store) as 1..len(STEPS); anything unusable is step 1."""
    try:
        value = int(str(number).strip())
    except (TypeError, ValueError):
        return 1
    return min(max(value, 1), len(STEPS))


# ---- the code, with one tab's settings -------------------------------------------------------------------------


def py_float(value: float) -> str:
    """A learning rate as a student writes it: 1e-3, 3e-3, 2.5e-4 (not 0.001)."""
    mantissa, exponent = f"{value:.3e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def path_code(spec: DatasetSpec, root_shown: str | None = None) -> str:
    """How the notebook finds the images: fastai's URLs.PETS for Pets, else the folder (root_shown replaces its path)."""
    if spec.kind == "pets":
        return "untar_data(URLs.PETS) / 'images'"
    return f"Path({(root_shown if root_shown is not None else spec.root)!r})"


def label_code(spec: DatasetSpec) -> tuple[str, str]:
    """(the labelling lines, the filter that keeps labelled files) for the spec's labelling rule."""
    if spec.label_from == "parent":
        return "label = parent_label  # the folder a photo sits in is its class", " if f.parent != path"
    pat = f"pat = r'{spec.pattern}'" if "'" not in spec.pattern else f"pat = {spec.pattern!r}"
    if spec.match_on == "path":
        return (
            f"{pat}\nlabeller = RegexLabeller(pat)\n"
            "label = lambda f: labeller('/' + f.relative_to(path).as_posix())  # the pattern on the path",
            " if re.search(pat, '/' + f.relative_to(path).as_posix())",
        )
    return f"{pat}\nlabel = using_attr(RegexLabeller(pat), 'name')  # the pattern on the file name", (
        " if re.search(pat, f.name)"
    )


def code_context(settings: LessonSettings, spec: DatasetSpec, root_shown: str | None = None) -> dict[str, str]:
    """The values the step templates are filled with, as Python source."""
    labelling, item_filter = label_code(spec)
    norm = "Normalize.from_stats(*imagenet_stats)"
    return {
        "path_code": path_code(spec, root_shown),
        "label_code": labelling,
        "item_filter": item_filter,
        "split_seed": str(spec.seed),
        "valid_pct": repr(spec.valid_pct),
        "valid_share": f"{spec.valid_pct:.0%}",
        "size": str(settings.img_size),
        "bs": str(settings.bs),
        "batch_tfms": f"[*aug_transforms(size=size), {norm}]" if settings.augment else f"[{norm}]",
        "seed": str(settings.seed),
        "seed2": str(settings.seed + 1),
        "arch": settings.arch,
        "arch_code": settings.arch,
        "pretrained_arg": "" if settings.pretrained else ", pretrained=False",
        "freeze_line": ""
        if settings.pretrained
        else "    learn.freeze()  # Pet Lab trains stage 1 frozen, random body too\n",
        "epochs1": str(settings.epochs1),
        "lr1_arg": "" if settings.lr1 == FASTAI_LR else f", {py_float(settings.lr1)}",
        "mistake_epochs": str(settings.mistake_epochs),
        "mistake_lr_arg": "" if settings.mistake_lr == FASTAI_LR else f", {py_float(settings.mistake_lr)}",
        "epochs2": str(settings.epochs2),
        "lr_lo": py_float(settings.lr_lo),
        "lr_hi": py_float(settings.lr_hi),
        "bigger_arch_code": settings.bigger_arch,
        "bigger_size": str(settings.bigger_size),
        "bigger_bs": str(settings.bigger_bs),
        "bigger_epochs1": str(settings.bigger_epochs1),
        "bigger_epochs2": str(settings.bigger_epochs2),
    }


def step_code(item: Step, settings: LessonSettings, spec: DatasetSpec, root_shown: str | None = None) -> str:
    """The step's fastai code with these settings (what the Lesson page shows and the notebook runs)."""
    return item.code.format(**code_context(settings, spec, root_shown))


def step_v1(item: Step, settings: LessonSettings, spec: DatasetSpec) -> str:
    """course-v3's (fastai v1) call for the step, or "" where today's is the same."""
    return item.v1.format(**code_context(settings, spec)) if item.v1 else ""


def setup_code(settings: LessonSettings, torch_home: str | None = None) -> str:
    """The notebook's first cell: imports, where the ImageNet weights are, what fastai lacks for mobilenet_v2."""
    lines = ["import re", "", "import numpy as np", "from fastai.vision.all import *"]
    if torch_home:
        lines += [
            "",
            "import os",
            f"if Path({torch_home!r}).is_dir():  # Pet Lab's copy of the ImageNet weights; else torchvision downloads them",
            f"    os.environ.setdefault('TORCH_HOME', {torch_home!r})",
        ]
    if "mobilenet_v2" in (settings.arch, settings.bigger_arch):
        lines += [
            "",
            "# fastai has no cut/split for mobilenet_v2: its body is `features`, in three layer groups as resnet's",
            "from torchvision.models import mobilenet_v2",
            "from fastai.vision.learner import model_meta",
            "",
            "def mobilenet_split(m):",
            "    return L(m[0][0][:10], m[0][0][10:], m[1:]).map(params)",
            "",
            "model_meta[mobilenet_v2] = {'cut': -1, 'split': mobilenet_split, 'stats': imagenet_stats,",
            "                            'weights': 'IMAGENET1K_V1'}",
        ]
    return "\n".join(lines)


# ---- the runs that show the steps -------------------------------------------------------------------------------


def twin_views(settings: LessonSettings) -> int:
    """Views per image of stage 1's Fast twin: the settings' own when Fast, else the Training page's default."""
    return settings.views if settings.fast else default_views(settings.augment)


def find_runs(settings: LessonSettings, fingerprint: str, runs_dir: Path) -> dict[RunRole, RunInfo]:
    """The lesson's stored runs for these settings on this dataset (a role absent: not trained yet).

    Stage 1 counts when trained either way (the Fast toggle's cached features or the full fastai way,
    as `make prepare` trains it), and the later stages are looked up on top of the stage 1 found, as
    the Training page does.
    """
    found: dict[RunRole, RunInfo] = {}
    for frozen, later in (
        (RunRole.FROZEN, (RunRole.MISTAKE, RunRole.UNFROZEN)),
        (RunRole.BIGGER_FROZEN, (RunRole.BIGGER_UNFROZEN,)),
    ):
        config, run = runs.find_frozen_run(runs_dir, settings.config(frozen, fingerprint), views=twin_views(settings))
        if run is not None:
            found[frozen] = run
        for role in later:
            wanted = settings.config(role, fingerprint)
            on_found = replace(wanted, stages=(config.stages[0], *wanted.stages[1:]))
            if (run := runs.find_run(runs_dir, on_found)) is not None:
                found[role] = run
    return found


def wanted_config(settings: LessonSettings, role: RunRole, fingerprint: str, runs_dir: Path) -> RunConfig:
    """The config to train for a role that is missing: on top of the stage 1 already stored when there is one."""
    wanted = settings.config(role, fingerprint)
    frozen = RunRole.BIGGER_FROZEN if role in (RunRole.BIGGER_FROZEN, RunRole.BIGGER_UNFROZEN) else RunRole.FROZEN
    config, _run = runs.find_frozen_run(runs_dir, settings.config(frozen, fingerprint), views=twin_views(settings))
    return replace(wanted, stages=(config.stages[0], *wanted.stages[1:]))
