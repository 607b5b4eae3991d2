"""Running the real CLI in a subprocess, as a user would, and reading its report."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_VALUES = REPO_ROOT / "examples" / "custom-values.yaml"


def holding_cli(seconds: float) -> list[str]:
    """The command of the real CLI with each check paused `seconds` once its scratch object
    exists (tests/holding.py); run it with cwd=REPO_ROOT."""
    return [sys.executable, "-m", "tests.holding", f"{seconds:g}"]


@dataclass(frozen=True)
class CliResult:
    """Exit code, output and wall time of one `sense-preflight` run."""

    code: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def report(self) -> dict[str, Any]:
        """The JSON report (the run must have used --format json)."""
        return json.loads(self.stdout)

    @property
    def text_report(self) -> str:
        """The text report, without the progress lines a run without a terminal prints first."""
        from preflight.report.renderers.text import PROGRESS

        return "\n".join(line for line in self.stdout.splitlines() if not line.startswith(PROGRESS))

    def check(self, check_id: str) -> dict[str, Any]:
        """One check's entry of the JSON report."""
        for entry in self.report["checks"]:
            if entry["id"] == check_id:
                return entry
        raise AssertionError(f"no check {check_id!r} in report: {self.stdout[:2000]}")

    def failed_step(self, check_id: str) -> dict[str, Any]:
        """The failing step of a check."""
        steps = [s for s in self.check(check_id)["steps"] if s["status"] == "fail"]
        assert steps, f"{check_id} has no failing step: {self.check(check_id)}"
        return steps[0]


def run_cli(
    *args: str | Path, timeout: float = 120, env: dict[str, str] | None = None
) -> CliResult:
    """Run `python -m preflight ARGS` and capture everything; `env` adds variables."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "preflight", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def example_values(filled: bool = False) -> dict[str, Any]:
    """The install guide's minimal values (a fresh copy to change). `filled`: its
    placeholders (`change-me`, AWS's example key, `*.partner.*` hosts) replaced by
    real-looking values, so the values check has nothing to warn about."""
    text = EXAMPLE_VALUES.read_text()
    if filled:
        for placeholder, real in FILLED.items():
            text = text.replace(placeholder, real)
    return copy.deepcopy(yaml.safe_load(text))


FILLED = {
    '"change-me"': '"Zq-filled-secret-5150"',
    "AKIAIOSFODNN7EXAMPLE": "ZQFILLEDACCESSKEY515",
    ".partner.com": ".corp.test",
    ".partner.internal": ".corp.test",
}


def write_values(folder: Path, values: dict[str, Any], name: str = "values.yaml") -> Path:
    """Write a values file into folder and return its path."""
    path = folder / name
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path
