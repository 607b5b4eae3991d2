"""The one HTTP server every in-process fake and small test service of tests/servers/ runs on.

`FakeHttpServer(Handler, tls=context)` listens on a free loopback port, serves each connection
in a daemon thread (the TLS handshake too, so a client that never finishes it blocks nobody),
logs every request (method, path, headers, body size) and is started and stopped with `with`
or `start()` / `stop()`. A fake subclasses `FakeHandler` for its routes and answers with
`reply` (JSON) or `send` (any bytes); `read_body` reads what the client sent.
"""

from __future__ import annotations

import json
import ssl
import sys
import threading
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

HOST = "127.0.0.1"


@dataclass(frozen=True)
class SeenRequest:
    """One request a fake received."""

    method: str
    path: str  # as sent, query included
    headers: dict[str, str]
    body_size: int  # the declared Content-Length


@dataclass
class RequestLog:
    """The requests a server received, oldest first; safe to append from handler threads."""

    _requests: list[SeenRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, request: SeenRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def to(self, tail: str) -> list[SeenRequest]:
        """The requests whose path (without the query) ends with `tail`."""
        with self._lock:
            return [r for r in self._requests if r.path.split("?")[0].endswith(tail)]


def _content_length(headers: Message) -> int:
    value = headers.get("Content-Length", "")
    return int(value) if value.isdigit() else 0


class FakeHandler(BaseHTTPRequestHandler):
    """A quiet HTTP/1.1 handler that logs each request and replies JSON or bytes."""

    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection or a stalled handshake ends after this
    json_type = "application/json"
    server: FakeHttpServer

    def setup(self) -> None:
        if self.server.tls is not None:
            self.request.settimeout(self.timeout)
            self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        super().setup()

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        if parsed:
            headers = dict(self.headers.items())
            seen = SeenRequest(self.command, self.path, headers, _content_length(self.headers))
            self.server.log.add(seen)
        return parsed

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: requests are in `server.log`, the test output stays readable."""

    def read_body(self) -> bytes:
        """The request body, as long as its Content-Length says."""
        size = _content_length(self.headers)
        return self.rfile.read(size) if size else b""

    def reply(
        self, status: int, body: object = None, headers: dict[str, str] | None = None
    ) -> None:
        """`body` as JSON (`json_type`); None sends no body and no Content-Type."""
        if body is None:
            self.send(status, b"", None, headers)
        else:
            self.send(status, json.dumps(body).encode(), self.json_type, headers)

    def send(
        self,
        status: int,
        data: bytes,
        content_type: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Status, Content-Type (unless None), Content-Length, `headers`; no body for HEAD."""
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class FakeHttpServer(ThreadingHTTPServer):
    """A threaded HTTP server on a free port of 127.0.0.1, HTTPS when given a `tls` context."""

    daemon_threads = True

    def __init__(
        self,
        handler: type[FakeHandler],
        tls: ssl.SSLContext | None = None,
        log: RequestLog | None = None,
    ) -> None:
        """`log`: one shared with other servers (e.g. the plain and TLS sides of a service)."""
        super().__init__((HOST, 0), handler)
        self.tls = tls
        self.log = RequestLog() if log is None else log
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT` (https with TLS), no trailing slash."""
        return f"{'https' if self.tls else 'http'}://{HOST}:{self.port}"

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self.serve_forever, name=f"fake-http-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the port and join the serving thread."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(5)
        self.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up or refuse the certificate are the tests' business, not noise;
        anything else is a bug in a fake, logged as usual."""
        if not isinstance(sys.exception(), OSError):
            super().handle_error(request, client_address)
