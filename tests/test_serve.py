"""`sense-preflight serve` through the real CLI against the real PostgreSQL 17: bad input, the
endpoints, SIGHUP, redaction by value; `job --serve`'s manifests; the README's alert rules."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from preflight import __version__
from preflight.exporter.durations import parse_duration, parse_listen
from preflight.report.redact import REDACTED, find_secrets
from tests.cli import REPO_ROOT, example_values, run_cli, write_values
from tests.serve import postgres_values, serving, start, wait_listening
from tests.servers.hostile import HostileServers
from tests.servers.postgres import PostgresServer

OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), ("1d", 86400), ("10", 10)],
)
def test_durations_as_prometheus_writes_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "0s", "1.5m", "5s5m", "-1", "m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_listen_addresses() -> None:
    assert parse_listen("0.0.0.0:9115") == ("0.0.0.0", 9115)
    assert parse_listen(":9115") == ("0.0.0.0", 9115)
    assert parse_listen("[::1]:80") == ("::1", 80)
    for bad in ("9115", "host:", "host:0", "host:70000", "::1:80"):
        with pytest.raises(ValueError):
            parse_listen(bad)


def one_error_line(result: SimpleNamespace | object, *expected: str) -> str:
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert result.code == 2 and len(lines) == 1, result  # type: ignore[attr-defined]
    assert lines[0].startswith("error: ") and all(part in lines[0] for part in expected), lines
    return lines[0]


def test_bad_listen_exits_2_with_one_line(tmp_path: Path) -> None:
    values = write_values(tmp_path, example_values(filled=True))
    one_error_line(
        run_cli("serve", values, "--listen", "nowhere"), "--listen 'nowhere'", "HOST:PORT"
    )
    one_error_line(run_cli("serve", values, "--interval", "5x"), "--interval", "not a duration")


def test_port_in_use_exits_2_with_one_line(tmp_path: Path) -> None:
    values = write_values(tmp_path, example_values(filled=True))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", values, "--listen", f"127.0.0.1:{port}")
    one_error_line(result, f"cannot listen on 127.0.0.1:{port}", "already in use")


def test_invalid_values_exit_2_before_listening_one_line_each(tmp_path: Path) -> None:
    values = example_values(filled=True)
    del values["postgres"]["api"]["password"], values["oidc"]["clientId"]
    exporter = start(tmp_path, values, "--interval", "1s")
    assert exporter.proc.wait(60) == 2
    lines = exporter.log().splitlines()
    assert len(lines) == 2, lines
    assert all(line.startswith("error: values: ") for line in lines)
    assert any("postgres.api.password" in line for line in lines)
    assert any("oidc.clientId" in line for line in lines)
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", exporter.port)),
    ):
        pass


def test_endpoints_probe_and_readiness(
    postgres17: PostgresServer, hostile: HostileServers, tmp_path: Path
) -> None:
    values = postgres_values(postgres17, postgres17)
    values["postgres"]["worker"]["port"] = hostile.hang  # the first run takes its full timeout
    args = ("--only", "postgres", "--interval", "1h", "--timeout", "3s")
    with serving(tmp_path, values, *args, ready=False) as exporter:
        wait_listening(exporter)
        assert exporter.get("/-/healthy").status_code == 200
        first = exporter.get("/-/ready")
        report = exporter.get("/report")
        if first.status_code == 503:  # asked while the first run was still going
            assert report.status_code == 503
        exporter.wait_for_runs(1)
        assert exporter.get("/-/ready").status_code == 200
        assert exporter.get("/nope").status_code == 404

        body = exporter.get("/report").json()
        assert body["tool"] == "sense-preflight" and body["version"] == __version__
        assert {c["id"]: c["status"] for c in body["checks"]} == {
            "values": "pass",
            "postgres.api": "pass",
            "postgres.worker": "fail",
        }
        metrics = exporter.samples()
        assert (
            metrics[
                (
                    "sense_preflight_check_status",
                    _labels(check="postgres.worker", component="postgres", status="fail"),
                )
            ]
            == 1
        )
        assert metrics[("sense_preflight_build_info", _labels(version=__version__))] == 1
        # Read-only by default: the write probe was skipped, so it has no step metric.
        assert (
            "sense_preflight_step_success",
            _labels(check="postgres.api", step="roundtrip"),
        ) not in metrics
        assert (
            metrics[("sense_preflight_step_success", _labels(check="postgres.api", step="auth"))]
            == 1
        )

        probed = exporter.samples("/probe", {"check": "postgres.api"})
        assert (
            probed[
                (
                    "sense_preflight_check_status",
                    _labels(check="postgres.api", component="postgres", status="pass"),
                )
            ]
            == 1
        )
        assert {labels.get("check") for _, raw in probed for labels in [dict(raw)]} == {
            "postgres.api"
        }
        assert exporter.get("/probe").status_code == 400
        unknown = exporter.get("/probe", {"check": "nope"})
        assert unknown.status_code == 400 and "postgres.api" in unknown.text
        assert exporter.runs() == 1  # /probe runs are not scheduled runs
        assert exporter.stop() == 0
    assert exporter.log().rstrip().endswith("no thread left")


def _labels(**labels: str) -> frozenset:
    return frozenset(labels.items())


def test_sighup_reads_the_values_again_and_a_bad_reload_keeps_them(
    postgres17: PostgresServer, tmp_path: Path
) -> None:
    values = postgres_values(postgres17, postgres17)
    args = ("--only", "postgres.api", "--interval", "200ms")
    reload_ok = ("sense_preflight_config_reload_success", frozenset())
    api_fail = (
        "sense_preflight_check_status",
        _labels(check="postgres.api", component="postgres", status="fail"),
    )
    with serving(tmp_path, values, *args) as exporter:
        assert exporter.samples()[api_fail] == 0
        values["postgres"]["api"]["port"] = 1  # nothing listens there
        write_values(tmp_path, values)
        exporter.signal(signal.SIGHUP)
        _wait(lambda: exporter.samples()[api_fail] == 1, exporter.log)
        assert exporter.samples()[reload_ok] == 1

        exporter.values_path.write_text("postgres: [unclosed\n")
        exporter.signal(signal.SIGHUP)
        _wait(lambda: exporter.samples()[reload_ok] == 0, exporter.log)
        runs = exporter.runs()
        exporter.wait_for_runs(runs + 2)  # it goes on, with the previous values
        assert exporter.samples()[api_fail] == 1
        log = exporter.log()
        assert "reload: values read again" in log
        assert "reload failed, still running with the previous values: " in log
        assert "values.yaml" in log.split("reload failed")[1].splitlines()[0]
        assert exporter.stop() == 0


def _wait(condition, log, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, log()
        time.sleep(0.1)


def test_a_secret_the_server_echoes_is_in_no_output(
    postgres17: PostgresServer, tmp_path: Path
) -> None:
    """A password pasted into the user name too: the server's error message names it."""
    leaked = "Zq-serve-leak-4411"
    values = postgres_values(postgres17, postgres17)
    values["postgres"]["api"] |= {"username": leaked, "password": leaked}
    values["s3"]["secretKey"] = "Zq-serve-s3-7070"
    with serving(tmp_path, values, "--only", "postgres", "--interval", "1h") as exporter:
        report = exporter.get("/report")
        served = {
            "/metrics": exporter.get("/metrics").text,
            "/report": report.text,
            "/probe": exporter.get("/probe", {"check": "postgres.api"}).text,
            "openmetrics": exporter.get("/metrics", accept=OPENMETRICS).text,
        }
        api = next(c for c in report.json()["checks"] if c["id"] == "postgres.api")
        assert api["status"] == "fail" and REDACTED in api["message"]  # it was there to leak
        assert exporter.stop() == 0
    served["log"] = exporter.log()
    secrets = find_secrets(values)
    assert {leaked, "Zq-serve-s3-7070", postgres17.owner.password} <= secrets
    for name, text in served.items():
        assert not [secret for secret in secrets if secret in text], name
    # Label values are ids, statuses, step names, hosts and the version: never free text.
    allowed = {
        "values",
        "postgres.api",
        "postgres.worker",
        "postgres",
        "pass",
        "warn",
        "fail",
        "skip",
    }
    allowed |= {
        "config",
        "dns",
        "tcp",
        "tls",
        "auth",
        "version",
        "database",
        "permissions",
        "capacity",
        __version__,
    }
    for family in text_string_to_metric_families(served["/metrics"] + served["/probe"]):
        for sample in family.samples:
            assert set(sample.labels.values()) <= allowed, sample


def test_job_serve_prints_a_deployment_and_service_like_the_job(tmp_path: Path) -> None:
    from kubernetes.client import ApiClient

    values = example_values(filled=True)
    values["postgres"]["api"]["password"] = "Zq-job-serve-5151"
    path = write_values(tmp_path, values)
    result = run_cli(
        "job", "--serve", "-f", path, "--namespace", "sense", "--timeout", "20", "--interval", "2m"
    )
    assert result.code == 0, result.stderr
    assert "Zq-job-serve-5151" not in result.stdout
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    kinds = [d["kind"] for d in docs]
    assert kinds[-2:] == ["Deployment", "Service"] and "ServiceAccount" in kinds
    api = ApiClient()
    deployment, service = docs[-2:]
    for doc, model in ((deployment, "V1Deployment"), (service, "V1Service")):
        parsed = api.deserialize(SimpleNamespace(data=json.dumps(doc)), model)
        assert api.sanitize_for_serialization(parsed) == doc

    job = [d for d in yaml.safe_load_all(run_cli("job", "-f", path).stdout) if d][-1]
    job_pod, pod = job["spec"]["template"]["spec"], deployment["spec"]["template"]["spec"]
    assert pod["securityContext"] == job_pod["securityContext"]
    container = pod["containers"][0]
    assert container["securityContext"] == job_pod["containers"][0]["securityContext"]
    assert container["args"][:2] == ["serve", "--values"]
    assert container["args"][container["args"].index("--interval") + 1] == "2m"
    assert "--write-probes" not in container["args"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert service["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]

    # The ServiceMonitor, commented out, is valid YAML once uncommented.
    tail = result.stdout.split("# The Prometheus Operator's ServiceMonitor (uncomment):\n")[1]
    monitor = yaml.safe_load(re.sub(r"^# ?", "", tail.replace("# ---\n", ""), flags=re.M))
    assert monitor["kind"] == "ServiceMonitor"
    assert monitor["spec"]["endpoints"][0]["port"] == container["ports"][0]["name"]


RULE_TESTS = """
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'sense_preflight_check_status{check="postgres.api",component="postgres",status="fail"}'
        values: '0 0 1x30'
      - series: 'sense_preflight_tls_not_after_timestamp_seconds{check="oidc",host="idp.example"}'
        values: '864000x30'
      - series: 'sense_preflight_tls_not_after_timestamp_seconds{check="s3",host="s3.example"}'
        values: '10000000000x30'
      - series: 'sense_preflight_last_run_timestamp_seconds'
        values: '0 60 120 180x30'
    alert_rule_test:
      - {eval_time: 10m, alertname: SensePreflightCheckFailing, exp_alerts: []}
      - eval_time: 13m
        alertname: SensePreflightCheckFailing
        exp_alerts:
          - exp_labels: {check: postgres.api, component: postgres, status: fail}
            exp_annotations:
              summary: "postgres.api has failed for 10 minutes: see /report"
      - eval_time: 1m
        alertname: SensePreflightCertificateExpiring
        exp_alerts:
          - exp_labels: {check: oidc, host: idp.example}
            exp_annotations:
              summary: "the certificate of idp.example (oidc) expires within 14 days"
      - {eval_time: 15m, alertname: SensePreflightNotRunning, exp_alerts: []}
      - eval_time: 25m
        alertname: SensePreflightNotRunning
        exp_alerts:
          - exp_annotations:
              summary: "sense-preflight has not finished a run for 3 intervals"
"""


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool: run .ci/setup/prometheus.sh"
)
def test_readme_alert_rules_fire_when_they_should(tmp_path: Path) -> None:
    """promtool evaluates the README's rules on made-up series: a check failing for 10
    minutes, a certificate 10 days from expiry (one of 300 years is not), runs that stopped."""
    readme = (REPO_ROOT / "README.md").read_text()
    (block,) = re.findall(r"```yaml\n(groups:.*?)```", readme, flags=re.S)
    assert len(yaml.safe_load(block)["groups"][0]["rules"]) == 3
    (tmp_path / "rules.yml").write_text(block)
    (tmp_path / "tests.yml").write_text(RULE_TESTS)
    for command in (["check", "rules", "rules.yml"], ["test", "rules", "tests.yml"]):
        done = subprocess.run(
            ["promtool", *command], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
