"""The `values` check: the rules' verdict on the merged values, as a report entry."""

from __future__ import annotations

import time

from preflight.report.result import CheckResult, Status, StepResult
from preflight.values.load import Values, ValuesError, ValuesSource, load_values
from preflight.values.rules import Problem, check_values

#: The values check's id: `--only values` runs it alone (like `validate`).
ID = "values"
TITLE = "Values: required, conditional and typed values of the chart"
FIX = "fix the values listed (see the chart's install guide, section 1)"


def values_result(values: Values) -> CheckResult:
    """Check the values; one step per problem, so every problem is one line of the report."""
    started = time.monotonic()
    problems = check_values(values)
    return result_for(problems, time.monotonic() - started)


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


def load_checked(given: ValuesSource) -> tuple[Values | None, CheckResult]:
    """Load and check the values: the values (None when they cannot be loaded or none were
    given) and the `values` check's result either way."""
    if given.empty:
        return None, result_for(
            [Problem("", "no values given: pass custom-values.yaml (or -f FILE, --set …)")]
        )
    try:
        values = load_values(given)
    except ValuesError as exc:
        return None, result_for([Problem("", problem) for problem in exc.problems])
    return values, values_result(values)
