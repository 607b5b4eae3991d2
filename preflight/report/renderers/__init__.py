"""Renderers turn a Report into text, json, junit, markdown or html. They render a report whose free
text is already scrubbed, and their output passes the redactor's safety net (see
preflight.report.redact), so no renderer can leak nor garble an id."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from preflight.report.redact import REDACTED, Redactor
from preflight.report.renderers.html import render_html
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
    "html": render_html,
}

MARKUP = frozenset({"junit", "html"})  # formats whose text is escaped, and so is the marker


def rendered(report: Report, format_: str, redact: Redactor) -> str:
    """The report in `format_`, through redaction (the marker escaped where the text is)."""
    marker = escape(REDACTED) if format_ in MARKUP else REDACTED
    return redact.render(FORMATS[format_], report, marker)
