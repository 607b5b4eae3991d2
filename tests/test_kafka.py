"""The kafka check through the real CLI, against real brokers (noida-db, Tansu) and hostile
servers: every outcome in text and JSON."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from confluent_kafka.admin import AdminClient

from checks.kafka import check as kafka_check
from checks.kafka.protocol import (
    API_VERSIONS,
    FETCH,
    LIST_OFFSETS,
    METADATA,
    PRODUCE,
    infer_release,
)
from preflight.engine.check import Probe
from preflight.engine.deadline import Deadline
from preflight.engine.options import RunOptions
from preflight.net import Endpoint
from preflight.values.load import Values
from tests.cli import REPO_ROOT, CliResult, example_values, holding_cli, run_cli, write_values
from tests.servers._process import free_port
from tests.servers.hostile import HostileServers
from tests.servers.kafka import KafkaBroker, KafkaRelay, tansu_or_skip, tls_fronted

pytestmark = pytest.mark.server("kafka")

SECRET = "kafka-Secret-4471"


def kafka_run(
    folder: Path, bootstrap: str, *extra: str, fmt: str = "json", timeout: int = 5, **kafka: Any
) -> CliResult:
    """Run only the kafka check with these kafka values."""
    values = example_values()
    values["kafka"] = {"bootstrapServers": bootstrap, **kafka}
    path = write_values(folder, values)
    result = run_cli(path, "--only", "kafka", "--format", fmt, "--timeout", str(timeout), *extra)
    assert result.stderr == "", "librdkafka or the CLI wrote to stderr"
    return result


def failure(
    folder: Path, bootstrap: str, layer: str, timeout: int = 5, **kafka: Any
) -> dict[str, Any]:
    """Run the check (JSON), assert it failed at `layer`, and return that step."""
    result = kafka_run(folder, bootstrap, timeout=timeout, **kafka)
    assert result.code == 3, result.stdout
    step = result.failed_step("kafka")
    assert step["name"] == layer, step
    assert result.check("kafka")["message"].endswith(step["detail"])
    return step


def steps(result: CliResult) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in result.check("kafka")["steps"]}


def leftovers(broker: KafkaBroker) -> list[str]:
    """Probe topics and consumer groups still on the broker."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topics = list(admin.list_topics(timeout=10).topics)
    groups = [g.group_id for g in admin.list_consumer_groups(request_timeout=10).result().valid]
    return [name for name in topics + groups if name.startswith("sense-preflight-")]


# --- healthy brokers --------------------------------------------------------------------------


def test_healthy_broker(tmp_path: Path, kafka_broker: KafkaBroker) -> None:
    result = kafka_run(tmp_path, kafka_broker.bootstrap)
    assert result.code == 0, result.stdout
    check = result.check("kafka")
    # One broker: a warning about replication, every other step passes.
    assert check["status"] == "warn"
    assert "fewer than 3 brokers" in check["message"]
    by_name = steps(result)
    assert [name for name, step in by_name.items() if step["status"] != "pass"] == [
        "auth",
        "metadata",
    ]
    assert by_name["auth"]["status"] == "skip"
    assert "created sense-preflight-" in by_name["roundtrip"]["detail"]
    facts = check["facts"]
    assert facts["cluster_id"]
    if kafka_broker.cluster_id:
        assert facts["cluster_id"] == kafka_broker.cluster_id
    assert facts["broker_count"] == 1
    assert facts["brokers"][0]["address"] == kafka_broker.advertised
    assert facts["controller_id"] == facts["brokers"][0]["id"]
    assert facts["kafka_version_inferred"].startswith(">= 3.")
    assert "first appears in Apache Kafka" in facts["kafka_version_basis"]
    assert leftovers(kafka_broker) == []


def test_healthy_broker_text(tmp_path: Path, kafka_broker: KafkaBroker) -> None:
    result = kafka_run(tmp_path, kafka_broker.bootstrap, fmt="text")
    assert result.code == 0
    assert "\nWARN  kafka " in result.stdout
    assert "fewer than 3 brokers" in result.stdout
    assert "fix: run at least 3 brokers" in result.stdout
    assert leftovers(kafka_broker) == []


def test_read_only_writes_nothing(tmp_path: Path, kafka_broker: KafkaBroker) -> None:
    result = kafka_run(tmp_path, kafka_broker.bootstrap, "--read-only")
    assert result.code == 0
    by_name = steps(result)
    assert by_name["roundtrip"]["status"] == "skip"
    assert by_name["permissions"]["status"] == "pass"
    assert "CreateTopics allowed" in by_name["permissions"]["detail"]
    assert leftovers(kafka_broker) == []


def test_second_bootstrap_refusing_is_a_warning(
    tmp_path: Path, kafka_broker: KafkaBroker, hostile: HostileServers
) -> None:
    bad = f"127.0.0.1:{hostile.closed}"
    result = kafka_run(tmp_path, f"{kafka_broker.bootstrap}, {bad}")
    assert result.code == 0
    tcp = steps(result)["tcp"]
    assert tcp["status"] == "warn"
    assert (
        f"1 of 2 bootstrap addresses pass; failing: TCP: {bad}: connection refused"
        in (tcp["detail"])
    )
    assert steps(result)["roundtrip"]["status"] == "pass"


# --- failures at each layer -------------------------------------------------------------------


def test_bad_advertised_listener(tmp_path: Path, kafka_tansu_bad_advertised: KafkaBroker) -> None:
    broker = kafka_tansu_bad_advertised
    for fmt in ("json", "text"):
        result = kafka_run(tmp_path, broker.bootstrap, fmt=fmt)
        assert result.code == 3
        expected = f"broker 111 advertises {broker.advertised}, not usable from here"
        assert expected in result.stdout
        assert "advertised.listeners" in result.stdout
    step = failure(tmp_path, broker.bootstrap, "advertised listeners")
    assert "connection refused" in step["detail"]


def test_advertised_name_that_does_not_resolve(tmp_path: Path, session_dir: Path) -> None:
    """The classic: the brokers advertise a name only their own network knows."""
    internal = "kafka-0.brokers.invalid"  # RFC 6761: never resolves
    for broker in tansu_or_skip(session_dir, advertised_host=internal, advertised_port=9092):
        step = failure(tmp_path, broker.bootstrap, "advertised listeners")
        assert step["detail"].startswith(
            f"broker 111 advertises {internal}:9092, not usable from here: DNS: "
        )


def test_http_port_fails_at_protocol(tmp_path: Path, hostile: HostileServers) -> None:
    step = failure(tmp_path, f"127.0.0.1:{hostile.http}", "protocol")
    assert "answered with HTTP: this is a web server, not a Kafka listener" in step["detail"]
    text = kafka_run(tmp_path, f"127.0.0.1:{hostile.http}", fmt="text")
    assert "FAIL  kafka                  protocol:" in text.stdout
    assert "not a web port" in text.stdout


def test_nothing_listening(tmp_path: Path, hostile: HostileServers) -> None:
    step = failure(tmp_path, f"127.0.0.1:{hostile.closed}", "tcp")
    assert "connection refused (nothing listens on that port)" in step["detail"]
    text = kafka_run(tmp_path, f"127.0.0.1:{hostile.closed}", fmt="text")
    assert "FAIL  kafka                  TCP: 127.0.0.1:" in text.stdout


@pytest.mark.parametrize("kind", ["garbage", "reset", "tls_untrusted"])
def test_not_kafka_fails_at_protocol(tmp_path: Path, hostile: HostileServers, kind: str) -> None:
    bootstrap = f"127.0.0.1:{getattr(hostile, kind)}"
    result = kafka_run(tmp_path, bootstrap)
    step = result.failed_step("kafka")
    assert step["name"] == "protocol"
    assert step["detail"].startswith(f"{bootstrap} ")
    assert result.check("kafka")["duration_s"] < 1, "each is recognised at once, no timeout"


def test_accept_and_hang_ends_within_the_timeout(tmp_path: Path, hostile: HostileServers) -> None:
    result = kafka_run(tmp_path, f"127.0.0.1:{hostile.hang}", timeout=3)
    assert result.code == 3
    step = result.failed_step("kafka")
    assert step["name"] == "protocol"
    assert "did not answer a Kafka request in time" in step["detail"]
    assert result.check("kafka")["duration_s"] <= 3.5
    assert result.duration_s <= 3.5 + 2.0  # plus the interpreter's start and exit


def test_tls_against_a_plaintext_broker(tmp_path: Path, kafka_broker: KafkaBroker) -> None:
    step = failure(tmp_path, kafka_broker.bootstrap, "tls", timeout=2, securityProtocol="SSL")
    if kafka_broker.name == "tansu":
        # Tansu waits for the rest of the "frame" the ClientHello seems to announce, so the
        # handshake uses up the time (Apache Kafka and noida-db close the connection at once).
        assert step["detail"].startswith("TLS: handshake timed out")
    else:
        plain = f"TLS: {kafka_broker.bootstrap} speaks Kafka in plain text, not TLS"
        assert step["detail"] == plain
        assert "set kafka.securityProtocol to PLAINTEXT" in step["remediation"]


# --- SASL -------------------------------------------------------------------------------------


def sasl(mechanism: str = "PLAIN") -> dict[str, Any]:
    return {
        "securityProtocol": "SASL_PLAINTEXT",
        "saslMechanism": mechanism,
        "saslUsername": "sense",
        "saslPassword": SECRET,
    }


def test_sasl_against_a_plaintext_broker(tmp_path: Path, kafka_tansu: KafkaBroker) -> None:
    for fmt in ("json", "text"):
        result = kafka_run(tmp_path, kafka_tansu.bootstrap, fmt=fmt, **sasl())
        assert result.code == 3
        assert "answers without SASL: it is not a SASL listener" in result.stdout
        assert "set kafka.securityProtocol to PLAINTEXT" in result.stdout
        assert SECRET not in result.stdout
    failure(tmp_path, kafka_tansu.bootstrap, "protocol", **sasl())


def test_sasl_plain_accepted(tmp_path: Path, kafka_noida: KafkaBroker) -> None:
    result = kafka_run(tmp_path, kafka_noida.bootstrap, **sasl())
    assert result.code == 0
    auth = steps(result)["auth"]
    assert auth["status"] == "pass"
    assert auth["detail"] == "PLAIN as 'sense' accepted"
    assert steps(result)["roundtrip"]["status"] == "pass"
    assert SECRET not in result.stdout
    assert leftovers(kafka_noida) == []


def test_sasl_listener_reached_without_sasl(tmp_path: Path, kafka_tansu_scram: KafkaBroker) -> None:
    step = failure(tmp_path, kafka_tansu_scram.bootstrap, "protocol")
    assert "is a SASL listener" in step["detail"]
    assert "SASL_PLAINTEXT" in step["remediation"]


def test_sasl_bad_credentials(tmp_path: Path, kafka_tansu_scram: KafkaBroker) -> None:
    for fmt in ("json", "text"):
        result = kafka_run(tmp_path, kafka_tansu_scram.bootstrap, fmt=fmt, **sasl("SCRAM-SHA-256"))
        assert result.code == 3
        assert "bad credentials: the broker refused user 'sense' (SCRAM-SHA-256)" in result.stdout
        assert "kafka.saslPassword" in result.stdout
        assert SECRET not in result.stdout
    step = failure(tmp_path, kafka_tansu_scram.bootstrap, "auth", **sasl("SCRAM-SHA-512"))
    assert "unknown-user" in step["detail"]


def test_sasl_wrong_mechanism(tmp_path: Path, kafka_tansu_scram: KafkaBroker) -> None:
    step = failure(tmp_path, kafka_tansu_scram.bootstrap, "auth", **sasl("PLAIN"))
    assert step["detail"].startswith("wrong mechanism: the broker does not enable SASL PLAIN")
    assert "kafka.saslMechanism" in step["remediation"]


# --- version inference ------------------------------------------------------------------------

# ApiVersions max versions of Apache Kafka brokers (Produce, Fetch, ListOffsets, Metadata,
# ApiVersions) as they report them.
RELEASES = {
    (2, 8): (9, 12, 6, 11, 3),
    (3, 0): (9, 12, 7, 11, 3),
    (3, 6): (9, 15, 8, 12, 3),
    (3, 9): (11, 17, 9, 12, 4),
    (4, 0): (12, 17, 10, 13, 4),
}


@pytest.mark.parametrize("release", sorted(RELEASES))
def test_version_inference_finds_the_oldest_matching_release(release: tuple[int, int]) -> None:
    keys = (PRODUCE, FETCH, LIST_OFFSETS, METADATA, API_VERSIONS)
    ranges = {key: (0, high) for key, high in zip(keys, RELEASES[release], strict=True)}
    inference = infer_release(ranges)
    expected = (3, 5) if release == (3, 6) else release  # 3.6 added none of these versions
    assert inference.release == expected
    assert f"Apache Kafka {expected[0]}.{expected[1]}" in inference.basis


def test_version_inference_of_a_pre_2_broker() -> None:
    inference = infer_release({PRODUCE: (0, 5), FETCH: (0, 7), METADATA: (0, 5)})
    assert inference.release is None
    assert inference.text == "older than 2.0"


# --- TLS --------------------------------------------------------------------------------------


def test_tls_listener(tmp_path: Path, kafka_tansu_tls: KafkaBroker) -> None:
    broker = kafka_tansu_tls
    result = kafka_run(
        tmp_path, broker.bootstrap, "--ca-bundle", str(broker.ca_file), securityProtocol="SSL"
    )
    assert result.code == 0, result.stdout
    by_name = steps(result)
    assert by_name["tls"]["status"] == "pass"
    assert by_name["advertised listeners"]["status"] == "pass"
    assert by_name["roundtrip"]["status"] == "pass"
    assert result.check("kafka")["facts"]["tls_version"].startswith("TLSv1.")


def test_tls_listener_from_an_unknown_ca(tmp_path: Path, kafka_tansu_tls: KafkaBroker) -> None:
    step = failure(tmp_path, kafka_tansu_tls.bootstrap, "tls", securityProtocol="SSL")
    assert step["detail"] == "TLS: certificate signed by unknown authority"


def test_tls_listener_reached_in_plain_text(tmp_path: Path, kafka_tansu_tls: KafkaBroker) -> None:
    step = failure(tmp_path, kafka_tansu_tls.bootstrap, "protocol")
    assert step["detail"].endswith("closed the connection without answering")
    assert "set kafka.securityProtocol to SSL" in step["remediation"]


@pytest.fixture(scope="module")
def tansu_expiring_tls(test_ca: trustme.CA, session_dir: Path) -> Iterator[KafkaBroker]:
    """A TLS listener whose certificate expires in 5 days."""
    yield from tls_fronted(test_ca, session_dir, "tansu-expiring", cert_days=5)


def test_tls_certificate_expiring_soon_warns(
    tmp_path: Path, tansu_expiring_tls: KafkaBroker
) -> None:
    broker = tansu_expiring_tls
    result = kafka_run(
        tmp_path, broker.bootstrap, "--ca-bundle", str(broker.ca_file), securityProtocol="SSL"
    )
    assert result.code == 0, result.stdout
    tls = steps(result)["tls"]
    assert tls["status"] == "warn"
    assert "the server certificate expires in 5 days" in tls["detail"]
    assert result.check("kafka")["status"] == "warn"
    assert "cert_not_after" in result.check("kafka")["facts"]
    assert steps(result)["roundtrip"]["status"] == "pass"


# --- deadlines --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tansu_advertising_hang(session_dir: Path, hostile: HostileServers) -> Iterator[KafkaBroker]:
    """Tansu whose metadata sends clients to a port that accepts and never answers."""
    yield from tansu_or_skip(session_dir, advertised_port=hostile.hang)


def test_advertised_listener_that_hangs(
    tmp_path: Path, tansu_advertising_hang: KafkaBroker
) -> None:
    broker = tansu_advertising_hang
    result = kafka_run(tmp_path, broker.bootstrap, timeout=3)
    assert result.code == 3
    step = result.failed_step("kafka")
    assert step["name"] == "advertised listeners"
    assert f"advertises {broker.advertised}" in step["detail"]
    assert "did not answer a Kafka request in time" in step["detail"]
    assert result.check("kafka")["duration_s"] <= 3.5


def test_librdkafka_calls_end_by_the_deadline(
    hostile: HostileServers, capfd: pytest.CaptureFixture[str]
) -> None:
    """librdkafka itself meets a bootstrap that accepts and never answers: its timeouts come
    from the check's deadline, its log lines go into the check, none to stderr."""
    check = kafka_check.checks(Values({}))[0]
    probe = Probe(check, Values({}), RunOptions(timeout_s=2), Deadline.after(2))
    endpoint = Endpoint("127.0.0.1", hostile.hang)
    settings = kafka_check.Settings((endpoint,), "PLAINTEXT", "PLAIN", "", "", None)
    client = kafka_check.KafkaClient(probe, settings, [endpoint])
    started = time.monotonic()
    with pytest.raises(kafka_check.ClientError):
        client.metadata()
    assert time.monotonic() - started <= 2.0
    while not probe.log_lines and time.monotonic() - started < 5:
        client.admin.poll(0.1)  # librdkafka's own timeout is logged just after the deadline
    assert any(line.startswith("librdkafka ") for line in probe.log_lines)
    assert capfd.readouterr().err == ""


# --- the probe topic is deleted when the round trip fails or the run is interrupted -----------


@pytest.fixture(scope="module")
def produce_holder(session_dir: Path) -> Iterator[tuple[KafkaBroker, KafkaRelay]]:
    """Tansu advertising a relay that holds Produce requests; bootstrap through the relay:
    topic creation works, then the round trip stalls at produce."""
    relay_port = free_port()
    for broker in tansu_or_skip(session_dir, advertised_port=relay_port):
        holder = KafkaRelay(relay_port, broker.port, hold_api_key=PRODUCE)
        try:
            yield broker, holder
        finally:
            holder.stop()


def test_failed_roundtrip_deletes_its_topic(
    tmp_path: Path, produce_holder: tuple[KafkaBroker, KafkaRelay]
) -> None:
    broker, holder = produce_holder
    result = kafka_run(tmp_path, broker.advertised, timeout=3)
    assert holder.held.is_set()
    assert result.code == 3
    step = result.failed_step("kafka")
    assert step["name"] == "roundtrip"
    assert "produce to sense-preflight-" in step["detail"]
    assert all(s["name"] != "cleanup" for s in result.check("kafka")["steps"])
    assert leftovers(broker) == []


def test_interrupted_run_deletes_its_topic(
    tmp_path: Path, produce_holder: tuple[KafkaBroker, KafkaRelay]
) -> None:
    broker, holder = produce_holder
    holder.held.clear()
    stderr = interrupt(tmp_path, broker.advertised, lambda: holder.held.wait(0.05))
    assert "interrupted: cleanups ran" in stderr
    assert leftovers(broker) == []


def test_filter_by_env_needs_global_env(tmp_path: Path, kafka_tansu: KafkaBroker) -> None:
    step = failure(tmp_path, kafka_tansu.bootstrap, "config", filterByEnv=True)
    assert step["detail"] == "kafka.filterByEnv is true but global.env is not set"
    assert "global.env" in step["remediation"]


def test_interrupted_while_holding_the_topic(tmp_path: Path, kafka_broker: KafkaBroker) -> None:
    """The check is held once its topic exists (tests/holding.py); Ctrl-C then."""
    stderr = interrupt(tmp_path, kafka_broker.bootstrap, lambda: bool(leftovers(kafka_broker)), 20)
    assert "interrupted: cleanups ran" in stderr
    assert leftovers(kafka_broker) == []


def interrupt(
    folder: Path, bootstrap: str, ready: Callable[[], bool], hold_s: float | None = None
) -> str:
    """Run the kafka check (held `hold_s` once its topic exists, see tests/holding.py), press
    Ctrl-C once `ready()` is true, and return its stderr."""
    values = example_values()
    values["kafka"] = {"bootstrapServers": bootstrap}
    cli_command = holding_cli(hold_s) if hold_s else [sys.executable, "-m", "preflight"]
    with subprocess.Popen(
        [*cli_command, str(write_values(folder, values)), "--only", "kafka", "--timeout", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    ) as cli:
        deadline = time.monotonic() + 20
        while not ready():
            assert time.monotonic() < deadline, "the run never reached the point to interrupt"
            time.sleep(0.05)
        cli.send_signal(signal.SIGINT)
        _, stderr = cli.communicate(timeout=20)
    assert cli.returncode != 0
    return stderr
