"""Through the real CLI: a secret that is also a word of the report (`postgres`, `default`,
`admin`, `axion_sense`, `127.0.0.1`, the user name) leaves every check id, component and step
name intact in every format, and is gone wherever it stands as the secret — with the demo
plug-in's leaking checks and with a real PostgreSQL refusing that password."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from preflight.report.redact import REDACTED
from preflight.report.renderers import FORMATS as RENDERERS
from tests.cli import CliResult, example_values, run_cli, write_values
from tests.plugin import install_plugin
from tests.servers.postgres import PostgresServer
from tests.test_redaction_words import STRONG, whole_token

USER = "axion_user"  # the example's postgres user name: one of the secrets
SECRETS = ["postgres", "default", "admin", "axion_sense", "127.0.0.1", USER]
FORMATS = sorted(RENDERERS)  # text, json, junit, markdown, and any format added later
# The original bug: a secret rewritten inside an id (`<redacted>.api`).
GARBLED = re.compile(r"<redacted>\.|\.<redacted>|&lt;redacted&gt;\.")


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = install_plugin(tmp_path_factory.mktemp("plugin"))
    return {"PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}


def run_with(tmp_path: Path, secret: str, fmt: str, env: dict[str, str]) -> tuple[CliResult, str]:
    """postgres.api/worker (refused at tcp on 127.0.0.1:1), the leaking demo checks, `secret`
    as the postgres passwords and demo.password; the report in `fmt`, read from -o."""
    values = example_values()
    for database in ("api", "worker"):
        values["postgres"][database].update(host="127.0.0.1", port=1, password=secret)
    values["demo"] = {"password": secret}
    out = tmp_path / f"report.{fmt}"
    result = run_cli(
        write_values(tmp_path, values),
        "--only", "postgres,demo.leak,demo.chatty,demo.fail",
        "--format", fmt, "-o", out, "--timeout", "5", env=env,
    )  # fmt: skip
    assert result.code == 3, result.stdout + result.stderr
    return result, out.read_text()


def structure(report: dict[str, Any]) -> list[Any]:
    """What no secret may change: ids, components, statuses, step names, fact keys."""
    return [
        (c["id"], c["component"], c["status"], [s["name"] for s in c["steps"]], sorted(c["facts"]))
        for c in report["checks"]
        if c["id"] != "values"  # its steps name the problems, and a weak secret is one
    ]


def free_text(report: dict[str, Any]) -> list[str]:
    texts = []
    for check in report["checks"]:
        texts += [check["title"], check["message"], check["remediation"], str(check["facts"])]
        texts += [s["detail"] + " " + s["remediation"] for s in check["steps"]]
    return texts


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, plugin_env: dict[str, str]) -> dict:
    """The same run with a long random password: the structure every other run must keep."""
    import json

    _, text = run_with(tmp_path_factory.mktemp("ref"), STRONG, "json", plugin_env)
    return json.loads(text)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("secret", SECRETS)
def test_word_secrets_keep_ids_and_names_in_every_format(
    tmp_path: Path, plugin_env: dict[str, str], reference: dict, secret: str, fmt: str
) -> None:
    result, written = run_with(tmp_path, secret, fmt, plugin_env)
    ids = [c["id"] for c in reference["checks"]]
    assert set(ids) == {
        "values",
        "postgres.api",
        "postgres.worker",
        "demo.fail",
        "demo.leak",
        "demo.chatty",
    }
    assert not GARBLED.search(written + result.stdout)
    leaked = whole_token(secret)
    if fmt == "json":
        import json

        report = json.loads(written)
        assert structure(report) == structure(reference)
        assert all(REDACTED not in s["name"] for c in report["checks"] for s in c["steps"])
        for text in free_text(report):
            assert not leaked.search(text), text
        leak = next(c for c in report["checks"] if c["id"] == "demo.leak")
        assert f"login with {REDACTED} refused" in leak["steps"][-1]["detail"]
    elif fmt == "junit":
        suite = ET.fromstring(written)
        cases = suite.findall("testcase")
        assert [c.get("name") for c in cases] == ids
        assert [c.get("classname") for c in cases] == [i.split(".")[0] for i in ids]
        for node in suite.iter():
            for text in (node.text or "", node.get("message") or ""):
                assert not leaked.search(text), text
    elif fmt in ("text", "markdown"):
        for check in reference["checks"]:
            shown = (
                f"`{check['id']}`"
                if fmt == "markdown"
                else f"{check['status'].upper():4}  {check['id']} "
            )
            assert shown in written
        assert not leaked.search(written), written
    else:  # a format added later: at least every id is there
        assert all(check_id in written for check_id in ids)
    assert not leaked.search(result.stdout + result.stderr)  # the live progress lines too


@pytest.mark.parametrize("secret", [*SECRETS, "postgres-user"])
def test_a_real_postgres_refusing_a_word_password(
    tmp_path: Path, postgres17: PostgresServer, secret: str
) -> None:
    """A wrong password equal to a word (`postgres`: also the role's name here): the real
    server's refusal keeps the report's structure and shows no secret."""
    import json

    role = postgres17.superuser  # its name is `postgres`
    password = role.name if secret == "postgres-user" else secret
    values = example_values()
    values["postgres"]["api"] = {
        "host": postgres17.host, "port": postgres17.port, "database": postgres17.database,
        "username": role.name, "password": password,
    }  # fmt: skip
    reports = {}
    for fmt in ("json", "text"):
        out = tmp_path / f"report.{fmt}"
        result = run_cli(
            write_values(tmp_path, values), "--only", "postgres.api", "--format", fmt, "-o", out
        )
        assert result.code == 3, result.stdout + result.stderr
        reports[fmt] = out.read_text()
        assert not GARBLED.search(reports[fmt] + result.stdout)
        assert not whole_token(password).search(result.stdout + result.stderr)
    report = json.loads(reports["json"])
    assert [c["id"] for c in report["checks"]] == ["values", "postgres.api"]
    check = report["checks"][1]
    assert check["component"] == "postgres"
    assert [s["name"] for s in check["steps"]] == ["config", "dns", "tcp", "tls", "auth"]
    assert check["steps"][-1]["status"] == "fail"
    assert "password authentication failed" in check["steps"][-1]["detail"]
    for text in free_text(report):
        assert not whole_token(password).search(text), text
    weak = [s for s in report["checks"][0]["steps"] if s["name"] == "postgres.api.password"]
    # short, or a word of this report (component, host, user); `axion_sense` is none here:
    # the server's database has another name, and `axion_sense_tasks` is a longer word
    assert bool(weak) == (password != "axion_sense")
    assert all(step["detail"].startswith("weak secret") for step in weak)
    assert "FAIL  postgres.api " in reports["text"]


@pytest.mark.parametrize("secret", ["postgres", "clickhouse", "127.0.0.1"])
def test_the_bundle_keeps_its_structure_with_a_word_secret(
    tmp_path: Path, plugin_env: dict[str, str], secret: str
) -> None:
    import json

    import yaml

    from tests.test_bundle import read_bundle

    values = example_values()
    for database in ("api", "worker"):
        values["postgres"][database].update(host="127.0.0.1", port=1, password=secret)
    values["clickhouse"]["password"] = secret
    values["demo"] = {"password": secret}
    bundle = tmp_path / "support.tar.gz"
    result = run_cli(
        "bundle", write_values(tmp_path, values), "--only", "postgres.api,demo.chatty",
        "--bundle", bundle, "--timeout", "5", env=plugin_env,
    )  # fmt: skip
    assert result.code == 3, result.stdout + result.stderr
    files = read_bundle(bundle)
    assert "logs/demo.chatty.log" in files
    report = json.loads(files["report.json"])
    assert {c["id"] for c in report["checks"]} == {"values", "postgres.api", "demo.chatty"}
    kept = yaml.safe_load(files["values.yaml"])
    assert set(kept) == set(values) and set(kept["postgres"]) == {"api", "worker"}
    assert kept["postgres"]["api"]["password"] == REDACTED
    assert f"login as svc with {REDACTED}" in files["logs/demo.chatty.log"]
    assert "`postgres.api`" in files["report.md"]
    for name, text in files.items():
        assert not GARBLED.search(text), name
    for text in [files["logs/demo.chatty.log"], *free_text(report)]:
        assert not whole_token(secret).search(text), text
