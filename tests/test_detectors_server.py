"""The detector servers answer as the detector and map-matching checks need."""

from __future__ import annotations

import ssl
import time

import httpx
import pytest

from tests.servers.detectors import DetectorServers

pytestmark = pytest.mark.server("detectors")


@pytest.mark.parametrize("code", [200, 403, 404, 405, 415, 422, 500, 503])
def test_status_answers(detector_servers: DetectorServers, code: int) -> None:
    response = httpx.head(detector_servers.url(f"status/{code}"))
    assert response.status_code == code
    assert (response.headers.get("Allow") == "POST") == (code == 405)


def test_auth_wants_the_right_bearer_token(detector_servers: DetectorServers) -> None:
    url = detector_servers.url("auth", "auth-test")
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    good = httpx.get(url, headers={"Authorization": f"Bearer {detector_servers.token}"})
    assert good.status_code == 200
    seen = detector_servers.log.to("/auth-test")
    assert [r.method for r in seen] == ["GET"] * 3
    assert seen[-1].headers["Authorization"] == f"Bearer {detector_servers.token}"
    assert all(r.body_size == 0 for r in seen)


def test_slow_first_byte(detector_servers: DetectorServers) -> None:
    started = time.monotonic()
    assert httpx.get(detector_servers.url("slow/0.5")).status_code == 200
    assert 0.5 <= time.monotonic() - started < 2


def test_tls_with_the_session_ca(detector_servers: DetectorServers) -> None:
    verify = ssl.create_default_context(cafile=str(detector_servers.ca))
    assert httpx.get(detector_servers.url("status/200", tls=True), verify=verify).status_code == 200
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(detector_servers.url("status/200", tls=True))
    # a client that refused the certificate leaves the server serving
    assert httpx.get(detector_servers.url("status/404", tls=True), verify=verify).status_code == 404
