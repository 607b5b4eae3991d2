"""The runner: every check in its own thread, each under its own deadline; where it may, part
of them in the threads of a forked child process (engine.forked), whose results join the rest.

A check still running at its deadline is reported as timed out during its current step and
abandoned (its thread is a daemon); its pending cleanups run in the background. Ctrl-C runs
every check's pending cleanups, the child's too, then raises KeyboardInterrupt to the caller.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from preflight.engine import forked, logcapture, preload
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
    probe: Probe  # for a check run by a forked child: its deadline, its timed-out verdict


def run_checks(
    checks: Sequence[Check],
    values: Values,
    options: RunOptions,
    on_event: Listener | None = None,
    *,
    processes: int = 1,
) -> list[CheckResult]:
    """Run checks in parallel; return results in the order of `checks`.

    `on_event("start"|"done", check, result)` reports progress to the renderer. With
    `processes=2`, a forked child runs part of them where that is safe (engine.forked), and
    each process imports its share's clients (engine.preload) once forked.
    """
    notify = on_event or (lambda *_: None)
    results: dict[str, CheckResult] = {}
    applying = []
    for check in checks:
        reason = check.applies(values)
        if reason is None:
            applying.append(check)
        else:
            results[check.id] = skipped(check, reason)
            notify("done", check, results[check.id])
    with logcapture.installed() as logs:
        results.update(_run_shares(applying, values, options, notify, logs, processes))
    return [results[check.id] for check in checks]


def _run_shares(
    checks: Sequence[Check],
    values: Values,
    options: RunOptions,
    notify: Listener,
    logs: CheckLogHandler,
    processes: int,
) -> dict[str, CheckResult]:
    """This process's share in threads, and the child's, forked, where there is one."""
    done: queue.Queue[tuple[str, CheckResult]] = queue.Queue()
    if processes < 2 or not forked.can_fork():
        return _run_here(checks, values, options, notify, logs, done)
    here, theirs = forked.shares(checks)
    child = None
    if theirs:

        def run_theirs(send: forked.Send) -> None:
            preload.start(_components(theirs))
            _run_here(theirs, values, options, send, logs, queue.Queue())

        child = forked.Child.start(theirs, run_theirs, done)
    if here:
        preload.start(_components(here))
    return _run_here(here, values, options, notify, logs, done, child)


def _components(checks: Sequence[Check]) -> list[str]:
    return sorted({check.component for check in checks})


def _run_here(
    checks: Sequence[Check],
    values: Values,
    options: RunOptions,
    notify: Listener,
    logs: CheckLogHandler,
    done: queue.Queue[tuple[str, CheckResult]],
    child: forked.Child | None = None,
) -> dict[str, CheckResult]:
    """Start a thread per check, collect their results and the child's, clean up after
    abandoned ones."""
    running: dict[str, _Running] = {}
    for check in checks:
        probe = Probe(check, values, options, Deadline.after(options.timeout_s))
        thread = threading.Thread(
            target=_execute, args=(probe, done, logs), name=f"check {check.id}", daemon=True
        )
        running[check.id] = _Running(check, probe)
        notify("start", check, None)
        thread.start()
    for check in child.checks if child else ():
        # The child reports its own timeouts at the deadline; this one is for a lost child.
        late = Deadline.after(options.timeout_s + GRACE_S)
        running[check.id] = _Running(check, Probe(check, values, options, late))
        notify("start", check, None)

    results: dict[str, CheckResult] = {}
    try:
        abandoned = _collect(running, results, done, notify)
    except KeyboardInterrupt:
        if child:
            child.stop()
        _cleanup_all([entry.probe for entry in running.values()])
        if child:
            child.wait(CLEANUP_WAIT_S)
        raise
    _cleanup_all(abandoned)
    if child:
        child.wait(CLEANUP_WAIT_S)
    return results


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
