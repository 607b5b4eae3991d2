"""What a run found: plain frozen records with an Enum status (facts apart from verdicts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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

    @property
    def component(self) -> str:
        return self.id.split(".", 1)[0]


@dataclass(frozen=True)
class Report:
    """Every check's result, in the order the checks were registered."""

    checks: Sequence[CheckResult]
    duration_s: float
    version: str

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
