"""One step over several addresses at once (Kafka's bootstrap servers, its advertised
listeners): every address is tried in its own thread under the check's one deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from preflight.engine.check import Probe, Step, StepFailed
from preflight.engine.deadline import Deadline
from preflight.net.endpoint import Endpoint

T = TypeVar("T")
U = TypeVar("U")

#: Once one address has passed, a silent one gets this much longer before it counts as failed.
STRAGGLER_S = 1.0
_TIMEOUT_FIX = (
    "the address did not answer in time: check that the service is up and that no firewall "
    "drops traffic from here, or raise --timeout"
)


def each_address(
    probe: Probe,
    name: str,
    items: Sequence[tuple[Endpoint, T]],
    work: Callable[[T, Deadline], U],
    describe: Callable[[Endpoint, U], str],
    judge: Callable[[Step, list[U]], None] | None = None,
) -> list[tuple[Endpoint, U]]:
    """One step over every address, in parallel: fail when none passes; `judge` may warn about
    what the passing ones showed; warn naming the addresses that fail while one passes."""
    with probe.step(name) as step:
        passed, failed = in_parallel(probe.deadline, items, work)
        if not passed:
            raise StepFailed(_join(failed), failed[0][1].remediation)
        step.detail = "; ".join(describe(endpoint, value) for endpoint, value in passed)
        if judge is not None:
            judge(step, [value for _, value in passed])
        if failed:
            step.warn(
                f"{len(passed)} of {len(items)} bootstrap addresses pass; failing: "
                + _join(failed),
                failed[0][1].remediation,
            )
        return passed


def _join(failed: Sequence[tuple[Endpoint, StepFailed]]) -> str:
    if len(failed) == 1:
        return failed[0][1].detail
    return "; ".join(f"{endpoint.netloc}: {error.detail}" for endpoint, error in failed)


def in_parallel(
    deadline: Deadline, items: Sequence[tuple[Endpoint, T]], work: Callable[[T, Deadline], U]
) -> tuple[list[tuple[Endpoint, U]], list[tuple[Endpoint, StepFailed]]]:
    """Run work(item, deadline) for every address in threads. The work gets the deadline's
    inner margin, so its own precise failure arrives in time; an address still silent
    STRAGGLER_S after another one passed counts as failed."""
    outcomes: dict[int, U | StepFailed] = {}
    changed = threading.Condition()
    inner = deadline.inner()

    def attempt(index: int, item: T) -> None:
        try:
            outcome: U | StepFailed = work(item, inner)
        except StepFailed as exc:
            outcome = exc
        except TimeoutError:
            outcome = StepFailed("no answer before the check's deadline", _TIMEOUT_FIX)
        except Exception as exc:  # one address's surprise must not stall the others
            outcome = StepFailed(f"unexpected error: {type(exc).__name__}: {exc}")
        with changed:
            outcomes[index] = outcome
            changed.notify_all()

    for index, (endpoint, item) in enumerate(items):
        threading.Thread(
            target=attempt, args=(index, item), name=f"address {endpoint.netloc}", daemon=True
        ).start()
    first_pass: float | None = None
    with changed:
        while len(outcomes) < len(items):
            if first_pass is None and any(not isinstance(o, StepFailed) for o in outcomes.values()):
                first_pass = time.monotonic()
            limit = deadline.expires_at
            if first_pass is not None:
                limit = min(limit, first_pass + STRAGGLER_S)
            if time.monotonic() >= limit:
                break
            changed.wait(limit - time.monotonic())
        done = dict(outcomes)
    passed: list[tuple[Endpoint, U]] = []
    failed: list[tuple[Endpoint, StepFailed]] = []
    for index, (endpoint, _) in enumerate(items):
        outcome = done.get(index, StepFailed("no answer in time", _TIMEOUT_FIX))
        if isinstance(outcome, StepFailed):
            failed.append((endpoint, outcome))
        else:
            passed.append((endpoint, outcome))
    if not passed and len(done) < len(items):
        deadline.timeout()  # raises DeadlineExceeded when the time is up: "timed out during …"
    return passed, failed
