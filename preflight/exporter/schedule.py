"""The schedule: one run every interval, in one thread, so two runs never overlap. A run slower
than the interval delays the next (it starts when the slow one ends); missed slots are dropped,
never queued."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Schedule:
    """Calls `run` now and then every `interval_s` until `stop`."""

    def __init__(
        self, run: Callable[[], None], interval_s: float, on_error: Callable[[Exception], None]
    ) -> None:
        self._run = run
        self._interval_s = interval_s
        self._on_error = on_error
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="schedule", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        next_start = time.monotonic()
        while not self._stopping.wait(max(0.0, next_start - time.monotonic())):
            started = time.monotonic()
            try:
                self._run()
            except Exception as exc:  # a broken run is logged; the schedule goes on
                self._on_error(exc)
            next_start = max(started + self._interval_s, time.monotonic())

    def stop(self, wait_s: float) -> bool:
        """No new run; wait up to `wait_s` for the one in progress. False if it still runs."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(wait_s)
        return not self._thread.is_alive()
