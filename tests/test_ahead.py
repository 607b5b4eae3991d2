"""A request sent ahead: its value or its exception comes back in the caller's thread."""

from __future__ import annotations

import threading

import pytest

from preflight.engine.check import StepFailed
from preflight.engine.deadline import Deadline, DeadlineExceeded
from preflight.net import Ahead


def test_the_value_and_the_thread_it_ran_in() -> None:
    ahead = Ahead(lambda: threading.current_thread().name, Deadline.after(10))
    assert ahead.result() != threading.current_thread().name


def test_its_failure_is_raised_by_result() -> None:
    def refuse() -> None:
        raise StepFailed("refused", "fix it")

    ahead = Ahead(refuse, Deadline.after(10))
    with pytest.raises(StepFailed, match="refused"):
        ahead.result()


def test_result_never_waits_past_the_deadline() -> None:
    release = threading.Event()
    ahead = Ahead(release.wait, Deadline.after(0.05))
    try:
        with pytest.raises(DeadlineExceeded):
            ahead.result()
    finally:
        release.set()
