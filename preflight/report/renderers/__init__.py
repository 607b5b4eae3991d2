"""Renderers turn a Report into text, json, junit, markdown or html. They render a report whose free
text is already scrubbed, and their output passes the redactor's safety net (see
preflight.report.redact), so no renderer can leak nor garble an id."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from html import escape

from preflight.report.redact import REDACTED, Redactor
from preflight.report.result import Report

#: Each format's renderer in this package, imported when a report is rendered in it: the CLI
#: names the formats at start-up (`--help`, `validate`) without loading all five.
_RENDERERS = {
    "text": "text:render_text",
    "json": "json_report:render_json",
    "junit": "junit:render_junit",
    "markdown": "markdown:render_markdown",
    "html": "html:render_html",
}
FORMATS = tuple(_RENDERERS)


def renderer(format_: str) -> Callable[[Report], str]:
    """The function that renders a report in `format_` (one of FORMATS)."""
    module, function = _RENDERERS[format_].split(":")
    renders: Callable[[Report], str] = getattr(
        importlib.import_module(f"{__name__}.{module}"), function
    )
    return renders


MARKUP = frozenset({"junit", "html"})  # formats whose text is escaped, and so is the marker


def rendered(report: Report, format_: str, redact: Redactor) -> str:
    """The report in `format_`, through redaction (the marker escaped where the text is)."""
    marker = escape(REDACTED) if format_ in MARKUP else REDACTED
    return redact.render(renderer(format_), report, marker)
