"""A request sent ahead: its value or its exception comes back in the caller's thread."""

from __future__ import annotations

import logging
import threading

import pytest

from preflight.engine import logcapture
from preflight.engine.check import Check, Probe, StepFailed
from preflight.engine.deadline import Deadline, DeadlineExceeded
from preflight.engine.options import RunOptions
from preflight.net import Ahead
from preflight.values.load import Values


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


def test_what_it_logs_belongs_to_the_check_that_sent_it() -> None:
    check = Check(id="demo", title="demo", run=lambda probe: None)
    probe = Probe(check, Values({}), RunOptions(), Deadline.after(10))
    library = logging.getLogger("some.client.library")
    with logcapture.installed() as handler, handler.capturing(probe):
        Ahead(lambda: library.info("sent ahead"), probe.deadline).result()
    Ahead(lambda: library.info("after the run"), Deadline.after(10)).result()
    assert [line.split(": ", 1)[1] for line in probe.result().logs] == ["sent ahead"]
