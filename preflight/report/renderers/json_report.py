"""The design's JSON report (the contract other tools rely on). `contract_version` counts
incompatible changes of its shape; new keys keep it (`json_reader` reads it back)."""

from __future__ import annotations

import json
from typing import Any

from preflight.report.result import CheckResult, Report

CONTRACT_VERSION = 1


def check_dict(check: CheckResult) -> dict[str, Any]:
    return {
        "id": check.id,
        "component": check.component,
        "title": check.title,
        "status": check.status.value,
        "accepted": check.accepted,
        "duration_s": round(check.duration_s, 3),
        "message": check.message,
        "remediation": check.remediation,
        "steps": [
            {
                "name": step.name,
                "status": step.status.value,
                "detail": step.detail,
                "remediation": step.remediation,
                "duration_s": round(step.duration_s, 3),
            }
            for step in check.steps
        ],
        "facts": dict(check.facts),
    }


def report_dict(report: Report) -> dict[str, Any]:
    return {
        "tool": "sense-preflight",
        "version": report.version,
        "contract_version": CONTRACT_VERSION,
        "duration_s": round(report.duration_s, 3),
        "started": report.started,
        "in_cluster": report.in_cluster,
        "values_files": list(report.values_files),
        "summary": report.summary,
        "checks": [check_dict(check) for check in report.checks],
    }


def render_json(report: Report) -> str:
    return json.dumps(report_dict(report), indent=2, default=str) + "\n"
