"""A bounded, first-come-first-served limit on heavy per-image work, with each waiter's place in line.

Occlusion maps, guided backprop and patch-index builds take seconds of every core. On a class
server thirty students may ask at once; without a limit they all run together, each takes thirty
times as long and the interactive pages (Prediction) crawl. `WorkSlots` lets `limit` of them run;
the others wait in arrival order and are told their place, so nobody can starve the rest.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class SlotTimeout(TimeoutError):
    """Waited longer than allowed for a free slot (the work did not start)."""


class WorkSlots:
    """At most `limit` holders at once; waiters are served in arrival order (no overtaking)."""

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        self.limit = limit
        self._cond = threading.Condition()
        self._queue: list[int] = []  # tickets waiting, oldest first
        self._running = 0
        self._tickets = itertools.count()

    @property
    def running(self) -> int:
        with self._cond:
            return self._running

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._queue)

    @contextmanager
    def slot(
        self, on_wait: Callable[[int], None] | None = None, timeout: float | None = None, poll: float = 0.5
    ) -> Iterator[None]:
        """Hold one slot for the `with` block; while waiting, on_wait(place) is called (1 = next in line).

        on_wait is called outside the internal lock on arrival and after every wake-up (a place change, or
        `poll` seconds), never when a slot is free at once; an exception it raises (a Streamlit session
        stopped by its closed tab) takes the caller out of the line. Raises SlotTimeout after `timeout`
        seconds of waiting.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            ticket = next(self._tickets)
            self._queue.append(ticket)
        told = 0
        try:
            while True:
                with self._cond:
                    place = self._queue.index(ticket) + 1
                    if place == 1 and self._running < self.limit:
                        self._queue.pop(0)
                        self._running += 1
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
                if ticket in self._queue:
                    self._queue.remove(ticket)
                    self._cond.notify_all()
            raise
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()
