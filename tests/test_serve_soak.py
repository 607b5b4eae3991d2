"""Soak: hundreds of scheduled runs of `sense-preflight serve` in one process against the real
PostgreSQL 17 and a real Kafka-protocol broker (Tansu), with write probes. Memory, open files
and threads (librdkafka's native ones included) stay flat; every cleanup runs (no session, no
scratch table, topic or consumer group left); the exporter stops clean."""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.serve import RunningExporter, postgres_values, serving
from tests.servers.kafka import KafkaBroker
from tests.servers.postgres import PostgresServer
from tests.test_kafka import leftovers

RUNS = 240
WARM_UP = 90  # runs before the first measurement: imports, caches, allocator pools fill up
WINDOW = 50  # runs per measured window
MAX_RSS_GROWTH_KIB = 4096


@dataclass(frozen=True)
class Sample:
    runs: int
    rss_kib: int
    fds: int
    threads: int


def sample(exporter: RunningExporter) -> Sample:
    """The process as the kernel sees it (not as it reports itself)."""
    proc = Path(f"/proc/{exporter.proc.pid}")
    status = dict(
        line.split(":", 1) for line in (proc / "status").read_text().splitlines() if ":" in line
    )
    fds = len(list((proc / "fd").iterdir()))
    return Sample(  # the run count last: asking for it opens a connection for a moment
        runs=exporter.runs(),
        rss_kib=int(status["VmRSS"].split()[0]),
        fds=fds,
        threads=int(status["Threads"]),
    )


def floor(samples: list[Sample], first: int, last: int) -> Sample:
    """The lowest figures seen while runs first..last finished: a run or a scrape in flight
    adds a socket or a thread for a moment; a leak raises the floor."""
    window = [s for s in samples if first <= s.runs <= last]
    assert len(window) >= 5, f"only {len(window)} samples in runs {first}-{last}"
    return Sample(
        runs=last,
        rss_kib=min(s.rss_kib for s in window),
        fds=min(s.fds for s in window),
        threads=min(s.threads for s in window),
    )


def sessions(server: PostgresServer, role: str) -> int:
    with psycopg.connect(server.conninfo(database="postgres")) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", [role])
        return int(row.fetchone()[0])  # type: ignore[index]


def test_soak_memory_files_threads_flat_and_cleanups_run(
    postgres17: PostgresServer, kafka_tansu: KafkaBroker, tmp_path: Path
) -> None:
    values = postgres_values(postgres17, postgres17)
    values["kafka"] = {"bootstrapServers": kafka_tansu.bootstrap}
    args = ("--only", "postgres,kafka", "--interval", "100ms", "--timeout", "10s", "--write-probes")
    started = time.monotonic()
    samples: list[Sample] = []
    with serving(tmp_path, values, *args) as exporter:
        while not samples or samples[-1].runs < RUNS:
            samples.append(sample(exporter))
            time.sleep(0.03)
        report = exporter.get("/report").json()
        code = exporter.stop()
    elapsed = time.monotonic() - started
    log = exporter.log()

    warm = floor(samples, WARM_UP, WARM_UP + WINDOW)
    end = floor(samples, RUNS - WINDOW, RUNS)
    rss = [s.rss_kib for s in samples if s.runs >= WARM_UP]
    print(
        f"\nsoak: {samples[-1].runs} runs in {elapsed:.1f}s; floor after run {warm.runs} → run "
        f"{end.runs}: RSS {warm.rss_kib} → {end.rss_kib} KiB ({end.rss_kib - warm.rss_kib:+d}), "
        f"fds {warm.fds} → {end.fds}, threads {warm.threads} → {end.threads}; RSS median "
        f"{statistics.median(rss):.0f} KiB, max {max(rss)} KiB over {len(samples)} samples"
    )
    statuses = {c["id"]: c["status"] for c in report["checks"]}
    # Tansu reports no Kafka version (the protocol has none): the kafka check passes with a warning.
    assert statuses == {
        "values": "pass",
        "postgres.api": "pass",
        "postgres.worker": "pass",
        "kafka": "warn",
    }
    roundtrips = [s for c in report["checks"] for s in c["steps"] if s["name"] == "roundtrip"]
    assert [s["status"] for s in roundtrips] == ["pass", "pass", "pass"]  # the write probes ran
    assert end.rss_kib - warm.rss_kib < MAX_RSS_GROWTH_KIB
    assert end.fds <= warm.fds
    assert end.threads <= warm.threads
    assert code == 0, log
    assert log.rstrip().endswith("no thread left"), log[-2000:]
    run_lines = [line for line in log.splitlines() if re.search(r" run \d+: ", line)]
    assert len(run_lines) >= RUNS and all(", 0 fail," in line for line in run_lines)
    assert leftovers(kafka_tansu) == []

    # Every cleanup ran: no session of the checks' role and no scratch table remain.
    deadline = time.monotonic() + 30
    while sessions(postgres17, postgres17.owner.name) and time.monotonic() < deadline:
        time.sleep(0.1)  # a backend ends a moment after its client closed the connection
    assert sessions(postgres17, postgres17.owner.name) == 0
    assert postgres17.scratch_tables() == []
