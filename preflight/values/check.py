"""The `values` check: the rules' verdict on the merged values, as a report entry."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from preflight.report.redact import words
from preflight.report.result import CheckResult, Status, StepResult
from preflight.values.load import Values, ValuesError, ValuesSource, load_values
from preflight.values.rules import Problem, check_values
from preflight.values.secret_values import secret_problems

if TYPE_CHECKING:
    from preflight.values.helm_chart import Chart

#: The values check's id: `--only values` runs it alone (like `validate`).
ID = "values"
TITLE = "Values: required, conditional and typed values of the chart"
FIX = "fix the values listed (see the chart's install guide, section 1)"


def values_result(values: Values, chart: Chart | None = None) -> CheckResult:
    """Check the values (the rules, given a chart its schema and defaults, then placeholders
    and weak secrets); one step per problem, so every problem is one line of the report."""
    started = time.monotonic()
    problems = (
        check_values(values)
        + (chart.problems(values) if chart else [])
        + secret_problems(values, lambda: check_words(values))
    )
    return result_for(problems, time.monotonic() - started)


def check_words(values: Values) -> set[str]:
    """The ids and components of the checks installed for these values."""
    from preflight.engine import registry

    checks = registry.all_checks(values)
    return words([c.id for c in checks] + [c.component for c in checks])


def result_for(problems: list[Problem], duration_s: float = 0.0) -> CheckResult:
    errors = [p for p in problems if p.error]
    warnings = [p for p in problems if not p.error]
    steps = tuple(
        StepResult(p.path, Status.FAIL if p.error else Status.WARN, p.message)
        for p in errors + warnings
    )
    if errors:
        status, message = Status.FAIL, f"{len(errors)} error(s) in the values: {errors[0]}"
    elif warnings:
        status, message = Status.WARN, f"{len(warnings)} warning(s): {warnings[0]}"
    else:
        status, message = Status.PASS, "all required values present and well-typed"
    return CheckResult(
        id=ID,
        title=TITLE,
        status=status,
        message=message,
        remediation=FIX if status is not Status.PASS else "",
        steps=steps or (StepResult("rules", Status.PASS, message),),
        duration_s=duration_s,
    )


def load_checked(
    given: ValuesSource, chart: Chart | None = None, facts: Mapping[str, Any] | None = None
) -> tuple[Values | None, CheckResult]:
    """Load and check the values: the values (None when they cannot be loaded or none were
    given) and the `values` check's result either way, with `facts` (the release, the
    chart) on it."""
    values: Values | None = None
    if given.empty:
        result = result_for(
            [
                Problem(
                    "", "no values given: pass custom-values.yaml (or -f FILE, --set …, --release)"
                )
            ]
        )
    else:
        try:
            values = load_values(given)
            result = values_result(values, chart)
        except ValuesError as exc:
            result = result_for([Problem("", problem) for problem in exc.problems])
    facts = dict(facts or {})
    origin = _origin(facts)
    message = f"{result.message} ({origin})" if origin else result.message
    return values, replace(result, message=message, facts=facts)


def _origin(facts: Mapping[str, Any]) -> str:
    """Where the layers below the files came from: `release x revision 2, chart x 1.4.0`."""
    release, chart = facts.get("release"), facts.get("chart")
    parts = [f"release {release['name']} revision {release['revision']}"] if release else []
    if chart:
        parts.append(f"chart {chart['name']} {chart['version']}".strip())
    return ", ".join(parts)
