"""A partner-style check plug-in, installed for a test by writing a real `.dist-info` folder
(with its entry point) onto PYTHONPATH: the registry finds it like any installed package."""

from __future__ import annotations

from pathlib import Path

PLUGIN_SOURCE = '''
"""Demo checks for the engine's tests (a partner plug-in)."""
import logging
import os
import time
from pathlib import Path

from preflight.engine.check import Check, StepFailed


def sleeper(seconds):
    def run(probe):
        with probe.step("config") as step:
            step.detail = "configured"
        with probe.step("auth"):
            time.sleep(seconds)
    return run


def failing(probe):
    with probe.step("tcp"):
        raise StepFailed("TCP: 10.0.0.1:1: connection refused", "start the demo service")


def warning(probe):
    with probe.step("version") as step:
        step.warn("old but supported", "upgrade soon")


def leaking(probe):
    with probe.step("auth"):
        secret = probe.values.get("demo.password")
        raise RuntimeError(f"client said: login with {secret} refused")


def chatty(probe):
    with probe.step("auth"):
        logging.getLogger("demo.client").warning(
            "login as %s with %s", "svc", probe.values.get("demo.password")
        )
        raise StepFailed("auth refused", "check demo.password")


def crashing(probe):
    raise ZeroDivisionError("division by zero")


def cleaning(probe):
    marker = Path(probe.values.get("demo.marker"))
    with probe.step("roundtrip"):
        marker.write_text("created")
        probe.cleanup("remove marker", marker.unlink)
        time.sleep(float(probe.values.get("demo.hold", 0)))


def checks(values):
    hold = float(values.get("demo.sleep", 0))
    return [
        Check("demo.sleep", "sleeps", sleeper(hold), reads=("demo.sleep",),
              applies=lambda v: None if v.has("demo.sleep") else "demo.sleep not set"),
        Check("demo.fail", "fails at tcp", failing),
        Check("demo.warn", "warns", warning),
        Check("demo.leak", "raises with a secret", leaking),
        Check("demo.crash", "raises outside a step", crashing),
        Check("demo.chatty", "logs through a client library's logger", chatty),
        Check("demo.cleanup", "writes a marker and cleans it up", cleaning,
              applies=lambda v: None if v.has("demo.marker") else "demo.marker not set"),
    ]
'''


def install_plugin(
    folder: Path,
    modules: dict[str, str] | None = None,
    points: dict[str, str] | None = None,
) -> Path:
    """Write the plug-in's modules (name → source; the demo plug-in's by default) and its
    dist-info with the entry points (component → `module:function`) into folder; put folder
    on PYTHONPATH."""
    modules = modules or {"demo_checks": PLUGIN_SOURCE}
    points = points or {"demo": "demo_checks:checks"}
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (folder / f"{name}.py").write_text(source)
    info = folder / "demo_checks-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-checks\nVersion: 1.0\n")
    lines = "".join(f"{component} = {target}\n" for component, target in points.items())
    (info / "entry_points.txt").write_text(f"[sense_preflight.checks]\n{lines}")
    return folder
