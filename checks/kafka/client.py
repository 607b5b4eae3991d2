"""librdkafka (confluent-kafka) for the kafka check: every client's timeouts come from the
check's deadline, and its log lines go into the check (`probe.log`), never to stderr."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from checks.kafka import protocol as wire
from preflight.engine.check import Probe
from preflight.engine.deadline import CLIENT_MARGIN_S
from preflight.net import Endpoint, TlsSettings

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient, ClusterMetadata


@dataclass(frozen=True)
class Settings:
    """What the values ask for."""

    bootstraps: tuple[Endpoint, ...]
    protocol: str
    mechanism: str
    username: str
    password: str
    tls: TlsSettings | None

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL")


class _LogSink(logging.Logger):
    """librdkafka's `logger`: every line goes into the check (probe.log), none to stderr."""

    def __init__(self, probe: Probe) -> None:
        super().__init__("sense_preflight.librdkafka", logging.DEBUG)
        self.probe = probe
        self.lines: list[str] = []

    def handle(self, record: logging.LogRecord) -> None:
        line = _strip_prefix(record.getMessage())
        self.lines.append(line)
        self.probe.log(f"librdkafka {record.levelname.lower()}: {line}")

    def last(self, *needles: str) -> str | None:
        """The newest line that contains any of the needles (case-insensitive)."""
        for line in reversed(self.lines):
            if any(needle.lower() in line.lower() for needle in needles):
                return line
        return None


def _strip_prefix(line: str) -> str:
    """`FAIL [rdkafka#producer-1] [thrd:x]: host:9092/bootstrap: reason` → `reason` with host."""
    if "]: " in line:
        line = line.rsplit("]: ", 1)[1]
    return line.split(" (after ", 1)[0]


class KafkaClient:
    """librdkafka clients whose timeouts come from the check's deadline, logs into the check."""

    def __init__(self, probe: Probe, settings: Settings, bootstraps: Sequence[Endpoint]) -> None:
        self.probe = probe
        self.settings = settings
        self.bootstraps = bootstraps
        self.log = _LogSink(probe)
        self.errors: list[tuple[int, str]] = []
        self._admin: AdminClient | None = None

    def left(self, cap: float | None = None) -> float:
        """Seconds for the next librdkafka call: the deadline less a margin (at least 0.05)."""
        return self.probe.deadline.client_timeout(cap)

    def config(self, **extra: Any) -> dict[str, Any]:
        left_ms = int(self.left() * 1000)
        config: dict[str, Any] = {
            "bootstrap.servers": ",".join(endpoint.netloc for endpoint in self.bootstraps),
            "client.id": "sense-preflight",
            "security.protocol": self.settings.protocol,
            "socket.timeout.ms": max(10, left_ms),
            "socket.connection.setup.timeout.ms": max(1000, left_ms),
            "api.version.request.timeout.ms": max(10, left_ms),
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 500,
            "logger": self.log,
            "error_cb": lambda error: self.errors.append((error.code(), error.str())),
            **extra,
        }
        if self.settings.sasl:
            config.update(
                {
                    "sasl.mechanism": self.settings.mechanism,
                    "sasl.username": self.settings.username,
                    "sasl.password": self.settings.password,
                }
            )
        tls = self.settings.tls
        if tls is not None:
            config["enable.ssl.certificate.verification"] = tls.verify
            # Without a CA file, "probe" finds the system's CA bundle (Confluent Cloud).
            config["ssl.ca.location"] = str(tls.ca_file) if tls.ca_file else "probe"
        return config

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            from confluent_kafka.admin import AdminClient

            # Every broker's connection comes up as soon as the metadata names it (the
            # controller's is then ready for CreateTopics).
            self._admin = AdminClient(self.config(**{"enable.sparse.connections": False}))
        return self._admin

    def close(self) -> None:
        """Let the admin client go now: its callbacks refer back to this object, so without
        this it (and its librdkafka threads) would live until the garbage collector's turn."""
        self._admin = None

    def reason(self, *needles: str) -> str:
        """The most telling librdkafka error seen so far (served from its queue first)."""
        if self._admin is not None:
            self._admin.poll(0)
        line = self.log.last(*needles) if needles else None
        newest_error = self.errors[-1][1] if self.errors else ""
        return line or newest_error or (self.log.lines[-1:] or [""])[0]

    def auth_failed(self) -> bool:
        """Did librdkafka report a SASL authentication failure?"""
        from confluent_kafka import KafkaError

        return any(code == KafkaError._AUTHENTICATION for code, _ in self.errors)

    def cluster(self) -> wire.Cluster:
        """The cluster as librdkafka's metadata shows it."""
        metadata = self.metadata()
        brokers = (wire.Broker(b.id, str(b.host), b.port) for b in metadata.brokers.values())
        return wire.Cluster(metadata.cluster_id, metadata.controller_id, tuple(brokers))

    def metadata(self) -> ClusterMetadata:
        """Cluster id, controller and brokers (all topics: no auto-creation of a named one).
        Asked in half-second slices, so an authentication failure ends it at once."""
        from confluent_kafka import KafkaException

        while True:
            try:
                return self.admin.list_topics(timeout=self.left(0.5))
            except KafkaException as exc:
                self.admin.poll(0)
                if self.auth_failed() or self.probe.deadline.remaining() < 2 * CLIENT_MARGIN_S:
                    raise ClientError(exc.args[0].str() if exc.args else str(exc)) from None


class ClientError(Exception):
    """A librdkafka call failed; the message is librdkafka's."""
