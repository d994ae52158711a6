"""Training requests: a student asks, the teacher approves (queued) or declines; too small is refused with numbers."""

import io

import pytest
from PIL import Image

from core.auth import STUDENT, TEACHER, Forbidden, Identity
from core.data.datasets import DatasetError, DatasetSpec, scan_dataset
from core.store import live
from core.store.live import Channel
from core.store.records import RunConfig, StageConfig
from core.teach import classroom, job_records, jobs, requests
from core.teach.requests import RequestStatus

TEACH = Identity(TEACHER, "c" * 24)
ALICE = Identity(STUDENT, "a" * 24)


def photo(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (seed * 7 % 255, seed * 13 % 255, 0)).save(buf, "PNG")
    return buf.getvalue()


def own_scan(base, per_class: int):
    store = classroom.own_store(base, ALICE)
    for c, name in enumerate(("cup", "pen")):
        store.add_class(name)
        for i in range(per_class):
            store.add_photo(name, photo(100 * c + i))
    spec = DatasetSpec(name="Your own classes", kind="own", root=str(store.root), label_from="parent")
    return store, scan_dataset(spec)


def config_for(scan) -> RunConfig:
    return RunConfig(
        dataset=scan.fingerprint, img_size=32, bs=16, stages=(StageConfig(epochs=1, lr_max=3e-3, fast=True),)
    )


def test_a_dataset_too_small_is_refused_with_its_numbers(tmp_path):
    _store, scan = own_scan(tmp_path, per_class=2)  # 4 photos: the validation fifth holds none
    with pytest.raises(DatasetError, match=r"4 images: the validation set .* gets none of them.*Add at least 1 more"):
        requests.ask(tmp_path, ALICE, config_for(scan), scan)
    assert requests.all_requests(tmp_path) == []


def test_a_student_asks_and_the_teacher_approves(tmp_path):
    store, scan = own_scan(tmp_path, per_class=6)
    before = live.version(tmp_path, Channel.ROSTER)
    asked = requests.ask(tmp_path, ALICE, config_for(scan), scan)
    assert live.version(tmp_path, Channel.ROSTER) != before  # the teacher's page learns of it
    assert (asked.status, asked.n_images, asked.n_valid, asked.classes) == ("pending", 12, 2, {"cup": 6, "pen": 6})
    assert asked.dataset.root != str(store.root) and asked.dataset.root.startswith(str(tmp_path / "students"))
    store.add_photo("cup", photo(999))  # photos added after asking are not part of what was asked
    assert scan_dataset(asked.dataset).n_images == 12
    with pytest.raises(Forbidden):
        requests.approve(tmp_path, ALICE, ALICE.tab, lambda c, s: "nope")
    queued = []

    def queue(config, spec):
        queued.append((config, spec))
        return jobs.submit(tmp_path, TEACH, config, spec, queue=jobs.make_queue(tmp_path)).job_id

    done = requests.approve(tmp_path, TEACH, ALICE.tab, queue)
    assert done.status == RequestStatus.APPROVED and done.job_id
    job = job_records.load_job(tmp_path, done.job_id)
    assert job.status == "queued" and job.dataset == asked.dataset and job.config.dataset == asked.config.dataset
    with pytest.raises(ValueError, match="already answered"):
        requests.approve(tmp_path, TEACH, ALICE.tab, queue)
    with pytest.raises(ValueError, match="earlier request is queued"):  # one at a time while it waits
        requests.ask(tmp_path, ALICE, config_for(scan), scan, job_active=lambda job_id: True)
    assert len(queued) == 1


def test_the_teacher_declines_and_cannot_ask(tmp_path):
    _store, scan = own_scan(tmp_path, per_class=6)
    requests.ask(tmp_path, ALICE, config_for(scan), scan)
    assert requests.decline(tmp_path, TEACH, ALICE.tab).status == RequestStatus.DECLINED
    with pytest.raises(Forbidden):
        requests.ask(tmp_path, TEACH, config_for(scan), scan)
    again = requests.ask(tmp_path, ALICE, config_for(scan), scan)  # declined: may ask again
    assert again.status == RequestStatus.PENDING
    requests.withdraw(tmp_path, ALICE)
    assert requests.request_of(tmp_path, ALICE.tab) is None


def test_a_broken_request_file_is_skipped(tmp_path):
    _store, scan = own_scan(tmp_path, per_class=6)
    requests.ask(tmp_path, ALICE, config_for(scan), scan)
    requests.request_path(tmp_path, ALICE.tab).write_text('{"tab": 3, "config": "x"}')
    assert requests.all_requests(tmp_path) == [] and requests.request_of(tmp_path, ALICE.tab) is None
