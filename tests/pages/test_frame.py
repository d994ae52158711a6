"""The app frame's thread settings: the interactive cap, and a laptop-mode training below the other tabs."""

import os
import sys
import threading

import pytest
import torch

from core.nets import models
from ui import frame


def in_thread(fn):
    """Run fn in a thread of its own (nice values stick to a thread: never lower pytest's own) and return its result."""
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("value", fn()))
    thread.start()
    thread.join(60)
    return out["value"]


def test_training_threads_leave_a_core():
    assert frame.training_threads(8) == 7 and frame.training_threads(2) == 1 and frame.training_threads(1) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_background_training_caps_threads_and_lowers_only_its_own_thread(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    main_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def train():
        tid = threading.get_native_id()
        torch.set_num_threads(1)  # the interactive cap of a script thread
        with frame.background_training() as threads:
            models.pick_device()  # what core.train.training does first: it must stay under the ceiling
            inside = (threads, torch.get_num_threads(), os.getpriority(os.PRIO_PROCESS, tid))
        return inside, torch.get_num_threads(), os.getpriority(os.PRIO_PROCESS, tid)

    (threads, during, nice), after, nice_after = in_thread(train)
    assert threads == 3 and during == 3  # cores − 1, pick_device included (it used to take every core)
    assert nice >= frame.TRAINING_NICE and nice_after >= frame.TRAINING_NICE  # it cannot be raised back
    assert after == frame.interactive_threads()  # the interactive cap is back
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_nice  # other threads untouched


def test_a_thread_ceiling_wins_over_the_process_setting(monkeypatch):
    """A laptop training's ceiling holds even where $PETLAB_TORCH_THREADS (the worker's) says more."""
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setenv(models.THREADS_ENV, "3")

    def pick(ceiling):
        if ceiling is None:
            return models.pick_device(), torch.get_num_threads()
        with models.thread_ceiling(ceiling):
            return models.pick_device(), torch.get_num_threads()

    assert in_thread(lambda: pick(None))[1] == 3
    assert in_thread(lambda: pick(2))[1] == 2


def test_the_interactive_cap_holds_through_pick_device(monkeypatch):
    """A tab's script run (cap 1) that builds a learner or runs the LR finder must not take every core."""
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.delenv(models.THREADS_ENV, raising=False)
    monkeypatch.delenv(frame.THREADS_ENV_VAR, raising=False)

    def run():
        frame.cap_threads()
        models.pick_device()
        return torch.get_num_threads()

    assert in_thread(run) == 1
