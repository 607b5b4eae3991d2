"""`--wait`: rerun what fails until everything passes or the time is up (goss'
`--retry-timeout`, `rpk cluster health --exit-when-healthy`), for a pipeline that provisions
the dependencies and installs right after.

Every attempt runs read-only, so no scratch table, topic, object or store is written while a
dependency is still coming up; a check that passes read-only, and held a write probe back, is
run once more in full: its write probes run once, after reachability and auth passed. That
run's result is final, whatever it is; a check that still fails when the time is up keeps
its last attempt's result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from preflight.engine.check import Check
from preflight.engine.options import RunOptions
from preflight.engine.runner import Listener, run_checks
from preflight.report.result import CheckResult, Status
from preflight.values.load import Values

#: How a check says it held a write probe back (`probe.skip(step, "--read-only: …")`).
READ_ONLY_SKIP = "--read-only:"


@dataclass(frozen=True)
class Patience:
    """How long to keep trying, and how long to pause between attempts."""

    wait_s: float
    interval_s: float


#: Told after each attempt that leaves failures with time left: the attempt's number, what
#: still fails, and the seconds until the next attempt and until the end.
AttemptListener = Callable[[int, list[CheckResult], float, float], None]


def run_until_passing(
    checks: Sequence[Check],
    values: Values,
    options: RunOptions,
    patience: Patience,
    failing: Callable[[CheckResult], bool],
    on_event: Listener,
    on_attempt: AttemptListener,
) -> list[CheckResult]:
    """Results in the order of `checks`. `failing` says which results to retry (an accepted
    failure is not); `on_event` hears only final results, `on_attempt` the retries."""
    ends = time.monotonic() + patience.wait_s
    attempt_options = replace(options, read_only=True)

    def settled(result: CheckResult) -> bool:
        return not failing(result) and not _held_back(result, options)

    final: dict[str, CheckResult] = {}
    pending = list(checks)
    attempt = 0
    while True:
        attempt += 1
        results = run_checks(pending, values, attempt_options, _settled_only(on_event, settled))
        final.update((r.id, r) for r in results if settled(r))
        paired = list(zip(pending, results, strict=True))
        held = [check for check, result in paired if not failing(result) and not settled(result)]
        if held:  # reachable and authenticated now: their write probes run, once
            final.update((r.id, r) for r in run_checks(held, values, options, on_event))
        still = [(check, result) for check, result in paired if failing(result)]
        left = ends - time.monotonic()
        if not still or left <= 0:
            break
        pause = min(patience.interval_s, left)  # the last attempt starts as the time ends
        on_attempt(attempt, [r for _, r in still], pause, left)
        time.sleep(pause)
        pending = [check for check, _ in still]
    for check, result in still:
        final[check.id] = result
        on_event("done", check, result)
    return [final[check.id] for check in checks]


def _held_back(result: CheckResult, options: RunOptions) -> bool:
    """Whether a read-only attempt skipped a write probe the user did not switch off."""
    return not options.read_only and any(
        step.status is Status.SKIP and step.detail.startswith(READ_ONLY_SKIP)
        for step in result.steps
    )


def _settled_only(on_event: Listener, settled: Callable[[CheckResult], bool]) -> Listener:
    """An attempt's listener: every start, and the results that are final; any other result
    (to be retried, or to be run once more with its write probe) is a "retry" event."""

    def listener(event: str, check: Check, result: CheckResult | None) -> None:
        on_event(event if result is None or settled(result) else "retry", check, result)

    return listener
