"""The exporter's state: the values it runs with, the last run, and the runs themselves (one at
a time). Everything it keeps is redacted; its log lines are plain and redacted too."""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from preflight import __version__
from preflight.engine.check import Check
from preflight.engine.options import RunOptions
from preflight.report.redact import Redactor
from preflight.report.result import CheckResult, Report, Status
from preflight.values.check import load_checked
from preflight.values.load import Values, ValuesError, ValuesSource


@dataclass(frozen=True)
class Config:
    """Values read once (at start, and again on SIGHUP) and the checks they give."""

    values: Values
    values_check: CheckResult
    checks: Sequence[Check]  # every check of these values (what /probe may run)
    selected: Sequence[Check]  # the scheduled ones, after --only/--skip
    redact: Redactor


def load_config(source: ValuesSource, only: Sequence[str], skip: Sequence[str]) -> Config:
    """Read and check the values, find the checks; raise ValuesError with every problem
    (in the values, or an unknown --only/--skip name)."""
    from preflight.engine import registry

    values, values_check = load_checked(source)
    redact = Redactor.for_values(values.data if values else {})
    if values is None or values_check.status is Status.FAIL:
        raise ValuesError(
            [
                redact(f"values: {step.name}: {step.detail}" if step.name else step.detail)
                for step in values_check.steps
                if step.status is Status.FAIL
            ]
        )
    checks = registry.all_checks(values)
    unknown = registry.unknown_names(checks, [*only, *skip])
    if unknown:
        raise ValuesError(
            [f"unknown check id(s): {', '.join(unknown)} (see `sense-preflight checks`)"]
        )
    return Config(values, values_check, checks, registry.select(checks, only, skip), redact)


@dataclass(frozen=True)
class LastRun:
    """The latest scheduled run: its redacted report, when it ended, how long it took."""

    report: Report
    ended_at: float  # time.time()
    duration_s: float


class EventLog:
    """One plain line per event on a stream, each passed through the current redaction."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._lock = threading.Lock()

    def __call__(self, line: str, redact: Redactor) -> None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._lock:
            self._stream.write(f"{stamp} {redact(line)}\n")
            self._stream.flush()


class Exporter:
    """Runs the checks (never two runs at once, /probe included) and keeps the last run."""

    def __init__(self, config: Config, options: RunOptions, log: EventLog) -> None:
        self.config = config
        self.options = options
        self.log = log
        self.reload_ok = True
        self.runs = 0
        self.last: LastRun | None = None
        self._run_lock = threading.Lock()
        self._state_lock = threading.Lock()

    def _run(self, checks: Sequence[Check], config: Config) -> list[CheckResult]:
        from preflight.engine.runner import run_checks

        with self._run_lock:
            return run_checks(checks, config.values, self.options)

    def run_scheduled(self) -> None:
        """Run the selected checks; publish the report; log the run and each status change."""
        config = self.config
        started = time.monotonic()
        results = [config.values_check, *self._run(config.selected, config)]
        duration = time.monotonic() - started
        report = config.redact.report(Report(tuple(results), duration, __version__))
        with self._state_lock:
            previous = self.last
            self.last = LastRun(report, time.time(), duration)
            self.runs += 1
            number = self.runs
        self._log_changes(previous.report if previous else None, report, config.redact)
        counts = ", ".join(f"{count} {status}" for status, count in report.summary.items())
        self.log(f"run {number}: {counts} in {duration:.2f}s", config.redact)

    def _log_changes(self, before: Report | None, after: Report, redact: Redactor) -> None:
        was = {check.id: check.status for check in before.checks} if before else {}
        for check in after.checks:
            old = was.get(check.id)
            if old is check.status:
                continue
            change = f"{old} -> {check.status}" if old else str(check.status)
            self.log(f"{check.id}: {change}: {check.message}", redact)

    def probe(self, name: str) -> CheckResult:
        """Run one check (by id) now, with the current values; KeyError for an unknown id."""
        config = self.config
        chosen = [check for check in config.checks if check.id == name]
        if not chosen:
            raise KeyError(name)
        (result,) = self._run(chosen, config)
        return config.redact.result(result)

    def reload(self, load: Callable[[], Config]) -> bool:
        """Re-read the values; a bad reload keeps the previous values and says so."""
        old = self.config
        try:
            config = load()
        except ValuesError as exc:
            self.reload_ok = False
            self.log(
                f"reload failed, still running with the previous values: {'; '.join(exc.problems)}",
                old.redact,
            )
            return False
        except Exception as exc:  # never a traceback, never a secret
            self.reload_ok = False
            self.log(f"reload failed: internal error: {type(exc).__name__}: {exc}", old.redact)
            return False
        self.config = config
        self.reload_ok = True
        self.log(
            f"reload: values read again, {len(config.selected)} check(s) scheduled", old.redact
        )
        return True

    @property
    def ready(self) -> bool:
        return self.last is not None
