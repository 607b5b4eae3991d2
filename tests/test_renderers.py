"""Renderers: JSON validates against the design's shape, JUnit parses as JUnit, Markdown and
text carry every check."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import jsonschema

from preflight.report.renderers import FORMATS, renderer
from preflight.report.result import CheckResult, Report, Status, StepResult

STEP = {
    "type": "object",
    "required": ["name", "status", "detail", "duration_s"],
    "properties": {
        "name": {"type": "string"},
        "status": {"enum": ["pass", "warn", "fail", "skip"]},
        "detail": {"type": "string"},
        "duration_s": {"type": "number"},
    },
}
DESIGN_SHAPE = {
    "type": "object",
    "required": ["tool", "version", "duration_s", "summary", "checks"],
    "properties": {
        "tool": {"const": "sense-preflight"},
        "version": {"type": "string"},
        "duration_s": {"type": "number"},
        "summary": {
            "type": "object",
            "required": ["pass", "warn", "fail", "skip"],
            "additionalProperties": {"type": "integer"},
        },
        "checks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "id",
                    "component",
                    "title",
                    "status",
                    "duration_s",
                    "message",
                    "remediation",
                    "steps",
                    "facts",
                ],
                "properties": {
                    "status": {"enum": ["pass", "warn", "fail", "skip"]},
                    "steps": {"type": "array", "items": STEP},
                    "facts": {"type": "object"},
                },
            },
        },
    },
}


def sample_report() -> Report:
    return Report(
        checks=(
            CheckResult(
                "postgres.api",
                "PostgreSQL (API)",
                Status.PASS,
                "PostgreSQL 17.2",
                steps=(StepResult("tcp", Status.PASS, "connected", duration_s=0.01),),
                facts={"server_version": "17.2"},
                duration_s=0.2,
            ),
            CheckResult(
                "clickhouse",
                "ClickHouse",
                Status.FAIL,
                "tcp: TCP: refused",
                "start it <now> & retry",
                steps=(
                    StepResult("dns", Status.PASS, "ok"),
                    StepResult("tcp", Status.FAIL, "TCP: refused", "start it"),
                ),
            ),
            CheckResult(
                "kafka",
                "Kafka",
                Status.WARN,
                "version: old",
                "upgrade",
                steps=(StepResult("version", Status.WARN, "old"),),
            ),
            CheckResult("gpu", "GPU nodes", Status.SKIP, "Vision is disabled"),
        ),
        duration_s=1.5,
        version="1.2.3",
    )


def test_json_matches_the_design_shape() -> None:
    document = json.loads(renderer("json")(sample_report()))
    jsonschema.validate(document, DESIGN_SHAPE)
    assert document["summary"] == {"pass": 1, "warn": 1, "fail": 1, "skip": 1}
    assert document["checks"][0]["component"] == "postgres"
    assert document["checks"][0]["facts"] == {"server_version": "17.2"}


def test_junit_is_junit() -> None:
    suite = ET.fromstring(renderer("junit")(sample_report()))
    assert suite.tag == "testsuite"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "1")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert cases["clickhouse"].find("failure").get("message") == "tcp: TCP: refused"
    assert "fix: start it <now> & retry" in cases["clickhouse"].find("failure").text
    assert cases["gpu"].find("skipped") is not None
    assert "WARNING" in cases["kafka"].find("system-out").text
    assert cases["postgres.api"].find("failure") is None


def test_markdown_has_a_row_per_check_and_details_for_problems() -> None:
    text = renderer("markdown")(sample_report())
    for check_id in ("postgres.api", "clickhouse", "kafka", "gpu"):
        assert f"| `{check_id}` |" in text
    assert "### `clickhouse` — ClickHouse" in text
    assert "**What to do:** start it <now> & retry" in text
    assert "### `postgres.api`" not in text


def test_text_lists_failing_step_and_fix() -> None:
    text = renderer("text")(sample_report())
    assert "FAIL  clickhouse" in text
    assert "      fix: start it <now> & retry" in text
    assert text.rstrip().endswith("1 skipped in 1.5s")


def test_cli_offers_every_format() -> None:
    from click.testing import CliRunner

    from preflight.cli import main

    help_text = CliRunner().invoke(main, ["run", "--help"]).output
    assert all(name in help_text for name in FORMATS)
