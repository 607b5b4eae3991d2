"""Renderers turn a Report into text, json, junit or markdown. They render a report whose free
text is already scrubbed, and their output passes the redactor's safety net (see
preflight.redact and preflight.app), so no renderer can leak nor garble an id."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from preflight.report.redact import REDACTED, Redactor
from preflight.report.renderers.json_report import render_json
from preflight.report.renderers.junit import render_junit
from preflight.report.renderers.markdown import render_markdown
from preflight.report.renderers.text import render_text
from preflight.report.result import Report

FORMATS: dict[str, Callable[[Report], str]] = {
    "text": render_text,
    "json": render_json,
    "junit": render_junit,
    "markdown": render_markdown,
}


def rendered(report: Report, format_: str, redact: Redactor) -> str:
    """The report in `format_`, through redaction (the marker XML-escaped for junit)."""
    marker = escape(REDACTED) if format_ == "junit" else REDACTED
    return redact.render(FORMATS[format_], report, marker)
