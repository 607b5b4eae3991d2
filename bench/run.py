"""Benchmark sense-preflight against the test suite's real local servers.

    python bench/run.py            # on loopback
    python bench/run.py --latency  # each dependency behind a 20 ms RTT proxy (bench/latency.py)
    python bench/run.py --latency --rtt-ms 100   # another RTT

Starts the servers through the test suite's fixtures (pytest is only the harness: nothing here
asserts a time), measures, and prints a table of the four figures beside their goals:
(1) full run wall time vs the slowest single check (goal <= 1.3x), (2) a run with one
accept-and-hang dependency and --timeout 2 (goal <= 2.5 s), (3) `--help` and `validate`
start-up vs `python -c 'import click'` (goal <= 2x), (4) peak RSS of a full run (goal <= 150 MB).
The project's own modules are byte-compiled first, as `pip install .` leaves them.
"""

from __future__ import annotations

import compileall
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if "--rtt-ms" in sys.argv:
        os.environ["SENSE_BENCH_RTT_MS"] = sys.argv[sys.argv.index("--rtt-ms") + 1]
    # Measure what an installed wheel does: pip compiles its modules, an editable checkout
    # (with PYTHONDONTWRITEBYTECODE set) would recompile them on every start.
    for package in ("preflight", "checks"):
        compileall.compile_dir(ROOT / package, quiet=1)
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
