"""Is this photo like the training images? k-nearest-neighbour distance on the body's pooled features.

Softmax only compares classes with each other, and the energy −logsumexp(logits) only looks at the
size of the logits: a cat photo can still be "97 % Ankle_boot" with a low energy. Here we look at
what the body *sees* instead (Sun et al. 2022, "Out-of-distribution detection with deep nearest
neighbors"): the pooled body features of the photo (the same vector fast frozen training caches,
`core.train.features.pooled_body`), scaled to length 1, and its distance to the k-th nearest training
image's features. Far from every training image means unlike the training data.

The line is calibrated on held-out validation images (never on the reference images themselves,
which are at distance 0 from themselves): the distance that `in_rate` (95 %) of them stay under,
so the rule says "not sure" for about 5 % of ordinary validation images.

Reference features are computed once per run from (at most `max_reference`) training images and
cached under the data folder as a plain .npz (read with allow_pickle=False), keyed by run id and
the weights file's size and time, so a retrained run gets new ones.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from core.data.datasets import DatasetSpec
from core.data.labels import PETS_PATTERN
from core.i18n import _, num, pct
from core.nets.inference import features_of
from core.nets.models import preprocess
from core.quotas import QuotaError, require_free_space
from core.storage import atomic_write_bytes, stable_hash
from core.train.features import run_features


@dataclass(frozen=True)
class NoveltySpec:
    """How a run's reference is built; its hash is part of the cache file's name."""

    k: int = 5  # distance to the k-th nearest training image
    in_rate: float = 0.95  # share of validation images under the line: the rule flags 1 - in_rate of them
    max_reference: int = 600  # training images used as the reference (a seeded sample, balanced over classes)
    max_calibration: int = 300  # validation images used to place the line
    seed: int = 0
    version: int = 2  # bump when the features or the distance change (2: cached features always fp32)

    @property
    def key(self) -> str:
        return stable_hash(self, length=12)


@dataclass
class Reference:
    """A run's training features and the calibrated "unlike the training images" line."""

    features: np.ndarray  # (N, F) float32, each row of length 1
    calibration: np.ndarray  # (M,) kNN distances of the held-out images that placed the line
    threshold: float  # kNN distance above which a photo is unlike the training images
    k: int
    in_rate: float
    held_out: bool  # True: calibrated on validation images; False: leave-one-out on training images

    @property
    def n_reference(self) -> int:
        return int(self.features.shape[0])

    def describe(self) -> str:
        """One line for the page: what the line was calibrated on."""
        if self.held_out:
            text = _(
                "distance to the {k}th nearest of {n} training images; the line {line} is crossed by {share} of "
                "{m} validation images"
            )
        else:
            text = _(
                "distance to the {k}th nearest of {n} training images; the line {line} is crossed by {share} of "
                "{m} training images (each left out of its own reference)"
            )
        return text.format(
            k=self.k, n=num(self.n_reference), line=num(self.threshold, 3), share=pct(1 - self.in_rate),
            m=num(len(self.calibration)),
        )  # fmt: skip


def split_model(model: nn.Sequential) -> tuple[nn.Module, nn.Module]:
    """Sequential(body, head) -> (body + pooling + flatten, the rest of the head), sharing modules.

    For a fastai run the first part is `core.train.features.pooled_body` (AdaptiveConcatPool2d, (B, 2·nf));
    for the ImageNet classifier it is body + AdaptiveAvgPool2d ((B, nf)). The second part maps those
    features to logits, so features and logits come out of one forward pass.
    """
    head = model[1]
    return nn.Sequential(model[0], head[0], head[1]), head[2:]


def features_and_logits(model: nn.Sequential, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One read-only forward: (B, 3, S, S) -> pooled body features (B, F) and logits (B, C), on the CPU."""
    _, rest = split_model(model)
    feats = features_of(model, x)  # (B, 2560) for a mobilenet_v2 run, through the fast path (BatchNorm folded)
    with torch.inference_mode():
        logits = rest(feats)
    return feats.float().cpu(), logits.float().cpu()


FeatureFn = Callable[[torch.Tensor], torch.Tensor]  # (B, 3, S, S) -> (B, F): any forward of the body


def body_features(model: nn.Sequential) -> FeatureFn:
    """The default feature function: the model's own pooled body (plug a faster forward in here)."""
    return lambda x: features_and_logits(model, x)[0]


def normalise(features: np.ndarray | torch.Tensor) -> np.ndarray:
    """Rows scaled to length 1 (Sun et al.: the normalisation is what makes kNN work)."""
    f = np.asarray(features, dtype=np.float32)
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


def knn_distance(reference: np.ndarray, queries: np.ndarray, k: int, leave_one_out: bool = False) -> np.ndarray:
    """Euclidean distance of each normalised query (M, F) to its k-th nearest reference row (N, F) -> (M,).

    leave_one_out: the queries *are* the reference rows, so skip each row's zero distance to itself.
    """
    if len(reference) == 0:
        raise ValueError("the reference set is empty")
    ref = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float32))
    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    # |a - b|² = 2 - 2 a·b for unit vectors: one matrix product instead of N·M differences
    d2 = (2.0 - 2.0 * q @ ref.T).clamp_min(0.0)  # (M, N)
    if leave_one_out:
        d2.fill_diagonal_(float("inf"))
    available = ref.shape[0] - (1 if leave_one_out else 0)
    kth = max(1, min(k, available))
    return d2.kthvalue(kth, dim=1).values.sqrt().numpy()


def calibrate(train: np.ndarray, held_out: np.ndarray | None, k: int, in_rate: float) -> Reference:
    """The reference and its line: the `in_rate` quantile of held-out kNN distances (leave-one-out without them)."""
    ref = normalise(train)
    if held_out is not None and len(held_out):
        calibration, on_held_out = knn_distance(ref, normalise(held_out), k), True
    elif len(ref) > 1:
        calibration, on_held_out = knn_distance(ref, ref, k, leave_one_out=True), False
    else:
        raise ValueError("calibrating the distance needs validation images or at least two training images")
    threshold = float(np.quantile(calibration, in_rate))
    return Reference(ref, calibration.astype(np.float32), threshold, k, in_rate, on_held_out)


def distance(reference: Reference, features: np.ndarray | torch.Tensor) -> np.ndarray:
    """kNN distance of raw pooled features (M, F) to the reference -> (M,)."""
    return knn_distance(reference.features, normalise(features), reference.k)


def image_features(
    feature_fn: FeatureFn, images: Iterable[Image.Image], img_size: int, batch_size: int = 32
) -> np.ndarray:
    """Pooled body features (N, F) of PIL images, through the prediction page's own preprocessing."""
    out, batch = [], []
    for img in images:
        batch.append(preprocess(img, img_size))  # (1, 3, S, S)
        if len(batch) == batch_size:
            out.append(feature_fn(torch.cat(batch)).numpy())
            batch = []
    if batch:
        out.append(feature_fn(torch.cat(batch)).numpy())
    if not out:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(out).astype(np.float32)


def balanced_sample(paths: Sequence[str], labels: Sequence[str], cap: int, seed: int = 0) -> list[str]:
    """At most cap paths, as equal a share per label as possible, chosen by a seeded RNG (sorted first)."""
    pairs = sorted(zip(map(str, paths), map(str, labels), strict=True))
    if len(pairs) <= cap:
        return [p for p, _ in pairs]
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[str]] = {}
    for path, label in pairs:
        by_label.setdefault(label, []).append(path)
    for group in by_label.values():
        rng.shuffle(group)
    chosen: list[str] = []
    depth = 0
    while len(chosen) < cap:  # round-robin over labels: every class gets its share before any gets more
        for group in by_label.values():
            if depth < len(group) and len(chosen) < cap:
                chosen.append(group[depth])
        depth += 1
    return sorted(chosen)


# ---- the on-disk cache: <data>/novelty/<run_id>-<stamp>.npz -----------------------------------


def cache_path(cache_dir: Path, run_id: str, weights_file: Path, spec: NoveltySpec) -> Path:
    """Where a run's reference lives: named by run id, the weights' size and mtime, and the spec."""
    stat = Path(weights_file).stat()
    stamp = stable_hash({"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "spec": spec.key}, length=12)
    return Path(cache_dir) / f"{run_id}-{stamp}.npz"


def save_reference(path: Path, reference: Reference) -> None:
    """Plain arrays only (no pickled objects), written atomically."""
    buf = io.BytesIO()
    np.savez(
        buf,
        features=reference.features.astype(np.float32),
        calibration=reference.calibration.astype(np.float32),
        threshold=np.float64(reference.threshold),
        k=np.int64(reference.k),
        in_rate=np.float64(reference.in_rate),
        held_out=np.bool_(reference.held_out),
    )
    atomic_write_bytes(Path(path), buf.getvalue())


def load_reference(path: Path) -> Reference | None:
    """A cached reference, or None when absent or unreadable (it is then rebuilt)."""
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            ref = Reference(
                features=np.asarray(data["features"], np.float32),
                calibration=np.asarray(data["calibration"], np.float32),
                threshold=float(data["threshold"]),
                k=int(data["k"]),
                in_rate=float(data["in_rate"]),
                held_out=bool(data["held_out"]),
            )
    except (OSError, ValueError, KeyError, EOFError):
        return None
    if ref.features.ndim != 2 or len(ref.features) == 0 or not np.isfinite(ref.threshold):
        return None
    return ref


def build_reference(
    feature_fn: FeatureFn,
    img_size: int,
    train: Sequence[tuple[str, str]],
    valid: Sequence[tuple[str, str]],
    spec: NoveltySpec,
    open_image: Callable[[str], Image.Image | None],
) -> Reference:
    """Features of (sampled) training images and the line placed on (sampled) validation images.

    train, valid: (path, label) pairs; open_image returns None for an unreadable file (skipped).
    """

    def features_of(pairs: Sequence[tuple[str, str]], cap: int) -> np.ndarray:
        if not pairs:
            return np.zeros((0, 0), np.float32)
        paths = balanced_sample([p for p, _ in pairs], [lab for _, lab in pairs], cap, spec.seed)
        images = (img for img in map(open_image, paths) if img is not None)
        return image_features(feature_fn, images, img_size)

    train_x = features_of(train, spec.max_reference)
    if len(train_x) == 0:
        raise ValueError("no readable training image to compare photos with")
    valid_x = features_of(valid, spec.max_calibration)
    return calibrate(train_x, valid_x if len(valid_x) else None, spec.k, spec.in_rate)


def _sample_rows(x: np.ndarray, y: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """At most cap rows of x, balanced over the labels y as balanced_sample picks paths."""
    names = [f"{i:09d}" for i in range(len(x))]
    return x[[int(name) for name in balanced_sample(names, [str(v) for v in y], cap, seed)]]


def reference_from_features(train_x: np.ndarray, train_y: np.ndarray, valid_x: np.ndarray, valid_y: np.ndarray,
                            spec: NoveltySpec) -> Reference:  # fmt: skip
    """The reference from features already computed (a fast run's cache): no image opened or run again.

    train_x (N, F), valid_x (M, F): pooled body features; sampled and calibrated as build_reference does.
    """
    if len(train_x) == 0:
        raise ValueError("no training features to compare photos with")
    train = _sample_rows(train_x, train_y, spec.max_reference, spec.seed)
    valid = _sample_rows(valid_x, valid_y, spec.max_calibration, spec.seed) if len(valid_x) else None
    return calibrate(train, valid, spec.k, spec.in_rate)


def reference_from_run(features_dir: Path, record, model: nn.Sequential, spec: NoveltySpec) -> Reference | None:
    """A fast run's reference from the features its training cached (core.train.features.run_features), else None.

    record: the run's core.store.records.RunRecord. The cache holds the first view's training features
    (fastai's training crops) and the validation features (fastai's centre crops; the page's resize
    of the same square differs only at its border, a test bounds the difference).
    """
    found = run_features(features_dir, record.config, model)
    if found is None:
        return None
    return reference_from_features(found.train_x[0], found.train_y, found.valid_x, found.valid_y, spec)


# ---- the run's own images, whatever dataset the tab has open -------------------------------------


def candidate_specs(record, others: Sequence = ()) -> list:
    """Datasets that may hold the run's training images, the likeliest first.

    record: the run's core.store.records.RunRecord. Its own spec (runs since issue 19 record it), then the
    given specs (the tab's active dataset, the class dataset) that live in the run's folder, then the
    run's folder labelled by class folders or by the lesson's regex (older records), then the given specs
    anywhere else (a copy of the same dataset). Each is checked by `matches_run` once scanned.
    """
    root = record.dataset.root
    found: list = []
    own = record.dataset.spec()
    if own is not None:
        found.append(own)
    found += [o for o in others if o is not None and o.root == root]
    if root:
        name = record.dataset.name or Path(root).name
        found += [DatasetSpec(name, "folder", root, "parent"), DatasetSpec(name, "folder", root, "regex", PETS_PATTERN)]
    found += [o for o in others if o is not None and o.root != root]
    unique: list = []
    for spec in found:
        if spec not in unique:
            unique.append(spec)
    return unique


def matches_run(scan, record) -> bool:
    """Whether a scanned dataset can stand for the run's training images: the run's exact files and split
    (fingerprint), or at least the run's classes."""
    fingerprint = record.dataset.fingerprint or record.config.dataset
    return scan.n_images > 0 and (scan.fingerprint == fingerprint or sorted(scan.classes) == sorted(record.classes))


def reference_pairs(scan) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """(path, label) pairs of a scan's training and validation images, for build_reference."""
    items = scan.items
    pairs = list(zip(items["path"].astype(str), items["label"].astype(str), items["is_valid"], strict=True))
    return tuple((p, lab) for p, lab, v in pairs if not v), tuple((p, lab) for p, lab, v in pairs if v)


def cached_reference(path: Path, build: Callable[[], Reference]) -> tuple[Reference, bool]:
    """The reference stored at path, else build() it and store it; also says whether it came from disk.

    Storing is best effort: a cache, so a full disk (or the free-space floor) only means building it again.
    """
    found = load_reference(path)
    if found is not None:
        return found, True
    reference = build()
    with contextlib.suppress(OSError, QuotaError):
        require_free_space(Path(path).parent)
        save_reference(path, reference)
    return reference, False
