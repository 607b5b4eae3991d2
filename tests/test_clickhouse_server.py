"""The ClickHouse fixtures give real servers that behave as the ClickHouse check's tests need."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from dataclasses import replace

import pytest

from tests.servers.clickhouse import ClickHouseServer, ClickHouseUser, http_query


def query_error(server: ClickHouseServer, sql: str, user: ClickHouseUser) -> tuple[int, str, str]:
    """HTTP status, X-ClickHouse-Exception-Code and body of a query that must fail."""
    with pytest.raises(urllib.error.HTTPError) as failed:
        http_query(server, sql, user)
    error = failed.value
    return error.code, error.headers.get("X-ClickHouse-Exception-Code", ""), error.read().decode()


def http_to_native_port(server: ClickHouseServer) -> bytes:
    """What the native-protocol port answers to an HTTP request."""
    if server.native_port is None:
        pytest.skip("the server from the environment has no known native port")
    with socket.create_connection((server.host, server.native_port), 5) as sock:
        sock.sendall(b"GET /ping HTTP/1.0\r\n\r\n")
        return sock.recv(4096)


def grants(server: ClickHouseServer, role: str) -> str:
    return http_query(server, "SHOW GRANTS", server.users[role])


def test_26_answers_ping_and_version(clickhouse26: ClickHouseServer) -> None:
    with urllib.request.urlopen(clickhouse26.url + "/ping", timeout=5) as response:
        assert response.read() == b"Ok.\n"
    assert clickhouse26.version.startswith("26.9.")
    user, tz = http_query(clickhouse26, "SELECT currentUser(), timezone()").split()
    assert user == clickhouse26.admin.name
    assert tz


def test_26_admin_roundtrip_through_clickhouse_connect(clickhouse26: ClickHouseServer) -> None:
    import clickhouse_connect

    admin = clickhouse26.admin
    client = clickhouse_connect.get_client(
        host=clickhouse26.host, port=clickhouse26.port, username=admin.name, password=admin.password
    )
    table = f"{clickhouse26.database}.sense_preflight_fixture"
    client.command(f"CREATE TABLE {table} (id UInt32) ENGINE = MergeTree ORDER BY id")
    try:
        client.insert(table, [[7]], column_names=["id"])
        assert client.query(f"SELECT id FROM {table}").result_rows == [(7,)]
    finally:
        client.command(f"DROP TABLE {table}")
    assert "CREATE DATABASE, CREATE TABLE" in grants(clickhouse26, "admin")


def test_26_wrong_password_is_code_516(clickhouse26: ClickHouseServer) -> None:
    wrong = replace(clickhouse26.admin, password="not-it")
    status, code, body = query_error(clickhouse26, "SELECT 1", wrong)
    assert (status, code) == (403, "516")
    assert "Authentication failed" in body


def test_26_user_from_another_address_is_refused(clickhouse26: ClickHouseServer) -> None:
    status, code, _ = query_error(clickhouse26, "SELECT 1", clickhouse26.users["elsewhere"])
    assert (status, code) == (403, "516")


def test_26_select_only_user_cannot_create(clickhouse26: ClickHouseServer) -> None:
    assert grants(clickhouse26, "select_only").startswith("GRANT SELECT ON axion_sense.* TO")
    sql = "CREATE TABLE axion_sense.sense_preflight_no (id UInt8) ENGINE = Memory"
    _, code, body = query_error(clickhouse26, sql, clickhouse26.users["select_only"])
    assert code == "497"
    assert "CREATE TABLE ON axion_sense.sense_preflight_no" in body


def test_26_readonly_profile(clickhouse26: ClickHouseServer) -> None:
    user = clickhouse26.users["readonly"]
    assert http_query(clickhouse26, "SELECT getSetting('readonly')", user).strip() == "1"
    sql = "CREATE TABLE axion_sense.sense_preflight_no (id UInt8) ENGINE = Memory"
    _, code, _ = query_error(clickhouse26, sql, clickhouse26.users["readonly"])
    assert code == "164"


def test_26_user_without_grants(clickhouse26: ClickHouseServer) -> None:
    assert grants(clickhouse26, "no_grants") == ""
    sql = "CREATE TABLE axion_sense.sense_preflight_no (id UInt8) ENGINE = Memory"
    _, code, _ = query_error(clickhouse26, sql, clickhouse26.users["no_grants"])
    assert code == "497"


def test_26_missing_database_with_and_without_create(clickhouse26: ClickHouseServer) -> None:
    missing = clickhouse26.missing_database
    sql = f"SELECT count() FROM system.databases WHERE name = '{missing}'"
    assert http_query(clickhouse26, sql).strip() == "0"
    assert "CREATE DATABASE" in grants(clickhouse26, "creator")
    assert "CREATE DATABASE" not in grants(clickhouse26, "no_create")
    _, code, body = query_error(
        clickhouse26, f"CREATE DATABASE {missing}", clickhouse26.users["no_create"]
    )
    assert code == "497"
    assert f"CREATE DATABASE ON {missing}.*" in body


def test_26_native_port_is_not_http(clickhouse26: ClickHouseServer) -> None:
    answer = http_to_native_port(clickhouse26)
    assert answer.startswith(b"HTTP/1.0 400 Bad Request")
    assert b"is for clickhouse-client program" in answer


def test_18_reports_its_version_over_plain_http(clickhouse18: ClickHouseServer) -> None:
    assert clickhouse18.version == "18.16.1"
    wrong = replace(clickhouse18.admin, password="not-it")
    status, code, body = query_error(clickhouse18, "SELECT 1", wrong)
    assert (status, code) == (401, "")  # no X-ClickHouse-Exception-Code before 19.x
    assert "Code: 193" in body


def test_18_is_too_old_for_clickhouse_connect(clickhouse18: ClickHouseServer) -> None:
    import clickhouse_connect
    from clickhouse_connect.driver.exceptions import DatabaseError

    admin = clickhouse18.admin
    with pytest.raises(DatabaseError, match="Unknown identifier: readonly"):
        clickhouse_connect.get_client(
            host=clickhouse18.host,
            port=clickhouse18.port,
            username=admin.name,
            password=admin.password,
        )


def test_18_native_port_answers_http_with_a_hint(clickhouse18: ClickHouseServer) -> None:
    answer = http_to_native_port(clickhouse18)
    assert b"is for clickhouse-client program" in answer


def test_18_says_when_a_user_may_not_log_in_from_here(clickhouse18: ClickHouseServer) -> None:
    _, _, body = query_error(clickhouse18, "SELECT 1", clickhouse18.users["elsewhere"])
    assert "Code: 195" in body
    assert "not allowed to connect from address 127.0.0.1" in body
