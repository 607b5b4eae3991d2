"""Where a dependency listens: host, port, scheme and path, parsed from a value."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from preflight.engine.check import StepFailed


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


def endpoint_text(address: str, port: int) -> str:
    """`10.0.0.1:5432` or `[::1]:5432`."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
