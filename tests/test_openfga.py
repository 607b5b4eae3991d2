"""The `openfga` check through the real CLI against the OpenFGA fake (or a real server)."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checks.openfga import SCRATCH_PREFIX
from tests.cli import CliResult, example_values, run_cli, write_values
from tests.servers.openfga import MAX_PAGE_SIZE, OpenFgaServer

pytestmark = pytest.mark.server("openfga")

TIMEOUT_S = 5.0


def _run(
    tmp_path: Path, url: str, key: str, *extra: str, text: bool = False, **openfga: Any
) -> CliResult:
    """Run the openfga check only; `openfga` values override url and key."""
    values = example_values()
    values["openfga"] = {"apiUrl": url, "apiKey": key, **openfga}
    result = run_cli(
        write_values(tmp_path, values),
        "--only",
        "openfga",
        "--format",
        "text" if text else "json",
        "--timeout",
        str(TIMEOUT_S),
        *extra,
    )
    assert "Traceback" not in result.stderr
    if key:
        assert key not in result.stdout + result.stderr
    return result


@pytest.fixture
def store_name(openfga: OpenFgaServer) -> Iterator[str]:
    """A unique store name; every store of that name is deleted after the test, and no scratch
    store of the check may remain."""
    name = f"sense-test-{secrets.token_hex(4)}"
    yield name
    for store_id in openfga.store_ids(name):
        openfga.delete_store(store_id)
    assert [s["name"] for s in openfga.stores() if s["name"].startswith(SCRATCH_PREFIX)] == []


def _steps(result: CliResult) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in result.check("openfga")["steps"]}


def test_missing_store_passes_with_a_note(
    tmp_path: Path, openfga: OpenFgaServer, store_name: str
) -> None:
    result = _run(tmp_path, openfga.url, openfga.api_key, storeName=store_name)
    assert result.code == 0, result.stdout
    check = result.check("openfga")
    assert check["status"] == "pass"
    steps = _steps(result)
    assert list(steps) == ["config", "dns", "tcp", "health", "auth", "store", "roundtrip"]
    assert steps["store"]["detail"] == (
        f"store {store_name!r} not found: the API migration creates it"
    )
    assert steps["roundtrip"]["detail"].startswith(f"created store {SCRATCH_PREFIX}")
    assert f"the migration may create {store_name!r}" in check["message"]
    assert check["facts"]["store_id"] is None
    assert openfga.store_ids(store_name) == []
    print(f"openfga check against the fake: {check['duration_s']:.3f}s")


def test_present_store_reports_id_and_latest_model(
    tmp_path: Path, openfga: OpenFgaServer, store_name: str
) -> None:
    store_id = openfga.create_store(store_name)
    openfga.write_model(store_id, "user")
    latest = openfga.write_model(store_id, "user", "document")
    result = _run(tmp_path, openfga.url, openfga.api_key, "--read-only", storeName=store_name)
    check = result.check("openfga")
    assert (result.code, check["status"]) == (0, "pass"), result.stdout
    assert "<redacted>" not in str(check["facts"])
    assert check["facts"]["store_id"] == store_id
    assert check["facts"]["authorization_model_id"] == latest
    steps = _steps(result)
    assert steps["store"]["detail"] == (
        f"store {store_name!r} is {store_id}, latest authorization model {latest}"
    )
    assert steps["roundtrip"]["status"] == "skip"


def test_present_store_without_model_in_text(
    tmp_path: Path, openfga: OpenFgaServer, store_name: str
) -> None:
    store_id = openfga.create_store(store_name)
    result = _run(tmp_path, openfga.url, openfga.api_key, text=True, storeName=store_name)
    assert result.code == 0
    assert "PASS  openfga" in result.stdout
    # The round trip speaks last; the store step's finding is in the JSON facts.
    assert "created store sense-preflight-" in result.stdout
    json_run = _run(tmp_path, openfga.url, openfga.api_key, "--read-only", storeName=store_name)
    assert json_run.check("openfga")["message"] == (
        f"store {store_name!r} is {store_id}, no authorization model yet"
    )


def test_read_only_creates_nothing(tmp_path: Path, openfga: OpenFgaServer, store_name: str) -> None:
    before = len(openfga.stores())
    result = _run(tmp_path, openfga.url, openfga.api_key, "--read-only", storeName=store_name)
    assert result.code == 0
    roundtrip = _steps(result)["roundtrip"]
    assert (roundtrip["status"], roundtrip["detail"]) == (
        "skip",
        "--read-only: no scratch store created",
    )
    assert "not shown under --read-only" in _steps(result)["store"]["detail"]
    assert len(openfga.stores()) == before


@pytest.mark.parametrize("text", [False, True], ids=["json", "text"])
def test_wrong_key_fails_at_auth(tmp_path: Path, openfga: OpenFgaServer, text: bool) -> None:
    result = _run(tmp_path, openfga.url, "wrong-key-5512", text=text)
    assert result.code == 3
    if text:
        assert "FAIL  openfga" in result.stdout
        assert "auth: API key rejected (unauthenticated: unauthenticated)" in result.stdout
        assert "fix: openfga.apiKey must be one of the server's pre-shared keys" in result.stdout
    else:
        assert result.failed_step("openfga")["name"] == "auth"
        check = result.check("openfga")
        assert check["message"] == "auth: API key rejected (unauthenticated: unauthenticated)"
        assert "--authn-preshared-keys" in check["remediation"]


def test_missing_key_is_a_values_error(tmp_path: Path, openfga: OpenFgaServer) -> None:
    result = _run(tmp_path, openfga.url, "")
    assert result.code == 2
    assert "openfga.apiKey" in result.stdout + result.stderr


def test_duplicate_store_names_warn(
    tmp_path: Path, openfga: OpenFgaServer, store_name: str
) -> None:
    ids = [openfga.create_store(store_name) for _ in range(2)]
    result = _run(tmp_path, openfga.url, openfga.api_key, "--read-only", storeName=store_name)
    check = result.check("openfga")
    assert (result.code, check["status"]) == (0, "warn")
    assert check["message"] == f"store: 2 stores are named {store_name!r} ({', '.join(ids)})"
    assert check["facts"]["store_ids"] == ids


def test_missing_store_with_migrations_off_warns(
    tmp_path: Path, openfga: OpenFgaServer, store_name: str
) -> None:
    values_extra = ["--set", "api.migration.enabled=false", "--read-only"]
    result = _run(tmp_path, openfga.url, openfga.api_key, *values_extra, storeName=store_name)
    check = result.check("openfga")
    assert (result.code, check["status"]) == (0, "warn")
    assert "api.migration.enabled is false" in check["message"]


def test_store_name_openfga_refuses_fails_at_store(tmp_path: Path, openfga: OpenFgaServer) -> None:
    result = _run(tmp_path, openfga.url, openfga.api_key, "--read-only", storeName="axion:sense")
    assert result.code == 3
    assert result.failed_step("openfga")["name"] == "store"
    message = result.check("openfga")["message"]
    assert message.startswith("store: listing stores failed: HTTP 400 (validation_error: ")
    assert "ListStoresRequest.Name" in message
    assert result.check("openfga")["remediation"].startswith("openfga.storeName must be 3-64")


def test_store_found_on_the_second_page(
    tmp_path: Path, openfga_without_name_filter: OpenFgaServer, store_name: str
) -> None:
    server = openfga_without_name_filter
    fillers = [server.create_store(f"sense-test-filler-{i}") for i in range(MAX_PAGE_SIZE)]
    try:
        store_id = server.create_store(store_name)
        result = _run(tmp_path, server.url, server.api_key, "--read-only", storeName=store_name)
        check = result.check("openfga")
        assert (result.code, check["status"]) == (0, "pass"), result.stdout
        assert check["facts"]["store_id"] == store_id
        server.delete_store(store_id)
    finally:
        for filler in fillers:
            server.delete_store(filler)


def test_authentication_off_warns(tmp_path: Path, openfga_without_auth: OpenFgaServer) -> None:
    result = _run(tmp_path, openfga_without_auth.url, "any-key-3391", "--read-only")
    check = result.check("openfga")
    assert (result.code, check["status"]) == (0, "warn")
    assert check["message"] == (
        "auth: OpenFGA also answers without an API key: its authentication is off"
    )
    assert "--authn-method preshared" in check["remediation"]


def test_cleanup_finds_a_scratch_store_whose_id_never_came_back(openfga: OpenFgaServer) -> None:
    """An interrupted create: the store exists, the check never saw its id."""
    from checks.openfga import OpenFgaSettings, _Scratch
    from preflight.net import ProxyEnv, parse_endpoint

    scratch = _Scratch(f"{SCRATCH_PREFIX}{secrets.token_hex(6)}")
    openfga.create_store(scratch.name)
    settings = OpenFgaSettings(openfga.url, parse_endpoint(openfga.url), openfga.api_key, "x")
    scratch.remove(settings, None, ProxyEnv())
    assert openfga.store_ids(scratch.name) == []
    assert scratch.deleted


def test_scratch_store_is_deleted_when_the_model_write_fails(
    tmp_path: Path, openfga_tiny_models: OpenFgaServer
) -> None:
    server = openfga_tiny_models
    result = _run(tmp_path, server.url, server.api_key)
    assert result.code == 3
    assert result.failed_step("openfga")["name"] == "roundtrip"
    assert (
        "writing an authorization model failed: HTTP 400 (exceeded_entity_limit"
        in (result.check("openfga")["message"])
    )
    assert server.stores() == []


def test_interrupted_roundtrip_deletes_the_scratch_store(
    tmp_path: Path, openfga_slow_models: OpenFgaServer
) -> None:
    """Ctrl-C while the model write hangs: the scratch store exists, and the cleanup removes it."""
    fga = openfga_slow_models
    values = example_values()
    values["openfga"] = {"apiUrl": fga.url, "apiKey": fga.api_key}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "preflight",
            str(write_values(tmp_path, values)),
            "--only",
            "openfga",
            "--timeout",
            "30",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not _scratch_stores(fga):
        time.sleep(0.05)
    assert _scratch_stores(fga), "the check never created its scratch store"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 130
    assert "Traceback" not in stderr
    assert _scratch_stores(fga) == []


def _scratch_stores(fga: OpenFgaServer) -> list[str]:
    return [s["name"] for s in fga.stores() if s["name"].startswith(SCRATCH_PREFIX)]
