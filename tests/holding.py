"""`python -m tests.holding SECONDS ARGS…`: the real CLI, with every check paused for SECONDS
right after it registers a cleanup (its scratch object then exists), so a test can interrupt
the run at exactly that point and see the cleanup run. A test-only wrapper: production code
knows nothing of it."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from preflight.cli import program
from preflight.engine.check import Probe


def hold_after_cleanup(seconds: float) -> None:
    """Make Probe.cleanup pause the check for `seconds` (bounded by its deadline)."""
    register = Probe.cleanup

    def cleanup_then_hold(probe: Probe, description: str, action: Callable[[], Any]) -> None:
        register(probe, description, action)
        time.sleep(min(seconds, probe.deadline.remaining()))

    Probe.cleanup = cleanup_then_hold  # type: ignore[method-assign]


if __name__ == "__main__":
    hold_after_cleanup(float(sys.argv[1]))
    sys.argv = ["sense-preflight", *sys.argv[2:]]
    program()
