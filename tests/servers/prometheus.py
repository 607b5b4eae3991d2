"""A real Prometheus server (Debian's `prometheus`, installed by `.ci/setup/prometheus.sh`) that
scrapes targets the test gives, so a test can read back through Prometheus' HTTP API what it
stored.

Unlike the other servers it starts per test (`start_prometheus(targets)`), since its scrape
targets are processes the test starts. Without the binary the tests are skipped with the reason;
there is no way to point the suite at a Prometheus of your own (it could not reach the test's
loopback targets).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.servers._process import free_port, start_process, wait_for_port

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Prometheus:
    """A running Prometheus and its HTTP API."""

    url: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query: the series it returns (`metric` labels, `value` [time, "text"])."""
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        answer.raise_for_status()
        body = answer.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def wait_for(
        self, expr: str, accept: Callable[[list[dict[str, Any]]], bool], timeout: float = 60
    ) -> list[dict[str, Any]]:
        """Query until `accept` likes the answer; fail with the last answer after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            series = self.query(expr)
            if accept(series):
                return series
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr}: still {series} after {timeout:.0f}s")
            time.sleep(0.25)


def values_of(series: list[dict[str, Any]]) -> list[float]:
    """The sample values of an instant query's series."""
    return [float(entry["value"][1]) for entry in series]


@contextmanager
def prometheus_server(
    targets: Sequence[str], log_dir: Path, interval: str = "1s"
) -> Iterator[Prometheus]:
    """Prometheus scraping `targets` (HOST:PORT) every `interval`, in a fresh temp folder."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus: not installed (run .ci/setup/prometheus.sh)")
    workdir = Path(tempfile.mkdtemp(prefix="sense-preflight-prometheus-"))
    config = {
        "global": {"scrape_interval": interval, "scrape_timeout": interval},
        "scrape_configs": [
            {"job_name": "sense-preflight", "static_configs": [{"targets": list(targets)}]}
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = start_process(
        "prometheus",
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address={HOST}:{port}",
        ],
        log_dir,
        cwd=workdir,
    )
    proc.extra_cleanup.append(workdir)
    try:
        wait_for_port(HOST, port, proc=proc.proc)
        url = f"http://{HOST}:{port}"
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/-/ready", timeout=5).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus not ready:\n{proc.log_tail()}")
            time.sleep(0.1)
        yield Prometheus(url)
    finally:
        proc.stop()


@pytest.fixture
def start_prometheus(session_dir: Path) -> Callable[..., AbstractContextManager[Prometheus]]:
    """`with start_prometheus(["127.0.0.1:9115"]) as prom:` — a Prometheus for this test."""
    return lambda targets, interval="1s": prometheus_server(targets, session_dir, interval)
