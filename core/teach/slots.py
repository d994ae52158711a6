"""A bounded limit on heavy per-image work, shared fairly between students, with each waiter's place in line.

Occlusion maps, guided backprop and patch-index builds take seconds of every core. On a class
server thirty students may ask at once; without a limit they all run together, each takes thirty
times as long and the interactive pages (Prediction) crawl. `WorkSlots` lets `limit` of them run;
the others wait and are told their place. The line is fair between people, not between requests:
the teacher's work goes first, then students take turns, one request per student per round, the
student served longest ago first (issue 18: four tabs of one student put a victim's 21 s occlusion
map 123 s behind them when the line was first come, first served per request).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


class SlotTimeout(TimeoutError):
    """Waited longer than allowed for a free slot (the work did not start)."""


@dataclass(frozen=True)
class _Waiter:
    ticket: int
    owner: str  # who is asking: a student's computer (core.auth.client_key), or the teacher
    first: bool  # the teacher's: ahead of every student


class WorkSlots:
    """At most `limit` holders at once; waiters are served teacher first, then students in turns (line_order)."""

    MAX_OWNERS = 10_000  # when each owner was last served, kept for this many owners

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        self.limit = limit
        self._cond = threading.Condition()
        self._waiting: list[_Waiter] = []  # arrival order
        self._running = 0
        self._tickets = itertools.count()
        self._served: dict[str, int] = {}  # owner -> the grant number of their last turn
        self._grants = itertools.count(1)

    @property
    def running(self) -> int:
        with self._cond:
            return self._running

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._waiting)

    def _line(self) -> list[int]:
        """The waiting tickets in the order they get a slot (call under the lock)."""
        line = [w.ticket for w in self._waiting if w.first]
        queues: dict[str, list[_Waiter]] = {}
        for waiter in self._waiting:
            if not waiter.first:
                queues.setdefault(waiter.owner, []).append(waiter)
        served = {owner: self._served.get(owner, 0) for owner in queues}
        turn = max(self._served.values(), default=0)
        while queues:
            owner = min(queues, key=lambda o: (served[o], queues[o][0].ticket))
            line.append(queues[owner].pop(0).ticket)
            turn += 1
            served[owner] = turn  # to the back of the round
            if not queues[owner]:
                del queues[owner]
        return line

    @contextmanager
    def slot(
        self,
        on_wait: Callable[[int], None] | None = None,
        timeout: float | None = None,
        poll: float = 0.5,
        owner: str = "",
        first: bool = False,
    ) -> Iterator[None]:
        """Hold one slot for the `with` block; while waiting, on_wait(place) is called (1 = next in line).

        owner: who asks (a student's computer); first: the teacher's work, served before any student's.
        on_wait is called outside the internal lock on arrival and after every wake-up (a place change, or
        `poll` seconds), never when a slot is free at once; an exception it raises (a Streamlit session
        stopped by its closed tab) takes the caller out of the line. Raises SlotTimeout after `timeout`
        seconds of waiting.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            me = _Waiter(next(self._tickets), owner, first)
            self._waiting.append(me)
        told = 0
        try:
            while True:
                with self._cond:
                    place = self._line().index(me.ticket) + 1
                    if place == 1 and self._running < self.limit:
                        self._waiting.remove(me)
                        self._running += 1
                        self._served.pop(owner, None)  # to the end: the dict is oldest-served first
                        self._served[owner] = next(self._grants)
                        if len(self._served) > self.MAX_OWNERS:
                            self._served.pop(next(iter(self._served)))
                        self._cond.notify_all()  # everyone behind moves up one place
                        break
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise SlotTimeout(f"no free slot after {timeout:.0f} s ({place} in line)")
                    if place == told:
                        self._cond.wait(poll if left is None else min(poll, left))
                        told = 0  # tell again after each wake-up: a caller can notice it was stopped
                        continue
                if on_wait is not None:
                    on_wait(place)
                told = place
        except BaseException:
            with self._cond:
                if me in self._waiting:
                    self._waiting.remove(me)
                    self._cond.notify_all()
            raise
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()
