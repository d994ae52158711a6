"""The one factory for stored runs in tests: a RunRecord as core.train.training builds it, its Preds, its folder.

Every test that needs a run folder (or a run.json to break on purpose) starts here, so a change to the
record's layout is made once: `run_record()` is the typed record, `run_json()` its JSON (to write a wrong
field), `store_run()` a complete folder through core.store.runs.write_run.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.store import runs
from core.store.records import DatasetInfo, EpochRow, RunConfig, RunRecord, StageConfig

STAGE = StageConfig(epochs=1, lr_max=1e-3)


def run_config(dataset: str = "fp", **changes: Any) -> RunConfig:
    """A one-stage mobilenet_v2 config at 32 px (changes: any RunConfig field)."""
    return RunConfig(**{"dataset": dataset, "img_size": 32, "stages": (STAGE,), **changes})


def epoch_rows(
    n: int = 1, stage: int = 0, error_rate: float = 0.439, seconds: float | None = 3.0
) -> tuple[EpochRow, ...]:
    """n rows of fastai's table from the first epoch's error rate, the losses and the error falling by epoch."""
    return tuple(
        EpochRow(
            stage,
            e,
            train_loss=1.2 - 0.2 * e,
            valid_loss=1.0 - 0.1 * e,
            error_rate=error_rate - 0.1 * e,
            seconds=seconds,
        )  # fmt: skip
        for e in range(n)
    )


def run_record(
    config: RunConfig | None = None,
    classes: Sequence[str] = ("a", "b"),
    epochs: int | Sequence[EpochRow] = 1,
    title: str | None = None,
    dataset: DatasetInfo | str | None = None,
    created: float = 1.0,
    **fields: Any,
) -> RunRecord:
    """The record core.train.training stores for config (its title by default; dataset: a DatasetInfo or its name)."""
    config = config or run_config()
    if isinstance(dataset, str):
        dataset = DatasetInfo(name=dataset, fingerprint=config.dataset)
    return RunRecord(
        arch=config.arch,
        classes=tuple(classes),
        img_size=config.img_size,
        title=config.title() if title is None else title,
        config=config,
        dataset=dataset or DatasetInfo(fingerprint=config.dataset),
        epochs=epoch_rows(epochs) if isinstance(epochs, int) else tuple(epochs),
        created=created,
        device="cpu",
        **fields,
    )


def run_json(record: RunRecord | None = None, **changes: Any) -> dict[str, Any]:
    """run.json's object for a record (the factory's default one), with keys changed or added as given."""
    return {**(record or run_record()).to_json(), **changes}


def preds(n_classes: int = 2, n: int = 2) -> runs.Preds:
    """Uniform validation predictions: n images, targets cycling through the classes."""
    probs = np.full((n, n_classes), 1 / n_classes, np.float32)
    return runs.Preds(probs=probs, targets=np.arange(n, dtype=np.int64) % n_classes)


def model_weights(arch: str, n_classes: int) -> bytes:
    """A real state_dict of arch's untrained model (for tests that load the run's model)."""
    import torch

    from core.nets.models import create_model

    buf = io.BytesIO()
    torch.save(create_model(arch, n_classes, pretrained=False).state_dict(), buf)
    return buf.getvalue()


def store_run(
    runs_dir: Path,
    record: RunRecord | None = None,
    run_id: str | None = None,
    weights: bytes | None = b"weights",
    predictions: runs.Preds | None = None,
) -> str:
    """A complete run folder written as train_run writes it; returns its id (the config's run id by default).

    weights: the model.pt bytes (None: a real untrained model of the record's arch, for tests that load it).
    """
    record = record or run_record()
    run_id = run_id or record.config.run_id
    data = model_weights(record.arch, len(record.classes)) if weights is None else weights
    runs.write_run(runs_dir, run_id, data, record, predictions or preds(len(record.classes)))
    return run_id
