"""The runner: every check in its own thread, each under its own deadline.

A check still running at its deadline is reported as timed out during its current step and
abandoned (its thread is a daemon); its pending cleanups run in the background. Ctrl-C runs
every check's pending cleanups, then raises KeyboardInterrupt to the caller.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from preflight.engine import logcapture
from preflight.engine.check import Check, Probe, StepFailed, skipped
from preflight.engine.deadline import Deadline
from preflight.engine.logcapture import CheckLogHandler
from preflight.engine.options import RunOptions
from preflight.report.result import CheckResult
from preflight.values.load import Values

#: How long past its deadline a check may still report its own (more precise) failure.
GRACE_S = 0.25
#: How long Ctrl-C or the end of a run waits for cleanups of abandoned checks.
CLEANUP_WAIT_S = 5.0

Listener = Callable[[str, Check, CheckResult | None], None]


@dataclass
class _Running:
    check: Check
    probe: Probe
    thread: threading.Thread


def run_checks(
    checks: Sequence[Check],
    values: Values,
    options: RunOptions,
    on_event: Listener | None = None,
) -> list[CheckResult]:
    """Run checks in parallel; return results in the order of `checks`.

    `on_event("start"|"done", check, result)` reports progress to the renderer.
    """
    notify = on_event or (lambda *_: None)
    with logcapture.installed() as logs:
        return _run_all(checks, values, options, notify, logs)


def _run_all(
    checks: Sequence[Check],
    values: Values,
    options: RunOptions,
    notify: Listener,
    logs: CheckLogHandler,
) -> list[CheckResult]:
    """Start every check that applies, collect results, clean up after abandoned ones."""
    results: dict[str, CheckResult] = {}
    done: queue.Queue[tuple[str, CheckResult]] = queue.Queue()
    running: dict[str, _Running] = {}
    for check in checks:
        reason = check.applies(values)
        if reason is not None:
            results[check.id] = skipped(check, reason)
            notify("done", check, results[check.id])
            continue
        probe = Probe(check, values, options, Deadline.after(options.timeout_s))
        thread = threading.Thread(
            target=_execute, args=(probe, done, logs), name=f"check {check.id}", daemon=True
        )
        running[check.id] = _Running(check, probe, thread)
        notify("start", check, None)
        thread.start()

    try:
        abandoned = _collect(running, results, done, notify)
    except KeyboardInterrupt:
        _cleanup_all([entry.probe for entry in running.values()])
        raise
    _cleanup_all(abandoned)
    return [results[check.id] for check in checks]


def _execute(
    probe: Probe, done: queue.Queue[tuple[str, CheckResult]], logs: CheckLogHandler
) -> None:
    """Thread body: run the check, always run its cleanups, then report its result."""
    try:
        with logs.capturing(probe):
            probe.check.run(probe)
    except StepFailed as exc:
        probe.fail_current(exc.detail, exc.remediation)
    except Exception as exc:  # a bug in a check is its failure, never a traceback
        probe.fail_current(f"internal error in check: {type(exc).__name__}: {exc}")
    finally:
        probe.cleanups.run_all()
    done.put((probe.check.id, probe.result()))


def _collect(
    running: dict[str, _Running],
    results: dict[str, CheckResult],
    done: queue.Queue[tuple[str, CheckResult]],
    notify: Listener,
) -> list[Probe]:
    """Wait for results; past a check's deadline, report it timed out and abandon it.
    Returns the probes of abandoned checks, whose cleanups are still to run."""
    pending = dict(running)
    abandoned: list[Probe] = []
    while pending:
        next_deadline = min(entry.probe.deadline.expires_at for entry in pending.values()) + GRACE_S
        try:
            check_id, result = done.get(timeout=max(0.0, next_deadline - time.monotonic()))
        except queue.Empty:
            now = time.monotonic()
            for check_id, entry in list(pending.items()):
                if entry.probe.deadline.expires_at + GRACE_S <= now:
                    results[check_id] = entry.probe.result(timed_out=True)
                    abandoned.append(entry.probe)
                    notify("done", entry.check, results[check_id])
                    del pending[check_id]
            continue
        if check_id in pending:
            results[check_id] = result
            notify("done", pending.pop(check_id).check, result)
    return abandoned


def _cleanup_all(probes: Sequence[Probe]) -> None:
    """Run the pending cleanups of these checks, in parallel, bounded in time."""
    threads = [threading.Thread(target=probe.cleanups.run_all, daemon=True) for probe in probes]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + CLEANUP_WAIT_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
