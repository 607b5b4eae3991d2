"""Renderers turn a Report into text, json, junit or markdown. Redaction happens after them,
on the final string (see preflight.cli), so no renderer can leak."""

from __future__ import annotations

from collections.abc import Callable

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
