"""The runner and CLI against a real plug-in: deadlines, parallelism, skips, exit codes,
cleanups, and no traceback ever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli import example_values, run_cli, write_values
from tests.plugin import install_plugin


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = install_plugin(tmp_path_factory.mktemp("plugin"))
    return {"PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}


def values_file(tmp_path: Path, **demo: object) -> Path:
    values = example_values()
    values["demo"] = demo
    return write_values(tmp_path, values)


def test_plugin_checks_are_listed(plugin_env: dict[str, str]) -> None:
    result = run_cli("checks", env=plugin_env)
    assert result.code == 0, result.stderr
    for check_id in ("values", "demo.sleep", "demo.fail", "demo.cleanup"):
        assert check_id in result.stdout


def test_a_check_past_its_deadline_is_reported_and_abandoned(
    tmp_path: Path, plugin_env: dict[str, str]
) -> None:
    path = values_file(tmp_path, sleep=30)
    result = run_cli(
        path, "--only", "demo.sleep", "--timeout", "1", "--format", "json", env=plugin_env
    )
    assert result.code == 3
    check = result.check("demo.sleep")
    assert check["status"] == "fail"
    assert check["message"].startswith("auth: timed out during auth")
    assert [s["name"] for s in check["steps"]] == ["config", "auth"]
    assert result.duration_s < 1 + 1.0 + 1.5  # deadline + grace + interpreter start-up


def test_checks_run_in_parallel(tmp_path: Path, plugin_env: dict[str, str]) -> None:
    """Two 1.5 s checks (ids differ by component via --only) finish in about 1.5 s, not 3."""
    path = values_file(tmp_path, sleep=1.5)
    sequential = run_cli(path, "--only", "demo.sleep", "--format", "json", env=plugin_env)
    assert sequential.check("demo.sleep")["status"] == "pass"
    result = run_cli(
        path, "--only", "demo", "--skip", "demo.cleanup", "--format", "json", env=plugin_env
    )
    durations = [c["duration_s"] for c in result.report["checks"]]
    assert max(durations) >= 1.4
    assert result.report["duration_s"] < 1.5 + 1.0


def test_skip_reason_and_exit_codes(tmp_path: Path, plugin_env: dict[str, str]) -> None:
    path = values_file(tmp_path)
    result = run_cli(path, "--only", "demo.sleep,demo.warn", "--format", "json", env=plugin_env)
    assert result.code == 0
    assert result.check("demo.sleep")["status"] == "skip"
    assert result.check("demo.sleep")["message"] == "demo.sleep not set"
    assert result.check("demo.warn")["status"] == "warn"
    # `demo` is not a key of the chart: the values check warns about it too.
    assert result.check("values")["status"] == "warn"
    assert result.report["summary"] == {"pass": 0, "warn": 2, "fail": 0, "skip": 1}
    strict = run_cli(path, "--only", "demo.warn", "--strict", env=plugin_env)
    assert strict.code == 4
    failed = run_cli(path, "--only", "demo.fail", env=plugin_env)
    assert failed.code == 3
    assert "FAIL  demo.fail" in failed.stdout
    assert "fix: start the demo service" in failed.stdout


def test_a_crashing_check_is_a_clean_failure(tmp_path: Path, plugin_env: dict[str, str]) -> None:
    result = run_cli(values_file(tmp_path), "--only", "demo.crash", env=plugin_env)
    assert result.code == 3
    assert "internal error in check: ZeroDivisionError" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_unknown_only_name_is_bad_input(tmp_path: Path, plugin_env: dict[str, str]) -> None:
    result = run_cli(values_file(tmp_path), "--only", "nosuch", env=plugin_env)
    assert result.code == 2
    assert "unknown check id(s): nosuch" in result.stderr


def test_cleanup_runs_when_the_check_times_out(tmp_path: Path, plugin_env: dict[str, str]) -> None:
    marker = tmp_path / "marker"
    path = values_file(tmp_path, marker=str(marker), hold=30)
    result = run_cli(path, "--only", "demo.cleanup", "--timeout", "1", env=plugin_env)
    assert result.code == 3
    assert not marker.exists()


def test_ctrl_c_runs_cleanups_and_exits_130(tmp_path: Path, plugin_env: dict[str, str]) -> None:
    marker = tmp_path / "marker"
    path = values_file(tmp_path, marker=str(marker), hold=30)
    proc = subprocess.Popen(
        [sys.executable, "-m", "preflight", str(path), "--only", "demo.cleanup", "--timeout", "60"],
        env={**os.environ, **plugin_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the check never started its roundtrip"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 130
    assert "interrupted" in stderr
    assert "Traceback" not in stderr
    assert not marker.exists()


def run_in_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run the CLI with its stdout on a pseudo-terminal; return what the terminal received."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "preflight", *args],
        stdout=follower,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(30)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_terminal_gets_live_progress_and_colour(tmp_path: Path, plugin_env: dict[str, str]) -> None:
    path = values_file(tmp_path, sleep=0.5)
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | plugin_env
    screen = run_in_terminal([str(path), "--only", "demo.sleep,demo.fail"], env)
    assert "running: demo.sleep" in screen
    assert "\x1b[31m\x1b[1mFAIL\x1b[0m  demo.fail" in screen
    assert "Summary:" in screen
    plain = run_in_terminal([str(path), "--only", "demo.fail"], {**env, "NO_COLOR": "1"})
    assert "FAIL  demo.fail" in plain
    assert "\x1b[31m" not in plain


def test_plain_output_ends_with_the_report_in_the_checks_order(
    tmp_path: Path, plugin_env: dict[str, str]
) -> None:
    """demo.fail finishes first, but the report lists demo.sleep first (`checks` order)."""
    path = values_file(tmp_path, sleep=0.5)
    result = run_cli(path, "--only", "demo.fail,demo.sleep", env=plugin_env)
    progress, _, report = result.stdout.partition("\n\n")
    assert progress.splitlines() == [
        "done  values: warn (0.00s)",
        "done  demo.fail: fail (0.00s)",
        next(line for line in progress.splitlines() if line.startswith("done  demo.sleep: pass")),
    ]
    order = [
        line.split()[1] for line in report.splitlines() if line[:4] in ("PASS", "WARN", "FAIL")
    ]
    assert order == ["values", "demo.sleep", "demo.fail"]
    assert "Summary: 1 passed, 1 warnings, 1 failed, 0 skipped" in report
