"""`sense-preflight report`: a saved bundle or JSON report rendered again, exactly as the
original run wrote it, and bad input refused with one line and exit 2."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from preflight.cli import main
from preflight.report.renderers import renderer
from preflight.report.renderers.json_reader import ReportFormatError, parse_report
from tests.cli import example_values, run_cli, write_values
from tests.servers._process import free_port
from tests.servers.postgres import PostgresServer
from tests.test_bundle import read_bundle
from tests.test_html import mixed, values_error
from tests.test_postgres import database_values


@pytest.mark.parametrize("report", [mixed(), values_error()], ids=["mixed", "values-error"])
def test_the_json_reader_is_the_inverse_of_the_json_renderer(report: object) -> None:
    text = renderer("json")(report)  # type: ignore[arg-type]
    document = json.loads(text)
    assert document["contract_version"] == 1
    assert document["started"] == "2026-12-02T15:35:35Z" and document["in_cluster"] is False
    assert document["values_files"] == ["custom-values.yaml", "secrets.yaml"]
    assert parse_report(text) == report


def test_an_older_report_without_the_new_keys_reads() -> None:
    document = json.loads(renderer("json")(mixed()))
    for key in ("contract_version", "started", "in_cluster", "values_files"):
        del document[key]
    for check in document["checks"]:
        for step in check["steps"]:
            del step["remediation"]  # not in the design's example either
    report = parse_report(json.dumps(document))
    assert (report.started, report.in_cluster, report.values_files) == (None, None, ())
    assert [c.id for c in report.checks] == [c.id for c in mixed().checks]


@pytest.fixture(scope="module")
def original_run(
    tmp_path_factory: pytest.TempPathFactory, postgres17: PostgresServer
) -> tuple[Path, Path, str]:
    """A real run: postgres.api against PostgreSQL 17 (passes), clickhouse on a closed port
    (fails at tcp); its JUnit written with -o, and its bundle. Returns both and the password."""
    folder = tmp_path_factory.mktemp("original")
    values = example_values()
    values["postgres"]["api"] = database_values(postgres17)
    values["clickhouse"].update(host="127.0.0.1", port=free_port())
    junit, bundle = folder / "junit.xml", folder / "bundle.tar.gz"
    result = run_cli(
        write_values(folder, values, "custom-values.yaml"),
        "--only",
        "postgres.api,clickhouse",
        "--format",
        "junit",
        "-o",
        junit,
        "--bundle",
        bundle,
        "--timeout",
        "5",
    )
    assert result.code == 3, result.stdout + result.stderr
    return junit, bundle, postgres17.owner.password


def test_a_bundle_renders_again_as_the_original_run_wrote_it(
    original_run: tuple[Path, Path, str], tmp_path: Path
) -> None:
    junit, bundle, password = original_run
    files = read_bundle(bundle)
    original = {
        "json": files["report.json"],
        "markdown": files["report.md"],
        "html": files["report.html"],
        "junit": junit.read_text(),
    }
    report = json.loads(files["report.json"])
    statuses = {c["id"]: c["status"] for c in report["checks"]}
    assert (statuses["postgres.api"], statuses["clickhouse"]) == ("pass", "fail")
    assert report["values_files"] == ["custom-values.yaml"] and report["started"]
    saved_json = tmp_path / "report.json"
    saved_json.write_text(files["report.json"])
    for fmt, text in original.items():
        for saved in (bundle, saved_json):
            again = run_cli("report", saved, "--format", fmt)
            assert again.code == 0, again.stderr
            assert again.stdout == text, f"{fmt} from {saved.name} differs"
            assert password not in again.stdout
    out = tmp_path / "report.html"
    assert run_cli("report", bundle, "--format", "html", "-o", out).code == 0
    assert out.read_text() == original["html"]
    assert 'class="cell fail" data-layer="tcp"' in original["html"]


def test_a_report_renders_from_stdin() -> None:
    text = renderer("json")(mixed())
    result = CliRunner().invoke(main, ["report", "-", "--format", "junit"], input=text)
    assert result.exit_code == 0
    assert result.output == renderer("junit")(mixed())


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _with(**changes: object) -> bytes:
    document = json.loads(renderer("json")(mixed()))
    document.update(changes)
    return json.dumps(document).encode()


def _bad_status() -> bytes:
    document = json.loads(renderer("json")(mixed()))
    document["checks"][2]["steps"][1]["status"] = "ok"
    return json.dumps(document).encode()


BAD_INPUTS = {
    "missing": (None, "missing: No such file or directory"),
    "picture.png": (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not a sense-preflight bundle or JSON report (not text)"),
    "page.html": (b"<!DOCTYPE html><p>hi", "not a sense-preflight bundle or JSON report (Expecting value"),
    "other.json": (b'{"name": "x"}', 'not a sense-preflight report (no "tool": "sense-preflight")'),
    "newer.json": (_with(contract_version=2, version="9.0.0"), "contract version 2 (sense-preflight 9.0.0); this sense-preflight"),
    "status.json": (_bad_status(), "checks[2].steps[1].status: 'ok' is not one of pass, skip, warn, fail"),
    "checks.json": (_with(checks={}), "checks: expected an array, not an object"),
    "report.json.gz": (gzip.compress(renderer("json")(mixed()).encode()), "not a readable sense-preflight bundle (invalid header)"),
    "foreign.tar.gz": (_tar({"notes.txt": b"hello"}), "not a sense-preflight bundle (no sense-preflight-bundle/report.json)"),
    "truncated.tar.gz": (_tar({"sense-preflight-bundle/report.json": b"{}" * 5000})[:60], "not a readable sense-preflight bundle"),
    "old-bundle.tar.gz": (_tar({"sense-preflight-bundle/report.json": b'{"tool": "x"}'}), "sense-preflight-bundle/report.json: not a sense-preflight report"),
}  # fmt: skip


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, name: str) -> None:
    data, expected = BAD_INPUTS[name]
    if data is not None:
        (tmp_path / name).write_bytes(data)
    result = run_cli("report", tmp_path / name, "--format", "html")
    assert result.code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr, result.stderr


def test_the_reader_names_the_first_wrong_field() -> None:
    with pytest.raises(
        ReportFormatError, match=r"^checks\[0\]\.id: expected a string, not a number$"
    ):
        parse_report(_with(checks=[{"id": 7, "status": "pass"}]).decode())
