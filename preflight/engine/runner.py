"""The runner: every check in its own thread, each under its own deadline; given a child
process forked at the run's start (engine.forked, `start_child`), part of them in its threads,
whose results join the rest.

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

from preflight.engine import forked, logcapture, preload, registry
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
#: How long past a check's deadline and grace its result may take to come from the child (a
#: loaded machine can be slow to schedule it); only a child that is stuck waits this long.
CHILD_REPORT_WAIT_S = 1.0

Listener = Callable[[str, Check, CheckResult | None], None]


@dataclass
class _Running:
    check: Check
    probe: Probe  # for a check run by a forked child: the deadline of its result
    in_child: bool = False


def start_child(only: Sequence[str] = (), skip: Sequence[str] = ()) -> forked.Child | None:
    """Fork the child (engine.forked; where forked.processes() is 2) that runs its share of the
    components --only/--skip leave in; it imports their clients from now on. None when the
    share is empty: every check then runs here."""
    theirs = forked.child_share(only, skip)
    return forked.Child.start(theirs, _run_in_child) if theirs else None


def run_checks(
    checks: Sequence[Check],
    values: Values,
    options: RunOptions,
    on_event: Listener | None = None,
    *,
    child: forked.Child | None = None,
) -> list[CheckResult]:
    """Run checks in parallel; return results in the order of `checks`.

    `on_event("start"|"done", check, result)` reports progress to the renderer. Given a
    `child` (start_child), the checks of its components run there; this process imports its
    own share's clients (engine.preload) meanwhile. Every check, in either process, has the
    same deadline: --timeout from now.
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
    deadline = Deadline.after(options.timeout_s)
    with logcapture.installed() as logs:
        if child is None:
            ran = _run_here(applying, values, options, deadline, notify, logs, queue.Queue())
        else:
            ran = _run_beside(child, applying, values, options, deadline, notify, logs)
    results.update(ran)
    return [results[check.id] for check in checks]


def _run_beside(
    child: forked.Child,
    checks: Sequence[Check],
    values: Values,
    options: RunOptions,
    deadline: Deadline,
    notify: Listener,
    logs: CheckLogHandler,
) -> dict[str, CheckResult]:
    """Hand the child its checks, run the rest here."""
    theirs = [check for check in checks if check.component in child.components]
    child.hand_over(theirs, values, options, deadline)
    here = [check for check in checks if check.component not in child.components]
    if here:
        preload.start(sorted({check.component for check in here}))
    return _run_here(here, values, options, deadline, notify, logs, child.results, child)


def _run_in_child(
    ids: Sequence[str], values: Values, options: RunOptions, deadline: Deadline, send: forked.Send
) -> None:
    """The child's part: its checks, found again by id from the same values, in threads,
    under the parent's deadline (one monotonic clock serves both processes)."""
    found = {check.id: check for check in registry.all_checks(values)}
    with logcapture.installed() as logs:
        _run_here([found[i] for i in ids], values, options, deadline, send, logs, queue.Queue())


def _run_here(
    checks: Sequence[Check],
    values: Values,
    options: RunOptions,
    deadline: Deadline,
    notify: Listener,
    logs: CheckLogHandler,
    done: queue.Queue[tuple[str, CheckResult]],
    child: forked.Child | None = None,
) -> dict[str, CheckResult]:
    """Start a thread per check, collect their results and the child's, clean up after
    abandoned ones."""
    running: dict[str, _Running] = {}
    for check in checks:
        probe = Probe(check, values, options, deadline)
        thread = threading.Thread(
            target=_execute, args=(probe, done, logs), name=f"check {check.id}", daemon=True
        )
        running[check.id] = _Running(check, probe)
        notify("start", check, None)
        thread.start()
    for check in child.checks if child else ():
        # The child reports its own timeouts at the deadline; this one is for a stuck child.
        late = Deadline(deadline.expires_at + GRACE_S + CHILD_REPORT_WAIT_S)
        running[check.id] = _Running(check, Probe(check, values, options, late), in_child=True)
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
                    results[check_id] = _timed_out(entry)
                    abandoned.append(entry.probe)
                    notify("done", entry.check, results[check_id])
                    del pending[check_id]
            continue
        if check_id in pending:
            results[check_id] = result
            notify("done", pending.pop(check_id).check, result)
    return abandoned


def _timed_out(entry: _Running) -> CheckResult:
    """The verdict on a check still running past its deadline and grace: timed out in its
    current step, or, run by the child, never reported."""
    if entry.in_child:
        return forked.unreported(entry.check, entry.probe.options.timeout_s)
    return entry.probe.result(timed_out=True)


def _cleanup_all(probes: Sequence[Probe]) -> None:
    """Run the pending cleanups of these checks, in parallel, bounded in time."""
    threads = [threading.Thread(target=probe.cleanups.run_all, daemon=True) for probe in probes]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + CLEANUP_WAIT_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
