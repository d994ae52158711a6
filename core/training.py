"""Fine-tuning as in lesson 1: lr_find, fit_one_cycle frozen, unfreeze with slice(lo, hi).

Everything here is real fastai: a Learner over Sequential(body, head) from core.models, fastai's
DataBlock/DataLoaders built from a DatasetScan, its Adam, its fit_one_cycle and lr_find. The only
addition is the fast frozen path (core.features) and the run cache (core.runs).
"""

from __future__ import annotations

import functools
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from core import features as feats
from core import inference, records, runs, training_lock
from core.datasets import DatasetScan
from core.models import ARCHS, create_model, load_weights, pick_device, register_fastai_meta, save_weights
from core.records import RunConfig, StageConfig
from core.runs import RunInfo
from core.training_lock import TrainingStopped

ProgressFn = Callable[[dict], None]
SUGGESTIONS = ("valley", "minimum", "steep", "slide")
SUGGESTION_TEXT = {
    "valley": "the middle of the longest stretch where the loss keeps falling (fastai's default).",
    "minimum": "one tenth of the LR at the lowest loss: the minimum itself is already too high.",
    "steep": "where the loss falls fastest per step of log-LR.",
    "slide": "the largest LR before the loss starts to climb, allowing for noise.",
}


# ---- data and learner -----------------------------------------------------------------------


def check_trainable(items: pd.DataFrame) -> None:
    """Raise ConfigError unless the items can teach a classifier: two classes or more, train and valid images."""
    classes = sorted(items["label"].unique().tolist()) if len(items) else []
    if len(classes) < 2:
        found = f"one class ({classes[0]!r})" if classes else "no labelled images"
        raise records.ConfigError(
            f"Training needs at least two classes; this dataset has {found}. A classifier with one class "
            "is always right and learns nothing: check the labelling on the Data page (a zip with one "
            "wrapping folder, or a regex that captures the same text for every file)."
        )
    if items["is_valid"].all() or not items["is_valid"].any():
        raise records.ConfigError("Training needs both training and validation images.")


def make_dls(items: pd.DataFrame, config: RunConfig, device: torch.device | None = None):
    """fastai DataLoaders from a scan's items (path, label, is_valid): Resize, optional aug_transforms, Normalize."""
    from fastai.data.block import CategoryBlock, DataBlock
    from fastai.data.transforms import ColReader, ColSplitter
    from fastai.torch_core import set_seed
    from fastai.vision.augment import (
        Normalize,  # noqa: I001 - fastai re-exports Normalize here
        Resize,
        aug_transforms,
    )
    from fastai.vision.core import imagenet_stats
    from fastai.vision.data import ImageBlock

    df = items[["path", "label", "is_valid"]].reset_index(drop=True)
    check_trainable(df)
    classes = sorted(df["label"].unique().tolist())
    batch_tfms = [*aug_transforms(size=config.img_size)] if config.augment else []
    block = DataBlock(
        blocks=(ImageBlock, CategoryBlock(vocab=classes)),
        get_x=ColReader("path"),
        get_y=ColReader("label"),
        splitter=ColSplitter("is_valid"),
        item_tfms=Resize(config.img_size),  # random crop on train, centre crop on valid
        batch_tfms=[*batch_tfms, Normalize.from_stats(*imagenet_stats)],
    )
    set_seed(config.seed)
    bs = max(2, min(config.bs, int((~df["is_valid"]).sum())))
    return block.dataloaders(df, bs=bs, num_workers=0, device=device or pick_device())


def make_learner(dls, model: nn.Sequential, config: RunConfig, path: Path):
    """Learner(dls, Sequential(body, head)) with the arch's layer-group splitter, as vision_learner builds it."""
    import fastai.callback.schedule  # noqa: F401 - patches Learner.fit_one_cycle / lr_find
    from fastai.learner import Learner
    from fastai.losses import CrossEntropyLossFlat
    from fastai.metrics import error_rate
    from fastai.optimizer import Adam
    from fastai.vision.learner import model_meta

    register_fastai_meta()
    meta = model_meta[getattr(__import__("torchvision").models, config.arch)]
    learn = Learner(
        dls,
        model,
        loss_func=CrossEntropyLossFlat(),
        opt_func=Adam,
        metrics=error_rate,
        splitter=meta["split"],
        wd=config.wd,
        train_bn=config.train_bn,
        path=path,
    )
    feats._quiet(learn)
    learn.freeze()
    return learn


@functools.lru_cache(maxsize=8)
def n_groups(arch: str) -> int:
    """Number of layer groups the splitter makes (3 for every registered arch)."""
    model = create_model(arch, 2, pretrained=False)
    from fastai.vision.learner import model_meta

    return len(model_meta[getattr(__import__("torchvision").models, arch)]["split"](model))


# ---- live progress and the stop button --------------------------------------------------------


def live_callback(on_event: ProgressFn, should_stop: Callable[[], bool], stage: int, every: float = 0.25):
    """A fastai callback that reports batches and epochs and raises TrainingStopped when asked."""
    from fastai.callback.core import Callback
    from fastai.learner import Recorder

    class Live(Callback):
        order = Recorder.order + 1  # after the Recorder has written the epoch's values

        def before_fit(self) -> None:
            self.last = 0.0

        def before_epoch(self) -> None:
            self.epoch_start = time.perf_counter()

        def after_batch(self) -> None:
            if should_stop():
                raise TrainingStopped("Training stopped: nothing was saved.")
            now = time.perf_counter()
            if self.training and now - self.last >= every:
                self.last = now
                on_event(
                    {
                        "kind": "batch",
                        "stage": stage,
                        "epoch": self.epoch,
                        "n_epoch": self.n_epoch,
                        "iter": self.iter + 1,
                        "n_iter": self.n_iter,
                        "loss": float(self.smooth_loss),
                        "lr": float(self.opt.hypers[-1]["lr"]),
                    }
                )

        def after_epoch(self) -> None:
            names = list(self.recorder.metric_names[1:-1])  # train_loss, valid_loss, error_rate
            values = [float(v) for v in self.recorder.values[-1]]
            row = {"stage": stage, "epoch": self.epoch, **dict(zip(names, values, strict=False))}
            row["seconds"] = time.perf_counter() - self.epoch_start
            on_event({"kind": "epoch", "n_epoch": self.n_epoch, "row": row})

    return Live()


# ---- LR finder ------------------------------------------------------------------------------


@dataclass
class LRFinderResult:
    """The LR finder's curve (smoothed loss per LR) and its suggestions."""

    lrs: list[float]
    losses: list[float]
    suggestions: dict[str, float]  # name -> suggested LR
    points: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (lr, loss) marker
    stage: str = "frozen"
    fast: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def _suggest(lrs: list[float], losses: list[float], num_it: int) -> tuple[dict, dict]:
    """fastai's suggestion functions on the same slice of the curve lr_find uses."""
    from fastai.callback.schedule import minimum, slide, steep, valley

    lr_t = torch.tensor(lrs[num_it // 10 : -5] or lrs)
    loss_t = torch.tensor(losses[num_it // 10 : -5] or losses)
    finite = torch.isfinite(loss_t)
    if not finite.all():
        cut = int(torch.nonzero(~finite)[0])
        lr_t, loss_t = lr_t[:cut], loss_t[:cut]
    suggestions, points = {}, {}
    if len(lr_t) < 3:
        return suggestions, points
    for name, func in zip(SUGGESTIONS, (valley, minimum, steep, slide), strict=True):
        try:
            lr, point = func(lr_t, loss_t, num_it)
        except (IndexError, ValueError, RuntimeError):  # slide needs ≥ 16 points; a very short curve lacks them
            continue
        suggestions[name] = float(lr)
        points[name] = (float(point[0]), float(point[1]))
    return suggestions, points


def find_lr(
    config: RunConfig,
    scan: DatasetScan,
    runs_dir: Path,
    features_dir: Path,
    num_it: int = 100,
    on_event: ProgressFn | None = None,
) -> LRFinderResult:
    """fastai's lr_find for the last stage of config (frozen, or unfrozen on top of the stored parent run).

    For a fast frozen stage it runs on the cached features, which is the same head, loss and
    optimizer at a fraction of the cost.
    """
    records.validate(config)
    stage = config.stages[-1]
    start = time.perf_counter()
    Path(runs_dir).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".lrfind-", dir=Path(runs_dir)))
    try:
        learn, _, _ = _prepare(config, scan, runs_dir, features_dir, work, on_event, for_stage=len(config.stages) - 1)
        if stage.fast:
            learn = _fast_learner(config, stage, scan, features_dir, learn, on_event)
        elif stage.unfreeze:
            learn.unfreeze()
        learn.lr_find(num_it=num_it, show_plot=False, suggest_funcs=None)
        lrs = [float(v) for v in learn.recorder.lrs]
        losses = [float(v) for v in learn.recorder.losses]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    suggestions, points = _suggest(lrs, losses, num_it)
    return LRFinderResult(
        lrs=lrs,
        losses=losses,
        suggestions=suggestions,
        points=points,
        stage="unfrozen" if stage.unfreeze else "frozen",
        fast=stage.fast,
        seconds=time.perf_counter() - start,
    )


# ---- training --------------------------------------------------------------------------------


def _prepare(config, scan, runs_dir, features_dir, work, on_event, for_stage: int):
    """DataLoaders, model (from the parent run when one is stored) and Learner for stages[for_stage:]."""
    from fastai.torch_core import set_seed

    if config.dataset != scan.fingerprint:
        raise records.ConfigError("The run's dataset fingerprint does not match the active dataset.")
    device = pick_device()
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # lr_find's huge LRs make denormal floats, which crawl on CPUs
    dls = make_dls(scan.items, config, device)
    classes = list(dls.vocab)
    set_seed(config.seed)
    model = create_model(config.arch, len(classes), pretrained=config.pretrained)  # raises WeightsUnavailable
    prior: list[dict] = []
    if for_stage > 0:
        parent_cfg = replace(config, stages=config.stages[:for_stage])
        parent = runs.find_run(runs_dir, parent_cfg)
        if parent is None:
            raise records.ConfigError("Train the earlier stage first: its run is not stored.")
        load_weights(model, parent.path / "model.pt")
        prior = parent.record.epoch_rows()
    learn = make_learner(dls, model, config, work)
    return learn, prior, device


def _fast_learner(config: RunConfig, stage: StageConfig, scan, features_dir, learn, on_event):
    """Cached features for this config, then a head Learner over them."""
    spec = feats.FeatureSpec(
        dataset=config.dataset,
        arch=config.arch,
        pretrained=config.pretrained,
        img_size=config.img_size,
        augment=config.augment,
        views=stage.views,
        seed=config.seed,
        bs=config.bs,
    )

    def report(what: str, i: int, n: int) -> None:
        if on_event:
            on_event({"kind": "extract", "what": what, "i": i, "n": n})

    precision = inference.precision_for(learn.dls.device)
    features = feats.cached_features(features_dir, spec, learn.model, learn.dls, learn.dls.device, report, precision)
    head = feats.head_learner(learn.model, features, learn.dls.bs, config.wd, learn.dls.device, config.seed, learn.path)
    head.features = features
    return head


@dataclass
class TrainResult:
    """What train_run hands back: the stored run and whether it was found rather than trained."""

    run: RunInfo
    reused: bool


def train_run(
    config: RunConfig,
    scan: DatasetScan,
    runs_dir: Path,
    features_dir: Path,
    on_event: ProgressFn | None = None,
    lr_finder: dict | None = None,
    retrain: bool = False,
    wait: bool = False,
) -> TrainResult:
    """Train (or find) the run for config and store it atomically; nothing is saved when stopped or failed.

    Stages before the last come from the stored parent run when there is one, as in the lesson
    where `unfreeze()` + `fit_one_cycle` continues the frozen model.
    """
    from fastai.torch_core import set_seed

    records.validate(config)
    runs_dir, features_dir = Path(runs_dir), Path(features_dir)
    rid = records.run_id(config)
    found = runs.find_run(runs_dir, config)
    if found is not None and not retrain:
        return TrainResult(found, reused=True)
    with training_lock.training_lock(runs_dir, wait=wait):
        training_lock.clear_stop(runs_dir)
        progress = {"run_id": rid, "title": config.title(), "started": time.time(), "epochs": [], "status": "starting"}
        training_lock.write_progress(runs_dir, progress)

        def emit(event: dict) -> None:
            if event["kind"] == "epoch":
                progress["epochs"].append(event["row"])
            progress["last"] = event
            progress["status"] = "training"
            training_lock.write_progress(runs_dir, progress)
            if on_event:
                on_event(event)

        work = Path(tempfile.mkdtemp(prefix=".work-", dir=runs_dir))
        try:
            record = _train(config, scan, runs_dir, features_dir, work, emit, set_seed)
            record["lr_finder"] = lr_finder
            model_bytes = (work / "model.pt").read_bytes()
            preds = record.pop("_preds")
            path = runs.write_run(runs_dir, rid, model_bytes, record, preds)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            training_lock.clear_progress(runs_dir)
            training_lock.clear_stop(runs_dir)
        return TrainResult(RunInfo(rid, path, records.check_run(path)), reused=False)


def _train(config, scan, runs_dir, features_dir, work, emit, set_seed) -> dict:
    """The training itself; returns the run record (with the predictions under '_preds')."""
    parent_cfg = config.parent()
    start_stage = len(config.stages) - 1 if parent_cfg and runs.find_run(runs_dir, parent_cfg) else 0
    t0 = time.perf_counter()
    learn, prior, device = _prepare(config, scan, runs_dir, features_dir, work, emit, for_stage=start_stage)
    timings: dict[str, float] = {"setup": time.perf_counter() - t0}
    epochs = list(prior)
    last_fast = None
    precision = inference.precision_for(device)

    def collect(event: dict) -> None:
        if event["kind"] == "epoch":
            epochs.append(event["row"])
        emit(event)

    should_stop = lambda: training_lock.stop_requested(runs_dir)  # noqa: E731
    for i in range(start_stage, len(config.stages)):
        stage = config.stages[i]
        t = time.perf_counter()
        set_seed(config.seed + i)
        emit({"kind": "stage", "stage": i, "describe": stage.describe()})
        live = live_callback(collect, should_stop, i)
        if stage.fast:
            head = _fast_learner(config, stage, scan, features_dir, learn, emit)
            timings[f"stage{i}_extract"] = head.features.seconds
            t = time.perf_counter()
            head.fit_one_cycle(stage.epochs, lr_max=stage.lr_max, pct_start=stage.pct_start, cbs=[live])
            last_fast = head
        else:
            if stage.unfreeze:
                learn.unfreeze()
            else:
                learn.freeze()
            lr = slice(stage.lr_min, stage.lr_max) if stage.lr_min else stage.lr_max
            fast_cbs = inference.training_callbacks(device, precision)  # channels_last; bf16/fp16 where it pays
            learn.fit_one_cycle(stage.epochs, lr_max=lr, pct_start=stage.pct_start, cbs=[live, *fast_cbs])
            last_fast = None
        timings[f"stage{i}_train"] = time.perf_counter() - t
    model = learn.model.cpu().eval()
    if last_fast is not None:  # the head on cached valid features gives the full model's predictions
        probs = feats.head_probs(model, last_fast.features.valid_x, torch.device("cpu"))
        targets = last_fast.features.valid_y
    else:
        p, y = learn.get_preds(dl=learn.dls.valid)
        probs, targets = p.float().numpy(), y.numpy().astype(np.int64)
    save_weights(model, work / "model.pt")
    valid_items = scan.items[scan.items["is_valid"]].reset_index(drop=True)
    return {
        "arch": config.arch,
        "classes": list(learn.dls.vocab),
        "img_size": config.img_size,
        "title": config.title(),
        "config": asdict(config),
        "dataset": {"name": scan.spec.name, "root": scan.spec.root, "fingerprint": scan.fingerprint},
        "epochs": epochs,
        "timings": timings,
        "created": time.time(),
        "trained_stages": list(range(start_stage, len(config.stages))),
        "valid_paths": valid_items["path"].tolist(),
        "device": str(device),
        "precision": precision,
        "versions": library_versions(),
        "bn_note": BN_NOTE if any(s.fast for s in config.stages) else "",
        "_preds": {"probs": probs.astype(np.float32), "targets": targets},
    }


BN_NOTE = (
    "What the fast path does differently: it runs the frozen body once per image and trains only the head "
    "on the cached output. First it re-estimates the body's BatchNorm statistics on your training images "
    "(one pass, no weights change), as fastai's frozen epochs do on the side; so stage 2, which trains the "
    "body with batch statistics, continues from the features the head learned on. BatchNorm's own weights "
    "stay as pretrained in stage 1 (fastai's freeze() trains them, train_bn=True)."
)


def library_versions() -> dict[str, str]:
    """Versions that matter to reproduce a run."""
    import fastai
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "fastai": fastai.__version__,
        "numpy": np.__version__,
    }


def arch_choices() -> list[str]:
    return list(ARCHS)


# ---- figures ----------------------------------------------------------------------------------


def lr_finder_figure(results: list[dict]):
    """Loss vs LR on a log axis; the newest curve on top with its suggestion markers, older ones faded."""
    import plotly.graph_objects as go

    fig = go.Figure()
    symbols = {"valley": "star", "minimum": "circle", "steep": "triangle-down", "slide": "diamond"}
    for i, res in enumerate(results):
        newest = i == len(results) - 1
        label = f"run {i + 1}: {res.get('stage', '')}{' (cached features)' if res.get('fast') else ''}"
        fig.add_trace(
            go.Scatter(
                x=res["lrs"],
                y=res["losses"],
                name=label,
                opacity=1.0 if newest else 0.35,
                line={"width": 3 if newest else 1.5},
            )
        )
        if newest:
            for name, (lr, loss) in res.get("points", {}).items():
                fig.add_trace(
                    go.Scatter(
                        x=[lr],
                        y=[loss],
                        mode="markers",
                        name=f"{name}: {res['suggestions'][name]:.1e}",
                        marker={"size": 13, "symbol": symbols.get(name, "x")},
                    )
                )
    fig.update_layout(
        height=360,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"title": "learning rate (log scale)", "type": "log", "exponentformat": "e"},
        yaxis={"title": "loss (smoothed)"},
    )
    return fig


def loss_figure(epochs: list[dict], batches: list[tuple[float, float]] | None = None):
    """Train/valid loss per epoch (and the smoothed batch loss while training)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    if batches:
        fig.add_trace(go.Scatter(x=[b[0] for b in batches], y=[b[1] for b in batches], name="batch loss (smoothed)",
                                 line={"width": 1, "color": "lightgrey"}))  # fmt: skip
    if epochs:
        x = list(range(1, len(epochs) + 1))
        fig.add_trace(go.Scatter(x=x, y=[e["train_loss"] for e in epochs], name="train_loss", mode="lines+markers"))
        fig.add_trace(go.Scatter(x=x, y=[e["valid_loss"] for e in epochs], name="valid_loss", mode="lines+markers"))
        fig.add_trace(go.Scatter(x=x, y=[e["error_rate"] for e in epochs], name="error_rate", mode="lines+markers",
                                 yaxis="y2", line={"dash": "dot"}))  # fmt: skip
    fig.update_layout(
        height=320,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"title": "epoch (all stages)"},
        yaxis={"title": "loss"},
        yaxis2={"title": "error rate", "overlaying": "y", "side": "right", "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def runs_figure(records: list[tuple[str, list[dict]]], metric: str = "valid_loss"):
    """One line per run: metric per epoch, to compare runs side by side."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for label, epochs in records:
        fig.add_trace(go.Scatter(x=list(range(1, len(epochs) + 1)), y=[e.get(metric) for e in epochs],
                                 name=label, mode="lines+markers"))  # fmt: skip
    fig.update_layout(height=340, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis={"title": "epoch"}, yaxis={"title": metric}, legend={"orientation": "h", "y": -0.3})  # fmt: skip
    return fig


def epochs_table(epochs: list[dict]) -> pd.DataFrame:
    """fastai's per-epoch table: stage, epoch, train_loss, valid_loss, error_rate, time.

    Records number stages and epochs from 0 as fastai does; the table numbers them from 1, as the
    page's headings and status lines do ("stage 1/2").
    """
    cols = ["stage", "epoch", "train_loss", "valid_loss", "error_rate", "seconds"]
    df = pd.DataFrame(epochs, columns=cols)
    df["stage"] = df["stage"] + 1
    df["epoch"] = df["epoch"] + 1
    return df.rename(columns={"seconds": "time (s)"})


def n_train_batches(scan: DatasetScan, bs: int) -> int:
    """Batches per training epoch (fastai drops the ragged last batch)."""
    n_train = int((~scan.items["is_valid"]).sum())
    return max(1, n_train // max(1, min(bs, n_train)))
