"""`images.<component>` through the real CLI, against real registries (Basic and Bearer auth)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from checks.images import ImageRef, parse_image, registry_credentials
from preflight.engine.check import StepFailed
from tests.cli import CliResult, example_values, run_cli, write_values
from tests.servers.hostile import HostileServers
from tests.servers.registry import Registry, docker_config

pytestmark = pytest.mark.server("registry")

WRONG_PASSWORD = "wrong-registry-pw-3318"


def _run(
    folder: Path,
    images: dict[str, tuple[Registry, str]],
    *args: str | Path,
    pull_secrets: bool = True,
) -> CliResult:
    """Run the image checks with images = {component: (registry, tag)}."""
    values = example_values()
    sections = {
        "api": values["api"],
        "worker": values["worker"],
        "vision": values["vision"],
        "triton": values["vision"]["triton"],
    }
    for component, (registry, tag) in images.items():
        sections[component]["image"] = {
            "repository": f"{registry.host}/{registry.repository}",
            "tag": tag,
        }
    if pull_secrets:
        values["global"] = {"imagePullSecrets": [{"name": "registry-creds"}]}
    only = ",".join(f"images.{component}" for component in images)
    ca = next(iter(images.values()))[0].ca
    ca_args = ("--ca-bundle", str(ca)) if ca else ()
    return run_cli(write_values(folder, values), "--only", only, *ca_args, *args, timeout=60)


@pytest.fixture(scope="module")
def good_credentials(
    tmp_path_factory: pytest.TempPathFactory, registry: Registry, registry_token: Registry
) -> CliResult:
    """Right credentials for both registries: a pinned tag, an index, :latest, a missing tag."""
    folder = tmp_path_factory.mktemp("images-good")
    images = {
        "api": (registry, registry.tag),
        "worker": (registry_token, registry_token.tag),
        "vision": (registry, "latest"),
        "triton": (registry_token, "9.9.9-never-pushed"),
    }
    config = docker_config(folder / "config.json", registry, registry_token)
    return _run(folder, images, "--registry-config", config, "--format", "json")


def test_pinned_tag_passes_with_its_digest(good_credentials: CliResult, registry: Registry) -> None:
    check = good_credentials.check("images.api")
    assert check["status"] == "pass", check
    assert check["facts"]["digest"] == registry.digest
    assert check["facts"]["registry_auth"] == "basic"
    assert check["facts"]["media_type"] == "application/vnd.oci.image.manifest.v1+json"
    assert check["message"] == f"{registry.image()} is pushed ({registry.digest})"
    names = [step["name"] for step in check["steps"]]
    assert names == ["config", "dns", "tcp", "tls", "auth", "manifest"]


def test_bearer_token_flow(good_credentials: CliResult, registry_token: Registry) -> None:
    check = good_credentials.check("images.worker")
    assert check["status"] == "pass", check
    assert check["facts"]["registry_auth"] == "bearer"
    assert check["facts"]["digest"] == registry_token.digest


def test_latest_warns(good_credentials: CliResult, registry: Registry) -> None:
    check = good_credentials.check("images.vision")
    assert check["status"] == "warn"
    assert check["message"].startswith(f"manifest: {registry.image('latest')} is pushed")
    assert ":latest" in check["message"]
    assert "pin a release" in check["remediation"]
    assert check["facts"]["digest"] == registry.digest


def test_missing_tag_fails_naming_the_image(
    good_credentials: CliResult, registry_token: Registry
) -> None:
    image = registry_token.image("9.9.9-never-pushed")
    assert good_credentials.code == 3
    step = good_credentials.failed_step("images.triton")
    assert step["name"] == "manifest"
    assert step["detail"] == f"{image} is not pushed: see install guide, step 2.4"
    axion = "europe-west1-docker.pkg.dev/axionx-infra/axion/sense-vision-triton:9.9.9-never-pushed"
    assert step["remediation"] == (
        f"docker pull {axion} && docker tag {axion} {image} && docker push {image}"
    )


def test_index_tag_passes(tmp_path: Path, registry: Registry) -> None:
    config = docker_config(tmp_path / "config.json", registry)
    images = {"api": (registry, registry.index_tag)}
    result = _run(tmp_path, images, "--registry-config", config, "--format", "json")
    check = result.check("images.api")
    assert check["status"] == "pass", check
    assert check["facts"]["digest"] == registry.index_digest
    assert check["facts"]["media_type"] == "application/vnd.oci.image.index.v1+json"


def test_wrong_password_fails_at_auth(
    tmp_path: Path, registry: Registry, registry_token: Registry
) -> None:
    config = docker_config(
        tmp_path / "config.json", registry, registry_token, password=WRONG_PASSWORD
    )
    images = {"api": (registry, registry.tag), "worker": (registry_token, registry_token.tag)}
    result = _run(tmp_path, images, "--registry-config", config)
    assert result.code == 3
    for host in (registry.host, registry_token.host):
        line = next(line for line in result.stdout.splitlines() if f"rejected by {host}" in line)
        assert line.startswith("FAIL")
        assert "auth: credentials rejected" in line
    assert "imagePullSecrets" in result.stdout
    assert WRONG_PASSWORD not in result.stdout + result.stderr


def test_no_credentials_fails(tmp_path: Path, registry: Registry, registry_token: Registry) -> None:
    images = {"api": (registry, registry.tag), "worker": (registry_token, registry_token.tag)}
    result = _run(tmp_path, images, "--format", "json", pull_secrets=False)
    assert result.code == 3
    basic = result.failed_step("images.api")
    assert (basic["name"], basic["detail"]) == (
        "auth",
        f"{registry.host} requires credentials; none given",
    )
    assert "--registry-config" in basic["remediation"]
    token = result.failed_step("images.worker")  # the anonymous token grants nothing
    assert token["name"] == "manifest"
    assert "needs credentials (HTTP 401): imagePullSecret needed" in token["detail"]
    assert "global.imagePullSecrets" in token["remediation"]


def test_no_credentials_here_but_pull_secrets_in_the_cluster_warns(
    tmp_path: Path, registry: Registry, registry_token: Registry
) -> None:
    images = {"api": (registry, registry.tag), "worker": (registry_token, registry_token.tag)}
    result = _run(tmp_path, images, "--format", "json")
    assert result.code == 0, result.stdout
    basic = {s["name"]: s for s in result.check("images.api")["steps"]}
    assert (basic["auth"]["status"], basic["manifest"]["status"]) == ("warn", "skip")
    assert basic["auth"]["detail"] == (
        f"pull not verified: {registry.host} requires credentials and this check has none for it "
        "(--registry-config), but the cluster pulls with global.imagePullSecrets "
        "(registry-creds), which this check cannot read"
    )
    token = {s["name"]: s for s in result.check("images.worker")["steps"]}
    assert token["manifest"]["status"] == "warn"
    assert token["manifest"]["detail"].startswith(
        f"pull not verified: {registry_token.host}/{registry_token.repository}:"
        f"{registry_token.tag} answered HTTP 401 to an anonymous request, so it needs credentials,"
    )
    assert "--registry-config" in token["manifest"]["remediation"]


def test_credentials_without_pull_secrets_warn(tmp_path: Path, registry: Registry) -> None:
    config = docker_config(tmp_path / "config.json", registry)
    images = {"api": (registry, registry.tag)}
    result = _run(
        tmp_path, images, "--registry-config", config, "--format", "json", pull_secrets=False
    )
    check = result.check("images.api")
    assert check["status"] == "warn"
    assert "global.imagePullSecrets is empty" in check["message"]
    assert result.code == 0


def test_unreadable_registry_config_fails_at_config(tmp_path: Path, registry: Registry) -> None:
    config = tmp_path / "config.json"
    config.write_text("{not json")
    result = _run(
        tmp_path, {"api": (registry, registry.tag)}, "--registry-config", config, "--format", "json"
    )
    step = result.failed_step("images.api")
    assert step["name"] == "config"
    assert "not valid JSON" in step["detail"]


def test_hostile_registries_fail_in_time(tmp_path: Path, hostile: HostileServers) -> None:
    timeout = 2.0
    values = example_values()
    ports = {"api": hostile.hang, "worker": hostile.tls_stall, "vision": hostile.http}
    values["api"]["image"]["repository"] = f"127.0.0.1:{hostile.hang}/axion/sense-api"
    values["worker"]["image"]["repository"] = f"127.0.0.1:{hostile.tls_stall}/axion/sense-worker"
    values["vision"]["image"]["repository"] = f"127.0.0.1:{hostile.http}/axion/sense-vision"
    only = ",".join(f"images.{component}" for component in ports)
    args = ("--only", only, "--format", "json", "--timeout", str(timeout))
    result = run_cli(write_values(tmp_path, values), *args, timeout=60)
    assert result.code == 3
    for component in ports:
        check = result.check(f"images.{component}")
        assert check["status"] == "fail"
        assert check["duration_s"] <= timeout + 0.5
    assert result.failed_step("images.api")["name"] == "tls"  # accepts, never answers
    assert result.failed_step("images.worker")["name"] == "tls"
    assert "did not answer with TLS" in result.failed_step("images.vision")["detail"]
    assert result.duration_s < timeout + 3  # interpreter start-up included


# --- reading image references and config.json, as a container runtime does ---------------------


@pytest.mark.parametrize(
    ("repository", "tag", "expected"),
    [
        (
            "registry.example.com/axion/sense-api",
            "1.0.0",
            ("registry.example.com", "axion/sense-api", "1.0.0"),
        ),
        ("localhost:5000/sense-api", "v1", ("localhost:5000", "sense-api", "v1")),
        ("axion/sense-api", "1.0.0", ("docker.io", "axion/sense-api", "1.0.0")),
        ("nginx", "", ("docker.io", "library/nginx", "latest")),
        (
            "r.example.com/a@sha256:" + "a" * 64,
            "ignored",
            ("r.example.com", "a", "sha256:" + "a" * 64),
        ),
    ],
)
def test_parse_image(repository: str, tag: str, expected: tuple[str, str, str]) -> None:
    assert parse_image(repository, tag, "api.image") == ImageRef(*expected)


@pytest.mark.parametrize(
    ("repository", "tag"), [("r.example.com/Axion/API", "1"), ("r.example.com/a", "bad tag")]
)
def test_parse_image_refuses_invalid_references(repository: str, tag: str) -> None:
    with pytest.raises(StepFailed, match=r"^api\.image\.(repository|tag): "):
        parse_image(repository, tag, "api.image")


def test_registry_credentials_key_forms(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    auths = {
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:hub-pw").decode()},
        "https://r.example.com/v2/": {"username": "u", "password": "p:w"},
        "broken.example.com": {"auth": "bm8tY29sb24="},  # base64 of "no-colon"
    }
    config.write_text(json.dumps({"auths": auths}))
    assert registry_credentials(config, "docker.io") == ("hub", "hub-pw")
    assert registry_credentials(config, "r.example.com") == ("u", "p:w")
    assert registry_credentials(config, "other.example.com") is None
    with pytest.raises(StepFailed, match="no usable credentials"):
        registry_credentials(config, "broken.example.com")
