"""The PostgreSQL test servers behave as the postgres check's tests need (psycopg directly)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import trustme

from tests.servers.postgres import PostgresRole, PostgresServer


def test_17_has_version_and_owner_can_create(postgres17: PostgresServer) -> None:
    with psycopg.connect(postgres17.conninfo(postgres17.owner)) as conn:
        assert conn.info.server_version // 10000 == 17
        conn.execute("CREATE TABLE public.sense_preflight_probe(id int)")
        conn.rollback()
    assert postgres17.major == 17
    assert not postgres17.tls
    assert postgres17.scratch_tables() == []


def test_15_is_15(postgres15: PostgresServer) -> None:
    with psycopg.connect(postgres15.conninfo(postgres15.owner)) as conn:
        assert conn.info.server_version // 10000 == 15


def test_wrong_password_refused(postgres17: PostgresServer) -> None:
    bad = PostgresRole(postgres17.owner.name, "wrong")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(postgres17.conninfo(bad))


def test_unknown_database(postgres17: PostgresServer) -> None:
    with pytest.raises(psycopg.OperationalError, match='database "nope" does not exist'):
        psycopg.connect(postgres17.conninfo(postgres17.owner, database="nope"))


def test_no_connect_role_refused(postgres17: PostgresServer) -> None:
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(postgres17.conninfo(postgres17.no_connect))


def test_no_create_role_cannot_create_in_public(postgres17: PostgresServer) -> None:
    with (
        psycopg.connect(
            postgres17.conninfo(postgres17.no_create, database=postgres17.second_database)
        ) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("CREATE TABLE public.sense_preflight_probe(id int)")


def test_plain_server_refuses_sslmode_require(postgres17: PostgresServer) -> None:
    with pytest.raises(psycopg.OperationalError, match="does not support SSL"):
        psycopg.connect(postgres17.conninfo(postgres17.owner, sslmode="require"))


def test_tls_server_verify_full_with_ca(postgres17_tls: PostgresServer) -> None:
    assert postgres17_tls.tls and postgres17_tls.ca is not None
    conninfo = postgres17_tls.conninfo(
        postgres17_tls.owner, sslmode="verify-full", sslrootcert=str(postgres17_tls.ca)
    )
    with psycopg.connect(conninfo) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.info.server_version // 10000 == 17


def test_tls_server_verify_full_without_ca(postgres17_tls: PostgresServer, tmp_path: Path) -> None:
    empty = tmp_path / "other-ca.crt"
    trustme.CA().cert_pem.write_to_path(str(empty))
    conninfo = postgres17_tls.conninfo(
        postgres17_tls.owner, sslmode="verify-full", sslrootcert=str(empty)
    )
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(conninfo)


def test_limited_role_hits_its_connection_limit(postgres17: PostgresServer) -> None:
    with pytest.raises(psycopg.OperationalError, match="too many connections for role"):
        psycopg.connect(postgres17.conninfo(postgres17.limited))


def test_tls_only_server_refuses_plain_sessions(postgres17_tls: PostgresServer) -> None:
    assert postgres17_tls.tls_only
    with pytest.raises(psycopg.OperationalError, match=r"no pg_hba\.conf entry"):
        psycopg.connect(postgres17_tls.conninfo(postgres17_tls.owner, sslmode="disable"))
