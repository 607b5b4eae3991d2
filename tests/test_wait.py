"""`--wait DURATION` through the real CLI: a dependency that comes up during the wait (the
real SeaweedFS behind a real tinyproxy started late) passes; its write probe runs once, after
reachability and auth passed (the proxy's log counts the PUTs); what still fails when the time
is up fails with its last attempt's result, and the progress says what it waited for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import REPO_ROOT, CliResult, example_values, run_cli, write_values
from tests.servers._process import ServerProcess, free_port
from tests.servers.hostile import HostileServers
from tests.servers.proxy import proxy_environment, start_tinyproxy
from tests.servers.s3 import S3Server
from tests.test_s3_check import s3_values

pytestmark = pytest.mark.server("s3")


@pytest.fixture
def late_proxy(tmp_path: Path) -> Iterator[tuple[int, Path, list[ServerProcess]]]:
    """A port where a tinyproxy starts once the test says so; stopped at the end."""
    started: list[ServerProcess] = []
    yield free_port(), tmp_path / "late-proxy", started
    for process in started:
        process.stop()


def test_a_dependency_that_comes_up_passes_and_writes_once(
    tmp_path: Path, s3_server: S3Server, late_proxy: tuple[int, Path, list[ServerProcess]]
) -> None:
    port, folder, started = late_proxy
    path = write_values(tmp_path, s3_values(s3_server))
    proxy_url = f"http://127.0.0.1:{port}"
    env = proxy_environment(proxy_url, https=False)
    command = [sys.executable, "-m", "preflight", str(path), "--only", "s3", "--format", "json"]
    command += ["--timeout", "5", "--wait", "60s", "--interval", "0.5s"]
    run = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr_lines: list[str] = []
    assert run.stderr is not None
    reader = threading.Thread(target=lambda: stderr_lines.extend(run.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    while not any("attempt 1 still fails" in line for line in stderr_lines):
        assert run.poll() is None, "the run ended before it waited"
        time.sleep(0.1)
    proxy, process = start_tinyproxy(folder, "late", [], port=port)
    started.append(process)
    stdout, _ = run.communicate(timeout=90)
    reader.join(5)
    report = json.loads(stdout)
    s3 = next(check for check in report["checks"] if check["id"] == "s3")
    assert run.returncode == 0 and s3["status"] == "warn", s3  # warn: 127.0.0.1 is internal
    assert [step["status"] for step in s3["steps"] if step["name"] == "roundtrip"] == ["pass"]
    waited = [line for line in stderr_lines if line.startswith("waiting (")]
    assert "s3 (TCP: 127.0.0.1:" in waited[0] and "connection refused" in waited[0], waited
    puts = [line for line in proxy.requests_since(0) if line.startswith("PUT ")]
    assert len(puts) == 1, puts  # the scratch object, written once
    assert s3_server.scratch_keys() == []


def run_unreachable(tmp_path: Path, server: S3Server, closed: int, *args: str) -> CliResult:
    """The s3 check against a port nothing listens on, under --wait."""
    values = s3_values(server, host=f"127.0.0.1:{closed}")
    return run_cli(write_values(tmp_path, values), "--only", "s3", "--timeout", "2", *args)


def test_what_still_fails_at_the_end_fails(
    tmp_path: Path, s3_server: S3Server, hostile: HostileServers
) -> None:
    args = ["--format", "json", "--wait", "2s", "--interval", "0.5s"]
    result = run_unreachable(tmp_path, s3_server, hostile.closed, *args)
    assert result.code == 3
    assert result.check("s3")["status"] == "fail"
    assert result.failed_step("s3")["name"] == "tcp"
    waited = [line for line in result.stderr.splitlines() if line.startswith("waiting (")]
    assert waited and all("still fails: s3 (TCP: " in line for line in waited), result.stderr


def test_text_progress_names_what_is_still_failing(
    tmp_path: Path, s3_server: S3Server, hostile: HostileServers
) -> None:
    result = run_unreachable(
        tmp_path, s3_server, hostile.closed, "--wait", "1.5s", "--interval", "0.5s"
    )
    lines = result.stdout.splitlines()
    waited = [line for line in lines if line.startswith("waiting (")]
    assert waited and "attempt 1 still fails: s3 (" in waited[0], result.stdout
    assert sum(line.startswith("FAIL  s3 ") for line in lines) == 1, result.stdout
    assert result.code == 3


def test_an_accepted_failure_is_not_waited_for(
    tmp_path: Path, s3_server: S3Server, hostile: HostileServers
) -> None:
    args = ["--format", "json", "--wait", "5m", "--accept", "s3:tcp"]
    result = run_unreachable(tmp_path, s3_server, hostile.closed, *args)
    assert result.code == 0
    assert "waiting (" not in result.stderr
    assert result.check("s3")["accepted"] is True


def test_read_only_wait_writes_nothing(tmp_path: Path, s3_server: S3Server) -> None:
    result = run_cli(
        write_values(tmp_path, s3_values(s3_server)),
        *("--only", "s3", "--format", "json", "--wait", "10s", "--read-only"),
    )
    assert result.code == 0, result.stdout
    steps = {step["name"]: step for step in result.check("s3")["steps"]}
    assert steps["roundtrip"]["status"] == "skip"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--wait", "5x"], "Invalid value for '--wait': '5x' is not a duration (e.g. 30s, 5m"),
        (["--wait", "0s"], "Invalid value for '--wait': '0s' must be longer than zero"),
        (["--interval", "2s"], "error: --interval needs --wait DURATION"),
    ],
)
def test_bad_durations_are_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli(write_values(tmp_path, example_values()), *args)
    assert result.code == 2
    assert message in result.stderr
    assert result.stdout == ""
