"""The HTTP fake base every in-process fake runs on (tests/servers/_http_fake.py)."""

from __future__ import annotations

import ssl
import threading
from pathlib import Path

import httpx
import pytest
import trustme

from tests.servers._http_fake import FakeHandler, FakeHttpServer
from tests.servers._tls import issue_cert


class _Echo(FakeHandler):
    """POST: 201 with the body's size; DELETE: 204 without a body; HEAD/GET: 200 JSON."""

    def do_POST(self) -> None:
        self.reply(201, {"size": len(self.read_body())}, {"X-Fake": "yes"})

    def do_DELETE(self) -> None:
        self.reply(204)

    def do_GET(self) -> None:
        self.reply(200, {"path": self.path})

    do_HEAD = do_GET


def test_json_replies_headers_and_the_request_log() -> None:
    with FakeHttpServer(_Echo) as server, httpx.Client(base_url=server.url) as client:
        posted = client.post("/things?x=1", content=b"12345", headers={"Authorization": "t"})
        deleted = client.delete("/things/1")
        head = client.head("/things")
    assert (posted.status_code, posted.json()) == (201, {"size": 5})
    assert posted.headers["X-Fake"] == "yes"
    assert posted.headers["Content-Type"] == "application/json"
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert "Content-Type" not in deleted.headers
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["Content-Length"]) == len(b'{"path": "/things"}')
    seen = server.log.to("/things")
    assert [(r.method, r.path, r.body_size) for r in seen] == [
        ("POST", "/things?x=1", 5),
        ("HEAD", "/things", 0),
    ]
    assert seen[0].headers["Authorization"] == "t"


def test_tls_and_stop_closes_the_port_and_joins_the_thread(
    test_ca: trustme.CA, tmp_path: Path
) -> None:
    files = issue_cert(test_ca, tmp_path)
    server = FakeHttpServer(_Echo, files.server_context()).start()
    try:
        assert server.url.startswith("https://127.0.0.1:")
        verify = ssl.create_default_context(cafile=str(files.ca))
        assert httpx.get(f"{server.url}/x", verify=verify).json() == {"path": "/x"}
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{server.url}/x")
    finally:
        server.stop()
    assert server.socket.fileno() == -1
    assert f"fake-http-{server.port}" not in {t.name for t in threading.enumerate()}


def test_stop_without_start_returns() -> None:
    server = FakeHttpServer(_Echo)
    server.stop()
    assert server.socket.fileno() == -1
