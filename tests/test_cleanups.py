"""Cleanups run once, newest first, and `run_all` waits for one another thread is running."""

from __future__ import annotations

import threading
import time

from preflight.engine.check import Cleanups


def test_each_cleanup_runs_once_newest_first() -> None:
    cleanups = Cleanups()
    order: list[str] = []
    cleanups.add("first", lambda: order.append("first"))
    cleanups.add("second", lambda: order.append("second"))
    cleanups.run_all()
    cleanups.run_all()
    assert order == ["second", "first"]


def test_a_failing_cleanup_is_recorded_and_the_rest_still_run() -> None:
    cleanups = Cleanups()
    ran: list[str] = []
    cleanups.add("kept", lambda: ran.append("kept"))
    cleanups.add("broken", lambda: 1 / 0)
    cleanups.run_all()
    assert ran == ["kept"]
    assert cleanups.errors == ["cleanup 'broken' failed: division by zero"]


def test_run_all_waits_for_a_cleanup_running_in_another_thread() -> None:
    cleanups = Cleanups()
    started, finished = threading.Event(), threading.Event()

    def slow_delete() -> None:
        started.set()
        time.sleep(0.3)
        finished.set()

    cleanups.add("delete scratch object", slow_delete)
    threading.Thread(target=cleanups.run_all, daemon=True).start()
    assert started.wait(5)
    cleanups.run_all()  # e.g. the runner abandoning the check at its deadline
    assert finished.is_set()
