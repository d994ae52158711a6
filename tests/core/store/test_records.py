"""Run records: stable ids sensitive to every field, config validation, run.json typed and round-tripped."""

import dataclasses
import json
import subprocess
import sys
from dataclasses import fields, replace
from pathlib import Path

import pytest

from core.store import records
from tests.factories import run_json, run_record, store_run

ROOT = Path(__file__).resolve().parents[3]
STAGE = records.StageConfig(epochs=2, lr_max=1e-3)
CONFIG = records.RunConfig(dataset="abc", stages=(STAGE,))
CHANGED = {
    str: "other",
    bool: None,  # flipped below
    int: 7,
    float: 0.123,
}


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, tuple):
        return (*value, STAGE)
    if value is None:
        return 1e-6
    return CHANGED[type(value)]


def test_run_id_is_stable_across_processes():
    code = (
        "from core.store import records; print(records.run_id(records.RunConfig(dataset='abc', "
        "stages=(records.StageConfig(epochs=2, lr_max=1e-3),))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == records.run_id(CONFIG) == CONFIG.run_id
    assert (
        records.run_id(records.config_from_dict(json.loads(json.dumps(records.config_as_dict(CONFIG)))))
        == CONFIG.run_id
    )


def test_run_id_changes_with_every_config_and_stage_field():
    seen = {CONFIG.run_id}
    for f in fields(records.RunConfig):
        other = replace(CONFIG, **{f.name: _changed(getattr(CONFIG, f.name))})
        assert other.run_id not in seen, f.name
        seen.add(other.run_id)
    for f in fields(records.StageConfig):
        other = replace(CONFIG, stages=(replace(STAGE, **{f.name: _changed(getattr(STAGE, f.name))}),))
        assert other.run_id not in seen, f.name
        seen.add(other.run_id)


def record_json(**extra):
    """A minimal run.json as older Pet Labs wrote it (only the fields a record needs), with extra keys."""
    return {**run_json(run_record(CONFIG), title="t"), **extra}


def test_validate_rejects_untrainable_configs():
    with pytest.raises(records.ConfigError):
        records.validate(replace(CONFIG, stages=()))
    with pytest.raises(records.ConfigError):
        records.validate(replace(CONFIG, bs=1))
    with pytest.raises(records.ConfigError):
        records.validate(replace(CONFIG, stages=(replace(STAGE, lr_min=1e-2),)))  # lo > hi
    records.validate(CONFIG)
    assert CONFIG.parent() is None
    two = replace(CONFIG, stages=(STAGE, replace(STAGE, unfreeze=True)))
    assert two.parent() == CONFIG and "unfrozen" in two.title()


def test_record_round_trip_keeps_layout_and_unknown_keys(tmp_path):
    raw = record_json(
        created=5,
        epochs=[{"stage": 0, "epoch": 0, "train_loss": 1, "valid_loss": 0.5, "error_rate": 0.25, "seconds": 3,
                 "accuracy": 0.75}],
        timings={"setup": 1}, trained_stages=[0], valid_paths=["a.jpg"], device="cpu", precision="bf16",
        versions={"torch": "2"}, lr_finder={"lrs": [1e-3], "losses": [2.0], "suggestions": {"valley": 1e-3}},
        bn_note="note", future_field={"kept": True},
        dataset={"name": "pets", "root": "/r", "fingerprint": "f"},
    )  # fmt: skip
    record = records.RunRecord.from_json(raw)
    assert record.config == CONFIG and record.classes == ("a", "b") and record.created == 5.0
    assert record.epochs[0].train_loss == 1.0 and record.epochs[0].metrics == {"accuracy": 0.75}
    assert record.error_rate == 0.25 and record.notes == "note" and record.dataset.name == "pets"
    assert record.extra == {"future_field": {"kept": True}} and record.precision == "bf16"
    again = json.loads(json.dumps(record.to_json()))
    assert records.RunRecord.from_json(again) == record
    assert set(again) == set(raw) and again["bn_note"] == "note"  # the run.json layout is unchanged
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.title = "x"


def test_fast_runs_from_before_batchnorm_adaptation_are_not_reused(tmp_path):
    """A fast stage-1 run stored under the old id (ImageNet BatchNorm statistics) is not found again."""
    from core.storage import stable_hash
    from core.store.records import RunConfig, StageConfig, run_id

    fast = RunConfig(dataset="d", stages=(StageConfig(epochs=1, lr_max=1e-3, fast=True),))
    plain = RunConfig(dataset="d", stages=(StageConfig(epochs=1, lr_max=1e-3),))
    assert run_id(fast) != stable_hash(fast)  # the id before FAST_PATH_VERSION
    assert run_id(plain) == stable_hash(plain)  # runs without a fast stage keep their ids
    assert run_id(fast) == run_id(RunConfig(dataset="d", stages=(StageConfig(epochs=1, lr_max=1e-3, fast=True),)))


def test_titles_tell_learning_rates_apart():
    """2.5e-3 was shown as 3e-03 (one significant digit), the same as 3e-3."""
    from core.store.records import lr_text

    assert [lr_text(v) for v in (3e-3, 2.5e-3, 1.25e-4, 1e-6, 0.1)] == [
        "3e-03",
        "2.5e-03",
        "1.25e-04",
        "1e-06",
        "1e-01",
    ]
    a, b = (records.RunConfig(dataset="d", stages=(records.StageConfig(epochs=2, lr_max=lr),)) for lr in (2.5e-3, 3e-3))
    assert a.title() == "mobilenet_v2 128px: 2 ep frozen @ 2.5e-03" and a.title() != b.title()
    two = records.RunConfig(
        dataset="d",
        stages=(records.StageConfig(1, 2.5e-3, fast=True), records.StageConfig(1, 2e-4, lr_min=2.5e-6, unfreeze=True)),
    )
    assert two.title().endswith("1 ep frozen, cached features @ 2.5e-03 → 1 ep unfrozen @ slice(2.5e-06, 2e-04)")


def test_run_titles_are_stored_in_english_and_shown_in_the_tab_language(tmp_path):

    from core import i18n
    from core.store import runs

    config = records.RunConfig(
        dataset="d", augment=True, stages=(records.StageConfig(epochs=2, lr_max=2.5e-3, fast=True),)
    )
    store_run(tmp_path, run_record(config))
    store_run(tmp_path, run_record(config, title="my own title"), run_id="custom")
    try:
        i18n.set_language("zh")
        found = {r.run_id: r for r in runs.list_runs(tmp_path)[0]}
        assert (
            found[config.run_id].title == "mobilenet_v2，128 像素，数据增强：冻结训练 2 轮（缓存特征，学习率 2.5e-03）"
        )
        assert found["custom"].title == "my own title"  # a title someone wrote stays as written
        assert config.title() == "mobilenet_v2 128px aug: 2 ep frozen, cached features @ 2.5e-03"  # what is stored
    finally:
        i18n.set_language("en")
    assert found[config.run_id].title == config.title()


def test_the_parser_reads_enums_arrays_and_lists_and_refuses_a_type_it_cannot_check():
    import enum

    import numpy as np

    class Colour(enum.StrEnum):
        RED = "red"

    @dataclasses.dataclass(frozen=True)
    class Stored:
        colour: Colour
        rows: list
        values: np.ndarray
        pair: tuple[float, float] = (0.0, 0.0)

    parsed = records.parse_dataclass(
        Stored, {"colour": "red", "rows": [1, "a"], "values": np.ones(2), "pair": [1, 2]}, "x"
    )
    assert parsed.colour is Colour.RED and parsed.rows == [1, "a"] and parsed.pair == (1.0, 2.0)
    assert records.to_json(parsed)["colour"] == "red" and records.to_json(parsed)["pair"] == [1.0, 2.0]
    with pytest.raises(records.RecordError, match="x.colour should be one of 'red', not 'blue'"):
        records.parse_dataclass(Stored, {"colour": "blue", "rows": [], "values": np.ones(2)}, "x")
    with pytest.raises(records.RecordError, match="x.rows should be a list, not dict"):
        records.parse_dataclass(Stored, {"colour": "red", "rows": {}, "values": np.ones(2)}, "x")

    @dataclasses.dataclass(frozen=True)
    class Unsupported:
        tags: set[str]

    with pytest.raises(TypeError, match="cannot check"):  # a bug in the record's declaration, not bad input
        records.parse_dataclass(Unsupported, {"tags": []}, "y")
