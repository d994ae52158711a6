"""WorkSlots: a bounded FIFO limit on heavy work, with places in line."""

import threading
import time

import pytest

from core.teach.slots import SlotTimeout, WorkSlots


def wait_until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_limit_one_serves_waiters_in_arrival_order_and_tells_their_place():
    slots = WorkSlots(1)
    order: list[str] = []
    places: dict[str, list[int]] = {"b": [], "c": [], "d": []}
    release = threading.Event()

    def holder() -> None:
        with slots.slot():
            order.append("a")
            release.wait(5)

    def waiter(name: str) -> None:
        with slots.slot(on_wait=places[name].append):
            order.append(name)

    threads = [threading.Thread(target=holder)]
    threads[0].start()
    wait_until(lambda: slots.running == 1)
    for k, name in enumerate("bcd", start=1):
        threads.append(threading.Thread(target=waiter, args=(name,)))
        threads[-1].start()
        wait_until(lambda k=k: slots.waiting == k)  # each one queued before the next arrives
    assert slots.running == 1 and order == ["a"]
    release.set()
    for thread in threads:
        thread.join(5)
    assert order == ["a", "b", "c", "d"]
    # each is told its place on arrival, then never a farther one (how often depends on timing)
    assert [places[name][0] for name in "bcd"] == [1, 2, 3]
    assert all(p == sorted(p, reverse=True) for p in places.values())
    assert slots.running == 0 and slots.waiting == 0


def test_limit_two_runs_two_at_once():
    slots = WorkSlots(2)
    inside = threading.Barrier(2, timeout=5)  # both must be inside together, or this breaks

    def work() -> None:
        with slots.slot():
            inside.wait()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert not inside.broken and slots.running == 0


def test_an_error_inside_frees_the_slot():
    slots = WorkSlots(1)
    with pytest.raises(RuntimeError), slots.slot():
        raise RuntimeError("boom")
    assert slots.running == 0
    with slots.slot():
        assert slots.running == 1


def test_timeout_leaves_the_line_and_lets_the_next_one_in():
    slots = WorkSlots(1)
    with slots.slot():
        with pytest.raises(SlotTimeout, match="1 in line"), slots.slot(timeout=0.05):
            pass
        assert slots.waiting == 0
    with slots.slot(timeout=0.05):
        assert slots.running == 1


def test_an_error_in_on_wait_takes_the_waiter_out_of_the_line():
    slots = WorkSlots(1)

    def stopped(place: int) -> None:
        raise KeyboardInterrupt  # stands for Streamlit's StopException (a BaseException too)

    with slots.slot():
        with pytest.raises(KeyboardInterrupt), slots.slot(on_wait=stopped):
            pass
        assert slots.waiting == 0
    assert slots.running == 0


def test_limit_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        WorkSlots(0)


def test_a_student_with_many_requests_does_not_push_another_back():
    """The attack: four tabs of one student asked for occlusion maps; a victim asking next waited behind all
    of them (first come, first served per request). Now students take turns, and the teacher goes first."""
    slots = WorkSlots(1)
    order: list[str] = []
    places: dict[str, list[int]] = {}
    release = threading.Event()

    def ask(name: str, owner: str, first: bool = False) -> None:
        places[name] = []
        with slots.slot(on_wait=places[name].append, owner=owner, first=first):
            order.append(name)
            if name == "m1":
                release.wait(5)

    threads = [threading.Thread(target=ask, args=("m1", "10.0.0.66"))]
    threads[0].start()
    wait_until(lambda: slots.running == 1)
    arrivals = [("m2", "10.0.0.66", False), ("m3", "10.0.0.66", False), ("m4", "10.0.0.66", False),
                ("victim", "10.0.0.7", False), ("other", "10.0.0.8", False), ("teacher", "teacher", True)]  # fmt: skip
    for k, (name, owner, first) in enumerate(arrivals, start=1):
        threads.append(threading.Thread(target=ask, args=(name, owner, first)))
        threads[-1].start()
        wait_until(lambda k=k: slots.waiting == k)
    assert places["victim"][0] == 1 and places["teacher"][0] == 1  # each told, on arrival, that they are next
    release.set()
    for thread in threads:
        thread.join(5)
    assert order == ["m1", "teacher", "victim", "other", "m2", "m3", "m4"]


def test_turns_go_round_students_with_several_requests_each():
    slots = WorkSlots(1)
    with slots.slot(owner="a"):  # a was just served
        pass
    release = threading.Event()
    order: list[str] = []

    def ask(name: str, owner: str) -> None:
        with slots.slot(owner=owner):
            order.append(name)
            if name == "hold":
                release.wait(5)

    threads = [threading.Thread(target=ask, args=("hold", "z"))]
    threads[0].start()
    wait_until(lambda: slots.running == 1)
    for k, (name, owner) in enumerate((("a1", "a"), ("a2", "a"), ("b1", "b"), ("b2", "b"), ("c1", "c")), start=1):
        threads.append(threading.Thread(target=ask, args=(name, owner)))
        threads[-1].start()
        wait_until(lambda k=k: slots.waiting == k)
    release.set()
    for thread in threads:
        thread.join(5)
    assert order == ["hold", "b1", "c1", "a1", "b2", "a2"]  # a, served last before, waits one round
