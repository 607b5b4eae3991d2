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

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from tests.servers._http_fake import FakeHandler, FakeHttpServer, RequestLog
from tests.servers._tls import issue_cert


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


def _detector_handler(token: str) -> type[FakeHandler]:
    class DetectorHandler(FakeHandler):
        def _answer(self) -> None:
            self.read_body()
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
    handler = _detector_handler(token)
    tls = issue_cert(test_ca, session_dir / "detectors-tls")
    with (
        FakeHttpServer(handler, log=log) as plain,
        FakeHttpServer(handler, tls.server_context(), log) as secure,
    ):
        yield DetectorServers(
            http=plain.url,
            https=f"https://localhost:{secure.port}",
            ca=tls.ca,
            token=token,
            log=log,
        )
