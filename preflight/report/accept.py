"""Accepted exceptions, kubeadm's `--ignore-preflight-errors`: `--accept ID[:STEP][,…]` turns
a named failure into a warning marked accepted, in every format, never hidden.

`ID` is a check id or a component (`postgres` names both databases); `:STEP` narrows it to a
failure at that step (`postgres.api:permissions`). `all` accepts every failure except one at
`auth`: wrong credentials are never waved through wholesale, only by name (`oidc:auth`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from preflight.report.result import CheckResult, Status

ALL = "all"
VALUES = "values"  # bad values are bad input (exit 2), never an accepted exception
#: A failure at this step is accepted only by naming its check.
NAMED_ONLY_STEP = "auth"


class BadAcceptance(ValueError):
    """An --accept entry that cannot be read; the message is one line for the user."""


@dataclass(frozen=True)
class Acceptance:
    """One --accept entry."""

    name: str  # a check id, a component, or ALL
    step: str | None = None

    def __str__(self) -> str:
        return f"{self.name}:{self.step}" if self.step else self.name

    def covers(self, result: CheckResult) -> bool:
        """Whether this entry accepts `result`'s failure."""
        step = failing_step(result)
        if (
            result.status is not Status.FAIL
            or result.id == VALUES
            or (self.step and self.step != step)
        ):
            return False
        if self.name == ALL:
            return step != NAMED_ONLY_STEP
        return self.name in (result.id, result.component)


def parse_accept(items: Iterable[str]) -> list[Acceptance]:
    """`postgres.api:permissions` → Acceptance('postgres.api', 'permissions'); BadAcceptance
    for an entry that is not ID or ID:STEP, and for `all:auth`."""
    found: list[Acceptance] = []
    for item in items:
        name, colon, step = item.partition(":")
        if not name or (colon and (not step or ":" in step)):
            raise BadAcceptance(f"--accept {item!r}: write ID or ID:STEP (e.g. s3:roundtrip)")
        if name == ALL and step == NAMED_ONLY_STEP:
            raise BadAcceptance(
                f"--accept {item}: failures at {NAMED_ONLY_STEP} are accepted by check id only "
                f"(e.g. oidc:{NAMED_ONLY_STEP})"
            )
        found.append(Acceptance(name, step or None))
    return found


def unknown_acceptances(acceptances: Iterable[Acceptance], known: Iterable[str]) -> list[str]:
    """The entries whose name is neither `all` nor a known check id or component."""
    names = {ALL, *known}
    return [str(entry) for entry in acceptances if entry.name not in names]


def failing_step(result: CheckResult) -> str | None:
    """The name of the step that failed the check, if any."""
    return next((step.name for step in result.steps if step.status is Status.FAIL), None)


def accept(results: Sequence[CheckResult], acceptances: Sequence[Acceptance]) -> list[CheckResult]:
    """The results with every covered failure turned into an accepted warning (its failing
    step kept as it was, so the report still says what failed)."""
    return [
        replace(result, status=Status.WARN, accepted=True)
        if any(entry.covers(result) for entry in acceptances)
        else result
        for result in results
    ]
