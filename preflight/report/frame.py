"""The report framed at the end of a pod log, so `sense-preflight in-cluster` can bring it back.

The pod prints its human report first, as any run does; then, under `run --report-frame`, three
lines: a BEGIN marker that says what follows, the redacted report as one line of JSON (the
design's report plus each check's captured client-library log lines and the node the pod ran
on), and an END marker. `split` takes a log apart again: the lines to show and the report.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from preflight.report.redact import Redactor
from preflight.report.renderers.json_reader import parse_report
from preflight.report.renderers.json_report import report_dict
from preflight.report.result import Report

BEGIN = "-----BEGIN SENSE-PREFLIGHT REPORT (JSON, for `sense-preflight in-cluster`)-----"
END = "-----END SENSE-PREFLIGHT REPORT-----"
#: The pod's node, from the downward API (`spec.nodeName`).
NODE_ENV = "NODE_NAME"


def render(report: Report, redact: Redactor) -> str:
    """The frame's three lines, everything in them redacted."""
    clean = redact.report(report)
    data = {
        "report": report_dict(clean),
        "logs": {check.id: list(check.logs) for check in clean.checks if check.logs},
        "node": os.environ.get(NODE_ENV, ""),
    }
    return f"{BEGIN}\n{redact(json.dumps(data, default=str))}\n{END}\n"


@dataclass(frozen=True)
class Framed:
    """What a pod log held: the report (None without a whole frame) and the node it ran on."""

    report: Report | None
    node: str


def split(lines: Iterable[str], show: Callable[[str], None]) -> Framed:
    """Pass the log's lines outside the frame to `show` as they come; return what the frame
    held."""
    body: list[str] | None = None
    framed = Framed(None, "")
    for line in lines:
        if line == BEGIN:
            body = []
        elif body is not None and line == END:
            framed = parse("".join(body))
            body = None
        elif body is not None:
            body.append(line)
        else:
            show(line)
    return framed


def parse(text: str) -> Framed:
    """The frame's JSON line back into a Report; Framed(None, "") when it is not one."""
    try:
        data = json.loads(text)
        report = parse_report(json.dumps(data["report"]))
        logs = data.get("logs") or {}
    except (ValueError, KeyError, TypeError):  # ReportFormatError is a ValueError
        return Framed(None, "")
    checks = tuple(replace(c, logs=tuple(logs.get(c.id, ()))) for c in report.checks)
    return Framed(replace(report, checks=checks), str(data.get("node") or ""))
