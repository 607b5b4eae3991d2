"""A request sent ahead: started in its own thread now, its answer read later, inside the
step that judges it. Independent requests of a check overlap instead of each paying its own
round trips one after another (over a 20 ms link, every round trip counts)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from preflight.engine.deadline import Deadline, DeadlineExceeded
from preflight.engine.logcapture import working_for

T = TypeVar("T")


class Ahead(Generic[T]):
    """`call()` running in a daemon thread; `result` waits for it (never past the deadline)
    and returns its value or raises what it raised, in the caller's thread and step. What
    the call logs belongs to the caller's check."""

    def __init__(self, call: Callable[[], T], deadline: Deadline) -> None:
        self._deadline = deadline
        self._value: T | None = None
        self._error: BaseException | None = None
        owner = threading.get_ident()
        self._thread = threading.Thread(target=self._run, args=(call, owner), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], T], owner: int) -> None:
        try:
            with working_for(owner):
                self._value = call()
        except BaseException as exc:  # re-raised by result(), in the caller's thread
            self._error = exc

    def result(self) -> T:
        self._thread.join(self._deadline.remaining())
        if self._thread.is_alive():
            raise DeadlineExceeded("a request sent ahead did not finish in time")
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
