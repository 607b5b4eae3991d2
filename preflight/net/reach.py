"""`reach`: the dns, tcp and tls layers as separate, timed steps of a check, the blackbox
exporter's way: resolve once, dial the IP, verify TLS against the name the user wrote.

An HTTP dependency the product would reach through a proxy (`preflight.net.proxy`) is reached
the same way: dns and tcp are those of the proxy, a `proxy` step asks it for the dependency
(CONNECT, or a forwarded HEAD) and the tls step runs through its tunnel, so every step says
what really happened."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from preflight.engine.check import Probe, Step, StepFailed
from preflight.engine.deadline import Deadline
from preflight.net.dns import resolve
from preflight.net.endpoint import Endpoint, endpoint_text
from preflight.net.proxy import Proxy, internal_reason, proxy_env, route
from preflight.net.tcp import connect_tcp
from preflight.net.tls import (
    TLS_PROTOCOL_FIX,
    TLS_VERIFY_FIX,
    TlsInfo,
    TlsSettings,
    judge_tls,
    tls_handshake,
    tls_settings,
)
from preflight.net.tunnel import ask_proxy

#: How long the proxy step may spend resolving the dependency's name here (only to tell
#: whether it is internal: the proxy resolves it for the request).
LOCAL_LOOKUP_S = 1.0


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
    probe: Probe,
    endpoint: Endpoint,
    tls: TlsSettings | None = None,
    *,
    plain_fix: str = "",
    routed: bool = True,
) -> Iterator[Connection]:
    """Run the dns, tcp and (when `tls` is given) tls steps; yield the open connection.

    Facts: `address` (IP dialled), and with TLS `tls_version`, `cert_not_after`. A certificate
    expiring within 14 days, or verification switched off, passes the tls step with a warning.
    `plain_fix` names the dependency's own TLS switch for a port that answers without TLS
    (e.g. "set s3.secured: false"). An http(s) endpoint the proxy variables send through a
    proxy is reached through it (fact `proxy`), with a `proxy` step after tcp; `routed=False`
    for a client that follows rules of its own.
    """
    http = routed and endpoint.scheme in ("http", "https")
    proxy = route(probe, endpoint) if http else None
    dialled = Endpoint(proxy.host, proxy.port) if proxy else endpoint
    with probe.step("dns") as step:
        addresses = resolve(dialled.host, dialled.port, probe.deadline)
        step.detail = f"{dialled.host} → {', '.join(addresses)}"
        if proxy is not None:
            step.detail = f"{proxy}: {step.detail}; {endpoint.host} is resolved by the proxy"
        elif http:
            step.detail += _direct_note(probe, endpoint)
    with probe.step("tcp") as step:
        sock, peer = connect_tcp(addresses, dialled.port, probe.deadline)
        step.detail = f"connected to {endpoint_text(peer, dialled.port)}"
        if proxy is not None:
            step.detail = f"connected to {proxy} at {endpoint_text(peer, dialled.port)}"
            probe.facts["proxy"] = str(proxy)
        else:
            probe.facts["address"] = endpoint_text(peer, endpoint.port)
    connection = Connection(endpoint, addresses, peer, sock)
    try:
        if proxy is not None:
            with probe.step("proxy") as step:
                _through_proxy(probe, step, connection, proxy)
        if tls is not None:
            with probe.step("tls") as step:
                try:
                    connection.sock, connection.tls = tls_handshake(
                        connection.sock, endpoint.host, tls, probe.deadline
                    )
                except StepFailed as exc:
                    raise _tls_failure(exc, plain_fix, proxy) from None
                judge_tls(probe, step, connection.tls, endpoint.host)
        yield connection
    finally:
        connection.sock.close()


def _direct_note(probe: Probe, endpoint: Endpoint) -> str:
    """` (direct: NO_PROXY has .svc)` when a proxy is set but NO_PROXY sends this one past it."""
    env = proxy_env(probe)
    entry = env.bypassed_by(endpoint.host)
    return f" (direct: {env.bypass_variable} has {entry})" if entry else ""


def _through_proxy(probe: Probe, step: Step, connection: Connection, proxy: Proxy) -> None:
    """The proxy step: the proxy's answer, and a warning when the product would send an
    internal dependency's traffic to it."""
    endpoint = connection.endpoint
    reason = internal_reason(
        endpoint.host, _local_addresses(probe, endpoint), probe.options.namespace
    )
    bypass = proxy_env(probe).bypass_variable
    try:
        answer = ask_proxy(connection.sock, proxy, endpoint, probe.deadline)
    except StepFailed as exc:
        if reason is None:
            raise
        raise StepFailed(
            f"{exc.detail}; {endpoint.host} is {reason}",
            f"add {endpoint.host} to {bypass}: the product should reach it directly (else: "
            f"{exc.remediation})",
        ) from None
    step.detail = f"{proxy}: {answer}"
    if reason is not None:
        step.warn(
            f"{endpoint.host} is {reason}, not in {bypass}: the product would send this "
            f"internal traffic to {proxy} ({answer})",
            f"add {endpoint.host} (or a suffix such as .svc or .cluster.local) to {bypass} in "
            "the chart's pods; .NET matches exact names and .suffixes only (no CIDR ranges, "
            "no *)",
        )


def _local_addresses(probe: Probe, endpoint: Endpoint) -> list[str]:
    """The dependency's addresses as resolved here, best effort (empty when it fails)."""
    limit = Deadline.after(min(LOCAL_LOOKUP_S, probe.deadline.remaining()))
    try:
        return resolve(endpoint.host, endpoint.port, limit)
    except (StepFailed, TimeoutError):
        return []


def _tls_failure(exc: StepFailed, plain_fix: str, proxy: Proxy | None) -> StepFailed:
    """The tls step's failure, with the dependency's TLS switch or the proxy named."""
    if plain_fix and exc.remediation == TLS_PROTOCOL_FIX:
        return StepFailed(
            exc.detail, f"check that this port serves TLS, or {plain_fix} if it is plain"
        )
    if (
        proxy is not None
        and exc.remediation == TLS_VERIFY_FIX
        and "unknown authority" in exc.detail
    ):
        return StepFailed(
            f"{exc.detail}, seen through {proxy}: a proxy that intercepts TLS presents its own "
            "certificate",
            "give the proxy's CA (--ca-bundle or the dependency's CA value) if it intercepts "
            "TLS, else the CA of the server; or add the host to NO_PROXY to reach it directly",
        )
    return exc


def reach_url(probe: Probe, endpoint: Endpoint) -> TlsSettings | None:
    """The dns, tcp and (for https) tls steps of an HTTP service; the TLS settings its HTTP
    client should use afterwards (None for plain http)."""
    tls = tls_settings(probe) if endpoint.scheme == "https" else None
    with reach(probe, endpoint, tls):
        pass
    return tls
