"""Kafka (check id `kafka`): the API produces frame events, the Worker consumes them and its
migration Job creates the topics.

Steps: config → dns → tcp → tls (for every bootstrap address) → protocol (a raw ApiVersions
exchange) → auth (SASL) → metadata → advertised listeners → version → permissions → roundtrip.
librdkafka (confluent-kafka) does the authenticated work; its own timeouts come from the
check's deadline and its log lines go into the check (never to the terminal).
"""

from __future__ import annotations

import datetime as dt
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

from checks.kafka import protocol as wire
from checks.kafka.client import ClientError, KafkaClient, Settings
from preflight.engine.check import Check, Probe, Step, StepFailed
from preflight.engine.deadline import CLEANUP_TIMEOUT_S, Deadline
from preflight.net import (
    Endpoint,
    TlsInfo,
    connect_tcp,
    judge_tls,
    parse_endpoint,
    resolve,
    tls_handshake,
    tls_settings,
)
from preflight.net.fanout import each_address, in_parallel
from preflight.values.load import Values
from preflight.values.rules import KAFKA_PROTOCOLS

DEFAULT_PORT = 9092
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
MIN_RELEASE = (3, 0)
WANTED_BROKERS = 3
#: The client libraries this module's checks import (preflight.engine.preload).
CLIENTS = ("confluent_kafka",)
#: Its checks' CPU seconds in a run, clients included (bench/; engine.forked balances by it).
CPU_S = 0.08

READS = (
    "kafka.bootstrapServers",
    "kafka.securityProtocol",
    "kafka.saslMechanism",
    "kafka.saslUsername",
    "kafka.saslPassword",
    "kafka.filterByEnv",
    "global.env",
)


def checks(values: Values) -> list[Check]:
    """The kafka check (it always applies: kafka.bootstrapServers is required)."""
    return [
        Check(
            id="kafka",
            title="Kafka 3.x: bootstrap, SASL, advertised listeners, topic rights, round trip",
            run=run,
            reads=READS,
        )
    ]


def run(probe: Probe) -> None:
    """Walk the layers in order; the first one that fails ends the check."""
    settings = _config(probe)
    links = _reach(probe, settings)
    try:
        greeting = _protocol(probe, settings, links)
    finally:
        for link in links:
            link.sock.close()
    live = [link.endpoint for link in links if link.greeting is not None]
    client = KafkaClient(probe, settings, live)
    probe.cleanups.add("close the Kafka admin client", client.close)  # the last to run
    client.admin  # noqa: B018  librdkafka connects in its threads while the next steps run
    cluster = _metadata(probe, _auth(probe, settings, greeting, client))
    _advertised(probe, settings, cluster)
    _version(probe, greeting.ranges)
    topic = f"sense-preflight-{uuid.uuid4().hex[:12]}"
    replicas = min(len(cluster.brokers), WANTED_BROKERS)
    if probe.options.read_only:
        _permissions(probe, client, topic, replicas)
        probe.skip("roundtrip", "--read-only: no topic created, no message produced")
        return
    # The round trip's producer and consumer connect (TCP, ApiVersions, SASL, Metadata) in
    # librdkafka's threads while the permissions step runs.
    pair = _Pair(client)
    try:
        created = _permissions(probe, client, topic, replicas)
        _roundtrip(probe, client, topic, replicas, created, pair)
    finally:
        pair.close()


# --- config -----------------------------------------------------------------------------------


def _config(probe: Probe) -> Settings:
    with probe.step("config") as step:
        values = probe.values
        raw = values.get("kafka.bootstrapServers", "")
        items = raw if isinstance(raw, list) else str(raw).split(",")
        addresses = [str(item).strip() for item in items if str(item).strip()]
        if not addresses:
            raise StepFailed(
                "kafka.bootstrapServers is empty", "set it to host:9092 or a comma-separated list"
            )
        bootstraps = tuple(parse_endpoint(address, DEFAULT_PORT) for address in addresses)
        protocol = str(values.get("kafka.securityProtocol", "PLAINTEXT")).upper()
        if protocol not in KAFKA_PROTOCOLS:
            raise StepFailed(
                f"kafka.securityProtocol {protocol!r} is not one of {', '.join(KAFKA_PROTOCOLS)}",
                "use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (SASL_SSL for Confluent Cloud)",
            )
        mechanism = str(values.get("kafka.saslMechanism", "PLAIN")).upper()
        username = str(values.get("kafka.saslUsername", ""))
        password = str(values.get("kafka.saslPassword", ""))
        if protocol.startswith("SASL"):
            if mechanism not in MECHANISMS:
                raise StepFailed(
                    f"kafka.saslMechanism {mechanism!r} is not one of {', '.join(MECHANISMS)}",
                    "use PLAIN (Confluent Cloud) or SCRAM-SHA-256 / SCRAM-SHA-512",
                )
            missing = [
                name
                for name, value in (("saslUsername", username), ("saslPassword", password))
                if not value
            ]
            if missing:
                raise StepFailed(
                    f"{protocol} needs kafka.{' and kafka.'.join(missing)}",
                    "set the SASL user name and password (Confluent Cloud: API key and secret)",
                )
        if values.enabled("kafka.filterByEnv") and not values.has("global.env"):
            raise StepFailed(
                "kafka.filterByEnv is true but global.env is not set",
                "set global.env (the environment name the topics are filtered by)",
            )
        secure = protocol in ("SSL", "SASL_SSL")
        settings = Settings(
            bootstraps,
            protocol,
            mechanism,
            username,
            password,
            tls_settings(probe) if secure else None,
        )
        probe.facts["bootstrap_servers"] = [str(endpoint) for endpoint in bootstraps]
        probe.facts["security_protocol"] = protocol
        if settings.sasl:
            probe.facts["sasl_mechanism"] = mechanism
        auth = f"{protocol}/{mechanism}" if settings.sasl else protocol
        step.detail = f"{len(bootstraps)} bootstrap address(es), {auth}"
        return settings


# --- dns / tcp / tls, for every bootstrap address ---------------------------------------------


@dataclass
class Link:
    """One bootstrap address and its open connection."""

    endpoint: Endpoint
    addresses: list[str]
    sock: socket.socket
    peer: str
    greeting: Greeting | None = None
    tls: TlsInfo | None = None


def _reach(probe: Probe, settings: Settings) -> list[Link]:
    """dns, tcp and (for SSL) tls steps; each keeps the addresses that pass."""
    resolved = each_address(
        probe,
        "dns",
        [(endpoint, endpoint) for endpoint in settings.bootstraps],
        lambda endpoint, deadline: resolve(endpoint.host, endpoint.port, deadline),
        lambda endpoint, ips: f"{endpoint.host} → {', '.join(ips)}",
    )

    def connect(pair: tuple[Endpoint, list[str]], deadline: Deadline) -> Link:
        endpoint, ips = pair
        sock, address = connect_tcp(ips, endpoint.port, deadline)
        return Link(endpoint, ips, sock, Endpoint(address, endpoint.port).netloc)

    links = each_address(
        probe,
        "tcp",
        [(endpoint, (endpoint, ips)) for endpoint, ips in resolved],
        connect,
        lambda endpoint, link: f"connected to {link.peer}",
    )
    probe.facts["addresses"] = [link.peer for _, link in links]
    if settings.tls is None:
        return [link for _, link in links]
    tls = settings.tls

    def handshake(link: Link, deadline: Deadline) -> Link:
        try:
            link.sock, info = tls_handshake(link.sock, link.endpoint.host, tls, deadline)
        except StepFailed:
            link.sock.close()
            if _speaks_plain_kafka(link, deadline):
                raise StepFailed(
                    f"TLS: {link.endpoint.netloc} speaks Kafka in plain text, not TLS",
                    f"this listener has no TLS: set kafka.securityProtocol to "
                    f"{settings.protocol.replace('SSL', 'PLAINTEXT')}, or point "
                    "kafka.bootstrapServers at the broker's TLS listener",
                ) from None
            raise
        link.tls = info
        return link

    def judge(step: Step, secured: list[Link]) -> None:
        never = dt.datetime.max.replace(tzinfo=dt.UTC)
        earliest = min(
            (link for link in secured if link.tls is not None),
            key=lambda link: (link.tls.not_after if link.tls else None) or never,
        )
        assert earliest.tls is not None
        judge_tls(probe, step, earliest.tls, earliest.endpoint.host, step.detail)

    secured = each_address(
        probe,
        "tls",
        links,
        handshake,
        lambda endpoint, link: f"{endpoint.host}: certificate verified",
        judge,
    )
    return [link for _, link in secured]


def _speaks_plain_kafka(link: Link, deadline: Deadline) -> bool:
    """After a failed TLS handshake: does a fresh plain connection answer ApiVersions?"""
    try:
        sock, _ = connect_tcp(link.addresses, link.endpoint.port, deadline)
    except (StepFailed, TimeoutError):
        return False
    try:
        wire.api_versions(sock, deadline)
        return True
    except (wire.NotKafka, OSError):
        return False
    finally:
        sock.close()


# --- protocol ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Greeting:
    """What a bootstrap listener said before any authentication."""

    ranges: wire.Ranges
    cluster: wire.Cluster | None = None
    """Without SASL, the metadata the bootstrap listener gave (no client library involved)."""
    handshake: wire.Handshake | None = None
    handshake_closed: bool = False


_SASL_FIX = (
    "set kafka.securityProtocol to SASL_PLAINTEXT (or SASL_SSL with TLS) and kafka.saslMechanism, "
    "kafka.saslUsername, kafka.saslPassword, or point kafka.bootstrapServers at the "
    "listener without SASL"
)
_NO_SASL_FIX = (
    "this listener does not use SASL: set kafka.securityProtocol to PLAINTEXT (or SSL), or "
    "point kafka.bootstrapServers at the broker's SASL listener port"
)


def _protocol(probe: Probe, settings: Settings, links: list[Link]) -> Greeting:
    """A Kafka ApiVersions exchange on every connection; then whether SASL is what it wants."""

    def greet(link: Link, deadline: Deadline) -> Link:
        where = link.endpoint.netloc
        try:
            ranges = wire.api_versions(link.sock, deadline)
            if settings.sasl:
                link.greeting = _sasl_greeting(settings, link, ranges, deadline)
            else:
                link.greeting = Greeting(ranges, _expect_no_sasl(settings, link, deadline))
        except wire.NotKafka as exc:
            raise StepFailed(f"{where} {exc}", _protocol_fix(settings, str(exc))) from None
        except TimeoutError:
            detail = "accepted the connection but did not answer a Kafka request in time"
        except OSError as exc:
            detail = f"failed: {exc.strerror or exc}"
        else:
            return link
        raise StepFailed(f"{where} {detail}", _protocol_fix(settings, ""))

    passed = each_address(
        probe,
        "protocol",
        [(link.endpoint, link) for link in links],
        greet,
        lambda endpoint, link: (
            f"{endpoint.netloc} speaks Kafka "
            f"({len(link.greeting.ranges) if link.greeting else 0} APIs)"
        ),
    )
    greeting = passed[0][1].greeting
    assert greeting is not None
    return greeting


def _protocol_fix(settings: Settings, seen: str) -> str:
    if "HTTP" in seen:
        return "kafka.bootstrapServers must name a Kafka listener (often :9092), not a web port"
    if settings.tls is None:
        return (
            "check that kafka.bootstrapServers names a Kafka listener; if the listener expects "
            "TLS, set kafka.securityProtocol to SSL (or SASL_SSL)"
        )
    return "check that kafka.bootstrapServers names a Kafka listener that speaks Kafka over TLS"


def _expect_no_sasl(settings: Settings, link: Link, deadline: Deadline) -> wire.Cluster:
    """Without SASL configured, an unauthenticated Metadata request must be answered."""
    try:
        return wire.metadata_without_auth(link.sock, deadline)
    except wire.Closed:
        raise StepFailed(
            f"{link.endpoint.netloc} is a SASL listener: it answered ApiVersions but closed the "
            f"connection on a request without authentication (kafka.securityProtocol is "
            f"{settings.protocol})",
            _SASL_FIX,
        ) from None


def _sasl_greeting(
    settings: Settings, link: Link, ranges: wire.Ranges, deadline: Deadline
) -> Greeting:
    """SaslHandshake for the configured mechanism; a refusal is either a listener without SASL
    (it answers requests without authentication) or a mechanism it does not enable."""
    try:
        handshake: wire.Handshake | None = wire.sasl_handshake(
            link.sock, settings.mechanism, deadline
        )
    except wire.Closed:
        handshake = None
    if handshake is not None and handshake.error == 0:
        return Greeting(ranges, handshake=handshake)
    if _answers_without_auth(settings, link, deadline):
        raise StepFailed(
            f"{link.endpoint.netloc} answers without SASL: it is not a SASL listener, but "
            f"kafka.securityProtocol is {settings.protocol}",
            _NO_SASL_FIX,
        )
    return Greeting(ranges, None, handshake, handshake_closed=handshake is None)


def _answers_without_auth(settings: Settings, link: Link, deadline: Deadline) -> bool:
    """On a fresh connection: does the listener answer Metadata without authentication?"""
    sock, _ = connect_tcp(link.addresses, link.endpoint.port, deadline)
    try:
        if settings.tls is not None:
            sock, _ = tls_handshake(sock, link.endpoint.host, settings.tls, deadline)
        wire.api_versions(sock, deadline)
        wire.metadata_without_auth(sock, deadline)
        return True
    except wire.NotKafka:
        return False
    finally:
        sock.close()


# --- auth / metadata --------------------------------------------------------------------------


def _auth(
    probe: Probe, settings: Settings, greeting: Greeting, client: KafkaClient
) -> wire.Cluster:
    """SASL: the mechanism must be enabled and the credentials accepted (a metadata request).
    Returns the cluster metadata: librdkafka's, or without SASL the bootstrap listener's."""
    if not settings.sasl:
        probe.skip("auth", f"{settings.protocol}: no SASL configured")
        assert greeting.cluster is not None
        return greeting.cluster
    with probe.step("auth") as step:
        handshake = greeting.handshake
        if greeting.handshake_closed or (handshake is not None and handshake.error):
            offered = ", ".join(handshake.mechanisms) if handshake else ""
            seen = f"it offers {offered}" if offered else "it closed the connection"
            raise StepFailed(
                f"wrong mechanism: the broker does not enable SASL {settings.mechanism} ({seen})",
                f"set kafka.saslMechanism to one the broker enables ({', '.join(MECHANISMS)})",
            )
        try:
            cluster = client.cluster()
        except ClientError as exc:
            refused = client.reason("authentication", "sasl")
            if client.auth_failed():
                raise StepFailed(
                    f"bad credentials: the broker refused user {settings.username!r} "
                    f"({settings.mechanism}): {refused}",
                    "check kafka.saslUsername / kafka.saslPassword (Confluent Cloud: the API "
                    "key and secret of this cluster) and kafka.saslMechanism",
                ) from None
            raise StepFailed(
                f"no authenticated answer: {client.reason() or exc}",
                "check the SASL settings, and that the brokers' advertised listeners are "
                "reachable from here (the client moves to them after the bootstrap)",
            ) from None
        step.detail = f"{settings.mechanism} as {settings.username!r} accepted"
        return cluster


def _metadata(probe: Probe, cluster: wire.Cluster) -> wire.Cluster:
    """Cluster id, controller and brokers (from the bootstrap listener, or librdkafka's after
    SASL); fewer than three brokers is a warning."""
    with probe.step("metadata") as step:
        brokers = sorted(cluster.brokers, key=lambda b: b.id)
        probe.facts["cluster_id"] = cluster.cluster_id
        probe.facts["controller_id"] = cluster.controller_id
        probe.facts["broker_count"] = len(brokers)
        probe.facts["brokers"] = [
            {"id": b.id, "address": Endpoint(b.host, b.port).netloc} for b in brokers
        ]
        listed = ", ".join(f"{b.id}@{Endpoint(b.host, b.port).netloc}" for b in brokers)
        summary = f"cluster {cluster.cluster_id}, controller {cluster.controller_id}, "
        summary += f"{len(brokers)} broker(s): {listed}"
        if not brokers:
            raise StepFailed(f"{summary}: the cluster lists no broker", "check the broker logs")
        if len(brokers) < WANTED_BROKERS:
            step.warn(
                f"{summary}; fewer than {WANTED_BROKERS} brokers: topics get replication "
                f"factor {len(brokers)}, no redundancy",
                f"run at least {WANTED_BROKERS} brokers for production",
            )
        else:
            step.detail = summary
        return cluster


# --- advertised listeners ---------------------------------------------------------------------

_ADVERTISED_FIX = (
    "clients bootstrap once, then connect to every broker at the address it advertises "
    "(advertised.listeners in server.properties, KAFKA_ADVERTISED_LISTENERS in containers): "
    "set it to a host:port that resolves and is reachable from the Sense pods, not localhost "
    "or a name only the brokers' own network knows"
)


def _advertised(probe: Probe, settings: Settings, cluster: wire.Cluster) -> None:
    """Every broker's advertised host:port resolves, accepts TCP (and TLS) from here and
    answers a Kafka ApiVersions request."""
    with probe.step("advertised listeners") as step:
        brokers = sorted(cluster.brokers, key=lambda b: b.id)
        items = [(Endpoint(b.host, b.port), b.id) for b in brokers]
        ids = dict(items)

        def connect(endpoint: Endpoint, deadline: Deadline) -> str:
            ips = resolve(endpoint.host, endpoint.port, deadline)
            sock, _ = connect_tcp(ips, endpoint.port, deadline)
            try:
                if settings.tls is not None:
                    sock, _ = tls_handshake(sock, endpoint.host, settings.tls, deadline)
                wire.api_versions(sock, deadline)
            except wire.NotKafka as exc:
                raise StepFailed(f"it {exc}") from None
            except TimeoutError:
                raise StepFailed("it accepted but did not answer a Kafka request in time") from None
            finally:
                sock.close()
            return endpoint.netloc

        _, failed = in_parallel(probe.deadline, [(e, e) for e, _ in items], connect)
        if failed:
            raise StepFailed(
                "; ".join(
                    f"broker {ids[endpoint]} advertises {endpoint.netloc}, not usable from "
                    f"here: {error.detail}"
                    for endpoint, error in failed
                ),
                _ADVERTISED_FIX,
            )
        step.detail = f"all {len(items)} advertised broker address(es) reachable"


# --- version ----------------------------------------------------------------------------------


def _version(probe: Probe, ranges: wire.Ranges) -> None:
    """Infer the oldest Apache Kafka release matching the ApiVersions ranges."""
    with probe.step("version") as step:
        inference = wire.infer_release(ranges)
        probe.facts["kafka_version_inferred"] = f">= {inference.text}"
        probe.facts["kafka_version_basis"] = inference.basis
        if inference.release is None or inference.release < MIN_RELEASE:
            raise StepFailed(
                f"the broker is older than Kafka 3.0: its API versions match no release newer "
                f"than {inference.text} ({inference.basis})",
                "upgrade the Kafka cluster to 3.x (the chart needs Kafka 3.x or Confluent Cloud)",
            )
        step.detail = f"Kafka >= {inference.text} (inferred from ApiVersions)"


# --- permissions and the round trip -----------------------------------------------------------

_CREATE_FIX = (
    "the Worker migration creates the chart's topics: allow this user CREATE on the cluster "
    "(kafka-acls --add --allow-principal User:NAME --operation Create --cluster), or on "
    "the topic prefix"
)


def _permissions(probe: Probe, client: KafkaClient, topic: str, replicas: int) -> bool:
    """CreateTopics with validate_only; returns True when the broker created the topic anyway."""
    with probe.step("permissions") as step:
        _create_topic(client, topic, replicas, validate_only=True)
        if topic not in client.metadata().topics:
            probe.facts["validate_only_honoured"] = True
            step.detail = f"CreateTopics allowed (validated {topic}, not created)"
            return False
        probe.facts["validate_only_honoured"] = False
        probe.cleanup(f"delete topic {topic}", lambda: _delete_topic(client, topic))
        step.detail = (
            "CreateTopics allowed (this broker ignores validate_only: the topic was really "
            "created, and is deleted at the end)"
        )
        return True


def _create_topic(client: KafkaClient, topic: str, replicas: int, validate_only: bool) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    left = client.left()
    futures = client.admin.create_topics(
        [NewTopic(topic, 1, replicas)],
        validate_only=validate_only,
        request_timeout=left,
        operation_timeout=left,
    )
    try:
        futures[topic].result(timeout=client.left())
    except KafkaException as exc:
        error = exc.args[0]
        if error.name() in ("TOPIC_AUTHORIZATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED"):
            raise StepFailed(
                f"not allowed to create topics ({error.name()})", _CREATE_FIX
            ) from None
        raise StepFailed(
            f"CreateTopics {topic} failed: {error.name()}: {error.str()}",
            "check the broker's topic policy and replication settings",
        ) from None
    except TimeoutError:
        client.probe.deadline.timeout()
        raise StepFailed(
            f"CreateTopics got no answer in time: {client.reason('fail', 'timed out')}",
            "check that the controller broker is reachable from here and healthy",
        ) from None


def _delete_topic(client: KafkaClient, topic: str) -> None:
    """Delete the probe topic (a cleanup: own short timeout; an unknown topic is fine)."""
    from confluent_kafka import KafkaError, KafkaException

    futures = client.admin.delete_topics([topic], request_timeout=CLEANUP_TIMEOUT_S)
    try:
        futures[topic].result(timeout=CLEANUP_TIMEOUT_S)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise


def _delete_group(client: KafkaClient, pair: _Pair) -> None:
    """Delete the round trip's consumer group (a cleanup): the deletion the round trip sent
    beside the topic's, or a new one when it did not get that far."""
    future = pair.group_deletion or _send_group_deletion(client, pair)
    future.result(timeout=CLEANUP_TIMEOUT_S)


def _send_group_deletion(client: KafkaClient, pair: _Pair) -> Any:
    futures = client.admin.delete_consumer_groups([pair.group], request_timeout=CLEANUP_TIMEOUT_S)
    return futures[pair.group]


@dataclass
class _Delivery:
    """What the producer's delivery report said."""

    error: str | None = None
    offset: int | None = None


def _roundtrip(
    probe: Probe, client: KafkaClient, topic: str, replicas: int, created: bool, pair: _Pair
) -> None:
    """Create the topic, produce one unique message, consume it with a fresh group, delete."""
    from confluent_kafka import KafkaException

    with probe.step("roundtrip") as step:
        started = time.monotonic()
        if not created:
            try:
                _create_topic(client, topic, replicas, validate_only=False)
            finally:  # also after a failed or timed-out request: the broker may have created it
                probe.cleanup(f"delete topic {topic}", lambda: _delete_topic(client, topic))
        payload = f"sense-preflight {uuid.uuid4()}".encode()
        offset = _produce(pair.producer, client, topic, payload)
        _consume(pair, client, topic, offset, payload)
        # The group's deletion (awaited by its cleanup) goes out beside the topic's.
        pair.group_deletion = _send_group_deletion(client, pair)
        try:
            _delete_topic(client, topic)
        except KafkaException as exc:
            raise StepFailed(
                f"deleting {topic} failed: {exc.args[0].str()}",
                "allow this user DELETE on sense-preflight-* topics, and delete it by hand",
            ) from None
        step.detail = (
            f"created {topic} (1 partition, replication factor {replicas}), produced and "
            f"consumed one message with group {pair.group}, deleted the topic: "
            f"{time.monotonic() - started:.2f}s"
        )


class _Pair:
    """The round trip's producer and consumer (with a fresh group), made early; `close`
    closes the consumer once."""

    def __init__(self, client: KafkaClient) -> None:
        from confluent_kafka import Consumer, Producer

        left_ms = int(client.left() * 1000)
        self.group = f"sense-preflight-{uuid.uuid4().hex[:12]}"
        self.producer = Producer(
            client.config(
                **{
                    "message.timeout.ms": left_ms,
                    "request.timeout.ms": max(1, left_ms),
                    "linger.ms": 0,
                    "acks": "all",
                    # Connect to every broker the metadata names as soon as it arrives, not at
                    # the first produce: the leader's connection is up when the topic exists.
                    "enable.sparse.connections": False,
                }
            )
        )
        self.consumer = Consumer(
            client.config(
                **{"group.id": self.group, "enable.auto.commit": False, "fetch.wait.max.ms": 100}
            )
        )
        self._open = True
        self.group_deletion: Any = None  # the DeleteGroups future, once sent

    def close(self) -> None:
        if self._open:
            self._open = False
            self.consumer.close()


def _produce(producer: Any, client: KafkaClient, topic: str, payload: bytes) -> int:
    delivery = _Delivery()

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            delivery.error = f"{error.name()}: {error.str()}"
        else:
            delivery.offset = message.offset()

    producer.produce(topic, payload, callback=delivered)
    producer.flush(client.left())
    if delivery.offset is None:
        raise StepFailed(
            f"produce to {topic} failed: {delivery.error or 'not acknowledged in time'}",
            "check the user's WRITE right on the topics and the brokers' min.insync.replicas",
        )
    return delivery.offset


def _consume(pair: _Pair, client: KafkaClient, topic: str, offset: int, payload: bytes) -> None:
    from confluent_kafka import KafkaException, TopicPartition

    consumer, group = pair.consumer, pair.group
    try:
        consumer.assign([TopicPartition(topic, 0, offset)])
        while True:
            message = consumer.poll(client.left(0.5))
            if message is None:
                continue
            error = message.error()
            if error is not None:
                raise StepFailed(
                    f"consume from {topic} failed: {error.str()}",
                    "check the user's READ right on the topics and consumer groups",
                )
            if message.value() == payload:
                break
        client.probe.cleanup(f"delete consumer group {group}", lambda: _delete_group(client, pair))
        try:
            consumer.commit(message=message, asynchronous=False)
        except KafkaException as exc:
            raise StepFailed(
                f"committing the offset for group {group} failed: {exc.args[0].str()}",
                "check the user's READ right on consumer groups (the Worker commits offsets)",
            ) from None
    finally:
        pair.close()
