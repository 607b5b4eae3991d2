"""`custom-layers`: the Npgsql connection string, then the postgres checks' own steps, through
the real CLI against real PostgreSQL 17 and 15."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.postgres.custom_layers import params_from_connection_string, split_connection_string
from preflight.engine.check import StepFailed
from tests.cli import CliResult, example_values, run_cli, write_values
from tests.servers.hostile import HostileServers
from tests.servers.postgres import PostgresRole, PostgresServer
from tests.test_postgres import assert_fails_at, step

CHECK = "custom-layers"
SHARED_STEPS = ["config", "dns", "tcp", "tls", "auth", "version", "database"]


def connection_string(
    server: PostgresServer,
    role: PostgresRole | None = None,
    database: str | None = None,
    extra: dict[str, str] | None = None,
) -> str:
    """An Npgsql connection string for a test server (no password: it goes in its own value)."""
    role = role or server.owner
    parts = {
        "Host": server.host,
        "Port": str(server.port),
        "Database": database or server.second_database,
        "User ID": role.name,
        **(extra or {}),
    }
    return ";".join(f"{key}={value}" for key, value in parts.items())


def run_custom_layers(
    tmp_path: Path,
    text: str,
    password: str,
    *,
    fmt: str = "json",
    enabled: bool = True,
    timeout: float = 5,
) -> CliResult:
    """Run the CLI with custom-layers sync on (the rest is the guide's example)."""
    values = example_values()
    values["worker"]["customLayersSync"] = {
        "enabled": enabled,
        "connectionString": text,
        "password": password,
    }
    path = write_values(tmp_path, values)
    return run_cli(path, "--only", CHECK, "--format", fmt, "--timeout", str(timeout))


# --- the connection string ----------------------------------------------------------------------


def test_npgsql_keywords_and_quoting() -> None:
    pairs = split_connection_string(
        " Server = db.example ; Port=6432;;DB=layers;User Id=bob;"
        "Password='p;w''d';SSL Mode=VerifyFull;Root Certificate=\"/ca.pem\";"
    )
    assert pairs == {
        "server": "db.example",
        "port": "6432",
        "db": "layers",
        "userid": "bob",
        "password": "p;w'd",
        "sslmode": "VerifyFull",
        "rootcertificate": "/ca.pem",
    }
    text = "Server=db.example;Port=6432;DB=layers;User Id=bob;Password=own;SSL Mode=VerifyFull"
    params = params_from_connection_string(text, "from-values")
    assert (params.host, params.port, params.database, params.user) == (
        "db.example",
        6432,
        "layers",
        "bob",
    )
    assert params.password == "from-values" and params.ssl_mode == "verify-full"


def test_defaults_follow_npgsql() -> None:
    params = params_from_connection_string("Host=h1,h2;Username=alice;Password=pw", None)
    assert (params.host, params.port, params.database, params.ssl_mode) == (
        "h1",
        5432,
        "alice",
        "prefer",
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Host=db;junk;Password=s3cret-77", "is not Key=Value"),
        ("Host=db;Username=u;Password='s3cret-77", "not properly quoted"),
        ("Database=x;Password=s3cret-77", "has no Host, Username"),
        ("Host=db;Username=u;Password=s3cret-77;SSL Mode=sometimes", "is not one of"),
        ("Host=db;Port=abc;Username=u;Password=s3cret-77", "is not a port number"),
    ],
)
def test_bad_connection_strings_never_show_their_text(text: str, words: str) -> None:
    with pytest.raises(StepFailed) as caught:
        params_from_connection_string(text, None)
    assert words in caught.value.detail
    assert "s3cret" not in caught.value.detail + caught.value.remediation


# --- through the CLI ----------------------------------------------------------------------------


def test_healthy_17_passes_with_the_shared_steps(
    tmp_path: Path, postgres17: PostgresServer
) -> None:
    result = run_custom_layers(tmp_path, connection_string(postgres17), postgres17.owner.password)
    assert result.code == 0, result.stdout + result.stderr
    entry = result.check(CHECK)
    assert entry["status"] == "pass"
    assert [s["name"] for s in entry["steps"]] == SHARED_STEPS
    assert entry["facts"]["server_version"].startswith("17.")
    assert entry["facts"]["database_owner"] == postgres17.owner.name
    text = run_custom_layers(
        tmp_path, connection_string(postgres17), postgres17.owner.password, fmt="text"
    )
    line = next(line for line in text.text_report.splitlines() if CHECK in line)
    assert text.code == 0 and line.startswith("PASS") and postgres17.second_database in line


def test_15_fails_at_version(tmp_path: Path, postgres15: PostgresServer) -> None:
    result = run_custom_layers(tmp_path, connection_string(postgres15), postgres15.owner.password)
    assert_fails_at(result, "version", "PostgreSQL 15.", "17 or newer", check_id=CHECK)


def test_wrong_password_fails_at_auth(tmp_path: Path, postgres17: PostgresServer) -> None:
    result = run_custom_layers(tmp_path, connection_string(postgres17), "wrong-pw-4410")
    assert_fails_at(
        result, "auth", "password authentication failed", "worker.customLayersSync.password",
        check_id=CHECK,
    )  # fmt: skip
    assert "wrong-pw-4410" not in result.stdout + result.stderr


def test_unknown_database_fails_at_database(tmp_path: Path, postgres17: PostgresServer) -> None:
    text = connection_string(postgres17, database="no_layers")
    result = run_custom_layers(tmp_path, text, postgres17.owner.password)
    assert_fails_at(
        result, "database", "no_layers does not exist", "Database in worker.customLayersSync",
        check_id=CHECK,
    )  # fmt: skip


def test_role_without_connect_fails_at_database(tmp_path: Path, postgres17: PostgresServer) -> None:
    text = connection_string(postgres17, postgres17.no_connect)
    result = run_custom_layers(tmp_path, text, postgres17.no_connect.password)
    assert_fails_at(result, "database", "may not CONNECT", "GRANT CONNECT", check_id=CHECK)


def test_ssl_mode_require_against_a_plain_server_fails_at_tls(
    tmp_path: Path, postgres17: PostgresServer
) -> None:
    text = connection_string(postgres17, extra={"SSL Mode": "Require"})
    result = run_custom_layers(tmp_path, text, postgres17.owner.password)
    assert_fails_at(
        result, "tls", "does not offer TLS", "SSL Mode in worker.customLayersSync", check_id=CHECK
    )


def test_verify_full_with_root_certificate_passes(
    tmp_path: Path, postgres17_tls: PostgresServer
) -> None:
    assert postgres17_tls.ca is not None
    extra = {"SSL Mode": "VerifyFull", "Root Certificate": str(postgres17_tls.ca)}
    result = run_custom_layers(
        tmp_path, connection_string(postgres17_tls, extra=extra), postgres17_tls.owner.password
    )
    assert result.code == 0, result.stdout
    assert result.check(CHECK)["facts"]["tls_version"].startswith("TLSv1.")
    assert "host name verified" in step(result, CHECK, "tls")["detail"]


def test_bad_connection_string_fails_at_config(tmp_path: Path) -> None:
    result = run_custom_layers(tmp_path, "Host=db.example;Username=u;oops", "pw-never-shown-9921")
    assert_fails_at(result, "config", "is not Key=Value", check_id=CHECK)
    assert "pw-never-shown-9921" not in result.stdout + result.stderr


def test_disabled_sync_is_skipped(tmp_path: Path) -> None:
    result = run_custom_layers(tmp_path, "Host=db.example;Username=u", "pw", enabled=False)
    assert result.code == 0
    entry = result.check(CHECK)
    assert entry["status"] == "skip" and "customLayersSync.enabled" in entry["message"]


def test_a_server_that_is_not_postgresql_fails_at_tls(
    tmp_path: Path, hostile: HostileServers
) -> None:
    text = f"Host=127.0.0.1;Port={hostile.http};Database=layers;Username=u"
    result = run_custom_layers(tmp_path, text, "pw-never-shown-9921")
    assert_fails_at(result, "tls", "does not speak the PostgreSQL protocol", check_id=CHECK)


def test_accept_and_hang_fails_within_the_timeout(tmp_path: Path, hostile: HostileServers) -> None:
    text = f"Host=127.0.0.1;Port={hostile.hang};Database=layers;Username=u"
    result = run_custom_layers(tmp_path, text, "pw-never-shown-9921", timeout=2)
    assert_fails_at(result, "tls", "timed out", check_id=CHECK)
    assert result.check(CHECK)["duration_s"] < 2.5
