"""The tcp layer: dial the resolved addresses, under the deadline."""

from __future__ import annotations

import errno
import socket

from preflight.engine.check import StepFailed
from preflight.engine.deadline import Deadline, DeadlineExceeded
from preflight.net.endpoint import endpoint_text


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
            reasons.append(f"{endpoint_text(address, port)}: {tcp_reason(exc)}")
            if isinstance(exc, TimeoutError):
                break
    raise StepFailed(f"TCP: {'; '.join(reasons)}", TCP_FIX)


TCP_FIX = (
    "check the host and port, that the service is running, and that no firewall or "
    "NetworkPolicy blocks traffic from here"
)


def tcp_reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "connection timed out (packets dropped?)"
    return {
        errno.ECONNREFUSED: "connection refused (nothing listens on that port)",
        errno.EHOSTUNREACH: "no route to host",
        errno.ENETUNREACH: "network unreachable",
        errno.ECONNRESET: "connection reset",
        errno.EPIPE: "connection closed by the server",
    }.get(exc.errno or 0, exc.strerror or str(exc))
