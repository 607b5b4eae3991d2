"""The `oidc` and `openfga` checks meet every hostile server with a clean, timely fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import example_values, run_cli, write_values
from tests.servers.hostile import HostileServers

TIMEOUT_S = 5.0
# The first step that speaks HTTP, per check.
HTTP_STEP = {"oidc": "discovery", "openfga": "health"}
# server, scheme, failing step (HTTP: the check's first HTTP step), words in the message;
# a|b: either (a reset may reach httpx as a reset or as a plain disconnect)
CASES = [
    ("closed", "http", "tcp", "connection refused"),
    ("hang", "http", "HTTP", "timed out"),
    ("reset", "http", "HTTP", "connection reset|disconnected"),
    ("garbage", "http", "HTTP", "did not answer with valid HTTP"),
    ("http", "http", "HTTP", "text/html, not JSON"),
    ("tls_untrusted", "https", "tls", "certificate signed by unknown authority"),
    ("tls_expired", "https", "tls", "certificate has expired"),
    ("tls_stall", "https", "tls", "timed out"),
]


def _values(check_id: str, url: str) -> dict[str, object]:
    values = example_values()
    if check_id == "oidc":
        values["oidc"].update(authority=url, requireHttpsMetadata=False)
    else:
        values["openfga"]["apiUrl"] = url
    return values


@pytest.mark.parametrize("check_id", list(HTTP_STEP))
@pytest.mark.parametrize(("server", "scheme", "step", "words"), CASES, ids=[c[0] for c in CASES])
def test_hostile_server_fails_cleanly_within_the_timeout(
    tmp_path: Path,
    hostile: HostileServers,
    session_dir: Path,
    check_id: str,
    server: str,
    scheme: str,
    step: str,
    words: str,
) -> None:
    ca = session_dir / "hostile-expired" / "ca.crt"  # the session CA: only "expired" is wrong
    url = f"{scheme}://127.0.0.1:{getattr(hostile, server)}"
    result = run_cli(
        write_values(tmp_path, _values(check_id, url)),
        *("--only", check_id, "--format", "json", "--timeout", str(TIMEOUT_S)),
        *("--ca-bundle", str(ca)),
    )
    assert result.code == 3, result.stdout + result.stderr
    check = result.check(check_id)
    expected = step.replace("HTTP", HTTP_STEP[check_id]).split("|")
    assert result.failed_step(check_id)["name"] in expected, check
    assert any(word.lower() in check["message"].lower() for word in words.split("|")), check
    assert check["duration_s"] < TIMEOUT_S + 0.5
    assert "change-me" not in result.stdout + result.stderr  # the example values' secrets
    print(f"{check_id} against {server}: {check['duration_s']:.2f}s (--timeout {TIMEOUT_S})")
