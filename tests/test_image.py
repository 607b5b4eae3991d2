"""Smoke tests of the built image (buildah, no Docker engine): it starts, validates, runs a real
check against PostgreSQL 17 as the Job runs it (uid 10001, HOME=/tmp, read-only root, only /tmp
writable), says clearly that it sees no GPU, and holds exactly the pinned versions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli import EXAMPLE_VALUES, REPO_ROOT, example_values, write_values
from tests.servers.image import Container, Image, container, containers
from tests.servers.postgres import PostgresServer
from tests.test_postgres import database_values

pytestmark = pytest.mark.image

VALUES = "/etc/sense-preflight/custom-values.yaml"
JOB_USER = "10001:10001"


@pytest.fixture(autouse=True)
def no_container_left() -> Iterator[None]:
    """After every test: no working container of the tests remains."""
    yield
    assert containers() == []


def postgres_values(tmp_path: Path, server: PostgresServer) -> Path:
    values = example_values(filled=True)
    values["postgres"]["api"] = database_values(server)
    return write_values(tmp_path, values)


def test_help_and_version(preflight_image: Image) -> None:
    with container(preflight_image.name) as ctr:
        shown = ctr.run("sense-preflight", "--help")
        version = ctr.run("sense-preflight", "--version")
    assert shown.returncode == 0, shown.stderr
    assert "Usage: sense-preflight" in shown.stdout and "in-cluster" in shown.stdout
    assert version.stdout.startswith("sense-preflight, version ")


def test_validate_the_example_values(preflight_image: Image) -> None:
    with container(preflight_image.name) as ctr:
        result = ctr.run("sense-preflight", "validate", VALUES, volumes=[(EXAMPLE_VALUES, VALUES)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(("PASS  values", "WARN  values"))  # WARN: placeholders


def run_postgres_check(ctr: Container, values: Path, **flags: Any) -> dict[str, Any]:
    result = ctr.run(
        "sense-preflight",
        "run",
        VALUES,
        "--only",
        "postgres.api",
        "--format",
        "json",
        "--timeout",
        "10",
        volumes=[(values, VALUES)],
        **flags,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def assert_postgres_passed(report: dict[str, Any], server: PostgresServer) -> None:
    entry = next(c for c in report["checks"] if c["id"] == "postgres.api")
    assert entry["status"] == "pass", entry
    steps = {s["name"]: s["status"] for s in entry["steps"]}
    assert steps["roundtrip"] == "pass"  # the write probe ran and was rolled back
    assert entry["facts"]["server_version"].startswith("17.")
    assert server.owner.password not in json.dumps(report)


def test_a_real_check_from_inside_the_container(
    preflight_image: Image, postgres17: PostgresServer, tmp_path: Path
) -> None:
    with container(preflight_image.name) as ctr:
        report = run_postgres_check(ctr, postgres_values(tmp_path, postgres17))
    assert_postgres_passed(report, postgres17)
    assert postgres17.scratch_tables() == []


def test_as_the_job_runs_it_uid_10001_read_only_root(
    preflight_image: Image, postgres17: PostgresServer, tmp_path: Path
) -> None:
    with container(preflight_image.name, read_only=True, mount_points=[VALUES]) as ctr:
        probe = ctr.run(
            "sh",
            "-c",
            "id -u; for d in / /usr/local /etc /var/tmp /run /tmp; do "
            'touch "$d/.w" 2>/dev/null && echo "writable $d"; done',
            user=JOB_USER,
            tmpfs=["/tmp"],
        )
        report = run_postgres_check(
            ctr,
            postgres_values(tmp_path, postgres17),
            user=JOB_USER,
            env={"HOME": "/tmp"},
            tmpfs=["/tmp"],
        )
    assert probe.stdout.split() == ["10001", "writable", "/tmp"]
    assert_postgres_passed(report, postgres17)
    assert postgres17.scratch_tables() == []


def test_gpu_probe_without_a_gpu_says_why(preflight_image: Image) -> None:
    with container(preflight_image.name) as ctr:
        text = ctr.run("sense-preflight", "gpu-probe")
        as_json = ctr.run("sense-preflight", "gpu-probe", "--format", "json")
    assert text.returncode == 3  # docs/in-cluster.md: without a GPU it says why and exits 3
    assert text.stderr.startswith("error: no GPU: no NVIDIA driver here")
    assert len(text.stderr.splitlines()) == 1 and "Traceback" not in text.stderr
    assert as_json.returncode == 3
    assert json.loads(as_json.stdout)["gpus"] == []


def test_the_image_holds_exactly_the_pinned_versions(preflight_image: Image) -> None:
    with container(preflight_image.name) as ctr:
        frozen = ctr.run("pip", "freeze", "--exclude", "sense-preflight")
    lock = (REPO_ROOT / "requirements.lock").read_text().splitlines()
    assert frozen.stdout.split() == [line for line in lock if not line.startswith("#")]


def test_the_lock_pins_every_dependency_within_its_range() -> None:
    """requirements.lock is regenerated (.ci/lock-image.sh) whenever pyproject's dependencies
    change: each one is pinned there, at a version its specifier accepts."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (REPO_ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    for dependency in map(Requirement, project["dependencies"]):
        pinned = pins.get(canonicalize_name(dependency.name))
        assert pinned is not None, f"{dependency.name} is not in requirements.lock"
        assert dependency.specifier.contains(pinned), f"{dependency.name}=={pinned}: {dependency}"
        for extra in dependency.extras:  # psycopg[binary] installs psycopg-binary
            assert canonicalize_name(f"{dependency.name}-{extra}") in pins
