"""Benchmark sense-preflight against the test suite's real local servers.

    python bench/run.py            # on loopback
    python bench/run.py --latency  # each dependency behind a 20 ms RTT proxy (bench/latency.py)
    python bench/run.py --latency --rtt-ms 100   # another RTT

Starts the servers through the test suite's fixtures (pytest is only the harness: nothing here
asserts a time), measures, and prints a table of the four figures beside their goals:
(1) full run wall time vs the slowest single check (goal <= 1.3x), (2) a run with one
accept-and-hang dependency and --timeout 2 (goal <= 2.5 s), (3) `--help` and `validate`
start-up vs `python -c 'import click'` (goal <= 2x), (4) peak RSS of a full run (goal <= 150 MB).

The CLI runs from a virtualenv of its own, `.bench-venv`, holding what a partner's
`pip install` (or the image) holds: the runtime dependencies at the image's pins
(requirements.lock) and the project installed from this tree (compiled, as a wheel is) —
not the test virtualenv, whose test-only packages change what the clients import (Selenium
brings trio, which httpcore then imports: 0.16 s on every run).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".bench-venv"


def runtime_python() -> Path:
    """The bench virtualenv's interpreter, with this tree installed in it afresh."""
    python = VENV / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([*pip, "-r", str(ROOT / "requirements.lock")], check=True)
    subprocess.run([*pip, "--no-deps", "--force-reinstall", str(ROOT)], check=True)
    return python


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if "--rtt-ms" in sys.argv:
        os.environ["SENSE_BENCH_RTT_MS"] = sys.argv[sys.argv.index("--rtt-ms") + 1]
    os.environ["SENSE_BENCH_PYTHON"] = str(runtime_python())
    sys.exit(
        pytest.main(
            [
                "-q",
                "-s",
                "-p",
                "tests.conftest",
                "-p",
                "no:cacheprovider",
                "--rootdir",
                str(ROOT),
                str(ROOT / "bench" / ("latency.py" if "--latency" in sys.argv else "measure.py")),
            ]
        )
    )
