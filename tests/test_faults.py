"""The fault-injection suite: every check that exists meets every hostile server (accept and
never answer, reset, garbage, HTTP on a non-HTTP port, unknown CA, expired certificate, a TLS
handshake that stalls, nothing listening) and must end in a clean `fail` at the right step,
within --timeout + 0.5 s, with no traceback and no secret in any output."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from tests.cli import CliResult, example_values, run_cli, write_values
from tests.servers.hostile import HostileServers

TIMEOUT = 2.0
SECRET = "Zq-fault-secret-5150"

# What the failing check's message must say (a regex) for each server, and at which step it must fail.
EXPECTED: dict[str, tuple[str | None, str | None]] = {
    "closed": ("tcp", "refused"),
    "hang": (None, "timed out|in time|before the deadline"),
    "reset": (None, None),
    "hangup": (None, "closed"),
    "garbage": (None, None),
    "http": (None, None),
    "tls_untrusted": ("tls", "unknown authority"),
    "tls_expired": ("tls", "expired"),
    "tls_stall": ("tls", "timed out|in time|before the deadline"),
}
# PostgreSQL negotiates TLS in its own protocol first (SSLRequest): a TLS-only server that is
# not PostgreSQL is reported as such, at the tls step.
STARTTLS = {"postgres.api", "postgres.worker", "custom-layers"}
# A detector or map-matching API is any HTTP service: an HTTP 200 on that port is an answer.
ANY_HTTP_ANSWER = ("detector.", "map-matching")
PLAIN = ["closed", "hang", "reset", "hangup", "garbage", "http"]
TLS = ["hang", "tls_untrusted", "tls_expired", "tls_stall"]


def hostile_values(port: int, tls: bool) -> dict[str, Any]:
    """The guide's values with every dependency pointed at 127.0.0.1:port."""
    scheme = "https" if tls else "http"
    address = f"127.0.0.1:{port}"
    values = example_values()
    for db in ("api", "worker"):
        values["postgres"][db].update(
            host="127.0.0.1",
            port=port,
            password=SECRET,
            sslMode="verify-full" if tls else "disable",
        )
    values["clickhouse"].update(host="127.0.0.1", port=port, password=SECRET, secure=tls)
    values["kafka"].update(bootstrapServers=address, securityProtocol="SSL" if tls else "PLAINTEXT")
    values["s3"].update(host=address, secured=tls, secretKey=SECRET)
    values["oidc"].update(
        authority=f"{scheme}://{address}/realms/main", requireHttpsMetadata=tls, clientSecret=SECRET
    )
    values["openfga"].update(apiUrl=f"{scheme}://{address}", apiKey=SECRET)
    for key in ("api", "worker"):
        values[key]["image"]["repository"] = f"{address}/axion/sense-{key}"
    values["vision"]["image"]["repository"] = f"{address}/axion/sense-vision"
    values["vision"]["triton"]["image"]["repository"] = f"{address}/axion/sense-vision-triton"
    values["vision"]["config"]["detectors"][0].update(
        apiUrl=f"{scheme}://{address}/upload", authToken=SECRET
    )
    values["vision"]["config"]["mapMatching"]["mapMatchingApi"].update(
        baseUrl=f"{scheme}://{address}", apiKey=SECRET
    )
    values["worker"]["customLayersSync"] = {
        "enabled": True,
        "connectionString": f"Host=127.0.0.1;Port={port};Database=layers;Username=u;Password={SECRET};SSL Mode={'VerifyFull' if tls else 'Disable'}",
        "password": SECRET,
    }
    return values


def kubeconfig(folder: Path, port: int, tls: bool, ca: Path) -> Path:
    cluster: dict[str, Any] = {"server": f"{'https' if tls else 'http'}://127.0.0.1:{port}"}
    if tls:
        cluster["certificate-authority-data"] = base64.b64encode(ca.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "hostile", "cluster": cluster}],
        "users": [{"name": "u", "user": {"token": SECRET}}],
        "contexts": [{"name": "hostile", "context": {"cluster": "hostile", "user": "u"}}],
        "current-context": "hostile",
    }
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def run_against(tmp_path: Path, port: int, tls: bool, ca: Path) -> CliResult:
    values = write_values(tmp_path, hostile_values(port, tls))
    config = kubeconfig(tmp_path, port, tls, ca)
    return run_cli(
        values,
        "--format",
        "json",
        "--timeout",
        str(TIMEOUT),
        "--ca-bundle",
        ca,
        "--kubeconfig",
        config,
        timeout=60,
    )


@pytest.fixture(scope="module")
def ca_file(test_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    test_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.mark.parametrize(("server", "tls"), [(s, False) for s in PLAIN] + [(s, True) for s in TLS])
def test_every_check_fails_cleanly_and_in_time(
    tmp_path: Path, hostile: HostileServers, ca_file: Path, server: str, tls: bool
) -> None:
    result = run_against(tmp_path, getattr(hostile, server), tls, ca_file)
    assert result.code == 3, result.stderr
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert SECRET not in output
    checks = [c for c in result.report["checks"] if c["id"] != "values"]
    assert len(checks) >= 10
    problems = []
    for check in checks:
        step_name, words = EXPECTED[server]
        if (
            server == "http"
            and check["id"].startswith(ANY_HTTP_ANSWER)
            and check["status"] == "pass"
        ):
            assert "answers (HTTP 200" in check["message"]
            continue
        if check["id"] in STARTTLS and server in ("tls_untrusted", "tls_expired"):
            words = "postgresql"
        failing = [s for s in check["steps"] if s["status"] == "fail"]
        if check["status"] != "fail" or not failing:
            problems.append(f"{check['id']}: {check['status']} {check['message']}")
            continue
        if failing[0]["name"] == "config":
            problems.append(f"{check['id']}: failed at config: {check['message']}")
        if step_name and failing[0]["name"] != step_name:
            problems.append(
                f"{check['id']}: failed at {failing[0]['name']}, not {step_name}: {check['message']}"
            )
        if words and not re.search(words, check["message"].lower()):
            problems.append(f"{check['id']}: message lacks {words!r}: {check['message']}")
        if check["duration_s"] > TIMEOUT + 0.5:
            problems.append(f"{check['id']}: took {check['duration_s']}s")
    assert not problems, "\n".join(problems)
