"""The command-line syntax of `serve`: durations as Prometheus writes them, HOST:PORT."""

from __future__ import annotations

import re

_UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
# Prometheus' order: 1y2w3d4h5m6s7ms, each unit at most once, largest first.
_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_SECONDS = re.compile(r"^\d+(?:\.\d+)?$")


def parse_duration(text: str) -> float:
    """`30s`, `5m`, `1h30m`, `250ms` → seconds; a bare number is seconds (as `run --timeout`).
    Raises ValueError for anything else, or for zero."""
    text = text.strip()
    if _SECONDS.match(text):
        seconds = float(text)
    else:
        match = _DURATION.match(text)
        if not text or match is None:
            raise ValueError(f"{text!r} is not a duration (e.g. 30s, 5m, 1h30m, 500ms)")
        seconds = sum(
            int(amount) * factor
            for amount, factor in zip(match.groups(), _UNITS.values(), strict=True)
            if amount
        )
    if seconds <= 0:
        raise ValueError(f"{text!r}: the duration must be more than zero")
    return seconds


def parse_listen(text: str) -> tuple[str, int]:
    """`0.0.0.0:9115`, `:9115` (every interface), `[::1]:9115`, `localhost:9115` → (host, port).
    Raises ValueError with the reason."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--listen {text!r}: expected HOST:PORT (e.g. 0.0.0.0:9115)")
    if not 0 < int(port) < 65536:
        raise ValueError(f"--listen {text!r}: the port must be 1-65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"--listen {text!r}: write an IPv6 address in brackets, e.g. [::]:9115")
    return host or "0.0.0.0", int(port)
