"""`sense-preflight --only postgres` through the real CLI against real PostgreSQL 17 and 15."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.cli import REPO_ROOT, CliResult, example_values, holding_cli, run_cli, write_values
from tests.servers.hostile import HostileServers
from tests.servers.postgres import PostgresRole, PostgresServer

SERVERS = ("postgres17", "postgres17_tls", "postgres15")


@pytest.fixture(autouse=True)
def no_scratch_table_left(request: pytest.FixtureRequest) -> Any:
    """After every test: the servers it used hold no `sense_preflight_%` table."""
    yield
    for name in SERVERS:
        if name in request.fixturenames:
            server: PostgresServer = request.getfixturevalue(name)
            assert server.scratch_tables() == []


def database_values(
    server: PostgresServer,
    role: PostgresRole | None = None,
    database: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """`postgres.<db>` values for one database of a test server (default: the owner)."""
    role = role or server.owner
    return {
        "host": server.host,
        "port": server.port,
        "database": database or server.database,
        "username": role.name,
        "password": role.password,
        **extra,
    }


def run_postgres(
    tmp_path: Path,
    api: dict[str, Any],
    worker: dict[str, Any] | None = None,
    *args: str,
    only: str = "postgres.api",
    fmt: str = "json",
    top: dict[str, Any] | None = None,
) -> CliResult:
    """Run the CLI with these postgres values (the rest is the guide's example)."""
    values = example_values(filled=True)
    values["postgres"]["api"] = api
    if worker is not None:
        values["postgres"]["worker"] = worker
    for key, more in (top or {}).items():
        values[key].update(more)
    path = write_values(tmp_path, values)
    return run_cli(path, "--only", only, "--format", fmt, "--timeout", "5", *args)


def step(result: CliResult, check_id: str, name: str) -> dict[str, Any]:
    """One step of a check in the JSON report."""
    steps = {s["name"]: s for s in result.check(check_id)["steps"]}
    assert name in steps, f"no step {name}: {result.check(check_id)}"
    return steps[name]


def assert_fails_at(
    result: CliResult, name: str, *words: str, check_id: str = "postgres.api"
) -> str:
    """Exit 3, the check fails at step `name`, and its message holds every word."""
    assert result.code == 3, result.stdout + result.stderr
    entry = result.check(check_id)
    assert entry["status"] == "fail"
    assert result.failed_step(check_id)["name"] == name, entry
    text = f"{entry['message']} {entry['remediation']}"
    for word in words:
        assert word in text, (word, entry)
    return text


def test_healthy_17_passes_with_facts(tmp_path: Path, postgres17: PostgresServer) -> None:
    result = run_postgres(tmp_path, database_values(postgres17))
    assert result.code == 0, result.stdout + result.stderr
    entry = result.check("postgres.api")
    assert entry["status"] == "pass"
    names = [s["name"] for s in entry["steps"]]
    assert names == [
        "config", "dns", "tcp", "tls", "auth", "version", "database", "permissions", "capacity",
        "roundtrip",
    ]  # fmt: skip
    facts = entry["facts"]
    assert facts["server_version"].startswith("17.")
    assert facts["tls_version"] is None and facts["tls_offered"] is False
    assert facts["database_owner"] == postgres17.owner.name and facts["owns_database"] is True
    assert facts["max_connections"] == postgres17.max_connections
    assert facts["current_connections"] >= 1
    assert "sense_preflight_" in step(result, "postgres.api", "roundtrip")["detail"]
    assert postgres17.owner.password not in result.stdout + result.stderr


def test_healthy_17_in_text(tmp_path: Path, postgres17: PostgresServer) -> None:
    result = run_postgres(tmp_path, database_values(postgres17), fmt="text")
    assert result.code == 0, result.stdout + result.stderr
    line = next(line for line in result.text_report.splitlines() if "postgres.api" in line)
    assert line.startswith("PASS") and "PostgreSQL 17." in line and "sense_preflight_" in line


def test_15_fails_at_version(tmp_path: Path, postgres15: PostgresServer) -> None:
    result = run_postgres(tmp_path, database_values(postgres15))
    assert_fails_at(result, "version", "PostgreSQL 15.", "17 or newer")
    assert result.check("postgres.api")["facts"]["server_version"].startswith("15.")
    text = run_postgres(tmp_path, database_values(postgres15), fmt="text")
    assert text.code == 3 and "too old" in text.stdout and "17" in text.stdout


def test_wrong_password_fails_at_auth(tmp_path: Path, postgres17: PostgresServer) -> None:
    secret = "wrong-pw-7781"
    values = database_values(postgres17, PostgresRole(postgres17.owner.name, secret))
    result = run_postgres(tmp_path, values)
    assert_fails_at(result, "auth", "password authentication failed", "postgres.api.password")
    text = run_postgres(tmp_path, values, fmt="text")
    assert text.code == 3 and "password authentication failed" in text.stdout
    assert secret not in result.stdout + result.stderr + text.stdout + text.stderr


def test_role_over_its_connection_limit_fails_at_auth(
    tmp_path: Path, postgres17: PostgresServer
) -> None:
    result = run_postgres(tmp_path, database_values(postgres17, postgres17.limited))
    assert_fails_at(result, "auth", "no free connection slot", "max_connections")


def test_unknown_database_fails_at_database(tmp_path: Path, postgres17: PostgresServer) -> None:
    result = run_postgres(tmp_path, database_values(postgres17, database="nope_db"))
    assert_fails_at(
        result, "database", "database nope_db does not exist",
        f'CREATE DATABASE "nope_db" OWNER "{postgres17.owner.name}"',
    )  # fmt: skip
    # The login worked: the version was still read, from the maintenance database.
    assert step(result, "postgres.api", "auth")["status"] == "pass"
    assert step(result, "postgres.api", "version")["status"] == "pass"


def test_role_without_connect_fails_at_database(tmp_path: Path, postgres17: PostgresServer) -> None:
    result = run_postgres(tmp_path, database_values(postgres17, postgres17.no_connect))
    assert_fails_at(
        result, "database", "may not CONNECT",
        f'GRANT CONNECT ON DATABASE "{postgres17.database}" TO "{postgres17.no_connect.name}"',
    )  # fmt: skip


@pytest.mark.parametrize("which", ["api", "worker"])
def test_role_without_create_on_public_fails_at_permissions(
    tmp_path: Path, postgres17: PostgresServer, which: str
) -> None:
    values = database_values(postgres17, postgres17.no_create)
    result = run_postgres(tmp_path, values, values, only=f"postgres.{which}")
    assert_fails_at(
        result, "permissions", "CREATE on schema public", "PostgreSQL 15",
        f'GRANT USAGE, CREATE ON SCHEMA public TO "{postgres17.no_create.name}"',
        check_id=f"postgres.{which}",
    )  # fmt: skip
    assert result.check(f"postgres.{which}")["facts"]["owns_database"] is False


def test_role_without_create_on_the_database_warns(
    tmp_path: Path, postgres17: PostgresServer
) -> None:
    result = run_postgres(tmp_path, database_values(postgres17, postgres17.public_writer))
    assert result.code == 0, result.stdout
    assert result.check("postgres.api")["status"] == "warn"
    permissions = step(result, "postgres.api", "permissions")
    assert permissions["status"] == "warn" and "not on database" in permissions["detail"]
    grant = f'GRANT CREATE ON DATABASE "{postgres17.database}" TO "{postgres17.public_writer.name}"'
    assert grant in permissions["remediation"]
    assert step(result, "postgres.api", "roundtrip")["status"] == "pass"


def test_tls_required_against_a_plain_server_fails_at_tls(
    tmp_path: Path, postgres17: PostgresServer
) -> None:
    result = run_postgres(tmp_path, database_values(postgres17, sslMode="require"))
    assert_fails_at(result, "tls", "does not offer TLS", "sslMode=require")


def test_verify_full_with_the_right_ca_passes(
    tmp_path: Path, postgres17_tls: PostgresServer
) -> None:
    assert postgres17_tls.ca is not None
    values = database_values(
        postgres17_tls, sslMode="verify-full", sslRootCert=str(postgres17_tls.ca)
    )
    result = run_postgres(tmp_path, values)
    assert result.code == 0, result.stdout
    assert result.check("postgres.api")["facts"]["tls_version"].startswith("TLSv1.")
    assert "host name verified" in step(result, "postgres.api", "tls")["detail"]


def test_verify_full_without_the_ca_fails_at_tls(
    tmp_path: Path, postgres17_tls: PostgresServer
) -> None:
    result = run_postgres(tmp_path, database_values(postgres17_tls, sslMode="VerifyFull"))
    assert_fails_at(result, "tls", "unknown authority")


def test_prefer_encrypts_without_verifying(tmp_path: Path, postgres17_tls: PostgresServer) -> None:
    result = run_postgres(tmp_path, database_values(postgres17_tls))
    assert result.code == 0, result.stdout
    assert result.check("postgres.api")["facts"]["tls_version"].startswith("TLSv1.")
    assert "not verified (sslMode=prefer)" in step(result, "postgres.api", "tls")["detail"]


def test_certificate_expiring_soon_warns(
    tmp_path: Path, postgres17_tls_expiring: PostgresServer
) -> None:
    server = postgres17_tls_expiring
    assert server.ca is not None
    result = run_postgres(
        tmp_path, database_values(server, sslMode="verify-full", sslRootCert=str(server.ca))
    )
    assert result.code == 0, result.stdout
    tls = step(result, "postgres.api", "tls")
    assert tls["status"] == "warn"
    assert "the server certificate expires in 5 days" in tls["detail"]
    assert result.check("postgres.api")["status"] == "warn"
    assert "cert_not_after" in result.check("postgres.api")["facts"]


def test_verify_ca_with_the_ca_passes(tmp_path: Path, postgres17_tls: PostgresServer) -> None:
    assert postgres17_tls.ca is not None
    values = database_values(
        postgres17_tls, sslMode="verify-ca", sslRootCert=str(postgres17_tls.ca)
    )
    result = run_postgres(tmp_path, values)
    assert result.code == 0, result.stdout
    assert (
        "certificate verified (sslMode=verify-ca)" in step(result, "postgres.api", "tls")["detail"]
    )


def test_plain_session_to_a_tls_only_server_fails_at_auth(
    tmp_path: Path, postgres17_tls: PostgresServer
) -> None:
    if not postgres17_tls.tls_only:
        pytest.skip("this server also admits plain sessions")
    result = run_postgres(tmp_path, database_values(postgres17_tls, sslMode="disable"))
    assert_fails_at(result, "auth", "pg_hba.conf has no entry", "sslMode")


def test_pools_larger_than_max_connections_warn(tmp_path: Path, postgres17: PostgresServer) -> None:
    values = database_values(postgres17, maxPoolSize=20)
    replicas = postgres17.max_connections // 20 + 1
    demand = 20 * replicas  # more than max_connections
    top = {"api": {"replicaCount": replicas}}
    result = run_postgres(tmp_path, values, top=top)
    assert result.code == 0, result.stdout
    entry = result.check("postgres.api")
    assert entry["status"] == "warn"
    capacity = step(result, "postgres.api", "capacity")
    assert capacity["status"] == "warn" and f"may open {demand} connections" in capacity["detail"]
    assert entry["facts"]["pool_demand"] == demand
    strict = run_postgres(tmp_path, values, None, "--strict", top=top)
    assert strict.code == 4


def test_both_databases_on_one_server_add_up(tmp_path: Path, postgres17: PostgresServer) -> None:
    api = database_values(postgres17)
    worker = database_values(postgres17, database=postgres17.second_database)
    api_replicas = postgres17.max_connections // 20  # the API's pools alone fit
    worker_replicas = (postgres17.max_connections - 20 * api_replicas) // 10 + 1  # both do not
    demand = 20 * api_replicas + 10 * worker_replicas
    top = {"api": {"replicaCount": api_replicas}, "worker": {"replicaCount": worker_replicas}}
    result = run_postgres(tmp_path, api, worker, only="postgres", top=top)
    for check_id in ("postgres.api", "postgres.worker"):
        assert result.check(check_id)["facts"]["pool_demand"] == demand
        assert step(result, check_id, "capacity")["status"] == "warn"


def test_read_only_skips_the_roundtrip(tmp_path: Path, postgres17: PostgresServer) -> None:
    result = run_postgres(tmp_path, database_values(postgres17), None, "--read-only")
    assert result.code == 0
    assert step(result, "postgres.api", "roundtrip")["status"] == "skip"


def test_api_and_worker_on_two_servers_in_one_run(
    tmp_path: Path, postgres17: PostgresServer, postgres17_tls: PostgresServer
) -> None:
    assert postgres17_tls.ca is not None
    api = database_values(postgres17)
    worker = database_values(
        postgres17_tls, database=postgres17_tls.second_database, sslMode="verify-full",
        sslRootCert=str(postgres17_tls.ca),
    )  # fmt: skip
    result = run_postgres(tmp_path, api, worker, only="postgres")
    assert result.code == 0, result.stdout
    ids = [c["id"] for c in result.report["checks"]]
    assert ids == ["values", "postgres.api", "postgres.worker"]
    assert result.check("postgres.api")["facts"]["address"].endswith(f":{postgres17.port}")
    assert result.check("postgres.worker")["facts"]["address"].endswith(f":{postgres17_tls.port}")
    assert result.check("postgres.worker")["facts"]["tls_version"].startswith("TLSv1.")
    assert result.check("postgres.api")["facts"]["pool_demand"] == 20  # not the same server
    text = run_postgres(tmp_path, api, worker, only="postgres", fmt="text")
    assert text.code == 0 and "postgres.api" in text.stdout and "postgres.worker" in text.stdout


def test_nothing_listening_fails_fast_at_tcp(tmp_path: Path, hostile: HostileServers) -> None:
    result = run_postgres(tmp_path, database_values_for(hostile.closed))
    assert_fails_at(result, "tcp", "connection refused")
    assert result.check("postgres.api")["duration_s"] < 1.0


def test_unknown_host_fails_at_dns(tmp_path: Path) -> None:
    values = {**database_values_for(5432), "host": "no-such-postgres.invalid"}
    assert_fails_at(run_postgres(tmp_path, values), "dns", "no-such-postgres.invalid")


def test_accept_and_hang_fails_within_the_timeout(tmp_path: Path, hostile: HostileServers) -> None:
    values = example_values()
    values["postgres"]["api"] = database_values_for(hostile.hang)
    result = run_cli(
        write_values(tmp_path, values), "--only", "postgres.api", "--format", "json",
        "--timeout", "2",
    )  # fmt: skip
    assert_fails_at(result, "tls", "timed out")
    assert result.check("postgres.api")["duration_s"] < 2.5
    assert result.duration_s < 2.5 + 2.0  # the interpreter's own start-up on a busy machine


@pytest.mark.parametrize(
    "kind", ["hang", "reset", "garbage", "http", "tls_untrusted", "tls_expired", "tls_stall"]
)
def test_hostile_servers_fail_cleanly(tmp_path: Path, hostile: HostileServers, kind: str) -> None:
    values = example_values()
    values["postgres"]["api"] = database_values_for(getattr(hostile, kind))
    result = run_cli(
        write_values(tmp_path, values), "--only", "postgres.api", "--format", "json",
        "--timeout", "2",
    )  # fmt: skip
    assert result.code == 3, result.stdout + result.stderr
    entry = result.check("postgres.api")
    assert entry["status"] == "fail" and entry["duration_s"] < 2.5
    assert result.failed_step("postgres.api")["name"] == "tls"
    assert "Traceback" not in result.stderr and "unexpected error" not in entry["message"]


def database_values_for(port: int) -> dict[str, Any]:
    """Values for a port on 127.0.0.1 where no real PostgreSQL is."""
    return {
        "host": "127.0.0.1",
        "port": port,
        "database": "axion_sense",
        "username": "axion_user",
        "password": "pw-never-shown-5521",
    }


TEXT_CASES = {
    "wrong-password": (
        "postgres17",
        {"password": "wrong-pw-3301"},
        "password authentication",
        "fix:",
    ),
    "too-old": ("postgres15", {}, "is too old", "upgrade the server"),
    "no-database": ("postgres17", {"database": "nope_db"}, "does not exist", "CREATE DATABASE"),
    "no-create": ("postgres17", {"role": "no_create"}, "on schema public", "GRANT USAGE, CREATE"),
    "no-connect": ("postgres17", {"role": "no_connect"}, "may not CONNECT", "GRANT CONNECT"),
    "tls-required": ("postgres17", {"sslMode": "require"}, "does not offer TLS", "enable ssl"),
}


@pytest.mark.parametrize("case", TEXT_CASES)
def test_failures_read_the_same_in_text(
    tmp_path: Path, request: pytest.FixtureRequest, case: str
) -> None:
    fixture, change, words, fix = TEXT_CASES[case]
    server: PostgresServer = request.getfixturevalue(fixture)
    change = dict(change)
    role = getattr(server, change.pop("role", "owner"))
    values = {**database_values(server, role), **change}
    result = run_postgres(tmp_path, values, fmt="text")
    assert result.code == 3, result.stdout
    lines = result.text_report.splitlines()
    index = next(i for i, line in enumerate(lines) if "postgres.api" in line)
    assert lines[index].startswith("FAIL") and words in lines[index], lines[index]
    assert lines[index + 1].lstrip().startswith("fix:") and fix in lines[index + 1]
    assert "wrong-pw-3301" not in result.stdout + result.stderr


def test_insecure_skip_tls_verify_passes_with_a_warning(
    tmp_path: Path, postgres17_tls: PostgresServer
) -> None:
    values = database_values(postgres17_tls, sslMode="verify-full")
    result = run_postgres(tmp_path, values, None, "--insecure-skip-tls-verify")
    assert result.code == 0, result.stdout
    tls = step(result, "postgres.api", "tls")
    assert tls["status"] == "warn" and "NOT verified" in tls["detail"]


def test_ca_bundle_option_verifies_the_server(
    tmp_path: Path, postgres17_tls: PostgresServer
) -> None:
    assert postgres17_tls.ca is not None
    values = database_values(postgres17_tls, sslMode="verify-full")
    result = run_postgres(tmp_path, values, None, "--ca-bundle", str(postgres17_tls.ca))
    assert result.code == 0, result.stdout
    assert "host name verified" in step(result, "postgres.api", "tls")["detail"]


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_roundtrip_leaves_nothing(
    tmp_path: Path, postgres17: PostgresServer, signal_number: int
) -> None:
    """Stopped while its scratch table exists (Ctrl-C, or killed outright): the transaction
    is rolled back and the session ends."""
    values = example_values()
    values["postgres"]["api"] = database_values(postgres17)
    path = write_values(tmp_path, values)
    proc = subprocess.Popen(
        [*holding_cli(15), path, "--only", "postgres.api", "--timeout", "20"],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: preflight_sessions(postgres17) == ["idle in transaction"])
        proc.send_signal(signal_number)
        proc.wait(10)
    finally:
        proc.kill()
        proc.wait()
    assert wait_for(lambda: preflight_sessions(postgres17) == [])
    assert postgres17.scratch_tables() == []


def preflight_sessions(server: PostgresServer) -> list[str]:
    """The states of the preflight's sessions on the server."""
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT state FROM pg_stat_activity WHERE application_name = 'sense-preflight'"
        ).fetchall()
    return [state for (state,) in rows]


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll until condition() holds; False when it did not within timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_quoted_port_reaches_the_server(tmp_path: Path, postgres17: PostgresServer) -> None:
    """`port: "5432"` in a values file, or `--set-string …port=5432`, is the port (as Helm
    renders it)."""
    quoted = run_postgres(tmp_path, database_values(postgres17, port=str(postgres17.port)))
    assert quoted.code == 0, quoted.stdout + quoted.stderr
    assert quoted.check("values")["status"] == "pass"
    assert quoted.check("postgres.api")["status"] == "pass"
    as_string = run_postgres(
        tmp_path,
        database_values(postgres17, port=1),  # the file's port is wrong; --set-string wins
        None,
        "--set-string",
        f"postgres.api.port={postgres17.port}",
    )
    assert as_string.code == 0, as_string.stdout + as_string.stderr
    assert as_string.check("postgres.api")["facts"]["server_version"].startswith("17.")
