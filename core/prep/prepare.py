"""Prepare a class where a network (and maybe a GPU) is: dataset, ImageNet weights, the lesson's runs, caches.

Every step goes through the app's own code, so what it leaves in the data folder is exactly what
the pages look for: the Pets archive through `core.data.pets` (fastai's `untar_data`), torchvision's
checkpoints through `torch.hub.load_state_dict_from_url` (torchvision's own download, hash-checked)
into the data folder's TORCH_HOME, runs through `core.train.training.train_run`, cached features through
`core.train.features`, top-patch indexes through `core.inside.patches` under the keys the Layers page uses.
Each step is skipped when its result exists, so an interrupted prep resumes where it stopped.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlparse

from core.data import pets
from core.data.datasets import DatasetScan, scan_dataset
from core.inside import patches
from core.nets.models import (
    ARCHS,
    RANDOM_INIT_SEED,
    WeightsUnavailable,
    create_model,
    load_imagenet,
    pick_device,
    prepare_torch_home,
)
from core.settings import FEATURES_DIR, RUNS_DIR, checkpoints_dir, data_dir, sub_dir
from core.store import records, runs
from core.store.records import RunConfig, StageConfig, TrainEvent
from core.store.runs import load_run_model
from core.train import features as feats
from core.train import lesson, lr_finder, training
from core.train.learners import make_dls
from core.train.lesson import RunRole


@dataclass(frozen=True)
class LessonRun:
    """One run of lesson 1 as the course ran it (core.train.lesson.COURSE), under the name `make prepare` uses."""

    name: str
    role: RunRole
    config: RunConfig  # with an empty dataset fingerprint: run_config() fills it in

    @property
    def arch(self) -> str:
        return self.config.arch

    @property
    def img_size(self) -> int:
        return self.config.img_size

    @property
    def bs(self) -> int:
        return self.config.bs

    @property
    def stages(self) -> tuple[StageConfig, ...]:
        return self.config.stages

    @property
    def note(self) -> str:
        """What the run is, in the course's words: its stages as fastai calls."""
        return " → ".join(s.describe() for s in self.stages)


def lesson_runs() -> dict[str, LessonRun]:
    """The course's runs, named `<arch>-<role>`: resnet34 frozen, its deliberate mistake, unfrozen with slice;
    then the bigger model (resnet50 at 299 px) the same way. All come from core.train.lesson.COURSE."""
    found = {}
    for role, config in lesson.COURSE.configs("").items():
        name = f"{config.arch}-{role.value.removeprefix('bigger-')}"
        found[name] = LessonRun(name, role, config)
    return found


@dataclass(frozen=True)
class PrepOptions:
    """What to prepare. The defaults are the whole lesson; `quick()` and the overrides make a smaller prep."""

    archs: tuple[str, ...] = tuple(ARCHS)  # ImageNet weights to fetch
    runs: tuple[str, ...] = tuple(lesson_runs())
    url: str | None = None  # the Pets archive's URL (a mirror); None: fastai's URLs.PETS
    local: str | None = None  # an already downloaded archive or extracted folder
    weights_url: str | None = None  # folder URL of a mirror holding torchvision's checkpoint files
    run_arch: str | None = None  # train the lesson's recipe with another arch (e.g. mobilenet_v2)
    img_size: int | None = None  # override every run's image size (quick preps)
    bs: int | None = None
    epochs: int | None = None  # override every stage's epochs
    features: bool = True  # cached body features for the Training page's fast frozen stage
    patch_indexes: bool = True  # top-patch indexes of the Layers page
    patch_images: int = patches.PAGE_IMAGES

    @classmethod
    def quick(cls, **overrides) -> PrepOptions:
        """resnet34 only: its weights and its three runs (frozen, the mistake, unfrozen with slice)."""
        runs34 = tuple(name for name, run in lesson_runs().items() if run.arch == lesson.COURSE.arch)
        return cls(**{"archs": (lesson.COURSE.arch, lesson.WORKSHOP.arch), "runs": runs34, **overrides})


@dataclass
class PrepEvent:
    """Progress of one step, for the terminal or a page."""

    step: str
    status: str  # "start" | "skip" | "progress" | "done" | "failed"
    detail: str = ""
    fraction: float | None = None


@dataclass
class PrepReport:
    """What prepare did: steps done, skipped and failed (with the reason), seconds per step, run ids."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    run_ids: dict[str, str] = field(default_factory=dict)  # lesson run name -> run id
    device: str = "cpu"


OnEvent = Callable[[PrepEvent], None]


def run_config(run: LessonRun, fingerprint: str, options: PrepOptions) -> RunConfig:
    """The RunConfig of a lesson run on this dataset, with the options' overrides."""
    stages = tuple(replace(s, epochs=options.epochs) if options.epochs else s for s in run.stages)
    return replace(
        run.config,
        dataset=fingerprint,
        arch=options.run_arch or run.arch,
        img_size=options.img_size or run.img_size,
        bs=options.bs or run.bs,
        stages=stages,
    )


def feature_spec(config: RunConfig) -> feats.FeatureSpec:
    """The cache the Training page's 'Fast' toggle reads for this config's frozen stage (2 views when augmenting)."""
    return feats.feature_spec(config, replace(config.stages[0], views=lesson.default_views(config.augment)))


def weights_file(arch: str) -> tuple[str, str]:
    """(file name, URL) of arch's ImageNet checkpoint as torchvision names it."""
    from torchvision.models import get_model_weights

    url = getattr(get_model_weights(arch), ARCHS[arch].weights).url
    return Path(urlparse(url).path).name, url


def fetch_weights(arch: str, base: Path, mirror: str | None = None) -> Path:
    """Download arch's checkpoint into the data folder's TORCH_HOME with torchvision's own (hash-checked) download.

    `mirror` is a folder URL holding the same file names. Raises WeightsUnavailable with the reason.
    """
    import torch

    name, url = weights_file(arch)
    if mirror:
        url = mirror.rstrip("/") + "/" + name
    folder = checkpoints_dir(base)
    try:
        torch.hub.load_state_dict_from_url(
            url, model_dir=str(folder), file_name=name, progress=False, check_hash=True, weights_only=True
        )
    except Exception as err:  # URLError, hash mismatch, a file that is not a state_dict
        (folder / name).unlink(missing_ok=True)
        raise WeightsUnavailable(f"Could not download {arch}'s ImageNet weights from {url} ({err}).") from err
    return folder / name


def _step(report: PrepReport, on_event: OnEvent, step: str, done: bool, work: Callable[[], str]) -> bool:
    """Run one step unless done; record it; a failure is reported and the prep goes on."""
    if done:
        report.skipped.append(step)
        on_event(PrepEvent(step, "skip", "already there"))
        return True
    on_event(PrepEvent(step, "start"))
    start = time.perf_counter()
    try:
        detail = work()
    except (records.ConfigError, WeightsUnavailable, ValueError, OSError, RuntimeError) as err:
        report.failed.append((step, str(err)))
        on_event(PrepEvent(step, "failed", str(err)))
        return False
    report.seconds[step] = time.perf_counter() - start
    report.done.append(step)
    on_event(PrepEvent(step, "done", f"{detail} ({report.seconds[step]:.1f} s)".strip()))
    return True


def _dataset(base: Path, options: PrepOptions, on_event: OnEvent) -> Path:
    """The Pets images folder inside the data folder: a local copy, a mirror, or fastai's URLs.PETS."""
    target = pets.pets_folder(base) / "images"
    if options.local:
        found = pets.use_local_pets(Path(options.local), base)
        if found.resolve() != target.resolve():  # an extracted folder elsewhere: copy it in, so it is bundled
            shutil.copytree(found, target, dirs_exist_ok=True)
        return target

    def progress(done: int, total: int | None) -> None:
        on_event(PrepEvent("dataset", "progress", f"{done / 1e6:.0f} MB", done / total if total else None))

    return pets.download_pets(base, url=options.url, progress=progress)


def prepare(options: PrepOptions | None = None, on_event: OnEvent | None = None) -> PrepReport:
    """Fetch, train and index everything the class needs into the data folder ($PETLAB_DATA); skip what exists."""
    options = options or PrepOptions()
    lesson = lesson_runs()
    unknown = [r for r in options.runs if r not in lesson] + [a for a in options.archs if a not in ARCHS]
    if unknown:
        raise ValueError(
            f"Unknown lesson run or architecture {', '.join(unknown)}; runs: {', '.join(lesson)}; archs: {', '.join(ARCHS)}."
        )
    emit = on_event or (lambda event: None)
    base = data_dir()
    runs_dir, features_dir = sub_dir(RUNS_DIR, base), sub_dir(FEATURES_DIR, base)
    report = PrepReport(device=str(pick_device()))
    prepare_torch_home()  # TORCH_HOME in the data folder; mobilenet_v2's offline checkpoint copied there
    _step(report, emit, "dataset", pets.find_pets(base) is not None, lambda: str(_dataset(base, options, emit)))
    images = pets.find_pets(base)
    if images is None and "dataset" in report.done:  # e.g. a mirror that renamed the archive
        report.failed.append(("dataset", f"no Pets images at {pets.pets_folder(base) / 'images'} after the download"))
    archs = list(dict.fromkeys([*options.archs, *([options.run_arch] if options.run_arch else [])]))
    for arch in archs:
        name, _ = weights_file(arch)
        have = (checkpoints_dir(base) / name).is_file()
        _step(
            report, emit, f"weights {arch}", have, lambda arch=arch: str(fetch_weights(arch, base, options.weights_url))
        )
    if images is None:
        return report
    scan = scan_dataset(pets.pets_spec(images))
    configs = {name: run_config(lesson[name], scan.fingerprint, options) for name in options.runs}
    for name, config in configs.items():
        chain = [config]
        while (parent := chain[0].parent()) is not None:
            chain.insert(0, parent)  # the stored frozen run is what stage 2 continues from, as in the lesson
        for i, cfg in enumerate(chain):
            step = f"run {name}" + (f" (stage {i + 1} of {len(chain)})" if len(chain) > 1 else "")

            def train(cfg: RunConfig = cfg, step: str = step) -> str:
                def progress(event: TrainEvent) -> None:
                    if (row := event.row) is not None:
                        error = row.error_rate if row.error_rate is not None else float("nan")
                        emit(
                            PrepEvent(step, "progress", f"epoch {row.epoch + 1}/{event.n_epoch} error_rate {error:.4f}")
                        )

                found = None  # the lesson runs lr_find before stage 2's slice: keep its curve with the run (step 9)
                if cfg.stages[-1].unfreeze and cfg.stages[-1].lr_min is not None:
                    found = lr_finder.find_lr(cfg, scan, runs_dir, features_dir, wait=True)
                result = training.train_run(
                    cfg, scan, runs_dir, features_dir, on_event=progress, lr_finder=found, wait=True
                )
                return f"{result.run.run_id}: {cfg.title()}, error_rate {result.run.error_rate:.4f}"

            _step(report, emit, step, runs.find_run(runs_dir, cfg) is not None, train)
        report.run_ids[name] = config.run_id
    if options.features:
        for spec, config in {feature_spec(c): c for c in configs.values()}.items():
            step = f"features {config.arch} {config.img_size}px bs {config.bs}"
            done = feats.read_features(feats.features_folder(features_dir, spec)) is not None
            _step(report, emit, step, done, lambda spec=spec, config=config: _extract(spec, config, scan, features_dir))
    if options.patch_indexes:
        have = [a for a in archs if (checkpoints_dir(base) / weights_file(a)[0]).is_file()]
        trained = [c for c in configs.values() if runs.find_run(runs_dir, c) is not None]
        _patch_steps(report, emit, scan, have, trained, runs_dir, options.patch_images)
    return report


def _extract(spec: feats.FeatureSpec, config: RunConfig, scan: DatasetScan, features_dir: Path) -> str:
    """Extract and cache the frozen body's pooled features exactly as the fast frozen stage would."""
    device = pick_device()
    dls = make_dls(scan.items, config, device)
    model = create_model(config.arch, len(dls.vocab), pretrained=config.pretrained)
    found = feats.cached_features(features_dir, spec, model, dls, device)
    return f"{found.train_x.shape[1]} train × {spec.views} views, {found.valid_x.shape[0]} valid"


def _patch_steps(report, emit, scan: DatasetScan, archs, configs, runs_dir: Path, n_images: int) -> None:
    """Index every stage of each ImageNet model and each prepared run, under the Layers page's keys."""
    n = min(scan.n_images, n_images)
    paths = patches.sample_paths(scan.items["path"].astype(str).tolist(), n)
    fingerprint = f"{scan.fingerprint}-n{n}"  # the page's key: dataset and number of images scanned
    models = [("imagenet", arch) for arch in archs] + [("run", c.run_id) for c in configs]
    for kind, name in models:
        step = f"patch indexes {kind} {name}"
        try:
            loaded = load_imagenet(name) if kind == "imagenet" else load_run_model(runs_dir / name)
        except (WeightsUnavailable, ValueError, OSError) as err:
            report.failed.append((step, str(err)))
            emit(PrepEvent(step, "failed", str(err)))
            continue
        mid = patches.model_key(loaded.model, loaded.kind, loaded.arch, loaded.run_id, RANDOM_INIT_SEED)
        for label, stage in ARCHS[loaded.arch].stages:
            key = patches.index_key(mid, fingerprint, stage, loaded.img_size, patches.TOP_K)
            done = patches.index_path(key).is_file()

            def build(loaded=loaded, mid=mid, stage=stage) -> str:
                index = patches.load_or_build_index(
                    loaded.model, mid, fingerprint, stage, paths, size=loaded.img_size, k=patches.TOP_K
                )
                return f"{index.n_channels} channels over {len(paths)} images"

            _step(report, emit, f"{step} {label}", done, build)
