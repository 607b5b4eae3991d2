"""Hostile servers on loopback: every check must meet each with a clean, timely `fail`.

- hang: accepts and never answers        - reset: accepts, then resets the connection
- hangup: reads the request, closes the connection without an answer
- garbage: answers random-looking bytes  - http: answers HTTP/1.1 200 to anything
- tls_untrusted: TLS from an unknown CA  - tls_expired: TLS, certificate expired (session CA)
- tls_stall: accepts, reads the ClientHello, never answers
- closed: a port nothing listens on
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from tests.servers._process import free_port
from tests.servers._tls import issue_cert

Handler = Callable[[socket.socket], None]


class _Listener:
    """A loopback TCP server that hands every connection to `handler` in a thread."""

    def __init__(self, handler: Handler) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.handler = handler
        self.open: list[socket.socket] = []
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.open.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            self.handler(conn)

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()
        for conn in self.open:
            conn.close()


def _hang(conn: socket.socket) -> None:
    threading.Event().wait(600)


def _reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def _hangup(conn: socket.socket) -> None:
    conn.settimeout(5)
    with contextlib.suppress(OSError):
        conn.recv(65536)
    conn.close()


def _garbage(conn: socket.socket) -> None:
    conn.sendall(bytes(range(256)) * 4)
    threading.Event().wait(600)


def _http(conn: socket.socket) -> None:
    conn.settimeout(5)
    conn.recv(65536)
    body = b"<html><body>not the service you are looking for</body></html>"
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + body
    )
    conn.close()


def _stall_after_hello(conn: socket.socket) -> None:
    conn.recv(65536)
    threading.Event().wait(600)


def _tls(context: ssl.SSLContext) -> Handler:
    def handle(conn: socket.socket) -> None:
        conn.settimeout(30)
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(65536)
            threading.Event().wait(600)

    return handle


@dataclass(frozen=True)
class HostileServers:
    """Ports of the hostile servers on 127.0.0.1."""

    hang: int
    reset: int
    hangup: int
    garbage: int
    http: int
    tls_untrusted: int
    tls_expired: int
    tls_stall: int
    closed: int

    def items(self) -> list[tuple[str, int]]:
        return [(name, getattr(self, name)) for name in self.__dataclass_fields__]


@pytest.fixture(scope="session")
def hostile(test_ca: trustme.CA, session_dir: Path) -> Iterator[HostileServers]:
    """Start every hostile server once per test session."""
    untrusted = issue_cert(trustme.CA(), session_dir / "hostile-untrusted")
    expired = issue_cert(test_ca, session_dir / "hostile-expired", expired=True)
    listeners = {
        "hang": _Listener(_hang),
        "reset": _Listener(_reset),
        "hangup": _Listener(_hangup),
        "garbage": _Listener(_garbage),
        "http": _Listener(_http),
        "tls_untrusted": _Listener(_tls(untrusted.server_context())),
        "tls_expired": _Listener(_tls(expired.server_context())),
        "tls_stall": _Listener(_stall_after_hello),
    }
    yield HostileServers(closed=free_port(), **{name: lis.port for name, lis in listeners.items()})
    for listener in listeners.values():
        listener.close()
