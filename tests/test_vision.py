"""`detector.<name>` and `map-matching` through the real CLI, against real HTTP servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cli import CliResult, example_values, run_cli, write_values
from tests.servers.detectors import DetectorServers
from tests.servers.hostile import HostileServers

pytestmark = pytest.mark.server("detectors")

WRONG_TOKEN = "wrong-detector-token-5521"


def _detector(name: str, url: str, token: str | None = None, timeout_s: float = 30.0) -> dict:
    detector: dict[str, Any] = {"name": name, "apiUrl": url, "timeoutSeconds": timeout_s}
    if token is not None:
        detector["authToken"] = token
    return detector


def _run(
    folder: Path, detectors: list[dict] | None, *args: str, map_matching: dict | None = None
) -> CliResult:
    """Run the CLI on the guide's values with these detectors (None: the guide's own)."""
    values = example_values()
    if detectors is not None:
        values["vision"]["config"]["detectors"] = detectors
    if map_matching is not None:
        values["vision"]["config"]["mapMatching"] = map_matching
    return run_cli(write_values(folder, values), *args, timeout=60)


@pytest.fixture(scope="module")
def answers(
    tmp_path_factory: pytest.TempPathFactory, detector_servers: DetectorServers
) -> CliResult:
    """One run with a detector per kind of answer (checks run in parallel)."""
    s, token = detector_servers, detector_servers.token
    detectors = [
        _detector("ok", s.url("auth", "ok"), token),
        _detector("not-found", s.url("status/404", "nf")),
        _detector("upload-only", s.url("status/405", "up"), token),
        _detector("unsupported", s.url("status/415", "us")),
        _detector("unprocessable", s.url("status/422", "un")),
        _detector("bad-token", s.url("auth", "bad"), WRONG_TOKEN),
        _detector("forbidden", s.url("status/403", "fb"), token),
        _detector("no-token", s.url("auth", "nt")),
        _detector("broken", s.url("status/500", "br")),
        _detector("slow", s.url("slow/0.8", "sl"), timeout_s=1.0),
        _detector("tls", s.url("auth", "tls", tls=True), token),
        {"name": "bad-timeout", "apiUrl": s.url("status/200", "bt"), "timeoutSeconds": "soon"},
    ]
    folder = tmp_path_factory.mktemp("answers")
    return _run(
        folder, detectors, "--only", "detector", "--format", "json", "--ca-bundle", str(s.ca)
    )


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("ok", "HTTP 200 OK"),
        ("not-found", "HTTP 404 Not Found"),
        ("upload-only", "HTTP 405 Method Not Allowed"),
        ("unsupported", "HTTP 415 Unsupported Media Type"),
        ("unprocessable", "HTTP 422 Unprocessable"),
        ("tls", "HTTP 200 OK"),
    ],
)
def test_any_answer_passes(answers: CliResult, name: str, answer: str) -> None:
    check = answers.check(f"detector.{name}")
    assert check["status"] == "pass", check
    assert check["message"].startswith(f"answers ({answer}")
    assert [s["name"] for s in check["steps"]][:3] == ["config", "dns", "tcp"]
    assert check["facts"]["http_status"] == int(answer.split()[1])


def test_tls_detector_is_verified(answers: CliResult) -> None:
    steps = {s["name"]: s for s in answers.check("detector.tls")["steps"]}
    assert steps["tls"]["status"] == "pass"
    assert "certificate verified" in steps["tls"]["detail"]


def test_probe_uploads_nothing_and_sends_the_token(
    answers: CliResult, detector_servers: DetectorServers
) -> None:
    seen = detector_servers.log.to("/ok")
    assert [r.method for r in seen] == ["HEAD"]
    assert seen[0].body_size == 0
    assert seen[0].headers["Authorization"] == f"Bearer {detector_servers.token}"
    assert "Authorization" not in detector_servers.log.to("/nf")[0].headers


def test_rejected_token_fails(answers: CliResult) -> None:
    check = answers.check("detector.bad-token")
    assert check["status"] == "fail"
    assert answers.failed_step("detector.bad-token")["name"] == "http"
    assert check["message"].startswith("http: token rejected: HTTP 401")
    assert "vision.config.detectors[5].authToken" in check["remediation"]
    assert answers.code == 3
    assert WRONG_TOKEN not in answers.stdout + answers.stderr


def test_forbidden_with_a_token_warns_that_the_token_is_unproven(answers: CliResult) -> None:
    check = answers.check("detector.forbidden")
    assert check["status"] == "warn", check
    assert check["message"].startswith(
        "http: token not verified: the service answered HTTP 403 Forbidden to a HEAD request"
    )
    assert "vision.config.detectors[6].authToken" in check["remediation"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no-token", "endpoint requires auth (HTTP 401 Unauthorized) but vision.config"),
        ("broken", "server error: HTTP 500 Internal Server Error"),
        ("slow", "answers (HTTP 200 OK) but slowly: connect + first byte took "),
    ],
)
def test_warnings(answers: CliResult, name: str, message: str) -> None:
    check = answers.check(f"detector.{name}")
    assert check["status"] == "warn", check
    assert message in check["message"]
    assert check["remediation"]
    if name == "slow":
        assert check["message"].endswith("more than half of its 1s timeout")
        assert check["facts"]["first_byte_s"] >= 0.8


def test_bad_timeout_fails_at_config(answers: CliResult) -> None:
    step = answers.failed_step("detector.bad-timeout")
    assert step["name"] == "config"
    assert (
        step["detail"] == "vision.config.detectors[11].timeoutSeconds must be a number of seconds"
    )


def test_text_report(tmp_path: Path, detector_servers: DetectorServers) -> None:
    s = detector_servers
    detectors = [
        _detector("good", s.url("status/405", "text-good")),
        _detector("bad-token", s.url("auth", "text-bad"), WRONG_TOKEN),
    ]
    result = _run(tmp_path, detectors, "--only", "detector")
    assert result.code == 3
    lines = result.stdout.splitlines()
    assert any(
        line.startswith("PASS") and "detector.good" in line and "HTTP 405" in line for line in lines
    )
    assert any(line.startswith("FAIL") and "token rejected: HTTP 401" in line for line in lines)
    assert WRONG_TOKEN not in result.stdout + result.stderr


def test_tls_without_the_ca_fails(tmp_path: Path, detector_servers: DetectorServers) -> None:
    url = detector_servers.url("status/200", "noca", tls=True)
    result = _run(tmp_path, [_detector("tls", url)], "--only", "detector", "--format", "json")
    step = result.failed_step("detector.tls")
    assert step["name"] == "tls"
    assert "certificate signed by unknown authority" in step["detail"]


def test_hostile_servers_fail_in_time(tmp_path: Path, hostile: HostileServers) -> None:
    timeout = 2.0
    detectors = [
        _detector(name, f"{'https' if name.startswith('tls') else 'http'}://127.0.0.1:{port}/up")
        for name, port in hostile.items()
        if name != "http"  # an HTTP 200 is a fine answer for a detector
    ]
    args = ("--only", "detector", "--format", "json", "--timeout", str(timeout))
    result = _run(tmp_path, detectors, *args)
    assert result.code == 3
    for detector in detectors:
        check = result.check(f"detector.{detector['name']}")
        assert check["status"] == "fail", check
        assert check["duration_s"] <= timeout + 0.5
    assert result.failed_step("detector.hang")["name"] == "http"
    assert "timed out" in result.check("detector.hang")["message"]
    assert result.failed_step("detector.closed")["name"] == "tcp"
    assert result.failed_step("detector.tls_stall")["name"] == "tls"
    assert result.duration_s < timeout + 3  # interpreter start-up included


# --- map-matching -------------------------------------------------------------------------


def _map_matching(url: str, key: str | None) -> dict:
    api: dict[str, Any] = {"baseUrl": url}
    if key is not None:
        api["apiKey"] = key
    return {"backend": "map_matching_api", "mapMatchingApi": api}


def test_map_matching_api_key_accepted(tmp_path: Path, detector_servers: DetectorServers) -> None:
    s = detector_servers
    mm = _map_matching(s.url("auth", "mm-ok"), s.token)
    result = _run(tmp_path, None, "--only", "map-matching", "--format", "json", map_matching=mm)
    check = result.check("map-matching")
    assert check["status"] == "pass", check
    assert check["facts"]["backend"] == "map_matching_api"
    seen = s.log.to("/mm-ok")
    assert [r.method for r in seen] == ["HEAD"]
    assert seen[0].headers["X-API-Key"] == s.token


def test_map_matching_api_key_rejected(tmp_path: Path, detector_servers: DetectorServers) -> None:
    mm = _map_matching(detector_servers.url("auth", "mm-bad"), "wrong-map-key-8812")
    result = _run(tmp_path, None, "--only", "map-matching", map_matching=mm)
    assert result.code == 3
    assert "FAIL" in result.stdout
    assert "API key rejected: HTTP 401" in result.stdout
    assert "mapMatchingApi.apiKey" in result.stdout
    assert "wrong-map-key-8812" not in result.stdout + result.stderr


def test_map_matching_valhalla_is_bundled(tmp_path: Path) -> None:
    values = example_values()
    values["vision"]["config"]["mapMatching"] = {"backend": "valhalla"}
    values["vision"]["valhalla"] = {"enabled": True}
    result = run_cli(write_values(tmp_path, values), "--only", "map-matching", "--format", "json")
    check = result.check("map-matching")
    assert check["status"] == "pass"
    assert "bundled Valhalla" in check["message"]
    assert [s["name"] for s in check["steps"]] == ["config"]


def test_map_matching_without_base_url_fails_at_config(tmp_path: Path) -> None:
    mm = {"mapMatchingApi": {"apiKey": "k-7731"}}  # no backend: the external API by default
    result = _run(tmp_path, None, "--only", "map-matching", "--format", "json", map_matching=mm)
    step = result.failed_step("map-matching")
    assert (step["name"], step["detail"]) == (
        "config",
        "vision.config.mapMatching.mapMatchingApi.baseUrl is not set",
    )


def test_listing_without_values_shows_the_detector_placeholder() -> None:
    result = run_cli("checks")
    assert result.code == 0
    assert "detector.<name>" in result.stdout
    assert "map-matching" in result.stdout


def test_vision_disabled_skips_every_vision_check(tmp_path: Path) -> None:
    values = example_values()
    values["vision"]["enabled"] = False
    only = "detector,map-matching,images.vision,images.triton"
    result = run_cli(write_values(tmp_path, values), "--only", only, "--format", "json")
    assert result.code == 0
    ids = [c["id"] for c in result.report["checks"] if c["id"] != "values"]
    assert sorted(ids) == [
        "detector.primary-detector",
        "images.triton",
        "images.vision",
        "map-matching",
    ]
    for check_id in ids:
        check = result.check(check_id)
        assert check["status"] == "skip"
        assert check["message"] == "Vision is disabled (vision.enabled: false)"
