"""Running `sense-preflight serve` as a real process, as an operator would, and talking to it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.cli import example_values, write_values
from tests.servers._process import free_port
from tests.servers.postgres import PostgresServer

HOST = "127.0.0.1"


@dataclass
class RunningExporter:
    """A `sense-preflight serve` process and its address."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    values_path: Path

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def get(
        self, path: str, params: dict[str, str] | None = None, accept: str = "text/plain"
    ) -> httpx.Response:
        return httpx.get(
            f"http://{self.address}{path}", params=params, headers={"Accept": accept}, timeout=60
        )

    def samples(
        self, path: str = "/metrics", params: dict[str, str] | None = None
    ) -> dict[tuple[str, frozenset], float]:
        """{(name, labels): value} of every sample the endpoint serves."""
        answer = self.get(path, params)
        assert answer.status_code == 200, answer.text
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(answer.text)
            for sample in family.samples
        }

    def runs(self) -> int:
        return int(self.samples()[("sense_preflight_runs_total", frozenset())])

    def wait_for_runs(self, count: int, timeout: float = 120) -> None:
        """Wait until `count` scheduled runs have finished."""
        deadline = time.monotonic() + timeout
        while self.runs() < count:
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, f"fewer than {count} runs: {self.log()}"
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, number: int) -> None:
        self.proc.send_signal(number)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then its exit code (it finishes the run in progress first)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


def start(tmp_path: Path, values: dict[str, Any], *args: str) -> RunningExporter:
    """Start the exporter on a free loopback port; it is not ready yet (see `wait_ready`)."""
    values_path = write_values(tmp_path, values)
    port = free_port()
    log_path = tmp_path / f"serve-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "preflight",
                "serve",
                str(values_path),
                "--listen",
                f"{HOST}:{port}",
                *args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "NO_COLOR": "1"},
        )
    return RunningExporter(proc, port, log_path, values_path)


def wait_listening(exporter: RunningExporter, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert exporter.proc.poll() is None, exporter.log()
        try:
            exporter.get("/-/healthy")
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"not listening: {exporter.log()}"
            time.sleep(0.05)


def wait_ready(exporter: RunningExporter, timeout: float = 60) -> None:
    wait_listening(exporter, timeout)
    deadline = time.monotonic() + timeout
    while exporter.get("/-/ready").status_code != 200:
        assert exporter.proc.poll() is None, exporter.log()
        assert time.monotonic() < deadline, f"not ready: {exporter.log()}"
        time.sleep(0.05)


@contextmanager
def serving(
    tmp_path: Path, values: dict[str, Any], *args: str, ready: bool = True
) -> Iterator[RunningExporter]:
    """The exporter for the block; stopped (SIGTERM, then SIGKILL) at its end."""
    exporter = start(tmp_path, values, *args)
    try:
        if ready:
            wait_ready(exporter)
        yield exporter
    finally:
        if exporter.proc.poll() is None:
            exporter.proc.send_signal(signal.SIGTERM)
            try:
                exporter.proc.wait(60)
            except subprocess.TimeoutExpired:
                exporter.proc.kill()
                exporter.proc.wait(10)


def postgres_values(
    api: PostgresServer, worker: PostgresServer, **api_extra: Any
) -> dict[str, Any]:
    """The guide's example values with both databases on test servers (owner roles)."""
    values = example_values(filled=True)
    for which, server, extra in (("api", api, api_extra), ("worker", worker, {})):
        values["postgres"][which] = {
            "host": server.host,
            "port": server.port,
            "database": server.database if which == "api" else server.second_database,
            "username": server.owner.name,
            "password": server.owner.password,
            **extra,
        }
        if server.tls and server.ca is not None:
            values["postgres"][which] |= {"sslMode": "verify-full", "sslRootCert": str(server.ca)}
    return values
