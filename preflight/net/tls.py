"""The tls layer: settings, the handshake, and the one judge of what it showed (expiry,
verification switched off) that every check's handshake goes through."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from preflight.engine.check import Probe, Step, StepFailed
from preflight.engine.deadline import Deadline
from preflight.net.tcp import tcp_reason

CERT_EXPIRY_WARNING_DAYS = 14


@dataclass(frozen=True)
class TlsSettings:
    """How to verify a server: against the system CAs or a CA bundle, or not at all.
    `check_hostname=False` verifies the chain only (libpq's verify-ca); `skipped` says that
    --insecure-skip-tls-verify switched off a verification that would otherwise be made."""

    ca_file: Path | None = None
    verify: bool = True
    check_hostname: bool = True
    skipped: bool = False

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
    --insecure-skip-tls-verify turns verification off (reported as a warning by `judge_tls`)."""
    chosen = Path(ca_file) if ca_file else probe.options.ca_bundle
    insecure = probe.options.insecure_skip_tls_verify
    return TlsSettings(ca_file=chosen, verify=not insecure, skipped=insecure)


@dataclass(frozen=True)
class TlsInfo:
    """What the handshake showed."""

    version: str
    not_after: dt.datetime | None
    verified: bool
    skipped: bool = False


def tls_handshake(
    sock: socket.socket, server_name: str, settings: TlsSettings, deadline: Deadline
) -> tuple[ssl.SSLSocket, TlsInfo]:
    """Handshake on a connected socket, verifying the certificate against server_name (SNI)."""
    context = settings.context()
    sock.settimeout(deadline.timeout())
    try:
        tls = context.wrap_socket(sock, server_hostname=server_name)
    except ssl.SSLCertVerificationError as exc:
        raise StepFailed(f"TLS: {verify_reason(exc, server_name)}", TLS_VERIFY_FIX) from None
    except ssl.SSLError as exc:
        raise StepFailed(f"TLS: {ssl_reason(exc)}", TLS_PROTOCOL_FIX) from None
    except TimeoutError:
        raise StepFailed(
            "TLS: handshake timed out (the server accepted but never completed TLS)",
            TLS_PROTOCOL_FIX,
        ) from None
    except ConnectionError as exc:
        raise StepFailed(
            f"TLS: connection closed during the handshake ({tcp_reason(exc)})", TLS_PROTOCOL_FIX
        ) from None
    except OSError as exc:
        raise StepFailed(
            f"TLS: handshake failed: {exc.strerror or exc}", TLS_PROTOCOL_FIX
        ) from None
    version = tls.version()
    if version is None:
        # A reset that lands before the handshake leaves the socket "not connected": Python
        # then skips the handshake without raising, and no TLS session exists.
        tls.close()
        raise StepFailed(
            "TLS: connection closed during the handshake (connection reset)", TLS_PROTOCOL_FIX
        )
    return tls, TlsInfo(version, _not_after(tls), settings.verify, settings.skipped)


TLS_VERIFY_FIX = (
    "give the CA that signed the server certificate (--ca-bundle or the dependency's CA value), "
    "or fix the certificate; --insecure-skip-tls-verify only for a test"
)
TLS_PROTOCOL_FIX = (
    "check that this port serves TLS, or turn TLS off for this dependency if it is plain"
)


def verify_reason(exc: ssl.SSLCertVerificationError, server_name: str) -> str:
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


def ssl_reason(exc: ssl.SSLError) -> str:
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


def judge_tls(probe: Probe, step: Step, info: TlsInfo, host: str, detail: str = "") -> None:
    """The one verdict on a handshake with `host`, whatever protocol carried it (HTTPS,
    PostgreSQL's SSLRequest, Kafka): facts `tls_version`, `cert_not_after` and `cert_host`;
    the step passes with `detail`, or warns for a certificate that expires within
    CERT_EXPIRY_WARNING_DAYS and for verification switched off by --insecure-skip-tls-verify."""
    probe.facts["tls_version"] = info.version
    step.detail = detail or f"{info.version}, certificate verified"
    if info.not_after is not None:
        _record_certificate(probe, host, info.not_after)
        days = (info.not_after - dt.datetime.now(dt.UTC)).days
        if days < CERT_EXPIRY_WARNING_DAYS:
            step.warn(
                f"{info.version}; the server certificate expires in {days} days",
                "renew the server certificate",
            )
    if info.skipped:
        step.warn(
            f"{info.version}; certificate NOT verified (--insecure-skip-tls-verify)",
            "give the CA bundle instead of skipping verification",
        )


def _record_certificate(probe: Probe, host: str, not_after: dt.datetime) -> None:
    """Facts `cert_not_after` (ISO 8601, UTC) and `cert_host` (the name it was verified for):
    of several certificates a check sees, the one that expires first, which an alert names."""
    seen = probe.facts.get("cert_not_after")
    if seen is None or not_after < dt.datetime.fromisoformat(seen):
        probe.facts["cert_not_after"] = not_after.isoformat()
        probe.facts["cert_host"] = host
