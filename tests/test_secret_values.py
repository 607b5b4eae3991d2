"""The values check flags the guide's placeholders and weak secrets, value by value, naming
the path and never the value; `--strict` makes them fail (exit 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from preflight.values.check import check_words
from preflight.values.load import Values
from preflight.values.secret_values import secret_problems
from tests.cli import EXAMPLE_VALUES, example_values, run_cli, write_values

#: Every value of the guide's minimal file that still holds a placeholder.
EXAMPLE_SECRET_PLACEHOLDERS = [
    "oidc.clientSecret",
    "s3.secretKey",
    "postgres.api.password",
    "postgres.worker.password",
    "clickhouse.password",
    "openfga.apiKey",
    "vision.config.detectors[0].authToken",
    "vision.config.mapMatching.mapMatchingApi.apiKey",
]
EXAMPLE_HOSTS = {
    "api.image.repository": "registry.partner.com",
    "worker.image.repository": "registry.partner.com",
    "vision.image.repository": "registry.partner.com",
    "vision.triton.image.repository": "registry.partner.com",
    "oidc.authority": "keycloak.partner.com",
    "kafka.bootstrapServers": "kafka.partner.internal",
    "postgres.api.host": "postgres.partner.internal",
    "postgres.worker.host": "postgres.partner.internal",
    "clickhouse.host": "clickhouse.partner.internal",
    "openfga.apiUrl": "openfga.partner.internal",
    "vision.config.detectors[0].apiUrl": "detector.partner.internal",
    "vision.config.mapMatching.mapMatchingApi.baseUrl": "map-matching.partner.internal",
}


def warnings(values: dict) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for problem in secret_problems(Values(values), lambda: check_words(Values(values))):
        assert not problem.error
        found.setdefault(problem.path, []).append(problem.message)
    return found


def test_the_example_file_is_flagged_value_by_value() -> None:
    result = run_cli("validate", EXAMPLE_VALUES, "--format", "json")
    assert result.code == 0
    steps = {s["name"]: s for s in result.check("values")["steps"]}
    assert result.check("values")["status"] == "warn"
    for path in EXAMPLE_SECRET_PLACEHOLDERS:
        assert steps[path]["status"] == "warn"
        assert "install guide's placeholder" in steps[path]["detail"]
    assert "AWS's documentation example key" in steps["s3.accessKey"]["detail"]
    for path, host in EXAMPLE_HOSTS.items():
        assert steps[path]["detail"].startswith(f"{host}: a documentation placeholder host")
    assert len(steps) == len(EXAMPLE_SECRET_PLACEHOLDERS) + 1 + len(EXAMPLE_HOSTS)
    assert "change-me" not in result.stdout and "AKIAIOSFODNN7EXAMPLE" not in result.stdout


def test_strict_makes_the_placeholders_fail_with_exit_4() -> None:
    result = run_cli("validate", EXAMPLE_VALUES, "--strict")
    assert result.code == 4
    assert "warn: postgres.api.password: still the install guide's placeholder" in result.stdout


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("postgres.api.password", "xxx"),
        ("postgres.api.password", "<password>"),
        ("oidc.clientSecret", "CHANGE-ME"),
        ("s3.secretKey", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ("openfga.apiUrl", "http://fga:change-me@fga.internal:8080"),
        ("worker.customLayersSync.connectionString", "Host=db;Username=u;Password=xxx"),
        ("kafka.bootstrapServers", "a.example.com:9092,b.example.org:9092"),
        ("s3.host", "registry.example.com"),
    ],
)
def test_each_placeholder_is_named_by_its_path(path: str, value: str) -> None:
    values = example_values(filled=True)
    node = values
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    assert list(warnings(values)) == [path]


def test_real_looking_values_raise_no_warning() -> None:
    assert warnings(example_values(filled=True)) == {}


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("admin", "shorter than 8 characters"),
        ("default", "shorter than 8 characters"),
        ("postgres", "a word the report uses"),  # a component
        ("clickhouse", "a word the report uses"),  # a check id
        ("map-matching", "a word the report uses"),  # a check id that is no value path
        ("127.0.0.1", "a word the report uses"),  # a host
        ("axion_sense", "a word the report uses"),  # the API database
        ("axion_user", "a word the report uses"),  # the user name
    ],
)
def test_weak_secrets_warn_without_showing_the_value(tmp_path: Path, secret: str, why: str) -> None:
    values = example_values(filled=True)
    values["s3"]["host"] = "127.0.0.1"
    values["postgres"]["worker"]["password"] = secret
    found = warnings(values)
    assert list(found) == ["postgres.worker.password"]
    (message,) = found["postgres.worker.password"]
    assert message.startswith(f"weak secret ({why}")
    assert "the report may show that word where it is not the secret" in message
    result = run_cli("validate", write_values(tmp_path, values), "--strict")
    assert result.code == 4
    assert "postgres.worker.password: weak secret" in result.stdout
    assert not [line for line in result.stdout.splitlines() if f" {secret} " in f" {line} "]
