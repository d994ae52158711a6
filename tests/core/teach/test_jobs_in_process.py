"""core.teach.jobs.InProcess: laptop mode's executor behind the queue's interface (the same records, progress, Stop)."""

import threading

import pytest

from core.auth import LAPTOP_USER, STUDENT, TEACHER, Identity
from core.data.datasets import scan_dataset
from core.data.pets import pets_spec
from core.store import runs
from core.store.records import RunConfig, StageConfig
from core.teach import job_records, jobs

TEACH = Identity(TEACHER, "c" * 24)
ALICE = Identity(STUDENT, "a" * 24)


def tiny(scan, epochs=1, fast=True) -> RunConfig:
    return RunConfig(dataset=scan.fingerprint, img_size=32, bs=16, stages=(StageConfig(epochs, 3e-3, fast=fast),))


@pytest.fixture
def scan(pets_like):
    return scan_dataset(pets_spec(pets_like))


def test_a_job_run_here_has_ended_when_submit_returns_and_its_record_says_how(scan, data_folder):
    seen, states = [], []

    def watch(event: dict) -> None:  # the page's live display: every event, while the record says running
        seen.append(event.kind)
        if not states:
            states.append(job_records.list_jobs(data_folder)[0].status)

    here = jobs.InProcess(data_folder, scan_fn=lambda spec: scan, on_event=watch)
    record = jobs.submit(data_folder, LAPTOP_USER, tiny(scan), scan.spec, queue=here)
    assert record.status == "done" and record.run_id == tiny(scan).run_id and not record.reused
    assert runs.find_run(data_folder / "runs", tiny(scan)) is not None
    assert states == ["running"] and {"stage", "batch", "epoch"} <= set(seen)
    assert record.epochs and record.last is not None and record.last.kind == "epoch"
    assert not (job_records.jobs_dir(data_folder) / jobs.QUEUE_FILE).exists()  # no broker was touched
    again = jobs.submit(data_folder, LAPTOP_USER, tiny(scan), scan.spec, queue=here)
    assert again.status == "done" and again.reused  # the same config: opened, not retrained


def test_a_job_run_here_is_claimed_before_any_worker_could_take_it(scan, data_folder):
    """While it runs, the fair-order pick a woken worker makes finds nothing to run."""
    picked = []
    here = jobs.InProcess(data_folder, scan_fn=lambda spec: scan,
                          on_event=lambda e: picked.append(job_records.next_in_line(job_records.index(data_folder))))  # fmt: skip
    jobs.submit(data_folder, TEACH, tiny(scan), scan.spec, queue=here)
    assert picked and set(picked) == {None}
    assert jobs.execute_next(data_folder) is None


class PageLeft(BaseException):
    """What Streamlit raises in a script thread on a rerun or stop (a BaseException, not an Exception)."""


def test_an_interrupted_job_is_recorded_stopped_and_the_interruption_goes_on(scan, data_folder):
    def leave(event: dict) -> None:
        if event.kind == "batch":
            raise PageLeft

    here = jobs.InProcess(data_folder, scan_fn=lambda spec: scan, on_event=leave)
    with pytest.raises(PageLeft):
        jobs.submit(data_folder, LAPTOP_USER, tiny(scan, fast=False), scan.spec, queue=here)
    [record] = job_records.list_jobs(data_folder)
    assert record.status == "stopped" and record.error == jobs.INTERRUPTED and not record.active
    assert runs.find_run(data_folder / "runs", tiny(scan, fast=False)) is None


def test_a_failure_is_the_records_reason_and_another_training_is_busy_not_a_crash(scan, data_folder):
    from core.store import training_lock

    wrong = RunConfig(dataset="not-this-dataset", img_size=32, stages=(StageConfig(1, 3e-3, fast=True),))
    here = jobs.InProcess(data_folder, scan_fn=lambda spec: scan)
    failed = jobs.submit(data_folder, LAPTOP_USER, wrong, scan.spec, queue=here)
    assert failed.status == "failed" and "fingerprint" in failed.error
    held, release = threading.Event(), threading.Event()

    def other_training() -> None:
        with training_lock.training_lock(data_folder / "runs"):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=other_training)
    thread.start()
    held.wait(30)
    try:
        busy = jobs.submit(data_folder, LAPTOP_USER, tiny(scan), scan.spec, queue=here)
    finally:
        release.set()
        thread.join()
    assert busy.status == "failed" and "Another training is running" in busy.error


def test_a_students_seconds_of_work_run_here_are_not_counted_as_queued_requests(scan, data_folder, monkeypatch):
    """Class mode runs an LR finder on cached features here (in a heavy-work slot): the queue's limits on
    students' waiting requests are for the worker's queue, not for this."""
    from core.train import learners

    monkeypatch.setattr(jobs, "STUDENT_ACTIVE_JOBS", 0)  # no queued request allowed at all
    config = tiny(scan)
    learners.extract_features(config, scan, data_folder / "features")  # cached: a student may run the finder
    here = jobs.InProcess(data_folder, scan_fn=lambda spec: scan)
    record, joined = jobs.submit_lr_find(data_folder, ALICE, config, scan.spec, queue=here)
    assert record.status == "done" and not joined and record.result is not None
    with pytest.raises(job_records.JobError):
        jobs.submit_lr_find(data_folder, ALICE, config, scan.spec, queue=jobs.make_queue(data_folder))
