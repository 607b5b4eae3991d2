"""The latency mode of bench/run.py (`python bench/run.py --latency`): the same real servers,
each network dependency also reached through a `DelayProxy` that adds RTT_S.

Per check: the whole-process time of `--only <id>` direct and through the proxies (median of
REPEAT) and the effective round trips, (via proxy - direct) / RTT; then the full run against the
slowest check alone, at 20 ms and on loopback; the full run's CPU seconds and peak RSS with the
cluster checks on (the fake API server); and the whole machine's busy CPU during that run (the
servers share its cores). Kafka's advertised listener and the OIDC issuer name the proxy's port,
so every connection of those checks pays the latency too.
"""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import trustme

from bench.measure import CLI, Child, cli_options, healthy_values, peak_memory_mb, run_child
from bench.proxy import DelayProxy
from tests.cli import write_values
from tests.servers import oidc as oidc_servers
from tests.servers._process import free_port
from tests.servers.clickhouse import ClickHouseServer
from tests.servers.detectors import DetectorServers
from tests.servers.kafka import KafkaBroker, tansu_or_skip
from tests.servers.kubernetes import KubeCluster
from tests.servers.oidc import OidcProvider
from tests.servers.openfga import OpenFgaServer
from tests.servers.postgres import PostgresServer
from tests.servers.registry import Registry
from tests.servers.s3 import S3Server

#: The added round-trip time: 20 ms, or `--rtt-ms N` of bench/run.py (a longer one measures the
#: round trips more precisely on a busy machine, whose noise is tens of milliseconds).
RTT_S = float(os.environ.get("SENSE_BENCH_RTT_MS", "20")) / 1000
REPEAT = 5  # full runs
ALONE_REPEAT = 5  # each check alone: medians, and minima for the round trips
#: The checks whose dependency sits behind a proxy, with the goal for their round trips.
GOALS = {"postgres.api": 9, "clickhouse": 9, "kafka": 18, "s3": 8, "openfga": 7, "oidc": 5}


@pytest.fixture(scope="session")
def proxy_ports() -> dict[str, int]:
    """The ports the proxies listen on, chosen before the servers that must advertise them."""
    return {name: free_port() for name in ("kafka", "oidc")}


@pytest.fixture(scope="session")
def kafka_far(session_dir: Path, proxy_ports: dict[str, int]) -> Iterator[KafkaBroker]:
    """A Tansu broker that advertises the proxy's port."""
    yield from tansu_or_skip(session_dir, advertised_port=proxy_ports["kafka"])


@pytest.fixture(scope="session")
def oidc_far(session_dir: Path, proxy_ports: dict[str, int]) -> Iterator[OidcProvider]:
    """An OpenID Provider whose issuer names the proxy's port."""
    yield from oidc_servers._start(
        "oidc-far", session_dir, path=oidc_servers.REALM_PATH, issuer_port=proxy_ports["oidc"]
    )


def _port_of(url: str) -> int:
    return int(url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[1])


def _far_values(
    values: dict[str, Any], proxies: dict[str, DelayProxy], kafka: KafkaBroker, oidc: OidcProvider
) -> dict[str, Any]:
    """The same values with every proxied dependency pointed at its proxy."""
    far = {key: dict(value) if isinstance(value, dict) else value for key, value in values.items()}
    far["postgres"] = {
        db: dict(values["postgres"][db], port=proxies["postgres"].port) for db in ("api", "worker")
    }
    far["clickhouse"]["port"] = proxies["clickhouse"].port
    far["kafka"]["bootstrapServers"] = f"127.0.0.1:{proxies['kafka'].port}"
    far["s3"]["host"] = f"127.0.0.1:{proxies['s3'].port}"
    far["oidc"].update(
        authority=oidc.issuer,
        clientId=oidc.service.client_id,
        clientSecret=oidc.service.client_secret,
    )
    far["openfga"]["apiUrl"] = f"http://127.0.0.1:{proxies['openfga'].port}"
    assert kafka.advertised_port == proxies["kafka"].port
    return far


def _median(runs: list[Child]) -> Child:
    return sorted(runs, key=lambda run: run.wall)[len(runs) // 2]


class Alone(NamedTuple):
    """A check run alone ALONE_REPEAT times: the median whole-process wall time, the fastest
    run of the check's own duration_s (the machine's load only ever adds to it), and the
    exchanges its proxies counted in one run."""

    wall: float
    check_s: float
    exchanges: int


def _alone(args: list[str], check_id: str, proxies: Sequence[DelayProxy]) -> Alone:
    runs, exchanges = [], 0
    for _ in range(ALONE_REPEAT):
        before = sum(proxy.exchanges for proxy in proxies)
        runs.append(run_child([*args, "--only", check_id]))
        exchanges = sum(proxy.exchanges for proxy in proxies) - before
    durations = [
        next(c["duration_s"] for c in run.report["checks"] if c["id"] == check_id) for run in runs
    ]
    return Alone(statistics.median(run.wall for run in runs), min(durations), exchanges)


def test_latency(
    tmp_path: Path,
    test_ca: trustme.CA,
    postgres17: PostgresServer,
    clickhouse26: ClickHouseServer,
    kafka_tansu: KafkaBroker,
    kafka_far: KafkaBroker,
    s3_server: S3Server,
    oidc_provider: OidcProvider,
    oidc_far: OidcProvider,
    openfga: OpenFgaServer,
    registry: Registry,
    detector_servers: DetectorServers,
    kube: KubeCluster,
    proxy_ports: dict[str, int],
) -> None:
    near = healthy_values(
        postgres17,
        clickhouse26,
        kafka_tansu,
        s3_server,
        oidc_provider,
        openfga,
        registry,
        detector_servers,
    )
    delay = RTT_S / 2
    proxies = {
        "postgres": DelayProxy(free_port(), postgres17.port, delay),
        "clickhouse": DelayProxy(free_port(), clickhouse26.port, delay),
        "kafka": DelayProxy(proxy_ports["kafka"], kafka_far.port, delay),
        "s3": DelayProxy(free_port(), s3_server.http_port, delay),
        "oidc": DelayProxy(proxy_ports["oidc"], oidc_far.port, delay),
        "openfga": DelayProxy(free_port(), _port_of(openfga.url), delay),
    }
    far = _far_values(near, proxies, kafka_far, oidc_far)
    common = cli_options(tmp_path, test_ca, kube, registry)
    near_args = [str(write_values(tmp_path, near, "near.yaml")), *common]
    far_args = [str(write_values(tmp_path, far, "far.yaml")), *common]
    try:
        _report(near_args, far_args, list(proxies.values()))
    finally:
        for proxy in proxies.values():
            proxy.stop()


def _report(near_args: list[str], far_args: list[str], proxies: list[DelayProxy]) -> None:
    near_full = _median([run_child(near_args) for _ in range(REPEAT)])
    far_runs = [run_child(far_args) for _ in range(REPEAT)]
    far_full = _median(far_runs)
    statuses = {c["id"]: c["status"] for c in far_full.report["checks"]}
    ids = [
        c["id"] for c in far_full.report["checks"] if c["status"] != "skip" and c["id"] != "values"
    ]
    near_alone = {check_id: _alone(near_args, check_id, proxies) for check_id in ids}
    far_alone = {check_id: _alone(far_args, check_id, proxies) for check_id in ids}

    print(
        f"\n\nsense-preflight latency benchmark: {RTT_S * 1000:.0f} ms RTT through DelayProxy, medians of {REPEAT}"
    )
    print(
        f"full run at {RTT_S * 1000:.0f} ms, statuses:",
        ", ".join(f"{k}={v}" for k, v in statuses.items()),
    )
    print(
        f"round trips = (alone via proxy - alone direct) / RTT: from the median whole-process "
        f"time of {ALONE_REPEAT} runs, and from the fastest of the check's own duration_s; "
        "exchanges = request turns + connections the proxy saw (parallel ones included)"
    )
    print(
        f"{'check':<26} {'alone 0 ms':>10} {f'alone {RTT_S * 1000:.0f} ms':>11} {'RT (median)':>12} {'RT (fastest)':>12} {'exchanges':>9}  goal"
    )
    for check_id in ids:
        near, far = near_alone[check_id], far_alone[check_id]
        goal = f"<= {GOALS[check_id]}" if check_id in GOALS else "(not proxied)"
        print(
            f"{check_id:<26} {near.wall:>9.2f}s {far.wall:>10.2f}s "
            f"{(far.wall - near.wall) / RTT_S:>12.1f} {(far.check_s - near.check_s) / RTT_S:>12.1f} "
            f"{far.exchanges:>9}  {goal}"
        )
    for label, full, alone, goal in (
        (f"{RTT_S * 1000:.0f} ms", far_full, far_alone, "<= 1.15x at 20 ms"),
        ("loopback", near_full, near_alone, "<= 1.5x"),
    ):
        slowest = max(alone, key=lambda check_id: alone[check_id].wall)
        print(
            f"full run {label}: {full.wall:.2f} s vs slowest alone {alone[slowest].wall:.2f} s "
            f"({slowest}) = {full.wall / alone[slowest].wall:.2f}x  goal {goal}"
        )
    _print_machine(far_full, far_alone)
    cpu = statistics.median(run.cpu_s for run in far_runs)
    rss = max(run.rss_kib for run in far_runs) / 1024
    pss = peak_memory_mb(far_args)
    print(
        f"full run at {RTT_S * 1000:.0f} ms, cluster checks on: CPU {cpu:.2f} s (user+sys, all "
        f"processes), peak RSS {rss:.0f} MB (largest process), PSS {pss:.0f} MB (all processes)"
        "  goal <= 110 MB"
    )
    print("python:", sys.version.split()[0], "cli:", " ".join(CLI))


def _print_machine(full: Child, alone: dict[str, Alone]) -> None:
    """The machine's CPU during the median full run: busy seconds can never exceed cores x wall,
    so busy / cores is the soonest that run could have ended with every core kept busy (the
    machine's CPUs: the ones its busy seconds are summed over)."""
    cores = os.cpu_count() or 1
    slowest = max(alone.values(), key=lambda run: run.wall).wall
    floor = full.machine_busy_s / cores
    print(
        f"full run at {RTT_S * 1000:.0f} ms, the machine's CPU: {full.machine_busy_s:.2f} s busy "
        f"of {cores} x {full.wall:.2f} s ({full.machine_busy_s / (cores * full.wall):.0%}): the CLI "
        f"{full.cpu_s:.2f} s, the servers, proxies and the rest "
        f"{full.machine_busy_s - full.cpu_s:.2f} s; every core busy, it could end no sooner than "
        f"{floor:.2f} s = {floor / slowest:.2f}x the slowest alone"
    )
