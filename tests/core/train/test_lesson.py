"""The one lesson definition: the course's order, its settings, and every reader reading the same runs."""

from dataclasses import replace

import pytest

from core.data.datasets import DatasetSpec
from core.data.labels import PETS_PATTERN
from core.prep import prepare
from core.teach import jobs
from core.train import lesson
from core.train.lesson import COURSE, STEPS, WORKSHOP, RunRole, StepKey


def test_the_steps_are_the_courses_in_its_order():
    assert [s.key for s in STEPS] == [
        StepKey.DOWNLOAD, StepKey.LABEL, StepKey.DATA, StepKey.BATCH, StepKey.LEARNER, StepKey.FIT,
        StepKey.INTERPRET, StepKey.MISTAKE, StepKey.LR_FIND, StepKey.UNFROZEN, StepKey.BIGGER,
    ]  # fmt: skip
    assert [s.number for s in STEPS] == list(range(1, 12))
    assert lesson.step("lr_find").number == 9
    for item in STEPS:  # every text is there; every trained step names the run that shows it
        assert item.title and item.explanation and item.goes_in and item.comes_out and item.explore
    assert lesson.step(StepKey.FIT).runs[0] == RunRole.FROZEN
    assert lesson.step(StepKey.MISTAKE).runs[0] == RunRole.MISTAKE
    assert lesson.step(StepKey.UNFROZEN).runs[0] == RunRole.UNFROZEN
    assert lesson.step(StepKey.BIGGER).runs[0] == RunRole.BIGGER_UNFROZEN


def test_the_course_settings_are_course_v3s():
    runs = COURSE.configs("fp")
    frozen, mistake, unfrozen = runs[RunRole.FROZEN], runs[RunRole.MISTAKE], runs[RunRole.UNFROZEN]
    assert (frozen.arch, frozen.img_size, frozen.bs, frozen.augment, frozen.seed) == ("resnet34", 224, 64, True, 42)
    assert [(s.epochs, s.lr_max, s.lr_min, s.unfreeze, s.fast) for s in unfrozen.stages] == [
        (4, 1e-3, None, False, False),  # fit_one_cycle(4) at fastai's default LR
        (2, 1e-4, 1e-6, True, False),  # unfreeze, fit_one_cycle(2, lr_max=slice(1e-6, 1e-4))
    ]
    assert [(s.epochs, s.lr_max, s.lr_min, s.unfreeze) for s in mistake.stages][1] == (1, 1e-3, None, True)
    bigger = runs[RunRole.BIGGER_UNFROZEN]
    assert (bigger.arch, bigger.img_size, bigger.bs) == ("resnet50", 299, 32)
    assert [(s.epochs, s.lr_min) for s in bigger.stages] == [(8, None), (3, 1e-6)]
    assert runs[RunRole.BIGGER_FROZEN] == bigger.parent()
    assert frozen == unfrozen.parent() == mistake.parent()  # stage 2 and the mistake continue stage 1


def test_every_reader_reads_the_one_definition():
    """`make prepare`, the Class page's queue and the Training page's defaults (as the tests' helper) are the lesson's."""
    from tests.pages.helpers import training_page_config

    named = {run.role: prepare.run_config(run, "fp", prepare.PrepOptions()) for run in prepare.lesson_runs().values()}
    assert named == COURSE.configs("fp")
    assert list(prepare.lesson_runs()) == [
        "resnet34-frozen", "resnet34-mistake", "resnet34-unfrozen", "resnet50-frozen", "resnet50-unfrozen",
    ]  # fmt: skip
    assert [c for _name, c in jobs.lesson_plan("fp")] == [
        WORKSHOP.config(RunRole.FROZEN, "fp"),
        WORKSHOP.config(RunRole.UNFROZEN, "fp"),
        WORKSHOP.config(RunRole.MISTAKE, "fp"),
    ]
    assert training_page_config("fp") == WORKSHOP.config(RunRole.FROZEN, "fp")
    custom = [c for _name, c in jobs.lesson_plan("fp", "resnet18", 96, 3, 2)]
    assert custom[2].stages[1].epochs == 2 and custom[0].arch == "resnet18" and custom[0].img_size == 96


SPECS = {
    "pets": DatasetSpec(name="Oxford-IIIT Pet", kind="pets", root="/data/pets/images"),
    "folder": DatasetSpec(name="photos", kind="folder", root="/home/t/photos", pattern=r"^(\w+)_\d+\.png$"),
    "parent": DatasetSpec(name="mine", kind="own", root="/srv/own", label_from="parent"),
    "path": DatasetSpec(name="zip", kind="zip", root="/tmp/z", pattern=r"/([^/]+)_\d+.jpg$", match_on="path"),
}


@pytest.mark.parametrize("kind", sorted(SPECS))
@pytest.mark.parametrize("settings", [COURSE, WORKSHOP, replace(WORKSHOP, pretrained=False, lr1=2.5e-4)])
def test_every_steps_code_is_python_with_the_settings_in_it(kind, settings):
    spec = SPECS[kind]
    source = (
        lesson.setup_code(settings, "/x/torch")
        + "\n"
        + "\n".join(lesson.step_code(item, settings, spec) for item in STEPS)
    )
    compile(source, "lesson", "exec")  # a SyntaxError fails the test
    assert (
        f"vision_learner(dls, arch, metrics=error_rate{'' if settings.pretrained else ', pretrained=False'})" in source
    )
    assert f"def make_learner(arch={settings.arch}, size={settings.img_size}, bs={settings.bs})" in source
    assert ("untar_data(URLs.PETS)" in source) == (kind == "pets")
    assert ("aug_transforms(size=size)" in source) == settings.augment
    assert f"slice({lesson.py_float(settings.lr_lo)}, {lesson.py_float(settings.lr_hi)})" in source
    assert ("model_meta[mobilenet_v2]" in source) == ("mobilenet_v2" in (settings.arch, settings.bigger_arch))
    for item in STEPS:
        if item.v1:
            compile(lesson.step_v1(item, settings, spec), "v1", "exec")
    if kind == "folder":
        assert "pat = r'^(\\w+)_\\d+\\.png$'" in source and "Path('/home/t/photos')" in source
    if kind == "path":
        assert "labeller('/' + f.relative_to(path).as_posix())" in source


def test_code_reads_as_students_write_it():
    code = lesson.step_code(lesson.step(StepKey.FIT), COURSE, SPECS["pets"])
    assert code == "set_seed(42)\nlearn.fit_one_cycle(4)\nlearn.save('stage-1')"  # the default LR is not written
    assert "learn.fit_one_cycle(2, 3e-3)" in lesson.step_code(lesson.step(StepKey.FIT), WORKSHOP, SPECS["pets"])
    assert [lesson.py_float(v) for v in (1e-3, 3e-3, 2.5e-4, 1e-6, 0.1)] == ["1e-3", "3e-3", "2.5e-4", "1e-6", "1e-1"]
    assert "cnn_learner(data, models.resnet34" in lesson.step_v1(lesson.step(StepKey.LEARNER), COURSE, SPECS["pets"])
    assert lesson.step_v1(lesson.step(StepKey.FIT), COURSE, SPECS["pets"]) == ""  # the same call in fastai v1
    shown = lesson.step_code(lesson.step(StepKey.DOWNLOAD), WORKSHOP, SPECS["folder"], root_shown="photos")
    assert "Path('photos')" in shown and "/home/t" not in shown  # a student's copy names no server path


def test_a_step_number_from_a_url_is_always_a_step():
    assert [lesson.clamp_step(v) for v in ("7", 7, "0", "-3", "99", "x", None, " 3 ", "7.5")] == [
        7, 7, 1, 1, 11, 1, 1, 3, 1,
    ]  # fmt: skip


def test_pets_pattern_is_the_lessons():
    assert f"pat = r'{PETS_PATTERN}'" in lesson.step_code(lesson.step(StepKey.LABEL), COURSE, SPECS["pets"])
