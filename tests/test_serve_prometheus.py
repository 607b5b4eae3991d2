"""A real Prometheus scrapes `sense-preflight serve`: the check statuses and the certificate
expiry it stored, and a dependency stopped mid-test turning to fail."""

from __future__ import annotations

import socket
import ssl
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509

from preflight import __version__
from preflight.report.redact import find_secrets
from tests.serve import postgres_values, serving
from tests.servers._process import ServerProcess, tools_dir
from tests.servers.postgres import PG17_BIN, PostgresServer, provision, start_local
from tests.servers.prometheus import Prometheus, values_of

SSL_REQUEST = struct.pack("!ii", 8, 80877103)


@pytest.fixture
def doomed_postgres(session_dir: Path) -> Iterator[tuple[PostgresServer, ServerProcess]]:
    """A PostgreSQL 17 of this test's own, which the test stops (no other test uses it)."""
    bin_dir = tools_dir() / "postgres17" / PG17_BIN
    if not (bin_dir / "postgres").exists():
        pytest.skip(f"needs a local PostgreSQL 17 to stop: run .ci/setup/postgres.sh ({bin_dir})")
    proc, conninfo, superuser = start_local("postgres17-doomed", bin_dir, session_dir)
    try:
        yield provision(conninfo, superuser), proc
    finally:
        proc.stop()


def certificate_not_after(server: PostgresServer) -> float:
    """The server certificate's expiry, read from the server itself (PostgreSQL's SSLRequest,
    then a TLS handshake), as Unix time."""
    assert server.ca is not None
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(SSL_REQUEST)
        assert sock.recv(1) == b"S"
        context = ssl.create_default_context(cafile=str(server.ca))
        with context.wrap_socket(sock, server_hostname=server.host) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()


def status(check: str, value: str) -> str:
    return f'sense_preflight_check_status{{check="{check}",status="{value}"}}'


def equals(expected: float) -> Callable[[list[dict]], bool]:
    return lambda series: values_of(series) == [expected]


def test_prometheus_stores_statuses_and_expiry_and_sees_a_stopped_server_fail(
    postgres17_tls: PostgresServer,
    doomed_postgres: tuple[PostgresServer, ServerProcess],
    start_prometheus: Callable,
    tmp_path: Path,
) -> None:
    doomed, doomed_proc = doomed_postgres
    values = postgres_values(postgres17_tls, doomed)
    args = ("--only", "postgres", "--interval", "1s", "--timeout", "5s")
    with serving(tmp_path, values, *args) as exporter, start_prometheus([exporter.address]) as prom:
        prom: Prometheus
        # Both checks pass; the one-hot status has exactly one 1 per check.
        for check in ("postgres.api", "postgres.worker"):
            prom.wait_for(status(check, "pass"), equals(1))
            assert values_of(
                prom.query(f'sum(sense_preflight_check_status{{check="{check}"}})')
            ) == [1]
        assert values_of(prom.query(status("postgres.api", "fail"))) == [0]
        tcp = 'sense_preflight_step_success{check="postgres.worker",step="tcp"}'
        assert values_of(prom.query(tcp)) == [1]

        # The TLS server's certificate: its not-after, under the host the values name.
        (expiry,) = prom.wait_for("sense_preflight_tls_not_after_timestamp_seconds", bool)
        assert expiry["metric"]["check"] == "postgres.api"
        assert expiry["metric"]["host"] == postgres17_tls.host
        assert float(expiry["value"][1]) == certificate_not_after(postgres17_tls)

        (build,) = prom.query("sense_preflight_build_info")
        assert build["metric"]["version"] == __version__
        assert values_of(prom.query("sense_preflight_config_reload_success")) == [1]
        assert values_of(prom.query("sense_preflight_last_run_timestamp_seconds"))[0] > 0

        # The worker's server goes away: its series turn to fail, at tcp; the api's stays pass.
        doomed_proc.stop()
        stopped = time.monotonic()
        prom.wait_for(status("postgres.worker", "fail"), equals(1))
        print(
            f"\npostgres.worker fail stored by Prometheus {time.monotonic() - stopped:.1f}s after the stop"
        )
        assert values_of(prom.query(status("postgres.worker", "pass"))) == [0]
        prom.wait_for(tcp, equals(0))
        assert values_of(prom.query(status("postgres.api", "pass"))) == [1]

        report = exporter.get("/report").json()
        worker = next(c for c in report["checks"] if c["id"] == "postgres.worker")
        assert worker["status"] == "fail" and "connection refused" in worker["message"]
        # (the first failing run may meet the server shutting down, a later one nothing at all)
        assert "postgres.worker: pass -> fail: " in exporter.log()

        # No secret of the values in anything it served or logged.
        served = [exporter.get(p).text for p in ("/metrics", "/report")]
        served.append(exporter.get("/probe", {"check": "postgres.api"}).text)
        secrets = find_secrets(values)
        assert {postgres17_tls.owner.password, doomed.owner.password} <= secrets
        for text in [*served, exporter.log()]:
            assert not [secret for secret in secrets if secret in text]
    assert exporter.proc.returncode == 0
