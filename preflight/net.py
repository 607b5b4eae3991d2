"""Shared network layers for every check: endpoint parsing, DNS, TCP, TLS, HTTP.

Each layer takes the check's one `Deadline` and raises `StepFailed` with a precise one-line
message. `reach()` runs dns → tcp → tls as separate, timed steps of a check, the blackbox
exporter's way: resolve once, dial the IP, verify TLS against the name the user wrote.
"""

from __future__ import annotations

import datetime as dt
import errno
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from preflight.engine.certificates import record_certificate
from preflight.engine.check import Probe, StepFailed
from preflight.engine.deadline import Deadline, DeadlineExceeded

if TYPE_CHECKING:
    import httpx

CERT_EXPIRY_WARNING_DAYS = 14


@dataclass(frozen=True)
class Endpoint:
    """Where a dependency listens. `scheme` is empty for a bare host:port."""

    host: str
    port: int
    scheme: str = ""
    path: str = ""

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path}" if self.scheme else self.netloc


_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_endpoint(
    text: str, default_port: int | None = None, default_scheme: str = ""
) -> Endpoint:
    """Parse `host`, `host:port`, `[v6]:port`, `v6` or a URL; StepFailed says what is wrong."""
    raw = str(text).strip()
    if not raw:
        raise StepFailed("no address given", "set the host in your values")
    if "://" not in raw:
        try:  # a bare IPv6 literal such as ::1
            return Endpoint(
                str(ipaddress.IPv6Address(raw)), _need_port(raw, default_port), default_scheme
            )
        except ValueError:
            pass
        raw_url = f"{default_scheme or 'tcp'}://{raw}"
    else:
        raw_url = raw
    try:
        parts = urlsplit(raw_url)
        port = parts.port
    except ValueError as exc:
        raise StepFailed(
            f"{raw!r} is not a valid address: {exc}", "use host, host:port or a URL"
        ) from None
    scheme = parts.scheme if "://" in raw else default_scheme
    if not parts.hostname:
        raise StepFailed(f"{raw!r} has no host name", "use host, host:port or a URL")
    if port is None:
        port = _DEFAULT_PORTS.get(scheme) if default_port is None else default_port
    return Endpoint(
        parts.hostname, _need_port(raw, port), scheme, parts.path if "://" in raw else ""
    )


def _need_port(raw: str, port: int | None) -> int:
    if port is None:
        raise StepFailed(f"{raw!r} has no port", "add :PORT to the address")
    if not 0 < port < 65536:
        raise StepFailed(f"port {port} of {raw!r} is out of range 1-65535")
    return port


# --- dns ----------------------------------------------------------------------------------


def resolve(host: str, port: int, deadline: Deadline) -> list[str]:
    """Resolve host to its IP addresses (getaddrinfo has no timeout: it runs in a thread)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    outcome: dict[str, Any] = {}

    def lookup() -> None:
        try:
            outcome["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=lookup, name=f"dns {host}", daemon=True)
    worker.start()
    worker.join(deadline.timeout())
    if worker.is_alive():
        raise StepFailed(f"DNS: lookup of {host} timed out", _DNS_FIX)
    if "error" in outcome:
        raise StepFailed(f"DNS: {_dns_reason(outcome['error'])} ({host})", _DNS_FIX)
    addresses = list(dict.fromkeys(info[4][0] for info in outcome["infos"]))
    if not addresses:
        raise StepFailed(f"DNS: {host} has no address", _DNS_FIX)
    return addresses


_DNS_FIX = "check the host name for typos and that this machine (or pod) can resolve it"


def _dns_reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
            return "name not found"
        if exc.errno == socket.EAI_AGAIN:
            return "temporary failure (no DNS server answered)"
    return exc.strerror or str(exc)


# --- tcp ----------------------------------------------------------------------------------


def connect_tcp(addresses: list[str], port: int, deadline: Deadline) -> tuple[socket.socket, str]:
    """Connect to the first address that accepts; return the socket (with a deadline-based
    timeout) and the address it reached."""
    reasons: list[str] = []
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(deadline.timeout())
            sock.connect((address, port))
            sock.settimeout(deadline.timeout())
            return sock, address
        except ConnectionResetError:
            # The handshake completed and the server reset at once; the reset merely beat the
            # check's look at the socket. TCP works: the next layer reports the reset.
            sock.settimeout(deadline.timeout())
            return sock, address
        except DeadlineExceeded:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            reasons.append(f"{_endpoint_text(address, port)}: {_tcp_reason(exc)}")
            if isinstance(exc, TimeoutError):
                break
    raise StepFailed(f"TCP: {'; '.join(reasons)}", _TCP_FIX)


_TCP_FIX = (
    "check the host and port, that the service is running, and that no firewall or "
    "NetworkPolicy blocks traffic from here"
)


def _endpoint_text(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _tcp_reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "connection timed out (packets dropped?)"
    return {
        errno.ECONNREFUSED: "connection refused (nothing listens on that port)",
        errno.EHOSTUNREACH: "no route to host",
        errno.ENETUNREACH: "network unreachable",
        errno.ECONNRESET: "connection reset",
        errno.EPIPE: "connection closed by the server",
    }.get(exc.errno or 0, exc.strerror or str(exc))


# --- tls ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsSettings:
    """How to verify a server: against the system CAs or a CA bundle, or not at all.
    `check_hostname=False` verifies the chain only (libpq's verify-ca)."""

    ca_file: Path | None = None
    verify: bool = True
    check_hostname: bool = True

    def context(self) -> ssl.SSLContext:
        if not self.verify:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        try:
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise StepFailed(
                f"TLS: cannot load CA bundle {self.ca_file}: {exc.strerror or exc}",
                "point the CA option at a readable PEM file",
            ) from None
        context.check_hostname = self.check_hostname
        return context


def tls_settings(probe: Probe, ca_file: str | Path | None = None) -> TlsSettings:
    """TLS settings for a check: its own CA file if the values give one, else --ca-bundle;
    --insecure-skip-tls-verify turns verification off (reported as a warning by `reach`)."""
    chosen = Path(ca_file) if ca_file else probe.options.ca_bundle
    return TlsSettings(ca_file=chosen, verify=not probe.options.insecure_skip_tls_verify)


@dataclass(frozen=True)
class TlsInfo:
    """What the handshake showed."""

    version: str
    not_after: dt.datetime | None
    verified: bool


def tls_handshake(
    sock: socket.socket, server_name: str, settings: TlsSettings, deadline: Deadline
) -> tuple[ssl.SSLSocket, TlsInfo]:
    """Handshake on a connected socket, verifying the certificate against server_name (SNI)."""
    context = settings.context()
    sock.settimeout(deadline.timeout())
    try:
        tls = context.wrap_socket(sock, server_hostname=server_name)
    except ssl.SSLCertVerificationError as exc:
        raise StepFailed(f"TLS: {_verify_reason(exc, server_name)}", _TLS_VERIFY_FIX) from None
    except ssl.SSLError as exc:
        raise StepFailed(f"TLS: {_ssl_reason(exc)}", _TLS_PROTOCOL_FIX) from None
    except TimeoutError:
        raise StepFailed(
            "TLS: handshake timed out (the server accepted but never completed TLS)",
            _TLS_PROTOCOL_FIX,
        ) from None
    except ConnectionError as exc:
        raise StepFailed(
            f"TLS: connection closed during the handshake ({_tcp_reason(exc)})", _TLS_PROTOCOL_FIX
        ) from None
    except OSError as exc:
        raise StepFailed(
            f"TLS: handshake failed: {exc.strerror or exc}", _TLS_PROTOCOL_FIX
        ) from None
    return tls, TlsInfo(tls.version() or "unknown", _not_after(tls), settings.verify)


_TLS_VERIFY_FIX = (
    "give the CA that signed the server certificate (--ca-bundle or the dependency's CA value), "
    "or fix the certificate; --insecure-skip-tls-verify only for a test"
)
_TLS_PROTOCOL_FIX = (
    "check that this port serves TLS, or turn TLS off for this dependency if it is plain"
)


def _verify_reason(exc: ssl.SSLCertVerificationError, server_name: str) -> str:
    message = (exc.verify_message or str(exc)).lower()
    if "expired" in message:
        return "certificate has expired"
    if "not yet valid" in message:
        return "certificate is not yet valid"
    if (
        "self-signed" in message
        or "self signed" in message
        or "unable to get local issuer" in message
    ):
        return "certificate signed by unknown authority"
    if "hostname mismatch" in message or "ip address mismatch" in message:
        return f"certificate is not valid for {server_name}"
    return f"certificate verification failed: {exc.verify_message or exc}"


def _ssl_reason(exc: ssl.SSLError) -> str:
    reason = (exc.reason or "").upper()
    if reason in (
        "WRONG_VERSION_NUMBER",
        "HTTP_REQUEST",
        "UNKNOWN_PROTOCOL",
        "RECORD_LAYER_FAILURE",
        "PACKET_LENGTH_TOO_LONG",
    ):
        return "the server did not answer with TLS (is this a plain-text port?)"
    if "UNEXPECTED_EOF" in reason or isinstance(exc, ssl.SSLEOFError):
        return "the server closed the connection during the handshake"
    return f"handshake failed: {exc.reason or exc}"


def _not_after(tls: ssl.SSLSocket) -> dt.datetime | None:
    cert = tls.getpeercert()
    if not cert or "notAfter" not in cert:
        return None
    return dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(str(cert["notAfter"])), dt.UTC)


# --- the staged helper --------------------------------------------------------------------


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
        step.detail = f"connected to {_endpoint_text(peer, endpoint.port)}"
        probe.facts["address"] = _endpoint_text(peer, endpoint.port)
    connection = Connection(endpoint, addresses, peer, sock)
    try:
        if tls is not None:
            with probe.step("tls") as step:
                try:
                    connection.sock, connection.tls = tls_handshake(
                        sock, endpoint.host, tls, probe.deadline
                    )
                except StepFailed as exc:
                    if plain_fix and exc.remediation == _TLS_PROTOCOL_FIX:
                        fix = f"check that this port serves TLS, or {plain_fix} if it is plain"
                        raise StepFailed(exc.detail, fix) from None
                    raise
                _judge_tls(probe, step, connection.tls, endpoint.host)
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


def _judge_tls(probe: Probe, step: Any, info: TlsInfo, host: str) -> None:
    probe.facts["tls_version"] = info.version
    step.detail = f"{info.version}, certificate verified"
    if info.not_after is not None:
        record_certificate(probe, host, info.not_after)
        days = (info.not_after - dt.datetime.now(dt.UTC)).days
        if days < CERT_EXPIRY_WARNING_DAYS:
            step.warn(
                f"{info.version}; the server certificate expires in {days} days",
                "renew the server certificate",
            )
    if not info.verified:
        step.warn(
            f"{info.version}; certificate NOT verified (--insecure-skip-tls-verify)",
            "give the CA bundle instead of skipping verification",
        )


# --- http ---------------------------------------------------------------------------------


def http_client(probe: Probe, tls: TlsSettings | None = None, **kwargs: Any) -> httpx.Client:
    """An httpx client whose every request is bounded by the check's deadline."""
    import httpx

    settings = tls or tls_settings(probe)
    verify: ssl.SSLContext | bool = settings.context()
    return httpx.Client(
        verify=verify, timeout=probe.deadline.timeout(), follow_redirects=False, **kwargs
    )


def http_request(
    probe: Probe, client: httpx.Client, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """One request under the deadline; connection-level errors become precise StepFailed."""
    import httpx

    left = probe.deadline.timeout()
    try:
        return client.request(method, url, timeout=httpx.Timeout(left), **kwargs)
    except httpx.TimeoutException as exc:
        raise StepFailed(
            f"HTTP: {_timeout_phase(exc)} timed out for {_safe_url(url)}", _TCP_FIX
        ) from None
    except httpx.HTTPError as exc:
        raise _http_failure(url, exc) from None


def _http_failure(url: str, exc: Exception) -> StepFailed:
    """What a failed request means, as a StepFailed (timeouts are handled before)."""
    import httpx

    where = _safe_url(url)
    if how := _hang_up(exc):
        return StepFailed(
            f"HTTP: {where} accepted the connection, then closed it without answering ({how})",
            "check that this port serves HTTP(S), and that the service (or the proxy or load "
            "balancer in front of it) has a healthy backend",
        )
    if isinstance(exc, httpx.ConnectError):
        return StepFailed(f"HTTP: cannot connect to {where}: {_connect_reason(exc)}", _TCP_FIX)
    if isinstance(exc, httpx.RemoteProtocolError):
        return StepFailed(
            f"HTTP: {where} did not answer with valid HTTP: {exc}",
            "check that this port serves HTTP",
        )
    return StepFailed(f"HTTP: request to {where} failed: {exc}")


def _hang_up(exc: Exception) -> str:
    """'connection reset' or 'disconnected' when the server hung up before answering; else ''.
    Which of the two a client sees for one server is a race, so both get one message."""
    import httpx

    if isinstance(exc, httpx.RemoteProtocolError) and "without sending a response" in str(exc):
        return "disconnected"
    if any(
        isinstance(cause, OSError) and cause.errno in (errno.ECONNRESET, errno.EPIPE)
        for cause in causes(exc)
    ):
        return "connection reset"
    return ""


def _timeout_phase(exc: Exception) -> str:
    import httpx

    if isinstance(exc, httpx.ConnectTimeout):
        return "connect"
    if isinstance(exc, httpx.ReadTimeout):
        return "waiting for the answer"
    return "request"


def _connect_reason(exc: Exception) -> str:
    for cause in causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return _verify_reason(cause, "the host")
        if isinstance(cause, ssl.SSLError):
            return _ssl_reason(cause)
        if isinstance(cause, OSError) and cause.errno:
            return _tcp_reason(cause)
    return str(exc)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what caused it (`__cause__`, else `__context__`), down to the innermost:
    client libraries wrap the socket error that says what happened."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        yield cause
        cause = cause.__cause__ or cause.__context__


def _safe_url(url: str) -> str:
    """The URL without user info or query (which may carry credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{parts.scheme}://{netloc}{parts.path}"
