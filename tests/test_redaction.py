"""No secret value appears in any output format, nor in a forced exception's message."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path

import pytest

from preflight.report.redact import REDACTED, Redactor, find_secrets
from tests.cli import example_values, run_cli, write_values
from tests.plugin import install_plugin

SECRETS = {
    "oidc.clientSecret": "Zq-oidc-9f3e1",
    "s3.secretKey": "Zq-s3sec-77a0",
    "s3.accessKey": "ZQACCESSKEY7788",
    "postgres.api.password": "Zq-pgapi-&<\"'x",
    "postgres.worker.password": "Zq-pgwrk-4411",
    "clickhouse.password": "Zq-ch-90d2",
    "openfga.apiKey": "Zq-fga-5e5e",
    "kafka.saslPassword": "Zq-sasl-1234",
    "demo.password": "Zq-demo-4242",
}


def secret_values() -> dict:
    values = example_values()
    for path, secret in SECRETS.items():
        *parents, leaf = path.split(".")
        node = values
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = secret
    values["kafka"]["securityProtocol"] = "SASL_SSL"
    values["kafka"]["saslUsername"] = "svc-user"
    values["vision"]["config"]["detectors"][0]["authToken"] = "Zq-detector-6060"
    values["vision"]["config"]["mapMatching"]["mapMatchingApi"]["apiKey"] = "Zq-mm-7070"
    values["openfga"]["apiUrl"] = "http://fgauser:Zq-urlpass-8080@127.0.0.1:1"
    values["worker"]["customLayersSync"] = {
        "enabled": True,
        "connectionString": "Host=127.0.0.1;Port=1;Database=layers;Username=u;Password=Zq-conn-9090",
        "password": "Zq-layers-1111",
    }
    return values


ALL_SECRETS = [
    *SECRETS.values(),
    "Zq-detector-6060",
    "Zq-mm-7070",
    "Zq-urlpass-8080",
    "Zq-conn-9090",
    "Zq-layers-1111",
]


def test_find_secrets_by_key_url_and_connection_string() -> None:
    found = find_secrets(secret_values())
    assert set(ALL_SECRETS) <= found
    assert "svc-user" not in found


@pytest.mark.parametrize(
    ("connection_string", "secret"),
    [
        ("Host=h;Password=plain-pw-1;Database=d", "plain-pw-1"),
        ("Host=h;Password='q;uo''ted-2';Database=d", "q;uo'ted-2"),
        ('Host=h;PWD="dq;uo""ted-3"', 'dq;uo"ted-3'),
    ],
)
def test_connection_string_passwords_quoted_or_not(connection_string: str, secret: str) -> None:
    found = find_secrets({"worker": {"customLayersSync": {"source": connection_string}}})
    assert secret in found
    redact = Redactor(found)
    assert secret not in redact(f"error: {secret} / {connection_string}")


def test_redactor_scrubs_encodings() -> None:
    redact = Redactor(["p@ss&<word>"])
    assert (
        redact("a p@ss&<word> b p%40ss%26%3Cword%3E c p@ss&amp;&lt;word&gt;")
        == f"a {REDACTED} b {REDACTED} c {REDACTED}"
    )


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = install_plugin(tmp_path_factory.mktemp("plugin"))
    return {"PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.parametrize("fmt", ["text", "json", "junit", "markdown", "html"])
def test_no_secret_in_any_format(tmp_path: Path, plugin_env: dict[str, str], fmt: str) -> None:
    path = write_values(tmp_path, secret_values())
    out_file = tmp_path / f"report.{fmt}"
    result = run_cli(path, "--only", "demo.leak", "--format", fmt, "-o", out_file, env=plugin_env)
    assert result.code == 3
    written = out_file.read_text()
    # the forced exception's message was scrubbed, not dropped
    assert REDACTED in written or escape(REDACTED) in written
    for secret in ALL_SECRETS:
        assert secret not in result.stdout + result.stderr + written
    if fmt == "junit":
        ET.fromstring(written)


def test_no_secret_in_values_errors(tmp_path: Path) -> None:
    values = secret_values()
    values["postgres"]["api"]["port"] = "Zq-not-a-port-31"
    result = run_cli(
        "validate", write_values(tmp_path, values), "--set", "s3.secretKey:Zq-typo-3131"
    )
    assert result.code == 2
    assert "Zq-typo-3131" not in result.stdout + result.stderr
    for secret in ALL_SECRETS:
        assert secret not in result.stdout + result.stderr


def test_facts_are_scrubbed_by_value_not_by_name() -> None:
    from preflight.report.result import CheckResult, Status

    redact = Redactor(["Zq-fact-secret"])
    check = CheckResult(
        "oidc",
        "OIDC",
        Status.PASS,
        facts={"token_endpoint": "https://idp/token", "seen": ["x Zq-fact-secret y"]},
    )
    assert redact.result(check).facts == {
        "token_endpoint": "https://idp/token",
        "seen": [f"x {REDACTED} y"],
    }
