"""Run folders on disk: atomic writes, skipping broken folders with one warning, checked predictions."""

import json
from pathlib import Path

import numpy as np
import pytest

from core.nets.models import RECORD_FILE, WEIGHTS_FILE
from core.store import records, runs
from tests.core.store.test_records import record_json
from tests.factories import preds as uniform_preds
from tests.factories import run_record, store_run


def test_write_and_list_runs_skips_broken_folders(tmp_path):
    preds = uniform_preds(2, n=3)
    store_run(tmp_path, run_record(created=2), "good", predictions=preds)
    (tmp_path / "no-weights").mkdir()
    (tmp_path / "no-weights" / RECORD_FILE).write_text(json.dumps(record_json()))
    (tmp_path / "bad-json").mkdir()
    (tmp_path / "bad-json" / WEIGHTS_FILE).write_bytes(b"x")
    (tmp_path / "bad-json" / RECORD_FILE).write_text("{not json")
    (tmp_path / "no-classes").mkdir()
    (tmp_path / "no-classes" / WEIGHTS_FILE).write_bytes(b"x")
    (tmp_path / "no-classes" / RECORD_FILE).write_text(json.dumps({"arch": "x"}))
    (tmp_path / ".tmp-half-written").mkdir()

    found, warnings = runs.list_runs(tmp_path)
    assert [r.run_id for r in found] == ["good"]
    assert sorted(w.split(":")[0] for w in warnings) == [
        "Skipped run folder bad-json",
        "Skipped run folder no-classes",
        "Skipped run folder no-weights",
    ]
    loaded = runs.load_preds(found[0].path)
    np.testing.assert_array_equal(loaded.targets, preds.targets)
    np.testing.assert_array_equal(loaded.probs, preds.probs)
    assert sorted(p.name for p in found[0].path.iterdir()) == sorted([WEIGHTS_FILE, RECORD_FILE, runs.PREDS_FILE])


def test_failed_write_leaves_nothing_and_retrain_replaces(tmp_path, monkeypatch):
    record = run_record()
    store_run(tmp_path, record, "r1", b"old")

    def broken(path, obj):
        raise OSError("disk full")

    monkeypatch.setattr(runs, "atomic_write_json", broken)
    with pytest.raises(OSError):
        store_run(tmp_path, record, "r2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r1"]  # no half-written r2, no temp folder
    monkeypatch.undo()
    store_run(tmp_path, record, "r1", b"new")
    assert (tmp_path / "r1" / WEIGHTS_FILE).read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r1"]
    runs.delete_run(tmp_path / "r1")
    assert list(tmp_path.iterdir()) == []


def _write_raw(runs_dir: Path, name: str, record) -> Path:
    folder = runs_dir / name
    folder.mkdir(parents=True)
    (folder / WEIGHTS_FILE).write_bytes(b"w")
    (folder / RECORD_FILE).write_text(json.dumps(record))
    return folder


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"created": "yesterday"}, "created"),  # the review: ValueError in the runs sort, every page down
        ({"epochs": "oops"}, "epochs"),  # the review: AttributeError
        ({"classes": 5}, "classes"),  # the review: Interpretation raised
        ({"classes": []}, "classes"),
        ({"img_size": "64"}, "img_size"),
        ({"img_size": True}, "img_size"),
        ({"title": None}, "title"),
        ({"epochs": [{"stage": 0, "epoch": "first"}]}, "epoch"),
        ({"timings": {"setup": "slow"}}, "timings"),
        ({"config": {"dataset": 3}}, "dataset"),
        ({"config": {"dataset": "x", "stages": [{"epochs": 1.5, "lr_max": 1e-3}]}}, "epochs"),
        ({"arch": "not_a_net"}, "arch"),
        ({"created": float("nan")}, "created"),
    ],
)
def test_wrong_types_make_a_skipped_run_with_one_warning(tmp_path, change, field):
    store_run(tmp_path, run_record(created=2), "good")
    _write_raw(tmp_path, "bad", record_json(**change))
    found, warnings = runs.list_runs(tmp_path)
    assert [r.run_id for r in found] == ["good"]
    assert len(warnings) == 1 and warnings[0].startswith("Skipped run folder bad:") and field in warnings[0]
    assert str(tmp_path) not in warnings[0]
    with pytest.raises(records.RecordError):
        records.check_run(tmp_path / "bad")


def test_write_run_refuses_invalid_records_and_preds(tmp_path):
    from dataclasses import replace

    good = uniform_preds(2)
    with pytest.raises(TypeError):  # a dict is not a record: training builds a RunRecord
        runs.write_run(tmp_path, "r", b"w", record_json(), good)
    with pytest.raises(records.RecordError, match="created"):
        run_record(created=float("nan"))
    with pytest.raises(records.RecordError, match="timings"):  # what is written must read back
        runs.write_run(tmp_path, "r", b"w", replace(run_record(), timings={"setup": "slow"}), good)
    with pytest.raises(records.RecordError, match="columns"):
        runs.write_run(tmp_path, "r", b"w", run_record(), uniform_preds(3))
    with pytest.raises(records.RecordError, match="1-D integer"):
        runs.Preds(probs=np.zeros((2, 2), np.float32), targets=np.array([0.0, 1.0]))
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"probs": np.array([{"x": 1}, None], dtype=object), "targets": np.array([0, 1])}, "Python objects"),
        ({"probs": np.zeros((2, 3), np.float32), "targets": np.array([0, 1])}, "3 columns for 2"),
        ({"probs": np.zeros(2, np.float32), "targets": np.array([0, 1])}, "2-D"),
        ({"probs": np.zeros((2, 2), np.float32), "targets": np.array([0.0, 1.0])}, "integer"),
        ({"probs": np.zeros((2, 2), np.float32), "targets": np.array([0, 5])}, "outside"),
        ({"probs": np.zeros((2, 2), np.float32), "targets": np.array([0])}, "1 targets"),
        ({"probs": np.zeros((2, 2), np.float32)}, "lacks targets"),
    ],
)
def test_bad_preds_raise_a_record_error(tmp_path, arrays, match):
    folder = tmp_path / "r"
    folder.mkdir()
    np.savez(folder / runs.PREDS_FILE, **arrays)
    with pytest.raises(records.RecordError, match=match):
        runs.load_preds(folder, n_classes=2)


def test_damaged_preds_file(tmp_path):
    (tmp_path / runs.PREDS_FILE).write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(records.RecordError):
        runs.load_preds(tmp_path)
