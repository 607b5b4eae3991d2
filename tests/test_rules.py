"""Every required and conditionally required rule of the install guide, one test each; types;
the rules published as JSON Schema agree with the evaluator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from preflight.values.load import Values
from preflight.values.rules import RULES, check_values, json_schema
from tests.cli import example_values, run_cli, write_values

ALWAYS_REQUIRED = [r.path for r in RULES if r.required and not r.when and "[]" not in r.path]
VISION_REQUIRED = [
    r.path
    for r in RULES
    if r.required and [c.path for c in r.when] == ["vision.enabled"] and "[]" not in r.path
]


def remove(values: dict[str, Any], path: str) -> None:
    *parents, leaf = path.split(".")
    node = values
    for part in parents:
        node = node[part]
    del node[leaf]


def set_path(values: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = values
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def errors(values: dict[str, Any]) -> list[str]:
    return [str(p) for p in check_values(Values(values)) if p.error]


def test_example_values_have_no_problem() -> None:
    assert check_values(Values(example_values())) == []


@pytest.mark.parametrize("path", ALWAYS_REQUIRED)
def test_each_required_value(path: str) -> None:
    values = example_values()
    remove(values, path)
    found = errors(values)
    assert len(found) == 1
    assert found[0].startswith(f"{path}: required value is missing — ")


@pytest.mark.parametrize("path", VISION_REQUIRED)
def test_each_vision_value_is_required_only_while_vision_is_on(path: str) -> None:
    values = example_values()
    remove(values, path)
    assert [e.split(":")[0] for e in errors(values)] == [path]
    values["vision"]["enabled"] = False
    assert errors(values) == []


def test_detectors_need_name_and_url_and_unique_names() -> None:
    values = example_values()
    values["vision"]["config"]["detectors"] = [
        {"name": "a", "apiUrl": "ftp://x"},
        {"apiUrl": "http://d"},
        {"name": "a", "apiUrl": "http://e"},
    ]
    found = errors(values)
    assert (
        "vision.config.detectors[0].apiUrl: must be an absolute http(s) URL with a host — Detector upload URL"
        in found
    )
    assert any(
        e.startswith("vision.config.detectors[1].name: required value is missing") for e in found
    )
    assert "vision.config.detectors: detector name 'a' is used more than once" in found
    values["vision"]["config"]["detectors"] = []
    assert [e.split(":")[0] for e in errors(values)] == ["vision.config.detectors"]


CONDITIONAL = [
    ("api.ingress.enabled", True, "api.ingress.hosts"),
    ("api.ingressGrpc.enabled", True, "api.ingressGrpc.hosts"),
    ("api.certificate.enabled", True, "api.certificate.issuerRef.name"),
    ("api.certificate.enabled", True, "api.certificate.dnsNames"),
    ("worker.ingress.enabled", True, "worker.ingress.hosts"),
    ("kafka.securityProtocol", "SASL_SSL", "kafka.saslUsername"),
    ("kafka.securityProtocol", "SASL_PLAINTEXT", "kafka.saslPassword"),
    ("worker.customLayersSync.enabled", True, "worker.customLayersSync.connectionString"),
    ("worker.customLayersSync.enabled", True, "worker.customLayersSync.password"),
    ("vision.config.mapMatching.backend", "valhalla", "vision.valhalla.enabled"),
]


@pytest.mark.parametrize(("switch", "value", "required"), CONDITIONAL)
def test_each_conditional_rule(switch: str, value: Any, required: str) -> None:
    values = example_values()
    assert not any(e.startswith(required) for e in errors(values))
    set_path(values, switch, value)
    found = [e for e in errors(values) if e.startswith(f"{required}: required value is missing")]
    assert len(found) == 1
    assert "required because" in found[0]


def test_map_matching_base_url_required_for_the_api_backend() -> None:
    values = example_values()
    del values["vision"]["config"]["mapMatching"]["mapMatchingApi"]["baseUrl"]
    assert [e.split(":")[0] for e in errors(values)] == [
        "vision.config.mapMatching.mapMatchingApi.baseUrl"
    ]
    values["vision"]["config"]["mapMatching"]["backend"] = "valhalla"
    values["vision"]["valhalla"] = {"enabled": True}
    assert errors(values) == []
    values["vision"]["valhalla"]["enabled"] = False
    assert errors(values) == [
        'vision.valhalla.enabled: must be true when vision.config.mapMatching.backend is "valhalla"'
    ]


def test_api_keys_entries_need_key_and_service_name() -> None:
    values = example_values()
    values["api"]["apiKeys"] = {"keys": [{"key": "k-123"}, {"serviceName": "svc"}]}
    found = errors(values)
    assert any(
        e.startswith("api.apiKeys.keys[0].serviceName: required value is missing") for e in found
    )
    assert any(e.startswith("api.apiKeys.keys[1].key: required value is missing") for e in found)


def test_ssl_only_kafka_needs_no_sasl() -> None:
    values = example_values()
    values["kafka"]["securityProtocol"] = "SSL"
    assert errors(values) == []
    values["kafka"]["securityProtocol"] = "TLS"
    assert errors(values) == [
        "kafka.securityProtocol: must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
    ]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("postgres.api.port", "5432x", "must be a port number 1-65535, got '5432x': not a number"),
        ("postgres.worker.port", 70000, "must be a port number 1-65535, got 70000: out of range"),
        ("postgres.worker.port", "70000", "must be a port number 1-65535, got 70000: out of range"),
        ("postgres.api.port", 0, "must be a port number 1-65535, got 0: out of range"),
        ("clickhouse.port", True, "must be a port number 1-65535, got True: not a number"),
        ("clickhouse.port", " 8123", "must be a port number 1-65535, got ' 8123': not a number"),
        ("s3.secured", "yes please", "must be true or false, got 'yes please'"),
        ("vision.enabled", "false", "must be true or false, got 'false'"),
        ("api.replicaCount", "two", "must be an integer, got a string"),
        (
            "oidc.authority",
            "keycloak.partner.com/realms/main",
            "must be an absolute http(s) URL with a host",
        ),
        ("openfga.apiUrl", "http://:8080", "must be an absolute http(s) URL with a host"),
        ("postgres.api.host", ["a", "b"], "must be a string, got a list"),
    ],
)
def test_types(path: str, value: Any, message: str) -> None:
    values = example_values()
    set_path(values, path, value)
    found = errors(values)
    assert len(found) == 1
    assert found[0].startswith(f"{path}: {message} — ")


@pytest.mark.parametrize("port", ["5432", 5432, "1", "65535"])
def test_a_quoted_port_is_a_port_like_helm_renders_it(port: str | int) -> None:
    values = example_values()
    set_path(values, "postgres.api.port", port)
    assert check_values(Values(values)) == []


def test_unknown_top_level_key_is_a_warning_with_a_suggestion() -> None:
    values = example_values()
    values["postgress"] = {"api": {}}
    problems = check_values(Values(values))
    assert [(str(p), p.error) for p in problems] == [
        ("postgress: unknown top-level key, the chart ignores it — did you mean 'postgres'?", False)
    ]


def test_cli_lists_every_problem_at_once(tmp_path: Path) -> None:
    values = example_values()
    remove(values, "postgres.api.password")
    remove(values, "s3.host")
    values["clickhouse"]["port"] = "http"
    result = run_cli("validate", write_values(tmp_path, values))
    assert result.code == 2
    assert (
        "fail: postgres.api.password: required value is missing — API database password"
        in result.stdout
    )
    assert "fail: s3.host: required value is missing" in result.stdout
    assert "fail: clickhouse.port: must be a port number" in result.stdout


def test_a_run_with_values_errors_touches_no_network(tmp_path: Path) -> None:
    values = example_values()
    remove(values, "kafka.bootstrapServers")
    result = run_cli(write_values(tmp_path, values), "--format", "json")
    assert result.code == 2
    assert [c["id"] for c in result.report["checks"]] == ["values"]


# --- the JSON Schema agrees with the evaluator --------------------------------------------


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_schema_command_prints_the_schema(tmp_path: Path) -> None:
    result = run_cli("schema", "-o", tmp_path / "values.schema.json")
    assert result.code == 0
    assert json.loads((tmp_path / "values.schema.json").read_text()) == json_schema()


def test_schema_accepts_the_example(validator: jsonschema.Draft7Validator) -> None:
    assert list(validator.iter_errors(example_values())) == []


@pytest.mark.parametrize("path", ALWAYS_REQUIRED + VISION_REQUIRED)
def test_schema_rejects_each_missing_required_value(
    validator: jsonschema.Draft7Validator, path: str
) -> None:
    values = example_values()
    remove(values, path)
    assert list(validator.iter_errors(values))


@pytest.mark.parametrize(
    ("port", "valid"),
    [("5432", True), (5432, True), ("65535", True), ("65536", False), ("0", False), ("x", False)],
)
def test_schema_agrees_on_quoted_ports(
    validator: jsonschema.Draft7Validator, port: str | int, valid: bool
) -> None:
    values = example_values()
    set_path(values, "postgres.api.port", port)
    assert (list(validator.iter_errors(values)) == []) == valid
    assert (check_values(Values(values)) == []) == valid


def test_schema_conditionals(validator: jsonschema.Draft7Validator) -> None:
    values = example_values()
    remove(values, "vision.image.tag")
    values["vision"]["enabled"] = False
    assert list(validator.iter_errors(values)) == []
    values = example_values()
    values["api"]["ingress"] = {"enabled": True}
    assert list(validator.iter_errors(values))
    values["api"]["ingress"]["hosts"] = [{"host": "api.example.com"}]
    assert list(validator.iter_errors(values)) == []
    values["kafka"]["securityProtocol"] = "SASL_SSL"
    assert list(validator.iter_errors(values))
