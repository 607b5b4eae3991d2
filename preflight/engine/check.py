"""A check: an id, a title, the values it reads, whether it applies, and its staged steps.

A check's `run` walks the layers in order through `Probe.step`; the first step that raises
`StepFailed` ends the check with that step's detail and remediation:

    def run(probe: Probe) -> None:
        with probe.step("config") as step:
            host = probe.values.get("clickhouse.host")
            step.detail = f"http://{host}:8123"
        with probe.step("auth") as step:
            ...
            raise StepFailed("wrong user or password", "check clickhouse.username/password")
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from preflight.engine.deadline import Deadline, DeadlineExceeded, timeout_message
from preflight.engine.options import RunOptions
from preflight.report.result import CheckResult, Status, StepResult
from preflight.values.load import Values

log = logging.getLogger(__name__)


class StepFailed(Exception):
    """Ends the check at the current step: what broke (one line) and what to do about it."""

    def __init__(self, detail: str, remediation: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.remediation = remediation


def always(values: Values) -> str | None:
    """The default `applies`: the check always runs."""
    return None


@dataclass(frozen=True)
class Access:
    """One kind of Kubernetes API read a check makes: the RBAC rule an in-cluster run needs.
    `namespaced` rules are granted in the chart's namespace only; `names` narrows a rule to
    those objects (never all Secrets)."""

    group: str
    resource: str
    verbs: tuple[str, ...]
    names: tuple[str, ...] = ()
    namespaced: bool = False


@dataclass(frozen=True)
class Check:
    """A unit of the preflight. `applies` returns a skip reason, or None when it should run;
    `rbac` is what it reads from the Kubernetes API (the in-cluster Job grants exactly that)."""

    id: str
    title: str
    run: Callable[[Probe], None]
    reads: tuple[str, ...] = ()
    applies: Callable[[Values], str | None] = always
    rbac: tuple[Access, ...] = ()

    @property
    def component(self) -> str:
        return self.id.split(".", 1)[0]


@dataclass
class Step:
    """The step in progress: set `detail`, or call `warn` to pass it with a warning."""

    name: str
    detail: str = ""
    status: Status = Status.PASS
    remediation: str = ""

    def warn(self, detail: str, remediation: str = "") -> None:
        """Pass this step with a warning; the check goes on."""
        self.status = Status.WARN
        self.detail = detail
        self.remediation = remediation


class Cleanups:
    """Undo actions (drop the scratch table…) that run once: at the end of the check, or when
    the run is interrupted or the check is abandoned at its deadline. `run_all` returns only
    when no action is pending or still running in another thread."""

    def __init__(self) -> None:
        self._idle = threading.Condition()
        self._pending: list[tuple[str, Callable[[], Any]]] = []
        self._running = 0
        self.errors: list[str] = []

    def add(self, description: str, action: Callable[[], Any]) -> None:
        with self._idle:
            self._pending.append((description, action))

    def run_all(self) -> None:
        """Run every pending action, newest first, then wait for those other threads run;
        never raises."""
        while True:
            with self._idle:
                if not self._pending:
                    self._idle.wait_for(lambda: self._running == 0)
                    return
                description, action = self._pending.pop()
                self._running += 1
            try:
                action()
            except Exception as exc:  # a cleanup must not hide the check's verdict
                self.errors.append(f"cleanup '{description}' failed: {exc}")
            finally:
                with self._idle:
                    self._running -= 1
                    self._idle.notify_all()


class Probe:
    """What a running check sees (values, options, deadline) and what it records (steps,
    facts, cleanups, log lines)."""

    def __init__(
        self, check: Check, values: Values, options: RunOptions, deadline: Deadline
    ) -> None:
        self.check = check
        self.values = values
        self.options = options
        self.deadline = deadline
        self.facts: dict[str, Any] = {}
        self.steps: list[StepResult] = []
        self.cleanups = Cleanups()
        self.log_lines: list[str] = []
        self.current_step = "start"
        self.started = time.monotonic()
        self._lock = threading.Lock()

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        """Run one layer; record its status, detail and duration. Failures end the check."""
        step = Step(name)
        self.current_step = name
        started = time.monotonic()
        try:
            yield step
        except StepFailed as exc:
            self._record(step, Status.FAIL, exc.detail, exc.remediation, started)
            raise
        except DeadlineExceeded:
            detail = timeout_message(f"during {name}", self.options.timeout_s)
            self._record(step, Status.FAIL, detail, _TIMEOUT_FIX, started)
            raise StepFailed(detail, _TIMEOUT_FIX) from None
        except Exception as exc:
            detail = f"unexpected error: {type(exc).__name__}: {exc}"
            log.debug("check %s step %s raised", self.check.id, name, exc_info=True)
            self._record(step, Status.FAIL, detail, "", started)
            raise StepFailed(detail) from exc
        else:
            self._record(step, step.status, step.detail, step.remediation, started)

    def skip(self, name: str, reason: str) -> None:
        """Record a step that was not run (e.g. a write probe under --read-only).

        A check whose steps were all skipped is skipped, with the first reason: how a check
        says at run time that it cannot apply here (no cluster access from a laptop)."""
        with self._lock:
            self.steps.append(StepResult(name, Status.SKIP, reason))

    def fail_current(self, detail: str, remediation: str = "") -> None:
        """Record a failure raised outside any step (or by a check's bug) at the current step,
        unless that step already failed."""
        with self._lock:
            if not self.steps or self.steps[-1].status is not Status.FAIL:
                self.steps.append(StepResult(self.current_step, Status.FAIL, detail, remediation))

    def cleanup(self, description: str, action: Callable[[], Any]) -> None:
        """Register an undo action for a write probe; it runs even if the run is interrupted."""
        self.cleanups.add(description, action)

    def log(self, line: str) -> None:
        """Keep a client library's log line with this check (for the support bundle)."""
        with self._lock:
            self.log_lines.append(line)

    def _record(self, step: Step, status: Status, detail: str, fix: str, started: float) -> None:
        with self._lock:
            self.steps.append(
                StepResult(step.name, status, detail, fix, time.monotonic() - started)
            )

    def result(self, *, timed_out: bool = False) -> CheckResult:
        """The verdict: the first failing step, else the first warning, else a pass."""
        with self._lock:
            steps = list(self.steps)
        if timed_out:
            detail = timeout_message(f"during {self.current_step}", self.options.timeout_s)
            steps.append(StepResult(self.current_step, Status.FAIL, detail, _TIMEOUT_FIX))
        steps += [StepResult("cleanup", Status.WARN, error) for error in self.cleanups.errors]
        worst = max(steps, key=lambda s: s.status.rank, default=None)
        if steps and all(step.status is Status.SKIP for step in steps):
            status, message, fix = Status.SKIP, steps[0].detail, ""
        elif worst is None or worst.status.rank == 0:
            status, message, fix = Status.PASS, _pass_message(steps), ""
        else:
            status, message, fix = worst.status, _step_message(worst), worst.remediation
        return CheckResult(
            id=self.check.id,
            title=self.check.title,
            status=status,
            message=message,
            remediation=fix,
            steps=tuple(steps),
            facts=dict(self.facts),
            duration_s=time.monotonic() - self.started,
            logs=tuple(self.log_lines),
        )


_TIMEOUT_FIX = (
    "the dependency did not answer in time: check that it is up and that no firewall drops "
    "traffic from here, or raise --timeout"
)


def _step_message(step: StepResult) -> str:
    """`tcp: connection refused`, without repeating a layer the detail already names."""
    if step.detail.lower().startswith(f"{step.name.lower()}:"):
        return step.detail
    return f"{step.name}: {step.detail}"


def _pass_message(steps: list[StepResult]) -> str:
    """The last passing step with a detail speaks for the check."""
    for step in reversed(steps):
        if step.status is Status.PASS and step.detail:
            return step.detail
    return "ok"


def skipped(check: Check, reason: str) -> CheckResult:
    """The result of a check that does not apply to these values."""
    return CheckResult(id=check.id, title=check.title, status=Status.SKIP, message=reason)
