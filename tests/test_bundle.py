"""The support bundle holds what support needs and no secret value."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.cli import example_values, run_cli, write_values
from tests.plugin import install_plugin
from tests.test_redaction import ALL_SECRETS, secret_values


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = install_plugin(tmp_path_factory.mktemp("plugin"))
    return {"PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}


def read_bundle(path: Path) -> dict[str, str]:
    with tarfile.open(path) as archive:
        return {
            member.name.removeprefix("sense-preflight-bundle/"): archive.extractfile(member)
            .read()
            .decode()  # type: ignore[union-attr]
            for member in archive.getmembers()
        }


def test_bundle_contents_and_no_secret(tmp_path: Path, plugin_env: dict[str, str]) -> None:
    bundle = tmp_path / "support.tar.gz"
    result = run_cli(
        "bundle",
        write_values(tmp_path, secret_values()),
        "--only",
        "demo.chatty,demo.leak,demo.warn",
        "--bundle",
        bundle,
        env=plugin_env,
    )
    assert result.code == 3
    assert f"support bundle: {bundle}" in result.stdout
    files = read_bundle(bundle)
    assert set(files) == {
        "report.json",
        "report.md",
        "report.html",
        "values.yaml",
        "environment.json",
        "logs/demo.chatty.log",
    }
    report = json.loads(files["report.json"])
    assert {c["id"] for c in report["checks"]} == {
        "values",
        "demo.chatty",
        "demo.leak",
        "demo.warn",
    }
    assert all("duration_s" in step for c in report["checks"] for step in c["steps"])
    values = yaml.safe_load(files["values.yaml"])
    assert values["postgres"]["api"]["password"] == "<redacted>"
    assert values["s3"]["secretKey"] == "<redacted>"
    assert values["postgres"]["api"]["username"] == "axion_user"  # not a secret: kept
    env = json.loads(files["environment.json"])
    assert env["in_cluster"] is False and env["namespace"] == "axion-sense" and env["python"]
    assert "login as svc with <redacted>" in files["logs/demo.chatty.log"]
    everything = "".join(files.values()) + result.stdout + result.stderr
    for secret in ALL_SECRETS:
        assert secret not in everything


def test_bundle_with_invalid_values_holds_the_problems(tmp_path: Path) -> None:
    values = example_values()
    del values["postgres"]["api"]["password"]
    bundle = tmp_path / "b.tar.gz"
    result = run_cli(write_values(tmp_path, values), "--bundle", bundle, "--format", "json")
    assert result.code == 2
    files = read_bundle(bundle)
    report = json.loads(files["report.json"])
    assert report["checks"][0]["status"] == "fail"
    assert any(s["name"] == "postgres.api.password" for s in report["checks"][0]["steps"])
    assert "support bundle:" in result.stderr  # json on stdout stays parseable
    json.loads(result.stdout)
