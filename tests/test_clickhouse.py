"""The `clickhouse` check through the real CLI, against real ClickHouse 26.9 and 18.16 servers,
the hostile servers, and one fake (a server that answers `/ping` and then hangs)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.cli import REPO_ROOT, CliResult, example_values, holding_cli, run_cli, write_values
from tests.servers._tls import issue_cert
from tests.servers.clickhouse import ClickHouseServer, http_query
from tests.servers.hostile import HostileServers, _Listener

STEPS = ["config", "dns", "tcp", "http", "auth", "version", "database", "permissions"]
TIMEOUT_S = 2.0


def clickhouse_values(
    server: ClickHouseServer, role: str = "admin", **clickhouse: Any
) -> dict[str, Any]:
    """The guide's example values, with `clickhouse.*` pointing at `server` as `role`."""
    values = example_values()
    user = server.users[role]
    values["clickhouse"] = {
        "host": server.host,
        "port": server.port,
        "username": user.name,
        "password": user.password,
        **clickhouse,
    }
    return values


def run_check(
    folder: Path, values: dict[str, Any], *args: str, timeout: float = 15
) -> tuple[CliResult, CliResult]:
    """Run only the clickhouse check, once as JSON and once as text; the password never shows."""
    path = write_values(folder, values)
    common = ("--only", "clickhouse", "--timeout", f"{timeout:g}", *args)
    results = run_cli(path, *common, "--format", "json"), run_cli(path, *common, "--format", "text")
    password = values["clickhouse"]["password"]
    for result in results:
        assert password not in result.stdout + result.stderr
    return results


def expect(
    results: tuple[CliResult, CliResult], status: str, step: str, *phrases: str
) -> dict[str, Any]:
    """Both reports say `status`, decided at `step`, with every phrase; the JSON entry."""
    as_json, as_text = results
    entry = as_json.check("clickhouse")
    assert entry["status"] == status, entry
    assert as_json.code == as_text.code == (0 if status == "pass" else 3), as_text.stdout
    decided = [s for s in entry["steps"] if s["status"] == status and s["name"] == step]
    assert decided, entry["steps"]
    line = next(line for line in as_text.stdout.splitlines() if " clickhouse " in line)
    assert line.startswith(status.upper()), as_text.stdout
    for phrase in phrases:
        assert phrase in entry["message"] + " " + entry["remediation"], entry
        assert phrase in as_text.stdout, as_text.stdout
    return entry


def step_names(entry: dict[str, Any]) -> list[str]:
    return [step["name"] for step in entry["steps"]]


def scratch_tables(server: ClickHouseServer) -> list[str]:
    sql = (
        "SELECT database || '.' || name FROM system.tables WHERE name LIKE 'sense\\_preflight\\_%'"
    )
    return http_query(server, sql).split()


# --- a healthy server -------------------------------------------------------------------------


def test_admin_passes_with_facts_and_leaves_nothing(
    tmp_path: Path, clickhouse26: ClickHouseServer
) -> None:
    results = run_check(tmp_path, clickhouse_values(clickhouse26))
    entry = expect(results, "pass", "roundtrip", "created, wrote, read back and dropped")
    assert step_names(entry) == [*STEPS, "roundtrip"]
    facts = entry["facts"]
    assert facts["server_version"] == clickhouse26.version
    assert facts["current_user"] == clickhouse26.admin.name
    assert facts["timezone"]
    assert facts["database_exists"] is True
    assert any("ON axion_sense.*" in grant for grant in facts["grants"])
    assert scratch_tables(clickhouse26) == []


def test_read_only_skips_the_roundtrip(tmp_path: Path, clickhouse26: ClickHouseServer) -> None:
    results = run_check(tmp_path, clickhouse_values(clickhouse26), "--read-only")
    entry = expect(results, "pass", "permissions", "sense_admin may CREATE TABLE")
    assert entry["steps"][-1] == {**entry["steps"][-1], "name": "roundtrip", "status": "skip"}


def test_secure_flag_means_https(tmp_path: Path, clickhouse26: ClickHouseServer) -> None:
    """chdb serves no HTTPS: a secure flag against its plain port must fail at tls."""
    values = clickhouse_values(clickhouse26, secure=True)
    entry = expect(run_check(tmp_path, values), "fail", "tls", "did not answer with TLS")
    assert "turn off clickhouse.secure" in entry["remediation"]


@pytest.fixture(scope="module")
def tls_front(
    clickhouse26: ClickHouseServer, test_ca: trustme.CA, session_dir: Path
) -> Iterator[tuple[int, Path]]:
    """HTTPS in front of the real 26.9 (chdb serves no HTTPS): a TLS terminator on loopback
    whose certificate comes from the session CA. Yields its port and the CA file."""
    cert = issue_cert(test_ca, session_dir / "clickhouse-tls")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert.cert), str(cert.key))

    def relay(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def handle(conn: socket.socket) -> None:
        conn.settimeout(30)
        with (
            context.wrap_socket(conn, server_side=True) as tls,
            socket.create_connection((clickhouse26.host, clickhouse26.port), 5) as upstream,
        ):
            back = threading.Thread(target=relay, args=(upstream, tls), daemon=True)
            back.start()
            relay(tls, upstream)
            back.join(30)

    listener = _Listener(handle)
    yield listener.port, cert.ca
    listener.close()


def test_https_with_the_ca_bundle_passes(
    tmp_path: Path, clickhouse26: ClickHouseServer, tls_front: tuple[int, Path]
) -> None:
    port, ca = tls_front
    values = clickhouse_values(
        clickhouse26, host="localhost", port=port, secure=True, caBundle=str(ca)
    )
    entry = expect(run_check(tmp_path, values), "pass", "roundtrip", "created, wrote")
    assert entry["steps"][3]["name"] == "tls"
    assert entry["facts"]["tls_version"].startswith("TLS")
    assert entry["steps"][4]["detail"] == f"GET https://localhost:{port}/ping answered Ok."


def test_https_without_the_ca_fails_at_tls(
    tmp_path: Path, clickhouse26: ClickHouseServer, tls_front: tuple[int, Path]
) -> None:
    values = clickhouse_values(clickhouse26, host=f"https://localhost:{tls_front[0]}")
    expect(run_check(tmp_path, values), "fail", "tls", "certificate signed by unknown authority")


@pytest.mark.parametrize(
    ("clickhouse", "url"),
    [
        ({"host": "127.0.0.1"}, "http://127.0.0.1:8123"),
        ({"host": "127.0.0.1", "secure": True}, "https://127.0.0.1:8443"),
        ({"host": "127.0.0.1", "secured": True, "port": 9443}, "https://127.0.0.1:9443"),
        ({"host": "127.0.0.1", "port": 8443}, "https://127.0.0.1:8443"),
        ({"host": "https://127.0.0.1"}, "https://127.0.0.1:8443"),
        ({"host": "http://127.0.0.1:8443"}, "http://127.0.0.1:8443"),
    ],
)
def test_config_reads_scheme_and_port(tmp_path: Path, clickhouse: dict[str, Any], url: str) -> None:
    values = example_values()
    values["clickhouse"].update(clickhouse)
    path = write_values(tmp_path, values)
    result = run_cli(path, "--only", "clickhouse", "--format", "json", "--timeout", "2")
    config = result.check("clickhouse")["steps"][0]
    assert config["name"] == "config"
    assert config["detail"] == f"{url}, database axion_sense, user default"


# --- users the check must turn down -----------------------------------------------------------


def test_select_only_user_fails_at_permissions(
    tmp_path: Path, clickhouse26: ClickHouseServer
) -> None:
    results = run_check(tmp_path, clickhouse_values(clickhouse26, "select_only"))
    expect(
        results,
        "fail",
        "permissions",
        "sense_reader lacks CREATE TABLE, INSERT, ALTER TABLE, DROP TABLE on axion_sense",
        "(has: SELECT)",
        "GRANT CREATE TABLE, INSERT, ALTER TABLE, DROP TABLE ON axion_sense.* TO sense_reader",
    )


def test_readonly_profile_fails_at_permissions(
    tmp_path: Path, clickhouse26: ClickHouseServer
) -> None:
    results = run_check(tmp_path, clickhouse_values(clickhouse26, "readonly"))
    entry = expect(results, "fail", "permissions", "readonly=1", "SETTINGS readonly = 0")
    assert entry["facts"]["readonly"] == 1


def test_user_without_grants_fails_at_permissions(
    tmp_path: Path, clickhouse26: ClickHouseServer
) -> None:
    results = run_check(tmp_path, clickhouse_values(clickhouse26, "no_grants"))
    entry = expect(
        results,
        "fail",
        "permissions",
        "lacks CREATE TABLE, INSERT, SELECT, ALTER TABLE, DROP TABLE on axion_sense (has: none)",
    )
    assert entry["facts"]["grants"] == []
    assert entry["facts"]["database_exists"] is True


def test_wrong_password_fails_at_auth(tmp_path: Path, clickhouse26: ClickHouseServer) -> None:
    values = clickhouse_values(clickhouse26, password="wrong-Secret-4417")
    results = run_check(tmp_path, values)  # asserts the wrong password never shows
    expect(results, "fail", "auth", "authentication failed for user sense_admin (code 516)")


def test_user_from_another_address_on_26_is_told_both_causes(
    tmp_path: Path, clickhouse26: ClickHouseServer
) -> None:
    results = run_check(tmp_path, clickhouse_values(clickhouse26, "elsewhere"))
    expect(results, "fail", "auth", "may not log in from this address", "HOST")


def test_user_from_another_address_on_18_gets_its_own_message(
    tmp_path: Path, clickhouse18: ClickHouseServer
) -> None:
    results = run_check(tmp_path, clickhouse_values(clickhouse18, "elsewhere"))
    expect(
        results,
        "fail",
        "auth",
        "user sense_elsewhere may not log in from this address (code 195)",
        "not allowed to connect from address 127.0.0.1",
    )


# --- the database -----------------------------------------------------------------------------


def test_missing_database_passes_when_the_user_may_create_it(
    tmp_path: Path, clickhouse26: ClickHouseServer
) -> None:
    values = clickhouse_values(clickhouse26, "creator", database=clickhouse26.missing_database)
    entry = expect(run_check(tmp_path, values), "pass", "database", "the API migration will create")
    database = next(step for step in entry["steps"] if step["name"] == "database")
    assert database["detail"].startswith("database sense_fresh does not exist yet")
    assert entry["steps"][-1]["name"] == "roundtrip"
    assert entry["steps"][-1]["status"] == "skip"
    assert entry["facts"]["database_exists"] is False


def test_missing_database_fails_without_create_database(
    tmp_path: Path, clickhouse26: ClickHouseServer
) -> None:
    values = clickhouse_values(clickhouse26, "no_create", database=clickhouse26.missing_database)
    expect(
        run_check(tmp_path, values),
        "fail",
        "database",
        "database sense_fresh does not exist and sense_nocreate may not create it",
        "GRANT CREATE DATABASE ON sense_fresh.* TO sense_nocreate",
    )


# --- the version ------------------------------------------------------------------------------


def test_clickhouse_18_fails_at_version(tmp_path: Path, clickhouse18: ClickHouseServer) -> None:
    results = run_check(tmp_path, clickhouse_values(clickhouse18))
    entry = expect(results, "fail", "version", "ClickHouse 18.16.1 found, 26 or newer required")
    assert entry["facts"]["server_version"] == "18.16.1"
    assert "clickhouse-connect" not in entry["message"]


# --- not ClickHouse's HTTP interface ----------------------------------------------------------


def test_native_port_fails_at_http(tmp_path: Path, clickhouse26: ClickHouseServer) -> None:
    values = clickhouse_values(clickhouse26, port=clickhouse26.native_port)
    expect(
        run_check(tmp_path, values),
        "fail",
        "http",
        "is ClickHouse's native-protocol port",
        f"set clickhouse.port to the HTTP port ({clickhouse26.port})",
    )


def test_another_http_server_fails_at_http(
    tmp_path: Path, clickhouse26: ClickHouseServer, hostile: HostileServers
) -> None:
    values = clickhouse_values(clickhouse26, port=hostile.http)
    expect(
        run_check(tmp_path, values),
        "fail",
        "http",
        'GET /ping answered HTTP 200 text/html: "not the service you are looking for"',
    )


HOSTILE_STEPS = {
    ("closed", False): "tcp",
    ("hang", False): "http",
    ("reset", False): "http",
    ("garbage", False): "http",
    ("tls_untrusted", True): "tls",
    ("tls_expired", True): "tls",
    ("tls_stall", True): "tls",
}


@pytest.mark.parametrize(("name", "secure"), list(HOSTILE_STEPS), ids=lambda v: str(v))
def test_hostile_servers_fail_cleanly_within_the_timeout(
    tmp_path: Path,
    clickhouse26: ClickHouseServer,
    hostile: HostileServers,
    name: str,
    secure: bool,
) -> None:
    values = clickhouse_values(clickhouse26, port=getattr(hostile, name), secure=secure)
    results = run_check(tmp_path, values, timeout=TIMEOUT_S)
    entry = expect(results, "fail", HOSTILE_STEPS[name, secure])
    assert entry["duration_s"] < TIMEOUT_S + 0.5
    assert "Traceback" not in results[0].stderr + results[1].stderr


@pytest.fixture(scope="module")
def ping_then_hang() -> Iterator[int]:
    """A fake ClickHouse: `GET /ping` answers `Ok.`, every other request hangs."""

    def handle(conn: Any) -> None:
        request = conn.recv(65536)
        if request.startswith(b"GET /ping "):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nOk.\n")
            conn.close()
            return
        time.sleep(600)

    listener = _Listener(handle)
    yield listener.port
    listener.close()


def test_server_that_hangs_after_ping_fails_within_the_timeout(
    tmp_path: Path, clickhouse26: ClickHouseServer, ping_then_hang: int
) -> None:
    values = clickhouse_values(clickhouse26, port=ping_then_hang)
    entry = expect(
        run_check(tmp_path, values, timeout=TIMEOUT_S), "fail", "auth", "timed out trying to log in"
    )
    assert entry["duration_s"] < TIMEOUT_S + 0.5


# --- the scratch table is always dropped ------------------------------------------------------


def test_scratch_table_is_dropped_when_the_insert_fails(
    tmp_path: Path, clickhouse26: ClickHouseServer
) -> None:
    results = run_check(tmp_path, clickhouse_values(clickhouse26, "no_scratch_insert"))
    expect(results, "fail", "roundtrip", "Not enough privileges", "INSERT")
    assert scratch_tables(clickhouse26) == []


def test_scratch_table_is_dropped_when_the_run_is_interrupted(
    tmp_path: Path, clickhouse26: ClickHouseServer
) -> None:
    path = write_values(tmp_path, clickhouse_values(clickhouse26))
    proc = subprocess.Popen(
        [*holding_cli(10), str(path), "--only", "clickhouse"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # The check is held once the scratch table exists: Ctrl-C lands there.
        env={**os.environ, "NO_COLOR": "1"},
        cwd=REPO_ROOT,
    )
    seen: list[str] = []
    deadline = time.monotonic() + 15
    while not seen and proc.poll() is None and time.monotonic() < deadline:
        seen = scratch_tables(clickhouse26)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=15)
    assert seen, "the run ended before its scratch table could be seen"
    assert "interrupted: cleanups ran" in stderr
    assert scratch_tables(clickhouse26) == []


def test_no_scratch_table_is_left_after_the_suite(clickhouse26: ClickHouseServer) -> None:
    assert scratch_tables(clickhouse26) == []
