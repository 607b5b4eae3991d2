"""A run's checks over two processes (engine.forked): the child's results, timeouts, logs,
Ctrl-C, a killed child and a killed parent — against a real two-component plug-in."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from preflight.engine import forked
from preflight.report.exit_codes import EXIT_BAD_INPUT
from tests.cli import example_values, run_cli, write_values
from tests.plugin import install_plugin
from tests.test_bundle import read_bundle

#: The same checks under two components: `left` (heavier: it goes to the child) and `right`.
SPLIT_SOURCE = '''
"""Checks for the forked runner's tests."""
import logging
import os
import signal
import time
from pathlib import Path

from preflight.engine.check import Check

IMPORTED_BY = os.getpid()  # the CLI: it imports the check modules before the fork


def make(component):
    def pid(probe):
        with probe.step("config"):
            probe.facts["pid"] = os.getpid()

    def sleep(probe):
        with probe.step("config"):
            pass
        with probe.step("auth"):
            time.sleep(30)

    def hold(probe):
        marker = Path(probe.values.get(f"demo.{component}"))
        with probe.step("roundtrip"):
            marker.write_text(str(os.getpid()))
            probe.cleanup("remove marker", marker.unlink)
            time.sleep(60)

    def chatty(probe):
        with probe.step("auth"):
            logging.getLogger("demo.client").warning("hello from %d", os.getpid())

    def die(probe):
        with probe.step("tcp"):
            os.kill(os.getpid(), signal.SIGKILL)

    runs = {"pid": pid, "sleep": sleep, "hold": hold, "chatty": chatty, "die": die}

    def checks(values):
        if os.getpid() != IMPORTED_BY:  # in the child: as slow to start as a loaded machine
            time.sleep(float(os.environ.get("SPLIT_CHILD_LAG_S", "0")))
        return [Check(f"{component}.{name}", name, run) for name, run in runs.items()]

    return checks
'''
MODULES = {
    "split_checks": SPLIT_SOURCE,
    "left_checks": "from split_checks import make\nCPU_S = 1.0\nchecks = make('left')\n",
    "right_checks": "from split_checks import make\nchecks = make('right')\n",
}
POINTS = {"left": "left_checks:checks", "right": "right_checks:checks"}

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or forked.usable_cpus() < 2, reason="forks only on Linux with 2 CPUs"
)


@pytest.fixture(scope="module")
def split_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = install_plugin(tmp_path_factory.mktemp("split"), MODULES, POINTS)
    return {"PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}


def start(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    values = example_values()
    values["demo"] = {"left": str(tmp_path / "left"), "right": str(tmp_path / "right")}
    return subprocess.Popen(
        [sys.executable, "-m", "preflight", str(write_values(tmp_path, values)), *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def json_run(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    """The CLI's pid and each check's entry of its JSON report."""
    proc = start(tmp_path, env, "--format", "json", *args)
    stdout, stderr = proc.communicate(timeout=60)
    assert "Traceback" not in stderr
    return proc.pid, {check["id"]: check for check in json.loads(stdout)["checks"]}


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_heavier_component_runs_in_a_forked_child(
    tmp_path: Path, split_env: dict[str, str]
) -> None:
    pid, checks = json_run(tmp_path, split_env, "--only", "left.pid,right.pid")
    assert checks["left.pid"]["status"] == checks["right.pid"]["status"] == "pass"
    assert checks["right.pid"]["facts"]["pid"] == pid
    assert checks["left.pid"]["facts"]["pid"] != pid


def test_one_process_when_asked(tmp_path: Path, split_env: dict[str, str]) -> None:
    env = {**split_env, forked.ENV: "1"}
    pid, checks = json_run(tmp_path, env, "--only", "left.pid,right.pid")
    assert checks["left.pid"]["facts"]["pid"] == checks["right.pid"]["facts"]["pid"] == pid


def test_a_bad_setting_is_one_line_and_exit_2(tmp_path: Path, split_env: dict[str, str]) -> None:
    result = run_cli(write_values(tmp_path, example_values()), env={**split_env, forked.ENV: "3"})
    assert result.code == 2
    assert result.stderr.strip().splitlines() == [f"error: {forked.ENV} must be 1 or 2, not '3'"]


def test_the_childs_timeout_names_its_step(tmp_path: Path, split_env: dict[str, str]) -> None:
    started = time.monotonic()
    _, checks = json_run(tmp_path, split_env, "--only", "left.sleep,right.pid", "--timeout", "1")
    assert time.monotonic() - started < 1 + 1.0 + 1.5  # deadline + grace + start-up
    sleep = checks["left.sleep"]
    assert sleep["status"] == "fail"
    assert sleep["message"].startswith("auth: timed out during auth")
    assert [step["name"] for step in sleep["steps"]] == ["config", "auth"]


def test_a_child_late_to_start_keeps_the_runs_deadline(
    tmp_path: Path, split_env: dict[str, str]
) -> None:
    env = {**split_env, "SPLIT_CHILD_LAG_S": "0.6"}
    _, checks = json_run(tmp_path, env, "--only", "left.sleep,right.sleep", "--timeout", "1.5")
    left, right = checks["left.sleep"], checks["right.sleep"]
    assert left["message"] == right["message"] == "auth: timed out during auth (--timeout 1.5s)"
    assert left["duration_s"] < right["duration_s"] - 0.4  # it started late, ended on time


def test_a_child_that_never_reports_is_named_so(tmp_path: Path, split_env: dict[str, str]) -> None:
    env = {**split_env, "SPLIT_CHILD_LAG_S": "4"}  # it starts its checks past the deadline
    _, checks = json_run(tmp_path, env, "--only", "left.pid,right.pid", "--timeout", "1")
    assert checks["left.pid"]["status"] == "fail"
    assert checks["left.pid"]["message"] == (
        "timed out waiting for the process running this check (--timeout 1s)"
    )
    assert checks["right.pid"]["status"] == "pass"


def test_a_killed_child_fails_its_checks_only(tmp_path: Path, split_env: dict[str, str]) -> None:
    _, checks = json_run(tmp_path, split_env, "--only", "left.die,left.pid,right.pid")
    for check_id in ("left.die", "left.pid"):
        assert checks[check_id]["status"] == "fail"
        assert checks[check_id]["message"] == (
            "the process running this check ended without its result (killed by signal 9)"
        )
    assert checks["right.pid"]["status"] == "pass"


def test_the_childs_logs_reach_the_bundle(tmp_path: Path, split_env: dict[str, str]) -> None:
    bundle = tmp_path / "support.tar.gz"
    proc = start(tmp_path, split_env, "--only", "left.chatty,right.chatty", "--bundle", str(bundle))
    proc.communicate(timeout=60)
    logs = read_bundle(bundle)
    left, right = logs["logs/left.chatty.log"], logs["logs/right.chatty.log"]
    assert f"hello from {proc.pid}" in right
    assert "hello from" in left and f"hello from {proc.pid}" not in left


def holding(tmp_path: Path, split_env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    """A run whose two checks hold their markers, one in each process; and the child's pid."""
    proc = start(tmp_path, split_env, "--only", "left.hold,right.hold", "--timeout", "60")
    markers = [tmp_path / "left", tmp_path / "right"]
    assert wait_for(lambda: all(marker.exists() for marker in markers)), proc.communicate()
    child = int((tmp_path / "left").read_text())
    assert child != proc.pid and int((tmp_path / "right").read_text()) == proc.pid
    return proc, child


def test_ctrl_c_cleans_up_in_both_processes(tmp_path: Path, split_env: dict[str, str]) -> None:
    proc, child = holding(tmp_path, split_env)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 130
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "left").exists() and not (tmp_path / "right").exists()
    assert gone(child)


def test_a_killed_parent_leaves_the_child_to_clean_up(
    tmp_path: Path, split_env: dict[str, str]
) -> None:
    proc, child = holding(tmp_path, split_env)
    proc.kill()
    proc.communicate(timeout=15)
    assert wait_for(lambda: not (tmp_path / "left").exists())
    assert wait_for(lambda: gone(child))


def waiting_for_values(
    tmp_path: Path, split_env: dict[str, str]
) -> tuple[subprocess.Popen[str], Path]:
    """A run held while it loads its values (--set-file reads a FIFO nobody writes yet), the
    child forked already; values that fail (bad YAML) once the FIFO is written."""
    (tmp_path / "bad.yaml").write_text("demo: [unclosed\n")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    proc = start(
        tmp_path, split_env, "-f", str(tmp_path / "bad.yaml"), "--set-file", f"demo.x={fifo}"
    )
    assert wait_for(lambda: len(psutil.Process(proc.pid).children()) == 1), proc.communicate()
    return proc, fifo


def test_values_that_fail_end_the_child_it_never_used(
    tmp_path: Path, split_env: dict[str, str]
) -> None:
    proc, fifo = waiting_for_values(tmp_path, split_env)
    (child,) = psutil.Process(proc.pid).children()
    fifo.write_text("x")
    stdout, stderr = proc.communicate(timeout=15)
    assert proc.returncode == EXIT_BAD_INPUT
    assert "invalid YAML" in stdout and "Traceback" not in stderr
    assert gone(child.pid)


def test_ctrl_c_while_the_values_load_ends_the_child(
    tmp_path: Path, split_env: dict[str, str]
) -> None:
    proc, _ = waiting_for_values(tmp_path, split_env)
    (child,) = psutil.Process(proc.pid).children()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 130
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert gone(child.pid)


def test_the_share_keeps_a_shared_client_on_one_side() -> None:
    only = ["postgres", "custom-layers", "s3", "kubernetes", "gpu"]
    theirs = forked.child_share(only)
    assert theirs and theirs != set(only)
    assert ("postgres" in theirs) == ("custom-layers" in theirs)
    assert ("kubernetes" in theirs) == ("gpu" in theirs)
    assert "s3" in theirs  # the heaviest goes to the child


def test_one_client_group_is_not_split() -> None:
    assert forked.child_share(["postgres.api", "custom-layers"]) == frozenset()


def test_skip_leaves_a_component_out_of_the_share() -> None:
    assert "s3" not in forked.child_share([], ["s3"])


@pytest.mark.parametrize(
    ("cpu_max", "limit"),
    [
        (None, None),
        ("max 100000\n", None),
        ("100000 100000\n", 1),
        ("150000 100000\n", 1),
        ("200000 100000\n", 2),
    ],
)
def test_a_cgroup_quota_caps_the_cpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpu_max: str | None, limit: int | None
) -> None:
    path = tmp_path / "cpu.max"
    if cpu_max is not None:
        path.write_text(cpu_max)
    monkeypatch.setattr(forked, "CGROUP_CPU_MAX", path)
    cpus = len(os.sched_getaffinity(0))
    assert forked.usable_cpus() == (cpus if limit is None else min(cpus, limit))
