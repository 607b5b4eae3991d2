"""`reach`: the dns, tcp and tls layers as separate, timed steps of a check, the blackbox
exporter's way: resolve once, dial the IP, verify TLS against the name the user wrote."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from preflight.engine.check import Probe, StepFailed
from preflight.net.dns import resolve
from preflight.net.endpoint import Endpoint, endpoint_text
from preflight.net.tcp import connect_tcp
from preflight.net.tls import (
    TLS_PROTOCOL_FIX,
    TlsInfo,
    TlsSettings,
    judge_tls,
    tls_handshake,
    tls_settings,
)


@dataclass
class Connection:
    """An open connection made by `reach`, with what each layer learned."""

    endpoint: Endpoint
    addresses: list[str]
    address: str
    sock: socket.socket
    tls: TlsInfo | None = None


@contextmanager
def reach(
    probe: Probe, endpoint: Endpoint, tls: TlsSettings | None = None, *, plain_fix: str = ""
) -> Iterator[Connection]:
    """Run the dns, tcp and (when `tls` is given) tls steps; yield the open connection.

    Facts: `address` (IP dialled), and with TLS `tls_version`, `cert_not_after`. A certificate
    expiring within 14 days, or verification switched off, passes the tls step with a warning.
    `plain_fix` names the dependency's own TLS switch for a port that answers without TLS
    (e.g. "set s3.secured: false").
    """
    with probe.step("dns") as step:
        addresses = resolve(endpoint.host, endpoint.port, probe.deadline)
        step.detail = f"{endpoint.host} → {', '.join(addresses)}"
    with probe.step("tcp") as step:
        sock, peer = connect_tcp(addresses, endpoint.port, probe.deadline)
        step.detail = f"connected to {endpoint_text(peer, endpoint.port)}"
        probe.facts["address"] = endpoint_text(peer, endpoint.port)
    connection = Connection(endpoint, addresses, peer, sock)
    try:
        if tls is not None:
            with probe.step("tls") as step:
                try:
                    connection.sock, connection.tls = tls_handshake(
                        sock, endpoint.host, tls, probe.deadline
                    )
                except StepFailed as exc:
                    if plain_fix and exc.remediation == TLS_PROTOCOL_FIX:
                        fix = f"check that this port serves TLS, or {plain_fix} if it is plain"
                        raise StepFailed(exc.detail, fix) from None
                    raise
                judge_tls(probe, step, connection.tls, endpoint.host)
        yield connection
    finally:
        connection.sock.close()


def reach_url(probe: Probe, endpoint: Endpoint) -> TlsSettings | None:
    """The dns, tcp and (for https) tls steps of an HTTP service; the TLS settings its HTTP
    client should use afterwards (None for plain http)."""
    tls = tls_settings(probe) if endpoint.scheme == "https" else None
    with reach(probe, endpoint, tls):
        pass
    return tls
