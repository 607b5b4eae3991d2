"""`sense-preflight report --diff OLD NEW`: what changed between two saved reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from preflight.report.diff import FactChange, StatusChange, diff_reports, render_diff
from preflight.report.result import CheckResult, Report, Status, StepResult
from tests.cli import example_values, run_cli, write_values
from tests.servers.postgres import PostgresServer
from tests.test_postgres import database_values


def check(check_id: str, status: Status, *steps: StepResult, **facts: object) -> CheckResult:
    return CheckResult(check_id, check_id, status, steps=steps, facts=facts)


def test_changes_of_status_steps_checks_and_facts() -> None:
    old = Report(
        (
            check("kafka", Status.PASS, StepResult("auth", Status.PASS), brokers=3),
            check("s3", Status.PASS, cert_not_after="2027-01-01T00:00:00+00:00"),
            check("gone", Status.WARN),
        ),
        1.0,
        "0.1.0",
    )
    new = Report(
        (
            check("kafka", Status.FAIL, StepResult("auth", Status.FAIL, "SASL refused"), brokers=2),
            check("s3", Status.PASS),
            check("added", Status.PASS),
        ),
        1.0,
        "0.1.0",
    )
    changes = diff_reports(old, new)
    assert changes.statuses == (
        StatusChange("kafka", None, "pass", "fail"),
        StatusChange("kafka", "auth", "pass", "fail", "SASL refused"),
        StatusChange("added", None, None, "pass"),
        StatusChange("gone", None, "warn", None),
    )
    assert changes.facts == (
        FactChange("kafka", "brokers", 3, 2),
        FactChange("s3", "cert_not_after", "2027-01-01T00:00:00+00:00", None),
    )
    text = render_diff(changes, "text", "old.json", "new.json")
    assert "  kafka / auth: pass → fail (SASL refused)" in text
    assert "  added: (none) → pass" in text
    assert "  kafka brokers: 3 → 2" in text
    assert text.rstrip().endswith("4 status change(s), 2 fact change(s)")


def test_the_same_report_twice_has_no_change() -> None:
    report = Report((check("kafka", Status.PASS, brokers=3),), 1.0, "0.1.0")
    text = render_diff(diff_reports(report, report), "text", "a", "b")
    assert "No check, step or fact changed." in text


@pytest.fixture(scope="module")
def two_runs(
    tmp_path_factory: pytest.TempPathFactory, postgres17: PostgresServer
) -> tuple[Path, Path]:
    """The JSON reports of two real runs against PostgreSQL 17: with the right password,
    then with a wrong one (its bundle as the second report)."""
    folder = tmp_path_factory.mktemp("diff")
    saved = []
    for name, password in (("yesterday", None), ("today", "wrong-pw-7781")):
        values = example_values(filled=True)
        values["postgres"]["api"] = database_values(postgres17)
        if password:
            values["postgres"]["api"]["password"] = password
        path = folder / f"{name}.tar.gz"
        run_cli(
            write_values(folder, values, f"{name}.yaml"),
            "--only",
            "postgres.api",
            "--format",
            "json",
            "--bundle",
            path,
        )
        saved.append(path)
    return saved[0], saved[1]


def test_two_real_runs_show_the_layer_that_broke(two_runs: tuple[Path, Path]) -> None:
    yesterday, today = two_runs
    result = run_cli("report", "--diff", yesterday, today)
    assert result.code == 0, result.stderr
    assert "postgres.api: pass → fail" in result.stdout
    assert "postgres.api / auth: pass → fail (password authentication failed" in result.stdout
    assert "postgres.api server_version: " in result.stdout  # seen yesterday, not today
    assert "wrong-pw-7781" not in result.stdout

    as_json = json.loads(run_cli("report", "--diff", yesterday, today, "--format", "json").stdout)
    assert {"check": "postgres.api", "step": "auth", "old": "pass", "new": "fail"}.items() <= (
        next(c for c in as_json["statuses"] if c["step"] == "auth").items()
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--diff", "only-one.json"), "error: --diff takes two saved reports: OLD NEW"),
        (("a.json", "b.json"), "error: give one saved report (or --diff OLD NEW)"),
        (("--diff", "a.json", "b.json", "--format", "html"), "error: --diff renders as text"),
    ],
)
def test_bad_diff_input_is_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    result = run_cli("report", *args)
    assert result.code == 2
    assert result.stderr.startswith(message) and len(result.stderr.splitlines()) == 1
