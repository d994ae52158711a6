"""The training lock: one training at a time per data folder; the busy message names the running one."""

import threading
import time

import pytest

from core.store import training_lock


def test_lock_serialises_two_trainings(tmp_path):
    order: list[str] = []
    holding = threading.Event()

    def first():
        with training_lock.training_lock(tmp_path):
            holding.set()
            order.append("first start")
            time.sleep(0.3)
            order.append("first end")

    thread = threading.Thread(target=first)
    thread.start()
    holding.wait(5)
    assert training_lock.training_running(tmp_path)
    training_lock.write_progress(tmp_path, training_lock.TrainProgress(title="resnet34 run"))
    with pytest.raises(training_lock.TrainingBusy, match="resnet34 run"), training_lock.training_lock(tmp_path):
        pass
    with training_lock.training_lock(tmp_path, wait=True):  # blocks until the first one is done
        order.append("second start")
    thread.join()
    assert order == ["first start", "first end", "second start"]
    assert not training_lock.training_running(tmp_path)
