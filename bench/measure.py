"""The measurements behind bench/run.py (collected by pytest only to reuse the test servers)."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any, NamedTuple

import psutil
import trustme

from tests.cli import example_values, write_values
from tests.servers.clickhouse import ClickHouseServer
from tests.servers.detectors import DetectorServers
from tests.servers.hostile import HostileServers
from tests.servers.kafka import KafkaBroker
from tests.servers.kubernetes import KubeCluster
from tests.servers.oidc import OidcProvider
from tests.servers.openfga import OpenFgaServer
from tests.servers.postgres import PostgresServer
from tests.servers.registry import Registry, docker_config
from tests.servers.s3 import S3Server

#: The bench virtualenv's interpreter (bench/run.py), this one when run otherwise.
PYTHON = os.environ.get("SENSE_BENCH_PYTHON", sys.executable)
#: The bench virtualenv's installed command (bench/run.py), as a partner runs it: not
#: `python -m preflight`, which imports the package from the working directory when that is
#: this tree (not the installed, compiled copy). This interpreter's module when run otherwise.
CLI = (
    [str(Path(PYTHON).with_name("sense-preflight"))]
    if "SENSE_BENCH_PYTHON" in os.environ
    else [sys.executable, "-m", "preflight"]
)
REPEAT = 10  # start-up timings
RUNS = 5  # full runs and hang runs


def healthy_values(
    pg: PostgresServer,
    ch: ClickHouseServer,
    kafka: KafkaBroker,
    s3: S3Server,
    oidc: OidcProvider,
    fga: OpenFgaServer,
    registry: Registry,
    detectors: DetectorServers,
) -> dict[str, Any]:
    values = example_values()
    for db, name in (("api", pg.database), ("worker", pg.second_database)):
        values["postgres"][db].update(
            host=pg.host,
            port=pg.port,
            database=name,
            username=pg.owner.name,
            password=pg.owner.password,
        )
    admin = ch.users["admin"]
    values["clickhouse"].update(
        host=ch.host, port=ch.port, username=admin.name, password=admin.password
    )
    values["kafka"]["bootstrapServers"] = kafka.bootstrap
    values["s3"].update(
        host=f"{s3.host}:{s3.http_port}",
        secured=False,
        framesBucketName=s3.bucket,
        accessKey=s3.admin.access_key,
        secretKey=s3.admin.secret_key,
    )
    values["oidc"].update(
        authority=oidc.issuer,
        clientId=oidc.service.client_id,
        clientSecret=oidc.service.client_secret,
        requireHttpsMetadata=False,
    )
    values["openfga"].update(apiUrl=fga.url, apiKey=fga.api_key)
    image = {"repository": f"{registry.host}/{registry.repository}", "tag": registry.tag}
    for key in ("api", "worker"):
        values[key]["image"] = dict(image)
    values["vision"]["image"] = dict(image)
    values["vision"]["triton"]["image"] = dict(image)
    values["vision"]["config"]["detectors"][0].update(
        apiUrl=f"{detectors.http}/status/200", authToken=detectors.token
    )
    values["vision"]["config"]["mapMatching"]["mapMatchingApi"]["baseUrl"] = (
        f"{detectors.http}/status/200"
    )
    return values


class Child(NamedTuple):
    """One CLI run: its JSON report, wall time, peak RSS (KiB), CPU seconds (user + sys) and
    the whole machine's busy CPU seconds meanwhile (every process: the servers, the proxies)."""

    report: dict[str, Any]
    wall: float
    rss_kib: int
    cpu_s: float
    machine_busy_s: float


def cli_options(
    tmp_path: Path, test_ca: trustme.CA, kube: KubeCluster, registry: Registry
) -> list[str]:
    """The options every benchmark run passes: JSON, the session CA, the fake cluster's
    kubeconfig (the cluster checks on) and the registry's credentials."""
    ca = tmp_path / "ca.pem"
    test_ca.cert_pem.write_to_path(str(ca))
    return [
        "--format",
        "json",
        "--ca-bundle",
        str(ca),
        "--kubeconfig",
        str(kube.write_kubeconfig(tmp_path / "kubeconfig")),
        "--registry-config",
        str(docker_config(tmp_path / "docker.json", registry)),
    ]


def run_child(args: list[str]) -> Child:
    """Run the CLI in a child of a fresh interpreter (so getrusage sees that child alone)."""
    probe = (
        "import json, resource, subprocess, sys, time, psutil;"
        "busy = lambda c: c.user + c.nice + c.system + c.irq + c.softirq + c.steal;"
        "b = busy(psutil.cpu_times()); t = time.monotonic();"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "wall = time.monotonic() - t; b = busy(psutil.cpu_times()) - b;"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN);"
        "print(json.dumps({'out': p.stdout, 'wall': wall, 'rss': u.ru_maxrss,"
        " 'cpu': u.ru_utime + u.ru_stime, 'busy': b}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *CLI, *args], capture_output=True, text=True, check=True
    )
    outcome = json.loads(done.stdout)
    return Child(
        json.loads(outcome["out"]), outcome["wall"], outcome["rss"], outcome["cpu"], outcome["busy"]
    )


def peak_memory_mb(args: list[str]) -> float:
    """One CLI run watched every 10 ms: the peak of its processes' summed PSS, in MB. A forked
    child shares its parent's pages until either writes them; PSS counts a shared page once
    (split between its sharers), where summing RSS would count it in each."""
    proc = psutil.Popen([*CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        with suppress(psutil.Error):  # a process ended between the listing and the reading
            tree = [proc, *proc.children(recursive=True)]
            peak = max(peak, sum(process.memory_full_info().pss for process in tree))
        time.sleep(0.01)
    return peak / 2**20


def run_json(args: list[str]) -> tuple[dict[str, Any], float, int]:
    """Run the CLI in a child; its JSON report, wall time and the child's peak RSS (KiB)."""
    child = run_child(args)
    return child.report, child.wall, child.rss_kib


def _slowest_s(report: dict[str, Any]) -> float:
    return max(float(c["duration_s"]) for c in report["checks"])


def _median_run(
    runs: list[tuple[dict[str, Any], float, int]],
) -> tuple[dict[str, Any], float, int]:
    """The run with the median wall time."""
    return sorted(runs, key=lambda run: run[1])[len(runs) // 2]


def median_wall(args: list[str]) -> float:
    times = []
    for _ in range(REPEAT):
        started = time.monotonic()
        subprocess.run(args, capture_output=True, check=False)
        times.append(time.monotonic() - started)
    return statistics.median(times)


def test_measure(
    tmp_path: Path,
    test_ca: trustme.CA,
    postgres17: PostgresServer,
    clickhouse26: ClickHouseServer,
    kafka_noida: KafkaBroker,
    s3_server: S3Server,
    oidc_provider: OidcProvider,
    openfga: OpenFgaServer,
    registry: Registry,
    detector_servers: DetectorServers,
    kube: KubeCluster,
    hostile: HostileServers,
) -> None:
    values = healthy_values(
        postgres17,
        clickhouse26,
        kafka_noida,
        s3_server,
        oidc_provider,
        openfga,
        registry,
        detector_servers,
    )
    values_file = write_values(tmp_path, values)
    common = [str(values_file), *cli_options(tmp_path, test_ca, kube, registry)]

    full_runs = [run_json(common) for _ in range(RUNS)]
    report, full_wall, _ = _median_run(full_runs)
    slowest = max(report["checks"], key=lambda c: c["duration_s"])
    statuses = {c["id"]: c["status"] for c in report["checks"]}
    ratio = statistics.median(wall / _slowest_s(rep) for rep, wall, _ in full_runs)
    rss_kib = max(rss for _, _, rss in full_runs)
    pss_mb = peak_memory_mb(common)

    hang = dict(values)
    hang["clickhouse"] = dict(values["clickhouse"], host="127.0.0.1", port=hostile.hang)
    hang_args = [str(write_values(tmp_path, hang, "hang.yaml")), *common[1:], "--timeout", "2"]
    hang_runs = [run_json(hang_args) for _ in range(RUNS)]
    hang_report, hang_wall, _ = _median_run(hang_runs)
    hang_walls = sorted(wall for _, wall, _ in hang_runs)

    click_s = median_wall([PYTHON, "-c", "import click"])
    help_s = median_wall([*CLI, "--help"])
    validate_s = median_wall([*CLI, "validate", str(values_file)])

    rows = [
        (
            "full run vs slowest check",
            f"{full_wall:.2f} s vs {slowest['duration_s']:.2f} s ({slowest['id']}) = {ratio:.2f}x",
            "<= 1.3x",
        ),
        ("  report duration_s (in-process)", f"{report['duration_s']:.2f} s", ""),
        (
            "one accept-and-hang, --timeout 2",
            f"{hang_wall:.2f} s, range {hang_walls[0]:.2f}-{hang_walls[-1]:.2f} s (clickhouse: {dict((c['id'], c['status']) for c in hang_report['checks'])['clickhouse']})",
            "<= 2.5 s",
        ),
        (
            "--help start-up",
            f"{help_s * 1000:.0f} ms vs import click {click_s * 1000:.0f} ms = {help_s / click_s:.2f}x",
            "<= 2x",
        ),
        ("validate start-up", f"{validate_s * 1000:.0f} ms = {validate_s / click_s:.2f}x", "<= 2x"),
        (
            "peak memory, full run",
            f"RSS {rss_kib / 1024:.0f} MB (largest process, max of runs); PSS {pss_mb:.0f} MB (all processes)",
            "<= 150 MB",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n\nsense-preflight benchmark (median of {RUNS} runs; of {REPEAT} for start-up)")
    print("check statuses:", ", ".join(f"{k}={v}" for k, v in statuses.items()))
    for name, figure, goal in rows:
        print(f"{name:<{width}}  {figure:<70} {goal}")
    print(
        "max RSS per run from getrusage; machine:",
        subprocess.run(["uname", "-srm"], capture_output=True, text=True).stdout.strip(),
        f"{resource.getpagesize()}-byte pages",
    )
