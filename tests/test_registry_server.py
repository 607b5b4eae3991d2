"""The registry fixtures give real registries that behave as the image checks need."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.servers.registry import OCI_INDEX, OCI_MANIFEST, Registry

pytestmark = pytest.mark.server("registry")

ACCEPT = {"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"}


def _head(
    registry: Registry,
    tag: str,
    auth: tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    url = f"{registry.url}/v2/{registry.repository}/manifests/{tag}"
    headers = {**ACCEPT, **(headers or {})}
    return httpx.head(url, headers=headers, auth=auth, verify=registry.verify())


def _challenge(registry: Registry) -> dict[str, str]:
    response = httpx.get(f"{registry.url}/v2/", verify=registry.verify())
    assert response.status_code == 401
    scheme, _, params = response.headers["WWW-Authenticate"].partition(" ")
    return {"scheme": scheme, **dict(re.findall(r'(\w+)="([^"]*)"', params))}


def _token(registry: Registry, auth: tuple[str, str] | None) -> httpx.Response:
    challenge = _challenge(registry)
    params = {"service": challenge["service"], "scope": f"repository:{registry.repository}:pull"}
    return httpx.get(challenge["realm"], params=params, auth=auth, verify=registry.verify())


def test_basic_registry_serves_pushed_tags(registry: Registry) -> None:
    assert _challenge(registry)["scheme"] == "Basic"
    auth = (registry.username, registry.password)
    pinned = _head(registry, registry.tag, auth=auth)
    assert pinned.status_code == 200
    assert pinned.headers["Docker-Content-Digest"] == registry.digest
    assert pinned.headers["Content-Type"] == OCI_MANIFEST
    assert _head(registry, "latest", auth=auth).headers["Docker-Content-Digest"] == registry.digest
    index = _head(registry, registry.index_tag, auth=auth)
    assert index.headers["Docker-Content-Digest"] == registry.index_digest
    assert index.headers["Content-Type"] == OCI_INDEX


def test_basic_registry_refuses_and_misses(registry: Registry) -> None:
    assert _head(registry, registry.tag).status_code == 401
    assert _head(registry, registry.tag, auth=(registry.username, "wrong")).status_code == 401
    auth = (registry.username, registry.password)
    assert _head(registry, "9.9.9-never-pushed", auth=auth).status_code == 404


def test_token_registry_serves_with_a_token(registry_token: Registry) -> None:
    challenge = _challenge(registry_token)
    assert challenge["scheme"] == "Bearer"
    assert challenge["realm"].startswith("https://127.0.0.1:")
    credentials = (registry_token.username, registry_token.password)
    token = _token(registry_token, credentials).json()["token"]
    pinned = _head(registry_token, registry_token.tag, headers={"Authorization": f"Bearer {token}"})
    assert pinned.status_code == 200
    assert pinned.headers["Docker-Content-Digest"] == registry_token.digest


def test_token_registry_refuses_anonymous_and_wrong_password(registry_token: Registry) -> None:
    anonymous = _token(registry_token, None)
    assert anonymous.status_code == 200
    headers = {"Authorization": f"Bearer {anonymous.json()['token']}"}
    assert _head(registry_token, registry_token.tag, headers=headers).status_code == 401
    assert _token(registry_token, (registry_token.username, "wrong")).status_code == 401
