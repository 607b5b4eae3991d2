"""What changed between two saved reports (`sense-preflight report --diff OLD NEW`): the checks
and steps whose status changed, checks that appeared or went, and facts that are new, gone or
different (server versions, broker count, certificate expiry) — support's first question when
"it worked yesterday"."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from preflight.report.result import CheckResult, Report, StepResult

GONE = None  # an absent side of a change


@dataclass(frozen=True)
class StatusChange:
    """A check (step None) or one of its steps whose status changed, appeared or went."""

    check: str
    step: str | None
    old: str | None
    new: str | None
    detail: str = ""  # the new side's message or step detail, for context


@dataclass(frozen=True)
class FactChange:
    """A fact of a check that is new, gone or different."""

    check: str
    key: str
    old: Any
    new: Any


@dataclass(frozen=True)
class ReportDiff:
    statuses: tuple[StatusChange, ...]
    facts: tuple[FactChange, ...]

    @property
    def empty(self) -> bool:
        return not (self.statuses or self.facts)


def diff_reports(old: Report, new: Report) -> ReportDiff:
    """The changes from `old` to `new`, in the new report's order of checks (then the gone)."""
    before = {check.id: check for check in old.checks}
    after = {check.id: check for check in new.checks}
    order = _union(after, before)
    statuses: list[StatusChange] = []
    facts: list[FactChange] = []
    for check_id in order:
        statuses += _status_changes(check_id, before.get(check_id), after.get(check_id))
        facts += _fact_changes(
            check_id,
            before[check_id].facts if check_id in before else {},
            after[check_id].facts if check_id in after else {},
        )
    return ReportDiff(tuple(statuses), tuple(facts))


def _status_changes(
    check_id: str, old: CheckResult | None, new: CheckResult | None
) -> Iterable[StatusChange]:
    change = _changed(check_id, None, old, new, new.message if new else "")
    if change is not None:
        yield change
    if old is None or new is None:
        return
    old_steps = {step.name: step for step in old.steps}
    new_steps = {step.name: step for step in new.steps}
    for name in _union(new_steps, old_steps):
        now = new_steps.get(name)
        change = _changed(check_id, name, old_steps.get(name), now, now.detail if now else "")
        if change is not None:
            yield change


def _changed(
    check_id: str,
    step: str | None,
    old: CheckResult | StepResult | None,
    new: CheckResult | StepResult | None,
    detail: str,
) -> StatusChange | None:
    """The change of one check or step, or None when its status is the same on both sides."""
    if old is not None and new is not None and old.status == new.status:
        return None
    return StatusChange(
        check_id,
        step,
        old.status.value if old else GONE,
        new.status.value if new else GONE,
        detail,
    )


def _union(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[str]:
    """The new side's keys in order, then those only the old side has."""
    return [*new, *(key for key in old if key not in new)]


def _fact_changes(
    check_id: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> Iterable[FactChange]:
    for key in _union(new, old):
        was, now = old.get(key, GONE), new.get(key, GONE)
        if was != now:
            yield FactChange(check_id, key, was, now)


# --- renderers ---------------------------------------------------------------------------------

DIFF_FORMATS = ("text", "json", "markdown")


def render_diff(changes: ReportDiff, format_: str, old_name: str, new_name: str) -> str:
    """The changes as text, json or markdown."""
    if format_ == "json":
        document = {
            "old": old_name,
            "new": new_name,
            "statuses": [asdict(change) for change in changes.statuses],
            "facts": [asdict(change) for change in changes.facts],
        }
        return json.dumps(document, indent=2, default=str) + "\n"
    markdown = format_ == "markdown"
    lines = [f"{'## ' if markdown else ''}Changes from {old_name} to {new_name}", ""]
    if changes.empty:
        return "\n".join([*lines, "No check, step or fact changed.", ""])
    for change in changes.statuses:
        where = change.check if change.step is None else f"{change.check} / {change.step}"
        arrow = f"{_side(change.old)} → {_side(change.new)}"
        line = f"{where}: {arrow}" + (f" ({change.detail})" if change.detail else "")
        lines.append(f"- {line}" if markdown else f"  {line}")
    if changes.facts:
        lines += ["", f"{'### ' if markdown else ''}Facts"]
        for fact in changes.facts:
            line = f"{fact.check} {fact.key}: {_side(fact.old)} → {_side(fact.new)}"
            lines.append(f"- {line}" if markdown else f"  {line}")
    counts = f"{len(changes.statuses)} status change(s), {len(changes.facts)} fact change(s)"
    return "\n".join([*lines, "", counts, ""])


def _side(value: Any) -> str:
    if value is GONE:
        return "(none)"
    return value if isinstance(value, str) else json.dumps(value, default=str)
