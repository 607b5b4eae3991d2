"""HTTP services standing in for detector backends and the map-matching API.

A detector is just an HTTP service the Vision worker uploads frames to, so these are small real
servers written for the tests (not fakes of a product): one plain HTTP and one HTTPS server (a
certificate from the session `test_ca`), in threads of the test process, that answer by path:

- `/status/<code>/...`  that status (`405` with `Allow: POST`, as an upload-only endpoint does);
- `/auth/...`           200 with `Authorization: Bearer <token>`, else 401 with a challenge;
- `/slow/<seconds>/...` 200 after waiting that long before the first byte;
- anything else         404.

Every request is logged (method, path, headers, body size), so a test can prove the probe
uploaded nothing and sent the token; give each test its own path tail (`url(..., tail)`).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from tests.servers._tls import CertFiles, issue_cert


@dataclass(frozen=True)
class SeenRequest:
    """One request a detector server received."""

    method: str
    path: str
    headers: dict[str, str]
    body_size: int


@dataclass
class RequestLog:
    """Requests received by the detector servers, safe to append from handler threads."""

    _requests: list[SeenRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, request: SeenRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def to(self, tail: str) -> list[SeenRequest]:
        """The requests whose path ends with `tail`."""
        with self._lock:
            return [r for r in self._requests if r.path.split("?")[0].endswith(tail)]


@dataclass(frozen=True)
class DetectorServers:
    """Base URLs of the plain and TLS detector servers, the token `/auth` accepts, the log."""

    http: str  # http://127.0.0.1:PORT
    https: str  # https://localhost:PORT
    ca: Path
    token: str
    log: RequestLog

    def url(self, answer: str, tail: str = "api/v1/upload", *, tls: bool = False) -> str:
        """`answer`: `status/404`, `auth`, `slow/0.8`...; `tail` tells a test's requests apart."""
        return f"{self.https if tls else self.http}/{answer}/{tail}"


class JsonHandler(BaseHTTPRequestHandler):
    """A handler that logs nothing, does its TLS handshake in its own thread, and replies JSON."""

    protocol_version = "HTTP/1.1"
    timeout = 30

    def setup(self) -> None:
        context: ssl.SSLContext | None = getattr(self.server, "ssl_context", None)
        if context is not None:
            self.request.settimeout(self.timeout)
            self.request = context.wrap_socket(self.request, server_side=True)
        super().setup()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def reply(
        self, status: int, body: dict[str, object], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class ThreadedServer(ThreadingHTTPServer):
    """A threaded HTTP server on a free loopback port, optionally TLS, in a daemon thread."""

    daemon_threads = True

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.ssl_context = tls
        self.port = int(self.server_address[1])
        threading.Thread(target=self.serve_forever, name=f"http-{self.port}", daemon=True).start()

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up or refuse the certificate are the tests' business, not noise."""

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def server_tls(files: CertFiles) -> ssl.SSLContext:
    """A server-side TLS context for the certificate in `files`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert, files.key)
    return context


def _detector_handler(token: str, log: RequestLog) -> type[BaseHTTPRequestHandler]:
    class DetectorHandler(JsonHandler):
        def _answer(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            if size:
                self.rfile.read(size)
            log.add(SeenRequest(self.command, self.path, dict(self.headers.items()), size))
            kind, _, rest = self.path.lstrip("/").partition("/")
            arg = rest.split("/")[0]
            if kind == "status" and arg.isdigit():
                extra = {"Allow": "POST"} if arg == "405" else {}
                self.reply(int(arg), {"status": int(arg)}, extra)
            elif kind == "auth" and self.headers.get("Authorization") == f"Bearer {token}":
                self.reply(200, {"status": "ok"})
            elif kind == "auth":
                self.reply(
                    401, {"error": "unauthorized"}, {"WWW-Authenticate": 'Bearer realm="detector"'}
                )
            elif kind == "slow":
                time.sleep(float(arg))
                self.reply(200, {"status": "ok"})
            else:
                self.reply(404, {"error": "not found"})

        do_GET = do_HEAD = do_POST = do_PUT = do_OPTIONS = _answer

    return DetectorHandler


@pytest.fixture(scope="session")
def detector_servers(test_ca: trustme.CA, session_dir: Path) -> Iterator[DetectorServers]:
    """The plain and TLS detector servers, started once per session."""
    token, log = "detector-token-" + uuid.uuid4().hex[:8], RequestLog()
    handler = _detector_handler(token, log)
    tls = issue_cert(test_ca, session_dir / "detectors-tls")
    plain, secure = ThreadedServer(handler), ThreadedServer(handler, server_tls(tls))
    try:
        yield DetectorServers(
            http=f"http://127.0.0.1:{plain.port}",
            https=f"https://localhost:{secure.port}",
            ca=tls.ca,
            token=token,
            log=log,
        )
    finally:
        plain.stop()
        secure.stop()
