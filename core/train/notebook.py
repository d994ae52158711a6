"""Take the lesson home: a Jupyter notebook of the lesson with one tab's settings, in plain fastai.

Built with nbformat (Jupyter's own library), never by hand. Each step of core.train.lesson becomes a
Markdown cell (its explanation in the tab's language, course-v3's call where it differs) and a code
cell (the same code the Lesson page shows); after each training step, Pet Lab's own run of those
settings is noted for comparison. The notebook imports fastai only: it runs without Pet Lab.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import nbformat
from nbformat import v4

from core.data.datasets import DatasetSpec
from core.i18n import _, pct
from core.store.records import RunRecord
from core.train import lesson
from core.train.lesson import LessonSettings, RunRole, Step

STEP_TAG = "petlab-step-{key}"  # the code cell of a step carries this tag (a test finds its cells by it)
COLUMNS = ("train_loss", "valid_loss", "error_rate")


def _cell_id(text: str) -> str:
    """A stable cell id (nbformat 4.5 asks for one; a random one would change the file on every download)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", text)[:64]


def settings_summary(settings: LessonSettings, spec: DatasetSpec) -> str:
    """The Markdown table of this notebook's settings."""
    rows = [
        (_("dataset"), "`URLs.PETS`" if spec.kind == "pets" else f"`{spec.name}`"),
        (_("labels"), _("folder names") if spec.label_from == "parent" else f"`{spec.pattern}`"),
        (_("validation set"), _("a random {share}, seed {seed}").format(share=f"{spec.valid_pct:.0%}", seed=spec.seed)),
        (_("architecture"), f"`{settings.arch}`" + ("" if settings.pretrained else " " + _("(random init)"))),
        (_("image size, batch size"), f"{settings.img_size} px, bs {settings.bs}"),
        (_("augmentation"), "`aug_transforms()`" if settings.augment else _("none")),
        (_("seed"), str(settings.seed)),
        (_("stage 1 (frozen)"), f"`fit_one_cycle({settings.epochs1}, {lesson.py_float(settings.lr1)})`"),
        (
            _("stage 2 (unfrozen)"),
            f"`fit_one_cycle({settings.epochs2}, lr_max=slice({lesson.py_float(settings.lr_lo)}, "
            f"{lesson.py_float(settings.lr_hi)}))`",
        ),
        (_("a bigger model"), f"`{settings.bigger_arch}`, {settings.bigger_size} px, bs {settings.bigger_bs}"),
    ]
    return "\n".join([f"| {_('setting')} | {_('value')} |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)])


def results_markdown(role: RunRole, record: RunRecord) -> str:
    """Pet Lab's run of this step's settings, for comparison: its epochs and how it was trained."""
    lines = [
        "**" + _("Pet Lab's run of these settings, for comparison:") + f"** {record.shown_title()}",
        "",
        "| stage | epoch | " + " | ".join(COLUMNS) + " |",
        "| --- | --- | " + " | ".join("---" for _c in COLUMNS) + " |",
    ]
    for row in record.epochs:
        values = [getattr(row, c) for c in COLUMNS]
        lines.append(
            f"| {row.stage + 1} | {row.epoch} | "
            + " | ".join(f"{v:.6f}" if v is not None else "" for v in values)
            + " |"
        )
    notes = []
    if record.error_rate is not None:
        notes.append(_("final error rate {rate}").format(rate=pct(record.error_rate, 2)))
    if record.precision != "fp32":
        notes.append(_("trained in {precision} (this notebook trains in fp32: expect small differences)").format(
            precision=record.precision))  # fmt: skip
    if any(s.fast for s in record.config.stages):
        notes.append(_("stage 1 trained on cached body features (Pet Lab's Fast path; this notebook trains the "
                       "plain fastai way: expect slightly different numbers)"))  # fmt: skip
    else:
        notes.append(
            _(
                "same files, split and seeds: expect close numbers, not identical ones (fastai and Pet Lab's faster training round floats differently)"
            )
        )
    return "\n".join([*lines, "", "; ".join(notes) + "."])


def step_markdown(item: Step, settings: LessonSettings, spec: DatasetSpec) -> str:
    """A step's Markdown: title, explanation, what goes in and out, and course-v3's call where it differs."""
    parts = [
        f"## {item.number}. {_(item.title)}",
        "",
        _(item.explanation),
        "",
        "- " + _("**Goes in:** {what}").format(what=_(item.goes_in)),
        "- " + _("**Comes out:** {what}").format(what=_(item.comes_out)),
    ]
    v1 = lesson.step_v1(item, settings, spec)
    if v1:
        parts += ["", _("In course-v3 (fastai v1):"), "", "```python", v1, "```"]
    return "\n".join(parts)


def lesson_notebook(
    settings: LessonSettings,
    spec: DatasetSpec,
    results: Mapping[RunRole, RunRecord] | None = None,
    torch_home: str | None = None,
    root_shown: str | None = None,
) -> nbformat.NotebookNode:
    """The lesson as a notebook with these settings, in the current language.

    Args:
        results: Pet Lab's stored runs of these settings, noted after their steps.
        torch_home: a folder holding ImageNet checkpoints (Pet Lab's TORCH_HOME); None lets torchvision download.
        root_shown: the dataset folder as written in the notebook (None: spec.root).
    """
    results = results or {}
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    intro = "\n".join([
        "# " + _("Lesson 1: what's your pet?"),
        "",
        _("Exported from Pet Lab with this tab's settings. Plain fastai: this notebook does not need Pet Lab. "
          "Run it top to bottom; after each training, Pet Lab's own run of the same settings is noted so you "
          "can compare."),
        "",
        settings_summary(settings, spec),
    ])  # fmt: skip
    cells = [
        v4.new_markdown_cell(intro, id="intro"),
        v4.new_code_cell(lesson.setup_code(settings, torch_home), id="setup"),
    ]
    for item in lesson.STEPS:
        cells.append(v4.new_markdown_cell(step_markdown(item, settings, spec), id=_cell_id(f"about-{item.key}")))
        code = v4.new_code_cell(lesson.step_code(item, settings, spec, root_shown), id=_cell_id(f"step-{item.key}"))
        code.metadata["tags"] = [STEP_TAG.format(key=item.key)]
        cells.append(code)
        shown = item.runs[0] if item.runs else None
        if shown in results and item.key != lesson.StepKey.INTERPRET:
            cells.append(
                v4.new_markdown_cell(results_markdown(shown, results[shown]), id=_cell_id(f"petlab-{item.key}"))
            )
    nb.cells = cells
    nbformat.validate(nb)
    return nb


def notebook_bytes(nb: nbformat.NotebookNode) -> bytes:
    """The .ipynb file's bytes."""
    return nbformat.writes(nb).encode("utf-8")


def notebook_name(settings: LessonSettings, spec: DatasetSpec) -> str:
    """A file name that says what is inside: petlab-lesson1-pets-resnet34-224px.ipynb."""
    data = "pets" if spec.kind == "pets" else re.sub(r"[^A-Za-z0-9_-]+", "-", spec.name).strip("-")[:32] or "data"
    return f"petlab-lesson1-{data}-{settings.arch}-{settings.img_size}px.ipynb"
