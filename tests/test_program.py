"""The program's own ending: `sense-preflight` leaves through os._exit once a command is done,
so its exit code, its streams and its files must still be whole."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import EXAMPLE_VALUES, example_values, run_cli, write_values

SCRIPT = shutil.which("sense-preflight", path=str(Path(sys.executable).parent))


@pytest.mark.parametrize("launcher", ["script", "module"])
def test_exit_codes_and_output_survive_the_prompt_exit(tmp_path: Path, launcher: str) -> None:
    assert SCRIPT, "the console script is installed beside this interpreter"
    command = [SCRIPT] if launcher == "script" else [sys.executable, "-m", "preflight"]
    report = tmp_path / "report.json"
    checked = subprocess.run(
        [*command, str(EXAMPLE_VALUES), "--timeout", "1", "--format", "json", "-o", str(report)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 3, checked.stderr  # the example hosts do not resolve here
    assert json.loads(report.read_text())["summary"]["fail"] > 0
    assert checked.stderr == ""

    bad = write_values(tmp_path, {**example_values(), "kafka": "not a mapping"})
    invalid = subprocess.run([*command, "validate", str(bad)], capture_output=True, text=True)
    assert invalid.returncode == 2
    assert "kafka" in invalid.stdout + invalid.stderr

    version = subprocess.run([*command, "--version"], capture_output=True, text=True)
    assert (version.returncode, version.stdout.split()[0]) == (0, "sense-preflight,")


@pytest.mark.parametrize("args", [["schema"], [str(EXAMPLE_VALUES), "--timeout", "1"]])
def test_a_reader_that_leaves_early_ends_the_program_quietly(args: list[str]) -> None:
    """`sense-preflight ... | head -1`: the closed pipe gives exit 1, and no traceback or
    "cannot write" error."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "preflight", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == 1
    assert stderr == ""


def test_an_unknown_option_is_a_usage_error() -> None:
    result = run_cli("--no-such-option")
    assert result.code == 2
    assert "No such option" in result.stderr
