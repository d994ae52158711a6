"""Fast frozen training: cache the frozen body's pooled features once, then train only the head.

With the body frozen its output never changes, so a frozen epoch spends almost all its time
recomputing the same activations. fastai's head starts with AdaptiveConcatPool2d + Flatten
(no parameters), so we cache their output, (N, 2·nf) per image, and train `head[2:]` (BatchNorm1d,
Dropout, Linear, ReLU, BatchNorm1d, Dropout, Linear) with fastai's own Learner, loss, Adam and
fit_one_cycle. The trained head modules are the full model's head modules, so the result is an
ordinary Sequential(body, head).

BatchNorm: fastai trains with the whole model in train mode, so even with the body frozen its
BatchNorm layers normalise each batch with the batch's own statistics and their running averages
drift to the dataset's. Features from a body in eval mode with ImageNet's running statistics are
other features: a head trained on them fails as soon as stage 2 trains the body in train mode.
So before extracting, `adapt_batchnorm` re-estimates the body's running statistics on the training
images (AdaBN, Li et al. 2016): eval-mode features then match what train mode computes, the
adapted statistics are cached with the features and stored in the run's weights. What stays
different: `freeze()` also trains BatchNorm's affine weights (`train_bn=True`), which a cached
body cannot. bench/train_speed.py measures both paths through stage 2.
"""

from __future__ import annotations

import io
import re
import shutil
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.i18n import N_, _
from core.nets.inference import features_of
from core.nets.optimizers import fused_adam
from core.storage import atomic_write_bytes, atomic_write_json, read_json, stable_hash
from core.store.records import RecordError, parse_dataclass, to_json

# ---- the on-disk format: this module alone lists a feature cache's files and reads and writes them ----
# `<data>/features/<FeatureSpec.key>/`: the arrays, the body's adapted BatchNorm statistics, meta.json.
# The Training page's "is it cached" check, `make prepare`, the bundle writer and the importer all go
# through FEATURE_FILES / features_complete / load_features below.
ARRAYS = ("train_x", "train_y", "valid_x", "valid_y")
BN_FILE = "batchnorm.npz"  # the body's adapted BatchNorm statistics the features were extracted with
META_FILE = "meta.json"  # the FeatureSpec (its hash is the folder's name), how the features were made
FEATURE_FILES = (META_FILE, BN_FILE, *(f"{name}.npy" for name in ARRAYS))  # every file, all required
MADE_IN = "fp32"  # features are always extracted in fp32 (core.nets.inference.features_of), on any device


# Extraction progress is reported in English (a worker has no tab language) and shown per tab by shown_progress.
TRAIN_VIEW = N_("training images, view {view}/{views}")
VALID_IMAGES = N_("validation images")
_TRAIN_VIEW_RE = re.compile(r"^training images, view (\d+)/(\d+)$")


def shown_progress(what: str) -> str:
    """An extraction progress label (as reported, in English) in the current language."""
    found = _TRAIN_VIEW_RE.match(what)
    if found:
        return _(TRAIN_VIEW).format(view=found[1], views=found[2])
    return _(what)


@dataclass(frozen=True)
class FeatureSpec:
    """Everything that changes the cached features; its hash names the cache folder."""

    dataset: str  # DatasetScan.fingerprint (files, labels, split)
    arch: str
    pretrained: bool
    img_size: int
    augment: bool
    views: int  # augmented views per training image
    seed: int
    bs: int  # the batches BatchNorm statistics are re-estimated on; keeps extraction reproducible
    batchnorm: str = "adapted"  # body BatchNorm statistics re-estimated on the training images (cache version)

    @property
    def key(self) -> str:
        return stable_hash(self)


@dataclass(frozen=True)
class FeatureMeta:
    """A cache's meta.json: its spec (whose hash names the folder) and how the features were made."""

    spec: FeatureSpec
    seconds: float = 0.0  # the extraction's time
    precision: str = MADE_IN  # caches written before this field were fp32 under this name
    device: str = ""


@dataclass
class FeatureSet:
    """Cached pooled body features: train (views, N, F) / (N,), valid (M, F) / (M,)."""

    train_x: np.ndarray  # (views, N_train, 2*nf) float32
    train_y: np.ndarray  # (N_train,) int64, the same for every view
    valid_x: np.ndarray  # (N_valid, 2*nf) float32
    valid_y: np.ndarray  # (N_valid,) int64
    seconds: float  # extraction time (0 when read from the cache)
    from_cache: bool
    bn_stats: dict[str, np.ndarray] | None = None  # the body's adapted BatchNorm buffers (state_dict names)

    @property
    def n_features(self) -> int:
        return int(self.valid_x.shape[1])


def pooled_body(model: nn.Sequential) -> nn.Sequential:
    """body → AdaptiveConcatPool2d → Flatten: the part of the network frozen training never changes."""
    return nn.Sequential(model[0], model[1][0], model[1][1])  # (B, 3, H, W) -> (B, 2*nf)


def trainable_head(model: nn.Sequential) -> nn.Sequential:
    """head[2:], sharing its modules with the model: training it trains the model's head in place."""
    return model[1][2:]


def _batchnorms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


class _Adapting:
    """The body in train mode with cumulative BatchNorm averages, for `with`; back in eval mode after.

    On a CPU or CUDA the body runs in channels_last meanwhile (1.6x faster here for mobilenet_v2
    at 64 px in train mode; the statistics agree with NCHW's to float rounding) and is put back after.
    """

    def __init__(self, body: nn.Module, device: torch.device):
        self.body, self.device, self.bns = body, device, _batchnorms(body)
        self.layout = torch.channels_last if torch.device(device).type in ("cpu", "cuda") else None

    def __enter__(self) -> _Adapting:
        self.momenta = [bn.momentum for bn in self.bns]
        self.body.to(self.device).train()
        if self.layout is not None:
            self.body.to(memory_format=self.layout)
        for bn in self.bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average: every batch counts the same
        return self

    def count(self, xb: torch.Tensor, i: int, n: int, first_len: int) -> None:
        """Run batch i of n through the body in train mode: only the BatchNorm buffers change.

        The ragged last batch of several is left out, as fastai's training loader drops it (drop_last).
        """
        if n > 1 and i == n - 1 and len(xb) < first_len:
            return
        xb = xb.to(self.device)  # (B, 3, H, W)
        self.body(xb if self.layout is None else xb.contiguous(memory_format=self.layout))

    def __exit__(self, *exc) -> None:
        for bn, momentum in zip(self.bns, self.momenta, strict=True):
            bn.momentum = momentum
        if self.layout is not None:
            self.body.to(memory_format=torch.contiguous_format)
        self.body.eval()


@torch.no_grad()
def adapt_batchnorm(body: nn.Module, dl, device: torch.device) -> None:
    """Re-estimate the body's BatchNorm running statistics on a DataLoader's batches (AdaBN).

    fastai's frozen training does this on the side: the body runs in train mode, so every
    BatchNorm's running mean/var drift from ImageNet's to this dataset's. Here one pass in train
    mode with momentum=None (an exact average over the batches) gets the same statistics; no
    weight changes. Afterwards the body is back in eval mode. (Fast training uses
    `adapted_features`, which gets the statistics and the features from one pass over the images.)
    """
    n, first_len = len(dl), None
    with _Adapting(body, device) as adapting:
        for i, (xb, _) in enumerate(dl):
            first_len = first_len or len(xb)
            adapting.count(xb, i, n, first_len)


STASH_BYTES = 1 << 30  # batches kept in memory between the statistics and the features; the rest go to disk
STASH_STALE_S = 6 * 3600  # a stash folder untouched this long was left by a killed extraction: removed


class _Stash:
    """Input batches kept for a second pass: in memory up to a budget, then as .npy files in a scratch folder."""

    def __init__(self, scratch: Path, budget: int):
        self.scratch, self.budget, self.used = Path(scratch), budget, 0
        self.items: list[torch.Tensor | Path] = []
        self.folder: Path | None = None

    def add(self, xb: torch.Tensor) -> None:
        xb = xb.detach().cpu()
        size = xb.numel() * xb.element_size()
        if self.used + size <= self.budget:
            self.items.append(xb)
            self.used += size
            return
        if self.folder is None:
            self.scratch.mkdir(parents=True, exist_ok=True)
            for old in self.scratch.glob(".stash-*"):  # litter of a killed extraction
                if time.time() - old.stat().st_mtime > STASH_STALE_S:
                    shutil.rmtree(old, ignore_errors=True)
            self.folder = self.scratch / f".stash-{uuid.uuid4().hex[:8]}"
            self.folder.mkdir()
        path = self.folder / f"{len(self.items)}.npy"
        np.save(path, xb.numpy(), allow_pickle=False)
        self.items.append(path)

    def __iter__(self):
        for item in self.items:
            yield item if isinstance(item, torch.Tensor) else torch.from_numpy(np.load(item, allow_pickle=False))

    def close(self) -> None:
        self.items = []
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


@torch.no_grad()
def adapted_features(
    model: nn.Sequential,
    dl,
    device: torch.device,
    scratch: Path,
    on_batch: Callable[[int, int], None] | None = None,
    budget: int = STASH_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """AdaBN statistics and the training features (N, F), (N,) in dataset order, loading each image once.

    The features need the final statistics and those need every batch, so the body must run twice
    (train mode for the statistics, then eval mode); it cannot be one forward. What one pass can
    share is the expensive part on a CPU, decoding and augmenting the images: each batch of the
    shuffled loader `dl` (shuffle=True, drop_last=False) is kept (see `_Stash`) while the body
    counts it in train mode, then the kept batches go through the fast path. The same numbers as
    the two-pass order (adapt_batchnorm on the loader, then extract on the loader re-made with
    the same seed); a test checks it.
    """
    order: list[int] = []
    get_idxs = dl.get_idxs

    def recording_get_idxs():  # this epoch's shuffled order, to put the features back in dataset order
        idxs = list(get_idxs())
        order.extend(idxs)
        return idxs

    dl.get_idxs = recording_get_idxs
    model.to(device)
    stash, ys, n, first_len = _Stash(scratch, budget), [], len(dl), None
    try:
        with _Adapting(model[0], device) as adapting:
            for i, (xb, yb) in enumerate(dl):
                first_len = first_len or len(xb)
                adapting.count(xb, i, n, first_len)
                stash.add(xb)  # (B, 3, H, W) as the loader made it
                ys.append(yb.cpu())
                if on_batch:
                    on_batch(i + 1, 2 * n)
        xs = []
        for i, xb in enumerate(stash):
            xs.append(features_of(model, xb.to(device)).cpu())  # (B, 2*nf), eval mode, new statistics, fp32
            if on_batch:
                on_batch(n + i + 1, 2 * n)
    finally:
        stash.close()
        dl.get_idxs = get_idxs
    x, y = torch.cat(xs).numpy(), torch.cat(ys).numpy().astype(np.int64)
    idx = np.asarray(order[: len(x)], dtype=np.int64)
    x_sorted, y_sorted = np.empty_like(x), np.empty_like(y)
    x_sorted[idx], y_sorted[idx] = x, y
    return x_sorted, y_sorted


def batchnorm_stats(body: nn.Module) -> dict[str, np.ndarray]:
    """The body's BatchNorm buffers (running_mean, running_var, num_batches_tracked) by state_dict name."""
    names = {id(m) for m in _batchnorms(body)}
    return {
        f"{prefix}.{name}" if prefix else name: buf.detach().cpu().numpy().copy()
        for prefix, module in body.named_modules()
        if id(module) in names
        for name, buf in module.named_buffers(recurse=False)
    }


def load_batchnorm_stats(body: nn.Module, stats: dict[str, np.ndarray]) -> None:
    """Put cached BatchNorm buffers back into the body (the statistics its cached features were made with)."""
    buffers = dict(body.named_buffers())
    missing = set(batchnorm_stats(body)) - set(stats)
    if missing:
        raise ValueError(f"cached BatchNorm statistics lack {sorted(missing)[:3]}")
    with torch.no_grad():
        for name, value in stats.items():
            buffers[name].copy_(torch.from_numpy(np.asarray(value)))


@torch.no_grad()
def extract(
    model: nn.Sequential,
    dl,
    device: torch.device,
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run a DataLoader once through the pooled body in eval mode (fp32): features (N, F) and targets (N,).

    The body runs through core.nets.inference's fast path (BatchNorm folded, channels_last on a CPU),
    a copy of the model in eval mode: the model itself is left as it is.
    """
    model.to(device)
    xs, ys = [], []
    n = len(dl)
    for i, (xb, yb) in enumerate(dl):
        xs.append(features_of(model, xb.to(device)).cpu())  # (B, 2*nf), e.g. (B, 2560) for mobilenet_v2
        ys.append(yb.cpu())
        if on_batch:
            on_batch(i + 1, n)
    return torch.cat(xs).numpy(), torch.cat(ys).numpy().astype(np.int64)


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def features_folder(features_dir: Path, spec: FeatureSpec) -> Path:
    """Where spec's features are cached: named by spec's hash alone (how they were computed is no part of it)."""
    return Path(features_dir) / spec.key


def features_complete(folder: Path) -> bool:
    """Every file of a feature cache is there: cheap enough for every rerun of a page (reads no array).

    A cache folder is renamed into place only when complete, so its files being there is enough to
    call it cached; a damaged one is found by load_features where it is used, and rebuilt.
    """
    return all((Path(folder) / name).is_file() for name in FEATURE_FILES)


def load_features(folder: Path) -> FeatureSet:
    """A feature cache read and checked whole; ValueError saying why it cannot be used.

    Checks that every file is there and readable without unpickling, that meta.json's spec hashes to
    the folder's name, that the features were made in fp32 (MADE_IN), and that the arrays' shapes
    agree with each other.
    """
    folder = Path(folder)
    if missing := [name for name in FEATURE_FILES if not (folder / name).is_file()]:
        raise ValueError(f"the feature cache {folder.name} lacks {', '.join(missing)}")
    try:
        meta = parse_dataclass(FeatureMeta, read_json(folder / META_FILE), META_FILE)
    except RecordError as err:
        raise ValueError(f"the feature cache {folder.name} has an unreadable {META_FILE} ({err})") from err
    spec = meta.spec
    if folder.name.startswith(spec.key + "-"):  # `<key>-bf16`: the name older versions gave bf16 extractions
        raise ValueError(
            f"the feature cache {folder.name} was extracted in {folder.name[len(spec.key) + 1 :]} by an older "
            f"Pet Lab; features are always fp32 now, extracted again where they are needed"
        )
    if spec.key != folder.name:
        raise ValueError(f"the feature cache {folder.name} holds the features of another spec ({spec.key})")
    if meta.precision != MADE_IN:
        raise ValueError(f"the feature cache {folder.name} was extracted in {meta.precision}, not {MADE_IN}")
    try:
        arrays = {name: np.load(folder / f"{name}.npy", allow_pickle=False) for name in ARRAYS}
        with np.load(folder / BN_FILE, allow_pickle=False) as data:
            bn_stats = {name: data[name] for name in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"the feature cache {folder.name} cannot be read ({err})") from err
    train_x, train_y, valid_x, valid_y = (arrays[name] for name in ARRAYS)
    if (
        (train_x.ndim, train_y.ndim, valid_x.ndim, valid_y.ndim) != (3, 1, 2, 1)
        or train_x.shape != (spec.views, len(train_y), valid_x.shape[1])
        or len(valid_y) != len(valid_x)
        or not bn_stats
    ):
        raise ValueError(f"the feature cache {folder.name} has arrays of inconsistent shapes")
    return FeatureSet(**arrays, seconds=meta.seconds, from_cache=True, bn_stats=bn_stats)


def read_features(folder: Path) -> FeatureSet | None:
    """A complete, usable feature cache folder, or None when absent or broken (it is then rebuilt)."""
    try:
        return load_features(folder)
    except ValueError:
        return None


def write_features(folder: Path, features: FeatureSet, spec: FeatureSpec, device: str = "cpu") -> None:
    """Write a feature cache atomically: every file of FEATURE_FILES into a hidden temp folder renamed into place."""
    if not features.bn_stats:
        raise ValueError("a feature cache needs the BatchNorm statistics its features were made with")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".tmp-{folder.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        for name in ARRAYS:
            atomic_write_bytes(tmp / f"{name}.npy", _npy_bytes(getattr(features, name)))
        buf = io.BytesIO()
        np.savez(buf, **features.bn_stats)
        atomic_write_bytes(tmp / BN_FILE, buf.getvalue())
        atomic_write_json(tmp / META_FILE, to_json(FeatureMeta(spec, features.seconds, MADE_IN, str(device))))
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def cached_features(
    features_dir: Path,
    spec: FeatureSpec,
    model: nn.Sequential,
    dls,
    device: torch.device,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> FeatureSet:
    """Features from the disk cache, else extracted once (K augmented views of train, valid as is) and cached.

    The body's BatchNorm statistics are re-estimated on shuffled training batches in the same pass
    over the images that gives the first view's features (see adapted_features); they are cached
    with the features and loaded into `model` on a cache hit, so
    the model always holds the statistics its features were made with. Training views go through
    fastai's own training pipeline (random crop, aug_transforms when on, Normalize) in a fixed
    order; the valid set goes through the valid pipeline, as fastai validates. Always in fp32, on any
    device, whatever precision training runs in: one cache per spec, usable on every machine.
    """
    from fastai.torch_core import set_seed

    folder = features_folder(features_dir, spec)
    found = read_features(folder)
    if found is not None:
        load_batchnorm_stats(model[0], found.bn_stats)
        return found
    start = time.perf_counter()

    def report(i: int, n: int, view: int) -> None:  # view 1 takes two steps per batch (statistics, features)
        if on_progress:
            batches = n // 2 if view == 0 else n
            done = i if view == 0 else (view + 1) * batches + i
            what = TRAIN_VIEW.format(view=view + 1, views=spec.views)
            on_progress(what, done, (spec.views + 1) * batches)

    set_seed(spec.seed)
    # view 1 and the statistics from one pass over the images: shuffled batches, as fastai trains
    first = dls.train.new(shuffle=True, drop_last=False)
    x, train_y = adapted_features(model, first, device, features_dir, lambda i, n: report(i, n, 0))
    bn_stats = batchnorm_stats(model[0])
    views = [x]
    train_dl = dls.train.new(shuffle=False, drop_last=False)  # same transforms, every image once, in order
    for view in range(1, spec.views):
        x, _labels = extract(model, train_dl, device, lambda i, n, view=view: report(i, n, view))
        views.append(x)
    valid_x, valid_y = extract(
        model,
        dls.valid,
        device,
        (lambda i, n: on_progress(VALID_IMAGES, i, n)) if on_progress else None,
    )
    features = FeatureSet(
        train_x=np.stack(views),  # (views, N_train, F)
        train_y=train_y,
        valid_x=valid_x,
        valid_y=valid_y,
        seconds=time.perf_counter() - start,
        from_cache=False,
        bn_stats=bn_stats,
    )
    write_features(folder, features, spec, str(device))
    return features


def feature_spec(config, stage) -> FeatureSpec:
    """The feature cache a fast stage of a run (core.store.records.RunConfig, StageConfig) trains on."""
    return FeatureSpec(
        dataset=config.dataset,
        arch=config.arch,
        pretrained=config.pretrained,
        img_size=config.img_size,
        augment=config.augment,
        views=stage.views,
        seed=config.seed,
        bs=config.bs,
    )


def run_features(features_dir: Path, config, model: nn.Sequential) -> FeatureSet | None:
    """A run's cached training features when they are exactly its body's, else None.

    That holds when every stage trained on cached features (the body never trained: ImageNet
    weights plus the adapted BatchNorm statistics) and the model's BatchNorm buffers equal the
    statistics cached with the features. The novelty reference reads them instead of running the
    training images through the body again: the same fp32 features the Prediction page computes.
    """
    if not config.stages or not all(stage.fast and not stage.unfreeze for stage in config.stages):
        return None
    found = read_features(features_folder(features_dir, feature_spec(config, config.stages[0])))
    if found is None:
        return None
    own = batchnorm_stats(model[0])
    if own.keys() != found.bn_stats.keys() or not all(np.array_equal(own[k], found.bn_stats[k]) for k in own):
        return None
    return found


class FeatureViews(torch.utils.data.Dataset):
    """Training features: one view per image per epoch (view = epoch mod K), like fresh augmentation."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x = torch.from_numpy(x)  # (views, N, F)
        self.y = torch.from_numpy(y)  # (N,)
        self.view = 0

    def __len__(self) -> int:
        return self.x.shape[1]

    def __getitem__(self, i: int):
        return self.x[self.view, i], self.y[i]

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch by indexing: (B, F) features of the current view and (B,) targets."""
        return self.x[self.view, idx], self.y[idx]


def _batch_loader_cls():
    """fastai's DataLoader, handing out whole batches by tensor indexing instead of collating items."""
    from fastai.data.load import DataLoader

    class BatchIndexDL(DataLoader):
        def create_batches(self, samps):
            idxs = torch.as_tensor(list(samps), dtype=torch.long)  # this epoch's order (shuffled on train)
            stop = len(idxs) // self.bs * self.bs if self.drop_last else len(idxs)
            for i in range(0, stop, self.bs):
                yield self.dataset.batch(idxs[i : i + self.bs])  # ((B, F), (B,)): two gathers, no collation

    return BatchIndexDL


def feature_dls(features: FeatureSet, bs: int, device: torch.device, seed: int):
    """fastai DataLoaders over cached features: shuffled, drop_last train (as fastai's image train DL).

    The features are one tensor, so a batch is one index into it: the loaders skip fastai's per-item
    fetch and collation, which otherwise costs more than the head's arithmetic.
    """
    from fastai.data.core import DataLoaders
    from fastai.torch_core import set_seed

    loader = _batch_loader_cls()
    set_seed(seed)  # fastai's DataLoader draws its shuffling RNG at construction
    train_ds = FeatureViews(features.train_x, features.train_y)
    valid_ds = FeatureViews(features.valid_x[None], features.valid_y)  # one view
    drop_last = len(train_ds) > bs  # as fastai's TfmdDL: drop the ragged last batch when there is more than one
    train = loader(train_ds, bs=bs, shuffle=True, drop_last=drop_last, device=device, num_workers=0)
    valid = loader(valid_ds, bs=bs * 2, device=device, num_workers=0)
    return DataLoaders(train, valid, device=device)


def view_switcher():
    """A fastai callback that picks the cached view for each epoch (epoch mod K)."""
    from fastai.callback.core import Callback

    class ViewSwitcher(Callback):
        order = 0

        def before_epoch(self) -> None:
            ds = self.dls.train.dataset
            ds.view = self.epoch % ds.x.shape[0]

    return ViewSwitcher()


def head_learner(
    model: nn.Sequential, features: FeatureSet, bs: int, wd: float, device: torch.device, seed: int, path: Path
):
    """A fastai Learner for head[2:] on cached features: same loss, Adam (fused step), wd and metric as the image learner."""
    import fastai.callback.schedule  # noqa: F401 - patches Learner.fit_one_cycle / lr_find
    from fastai.learner import Learner
    from fastai.losses import CrossEntropyLossFlat
    from fastai.metrics import error_rate

    dls = feature_dls(features, bs, device, seed)
    learn = Learner(
        dls,
        trainable_head(model).to(device),
        loss_func=CrossEntropyLossFlat(),
        opt_func=fused_adam,  # fastai's Adam, one fused kernel per step: ~40 % of a head step otherwise
        metrics=error_rate,
        wd=wd,
        cbs=[view_switcher()],
        path=path,  # lr_find saves a temporary checkpoint here
    )
    _quiet(learn)
    return learn


def _quiet(learn) -> None:
    """No console progress bars or printed epoch rows: the page draws its own."""
    from fastai.callback.progress import ProgressCallback

    learn.logger = _no_log
    if learn.cbs.filter(lambda cb: isinstance(cb, ProgressCallback)):
        learn.remove_cbs(ProgressCallback)


@torch.no_grad()
def head_probs(model: nn.Sequential, x: np.ndarray, device: torch.device) -> np.ndarray:
    """Softmax probabilities of head[2:] on cached features (N, F) -> (N, C), in eval mode."""
    head = trainable_head(model).to(device).eval()
    logits = head(torch.from_numpy(x).to(device))
    return torch.softmax(logits.float(), dim=1).cpu().numpy()


def _no_log(*args, **kwargs) -> None:
    """Recorder's logger when no progress bar is attached (it would print each epoch)."""
