"""The `values` check: the rules' verdict on the merged values, as a report entry."""

from __future__ import annotations

import time

from preflight.redact import words
from preflight.result import CheckResult, Status, StepResult
from preflight.rules import Problem, check_values
from preflight.secret_values import secret_problems
from preflight.values import Values

TITLE = "Values: required, conditional and typed values of the chart"
FIX = "fix the values listed (see the chart's install guide, section 1)"


def values_result(values: Values) -> CheckResult:
    """Check the values (the rules, then placeholders and weak secrets); one step per
    problem, so every problem is one line of the report."""
    started = time.monotonic()
    problems = check_values(values) + secret_problems(values, lambda: check_words(values))
    return result_for(problems, time.monotonic() - started)


def check_words(values: Values) -> set[str]:
    """The ids and components of the checks installed for these values."""
    from preflight import registry

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
        id="values",
        title=TITLE,
        status=status,
        message=message,
        remediation=FIX if status is not Status.PASS else "",
        steps=steps or (StepResult("rules", Status.PASS, message),),
        duration_s=duration_s,
    )
