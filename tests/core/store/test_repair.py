"""Self-repair of the runs folder: interrupted retrains rolled forward or back, old leftovers removed, live jobs untouched."""

import threading
import time
from pathlib import Path

import pytest

from core.nets.models import RECORD_FILE, WEIGHTS_FILE
from core.store import repair, runs, training_lock
from tests.factories import run_record, store_run


def _killed_swap(runs_dir: Path, new_complete: bool) -> None:
    """The state 'Retrain anyway' leaves when killed between its two renames."""
    store_run(runs_dir, run_record(created=1), "r1", b"old")
    (runs_dir / "r1").rename(runs_dir / ".old-r1-aaaaaaaa")
    tmp = runs_dir / ".tmp-r1-bbbbbbbb"
    (runs_dir / store_run(runs_dir, run_record(created=2), "staging", b"new")).rename(tmp)
    if not new_complete:
        (tmp / RECORD_FILE).unlink()


@pytest.mark.parametrize(("new_complete", "weights"), [(True, b"new"), (False, b"old")])
def test_interrupted_retrain_is_rolled_forward_or_back(tmp_path, new_complete, weights):
    _killed_swap(tmp_path, new_complete)
    found, warnings = runs.list_runs(tmp_path)  # listing repairs the registry
    assert [r.run_id for r in found] == ["r1"] and not warnings
    assert (tmp_path / "r1" / WEIGHTS_FILE).read_bytes() == weights


def test_leftovers_of_killed_jobs_are_removed_when_old_and_unlocked(tmp_path):
    for name in (".work-abc", ".tmp-r9-cccccccc", ".lrfind-xyz", ".del-r8-dddddddd"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.pt").write_bytes(b"x" * 100)
    training_lock.write_progress(tmp_path, training_lock.TrainProgress(title="killed run"))
    now = time.time()
    assert repair.repair_runs(tmp_path, max_age=600, now=now) == [
        "Removed the progress file of a training that was stopped."
    ]  # young leftovers may belong to a live job: kept
    assert (tmp_path / ".work-abc").exists() and training_lock.read_progress(tmp_path) is None

    holding, release = threading.Event(), threading.Event()

    def training():
        with training_lock.training_lock(tmp_path):
            holding.set()
            release.wait(5)

    thread = threading.Thread(target=training)
    thread.start()
    holding.wait(5)
    assert repair.repair_runs(tmp_path, max_age=600, now=now + 3600) == []  # a live training: nothing touched
    release.set()
    thread.join()
    assert (tmp_path / ".work-abc").exists()

    done = repair.repair_runs(tmp_path, max_age=600, now=now + 3600)
    assert len(done) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [training_lock.LOCK_FILE]


def test_a_dead_workers_cleanup_keeps_the_only_copy_of_a_run_killed_mid_swap(tmp_path):
    """job_records.clean_half_runs (a worker died) repairs at once: the `.old-*` copy is restored, not removed."""
    from core.teach.job_records import clean_half_runs

    _killed_swap(tmp_path, new_complete=False)
    (tmp_path / ".work-x").mkdir()  # a fresh leftover: no age wait for a worker known dead
    clean_half_runs(tmp_path)
    assert (tmp_path / "r1" / WEIGHTS_FILE).read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(repair.LEFTOVER_PREFIXES)] == []
