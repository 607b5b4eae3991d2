"""`--accept ID[:STEP]` through the real CLI against real SeaweedFS: a named failure becomes a
warning marked accepted in every format (never hidden), exit 0; `all` never covers `auth`;
unknown ids are one line listing the valid ones."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.cli import CliResult, run_cli, write_values
from tests.servers.s3 import S3Server
from tests.test_s3_check import s3_values

pytestmark = pytest.mark.server("s3")


def run(tmp_path: Path, values: dict[str, Any], *args: str) -> CliResult:
    result = run_cli(write_values(tmp_path, values), "--only", "s3", "--timeout", "8", *args)
    assert "Traceback" not in result.stderr
    return result


def wrong_secret(server: S3Server) -> dict[str, Any]:
    """Values whose s3 check fails at auth (SeaweedFS: SignatureDoesNotMatch)."""
    return s3_values(server, replace(server.admin, secret_key="not-the-secret-key"))


def missing_bucket(server: S3Server) -> dict[str, Any]:
    """Values whose s3 check fails at bucket."""
    values = s3_values(server)
    values["s3"]["framesBucketName"] = "sense-no-such-bucket"
    return values


@pytest.mark.parametrize("accepted", ["s3", "s3:bucket", "all"])
def test_a_named_failure_is_an_accepted_warning_in_json(
    tmp_path: Path, s3_server: S3Server, accepted: str
) -> None:
    result = run(tmp_path, missing_bucket(s3_server), "--format", "json", "--accept", accepted)
    check = result.check("s3")
    assert (check["status"], check["accepted"], result.code) == ("warn", True, 0), check
    assert result.failed_step("s3")["name"] == "bucket"  # what failed is still there
    assert "sense-no-such-bucket" in check["message"]
    assert result.report["summary"]["warn"] == 1
    assert result.check("values")["accepted"] is False


@pytest.mark.parametrize("accepted", ["s3:auth", "s3"])
def test_an_auth_failure_is_accepted_by_name(
    tmp_path: Path, s3_server: S3Server, accepted: str
) -> None:
    result = run(tmp_path, wrong_secret(s3_server), "--format", "json", "--accept", accepted)
    assert (result.check("s3")["status"], result.code) == ("warn", 0)


@pytest.mark.parametrize("accepted", ["all", "s3:bucket", "postgres", "all:tcp"])
def test_what_the_entry_does_not_name_still_fails(
    tmp_path: Path, s3_server: S3Server, accepted: str
) -> None:
    result = run(tmp_path, wrong_secret(s3_server), "--format", "json", "--accept", accepted)
    check = result.check("s3")
    assert (check["status"], check["accepted"], result.code) == ("fail", False, 3)
    assert result.failed_step("s3")["name"] == "auth"


def test_every_format_marks_it(tmp_path: Path, s3_server: S3Server) -> None:
    values = missing_bucket(s3_server)
    text = run(tmp_path, values, "--accept", "s3")
    line = next(line for line in text.stdout.splitlines() if " s3 " in line)
    assert line.startswith("WARN  s3") and "[accepted failure, --accept]" in line, text.stdout
    assert "1 warnings (1 accepted), 0 failed" in text.stdout
    markdown = run(tmp_path, values, "--accept", "s3", "--format", "markdown").stdout
    assert "| ⚠️ warn (accepted) | `s3` |" in markdown
    assert "**Accepted failure** (`--accept`)" in markdown
    junit = ET.fromstring(run(tmp_path, values, "--accept", "s3", "--format", "junit").stdout)
    case = next(c for c in junit.iter("testcase") if c.get("name") == "s3")
    assert case.find("failure") is None
    assert (case.findtext("system-out") or "").startswith("ACCEPTED FAILURE (--accept): ")


def test_strict_does_not_count_an_accepted_failure(tmp_path: Path, s3_server: S3Server) -> None:
    result = run(tmp_path, missing_bucket(s3_server), "--strict", "--accept", "s3:bucket")
    assert result.code == 0, result.stdout


def test_the_bundle_report_keeps_the_mark(tmp_path: Path, s3_server: S3Server) -> None:
    import tarfile

    bundle = tmp_path / "bundle.tar.gz"
    run(tmp_path, missing_bucket(s3_server), "--accept", "s3", "--bundle", str(bundle))
    with tarfile.open(bundle) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("report.json"))
        report = json.loads(archive.extractfile(member).read())  # type: ignore[union-attr]
    s3 = next(check for check in report["checks"] if check["id"] == "s3")
    assert (s3["status"], s3["accepted"]) == ("warn", True)


@pytest.mark.parametrize(
    ("accepted", "message"),
    [
        ("s3,nosuch", "error: --accept: unknown check id(s) nosuch; valid: all, clickhouse, "),
        ("values", "error: --accept: unknown check id(s) values; valid: all, "),
        ("all:auth", "error: --accept all:auth: failures at auth are accepted by check id only"),
        ("s3:", "error: --accept 's3:': write ID or ID:STEP"),
    ],
)
def test_bad_entries_are_one_line_errors(
    tmp_path: Path, s3_server: S3Server, accepted: str, message: str
) -> None:
    result = run(tmp_path, s3_values(s3_server), "--accept", accepted)
    assert result.code == 2
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_a_saved_report_keeps_the_mark(tmp_path: Path, s3_server: S3Server) -> None:
    saved = run(tmp_path, missing_bucket(s3_server), "--accept", "s3", "--format", "json")
    path = tmp_path / "report.json"
    path.write_text(saved.stdout)
    text = run_cli("report", path, "--format", "text").stdout
    assert "[accepted failure, --accept]" in text and "1 warnings (1 accepted)" in text, text
    html = run_cli("report", path, "--format", "html").stdout
    assert "accepted failure (--accept)" in html
