"""What a run found: plain frozen records with an Enum status (facts apart from verdicts)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

DURATION_DIGITS = 3  # durations are kept to the millisecond, as the JSON report holds them


class Status(StrEnum):
    """The verdict of a step or a check, worst last."""

    PASS = "pass"
    SKIP = "skip"
    WARN = "warn"
    FAIL = "fail"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Status.PASS: 0, Status.SKIP: 0, Status.WARN: 1, Status.FAIL: 2}


@dataclass(frozen=True)
class StepResult:
    """One layer of a check (config, dns, tcp, tls, auth, version, permissions, roundtrip…)."""

    name: str
    status: Status
    detail: str = ""
    remediation: str = ""
    duration_s: float = 0.0

    def __post_init__(self) -> None:
        _keep_milliseconds(self)


@dataclass(frozen=True)
class CheckResult:
    """A check's verdict, the steps that led to it, and the facts seen on the way."""

    id: str
    title: str
    status: Status
    message: str = ""
    remediation: str = ""
    steps: Sequence[StepResult] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    logs: Sequence[str] = ()  # client libraries' log lines, for the support bundle only
    accepted: bool = False  # a failure turned into a warning by --accept (report.accept)

    def __post_init__(self) -> None:
        _keep_milliseconds(self)

    @property
    def component(self) -> str:
        return self.id.split(".", 1)[0]


@dataclass(frozen=True)
class Report:
    """Every check's result, in the order the checks were registered, and where and when the
    run happened (None where a report read back from an older JSON does not say)."""

    checks: Sequence[CheckResult]
    duration_s: float
    version: str
    started: str | None = None  # UTC, ISO 8601 to the second: 2026-12-02T15:35:35Z
    in_cluster: bool | None = None
    values_files: Sequence[str] = ()  # the values files' names, without their folders

    def __post_init__(self) -> None:
        _keep_milliseconds(self)

    def count(self, status: Status) -> int:
        return sum(1 for check in self.checks if check.status is status)

    @property
    def accepted(self) -> int:
        """How many failures --accept turned into warnings."""
        return sum(1 for check in self.checks if check.accepted)

    @property
    def summary(self) -> dict[str, int]:
        return {
            status.value: self.count(status)
            for status in (Status.PASS, Status.WARN, Status.FAIL, Status.SKIP)
        }


def utc_now() -> str:
    """Now, as a report's `started` and the bundle's `created` write it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _keep_milliseconds(record: StepResult | CheckResult | Report) -> None:
    """Round a record's duration as the JSON report writes it, so that a report read back
    from JSON renders exactly like the original in every format."""
    object.__setattr__(record, "duration_s", round(record.duration_s, DURATION_DIGITS))
