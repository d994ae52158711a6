"""Data and learner for lesson 1: fastai DataLoaders from a scan, a Learner over Sequential(body, head).

Everything here is real fastai: DataBlock/DataLoaders built from a DatasetScan, its Adam and the
arch's layer-group splitter. The fast frozen path (a head Learner over cached body features from
core.train.features) is built here too; core.train.lr_finder and core.train.training drive these learners.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from core.data.datasets import DatasetScan
from core.i18n import _
from core.nets.models import create_model, load_weights, pick_device, register_fastai_meta
from core.nets.optimizers import fused_adam
from core.store import records, runs
from core.store.records import EpochRow, EventKind, RunConfig, StageConfig, TrainEvent
from core.train import features as feats

ProgressFn = Callable[[TrainEvent], None]  # training, LR finder and extraction progress


def check_trainable(items: pd.DataFrame) -> None:
    """Raise ConfigError unless the items can teach a classifier: two classes or more, train and valid images."""
    classes = sorted(items["label"].unique().tolist()) if len(items) else []
    if len(classes) < 2:
        found = _("one class ({name})").format(name=repr(classes[0])) if classes else _("no labelled images")
        raise records.ConfigError(
            _(
                "Training needs at least two classes; this dataset has {found}. A classifier with one class "
                "is always right and learns nothing: check the labelling on the Data page (a zip with one "
                "wrapping folder, or a regex that captures the same text for every file)."
            ).format(found=found)
        )
    if items["is_valid"].all() or not items["is_valid"].any():
        raise records.ConfigError(_("Training needs both training and validation images."))


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
    from fastai.vision.learner import model_meta

    register_fastai_meta()
    meta = model_meta[getattr(__import__("torchvision").models, config.arch)]
    learn = Learner(
        dls,
        model,
        loss_func=CrossEntropyLossFlat(),
        opt_func=fused_adam,  # fastai's Adam, its update in torch's fused kernel (core.nets.optimizers)
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


def prepare_learner(config, scan, runs_dir, features_dir, work, on_event, for_stage: int):
    """DataLoaders, model (from the parent run when one is stored) and Learner for stages[for_stage:]."""
    from fastai.torch_core import set_seed

    if config.dataset != scan.fingerprint:
        raise records.ConfigError(_("The run's dataset fingerprint does not match the active dataset."))
    device = pick_device()
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # lr_find's huge LRs make denormal floats, which crawl on CPUs
    dls = make_dls(scan.items, config, device)
    classes = list(dls.vocab)
    set_seed(config.seed)
    model = create_model(config.arch, len(classes), pretrained=config.pretrained)  # raises WeightsUnavailable
    prior: list[EpochRow] = []
    if for_stage > 0:
        parent_cfg = replace(config, stages=config.stages[:for_stage])
        parent = runs.find_run(runs_dir, parent_cfg)
        if parent is None:
            raise records.ConfigError(_("Train the earlier stage first: its run is not stored."))
        load_weights(model, parent.path / "model.pt")
        prior = list(parent.record.epochs)
    learn = make_learner(dls, model, config, work)
    return learn, prior, device


def features_cached(config: RunConfig, features_dir: Path) -> bool:
    """True when config's first stage is fast and its body features are already cached (on any machine).

    Then the LR finder and stage 1 train only the head: seconds, not an extraction pass over every image.
    Cheap on every rerun of a page: the cache format's owner (core.train.features) checks its files are there.
    """
    stage = config.stages[0]
    if not stage.fast:
        return False
    return feats.features_complete(feats.features_folder(features_dir, feats.feature_spec(config, stage)))


def extract_features(
    config: RunConfig, scan: DatasetScan, features_dir: Path, on_event: ProgressFn | None = None
) -> feats.FeatureSet:
    """Extract (or find) the cached body features of config's fast first stage, exactly as training would."""
    stage = config.stages[0]
    if not stage.fast:
        raise records.ConfigError(
            _("Body features are cached only for a fast frozen stage (Fast: cached body features).")
        )
    first = replace(config, stages=(stage,))
    learn, _model, _path = prepare_learner(first, scan, None, features_dir, Path(features_dir), on_event, for_stage=0)
    return fast_learner(first, stage, scan, features_dir, learn, on_event).features


def fast_learner(config: RunConfig, stage: StageConfig, scan, features_dir, learn, on_event):
    """Cached features for this config, then a head Learner over them."""
    spec = feats.feature_spec(config, stage)

    def report(what: str, i: int, n: int) -> None:
        if on_event:
            on_event(TrainEvent(EventKind.EXTRACT, what=what, i=i, n=n))

    features = feats.cached_features(features_dir, spec, learn.model, learn.dls, learn.dls.device, report)
    head = feats.head_learner(learn.model, features, learn.dls.bs, config.wd, learn.dls.device, config.seed, learn.path)
    head.features = features
    return head


def n_train_batches(scan: DatasetScan, bs: int) -> int:
    """Batches per training epoch (fastai drops the ragged last batch)."""
    n_train = int((~scan.items["is_valid"]).sum())
    return max(1, n_train // max(1, min(bs, n_train)))
