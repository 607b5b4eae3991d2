"""The Kafka brokers the test session starts are real: metadata, topics, produce/consume, SASL."""

from __future__ import annotations

import logging
import socket
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.servers.kafka import KafkaBroker

pytestmark = pytest.mark.server("kafka")


def _admin(broker: KafkaBroker, **extra: Any) -> AdminClient:
    config: dict[str, Any] = {"bootstrap.servers": broker.bootstrap, **extra}
    return AdminClient(config)


def test_metadata_names_the_advertised_broker(kafka_broker: KafkaBroker) -> None:
    metadata = _admin(kafka_broker).list_topics(timeout=10)
    assert metadata.cluster_id
    assert [f"{b.host}:{b.port}" for b in metadata.brokers.values()] == [kafka_broker.advertised]
    if kafka_broker.cluster_id:
        assert metadata.cluster_id == kafka_broker.cluster_id


def test_topic_produce_consume_roundtrip(kafka_broker: KafkaBroker) -> None:
    admin = _admin(kafka_broker)
    topic = f"sense-preflight-test-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(10)
    try:
        payload = uuid.uuid4().bytes
        producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
        producer.produce(topic, payload)
        assert producer.flush(10) == 0
        consumer = Consumer(
            {
                "bootstrap.servers": kafka_broker.bootstrap,
                "group.id": f"sense-preflight-test-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
            }
        )
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + 10
        received = None
        while received is None and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                received = message.value()
        consumer.close()
        assert received == payload
    finally:
        admin.delete_topics([topic])[topic].result(10)
    assert topic not in admin.list_topics(timeout=10).topics


def test_duplicate_topic_is_refused(kafka_broker: KafkaBroker) -> None:
    admin = _admin(kafka_broker)
    topic = f"sense-preflight-test-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(10)
    try:
        with pytest.raises(KafkaException, match=r"(?i)already exists"):
            admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(10)
    finally:
        admin.delete_topics([topic])[topic].result(10)


class _Collect(logging.Logger):
    """A logger that keeps librdkafka's log lines."""

    def __init__(self) -> None:
        super().__init__("rdkafka")
        self.lines: list[str] = []

    def handle(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


SASL = {
    "security.protocol": "SASL_PLAINTEXT",
    "sasl.mechanism": "PLAIN",
    "sasl.username": "sense",
    "sasl.password": "any",
}


def test_noida_accepts_sasl_plain(kafka_noida: KafkaBroker) -> None:
    assert _admin(kafka_noida, **SASL).list_topics(timeout=10).brokers


def test_tansu_refuses_sasl_plain(kafka_tansu: KafkaBroker) -> None:
    with pytest.raises(KafkaException, match="_TRANSPORT"):
        _admin(kafka_tansu, **SASL).list_topics(timeout=2)


def test_bad_advertised_listener_is_unreachable(kafka_tansu_bad_advertised: KafkaBroker) -> None:
    broker = kafka_tansu_bad_advertised
    metadata = _admin(broker).list_topics(timeout=10)
    assert [(b.host, b.port) for b in metadata.brokers.values()] == [
        (broker.advertised_host, broker.advertised_port)
    ]
    assert broker.advertised_port != broker.port
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((broker.advertised_host, broker.advertised_port), timeout=2)


def test_scram_broker_refuses_unknown_user(kafka_tansu_scram: KafkaBroker) -> None:
    admin = _admin(
        kafka_tansu_scram,
        **{**SASL, "sasl.mechanism": "SCRAM-SHA-256", "logger": (log := _Collect())},
    )
    with pytest.raises(KafkaException, match="_TRANSPORT"):
        admin.list_topics(timeout=2)
    admin.poll(0)
    assert any("unknown-user" in line for line in log.lines)


def test_scram_broker_needs_sasl(kafka_tansu_scram: KafkaBroker) -> None:
    with pytest.raises(KafkaException, match="_TRANSPORT"):
        _admin(kafka_tansu_scram).list_topics(timeout=2)


def test_brokers_start_fast(kafka_noida: KafkaBroker, kafka_tansu: KafkaBroker) -> None:
    for broker in (kafka_noida, kafka_tansu):
        assert broker.startup_s < 10, f"{broker.name} took {broker.startup_s:.2f}s to listen"
