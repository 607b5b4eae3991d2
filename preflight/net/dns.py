"""The dns layer: resolve a host name once, under the deadline."""

from __future__ import annotations

import ipaddress
import socket
import threading
from typing import Any

from preflight.engine.check import StepFailed
from preflight.engine.deadline import Deadline


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
