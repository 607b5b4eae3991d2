"""JUnit XML: one testcase per check; failures and skips as JUnit expects, warnings in
system-out (JUnit has no warning state)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from preflight.report.result import CheckResult, Report, Status


def _details(check: CheckResult) -> str:
    lines = [f"{step.status.value.upper():4}  {step.name}: {step.detail}" for step in check.steps]
    if check.remediation:
        lines.append(f"fix: {check.remediation}")
    return "\n".join(lines)


def render_junit(report: Report) -> str:
    suite = ET.Element(
        "testsuite",
        name="sense-preflight",
        tests=str(len(report.checks)),
        failures=str(report.count(Status.FAIL)),
        errors="0",
        skipped=str(report.count(Status.SKIP)),
        time=f"{report.duration_s:.3f}",
    )
    for check in report.checks:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=check.component,
            name=check.id,
            time=f"{check.duration_s:.3f}",
        )
        if check.status is Status.FAIL:
            ET.SubElement(
                case,
                "failure",
                message=check.message,
                type=check.steps[-1].name if check.steps else "fail",
            ).text = _details(check)
        elif check.status is Status.SKIP:
            ET.SubElement(case, "skipped", message=check.message)
        elif check.status is Status.WARN:
            kind = "ACCEPTED FAILURE (--accept)" if check.accepted else "WARNING"
            ET.SubElement(case, "system-out").text = f"{kind}: {check.message}\n{_details(check)}"
    ET.indent(suite)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
    )
