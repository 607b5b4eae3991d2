"""Renderers turn a Report into text, json, junit or markdown. They render a report whose free
text is already scrubbed, and their output passes the redactor's safety net (see
preflight.redact and preflight.app), so no renderer can leak nor garble an id."""

from __future__ import annotations

from collections.abc import Callable

from preflight.renderers.json_report import render_json
from preflight.renderers.junit import render_junit
from preflight.renderers.markdown import render_markdown
from preflight.renderers.text import render_text
from preflight.result import Report

FORMATS: dict[str, Callable[[Report], str]] = {
    "text": render_text,
    "json": render_json,
    "junit": render_junit,
    "markdown": render_markdown,
}
