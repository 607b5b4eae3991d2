"""OpenFGA for the tests: a FAKE of OpenFGA's HTTP API, because no OpenFGA server can run here.

No OpenFGA server binary exists in PyPI, npm or Debian, and there is no Docker engine. This fake
serves, on a loopback port in a thread of the test session, the part of the HTTP API that the
`openfga` check and the API's migration use, as OpenFGA v1.x answers it (openfga/api
`openfga_service.proto` and openfga/openfga `pkg/server/errors`, `internal/authn`):

- `GET /healthz` → 200 `{"status":"SERVING"}`, without authentication;
- pre-shared key authentication (`--authn-method preshared --authn-preshared-keys KEY`): no
  `Authorization: Bearer …` header → 401 `bearer_token_missing`; an unknown key → 401
  `unauthenticated` (a fake without keys is `--authn-method none`);
- `GET /stores?page_size&continuation_token&name`: stores in creation order, `name` an exact
  filter, `page_size` 1..100 (default 50), an opaque `continuation_token` ("" on the last page);
- `POST /stores` → 201 with the store; `GET /stores/{id}` (404 `store_id_not_found` when unknown
  or deleted); `DELETE /stores/{id}` → 204, also for an unknown store (OpenFGA is idempotent here);
- `GET /stores/{id}/authorization-models` newest first, paginated like stores;
  `POST /stores/{id}/authorization-models` → 201 `{"authorization_model_id"}`, 400
  `exceeded_entity_limit` over the size limit. Like OpenFGA, neither checks that the store
  exists (openfga/openfga#690);
- store and model ids are 26-character ULIDs; a malformed one → 400 `validation_error`;
- every error body is `{"code": ..., "message": ...}` with OpenFGA's status codes; a path
  outside this list → 404 `undefined_endpoint`, another method on a known path → 404
  `unimplemented` (OpenFGA maps grpc-gateway's NotFound / Unimplemented so).

Its fidelity is checked in tests/test_openfga_server.py with the real `fga` CLI and the
`openfga-sdk` client (installed by `.ci/setup/openfga.sh`).

Sources, in order: `SENSE_TEST_OPENFGA_URL` with `SENSE_TEST_OPENFGA_KEY` name a real OpenFGA
server (the tests create and delete their own uniquely named stores there); else this fake.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.servers._http_fake import FakeHandler, FakeHttpServer

ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_PATTERN = "^[ABCDEFGHJKMNPQRSTVWXYZ0-9]{26}$"
STORE_NAME_PATTERN = r"^[a-zA-Z0-9\s\.\-\/^_&@]{3,64}$"
TYPE_PATTERN = r"^[^:#@\s]{1,254}$"
SCHEMA_VERSIONS = ("1.0", "1.1", "1.2")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


class ApiError(Exception):
    """An OpenFGA error: HTTP status and the `{"code", "message"}` body."""

    def __init__(self, status: HTTPStatus, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _validation(
    request: str, field_name: str, reason: str, code: str = "validation_error"
) -> ApiError:
    """A request-validation failure worded like protoc-gen-validate's."""
    return ApiError(HTTPStatus.BAD_REQUEST, code, f"invalid {request}.{field_name}: {reason}")


def _regex_error(request: str, field_name: str, pattern: str) -> ApiError:
    return _validation(request, field_name, f'value does not match regex pattern "{pattern}"')


def _timestamp() -> str:
    """An RFC 3339 UTC timestamp with sub-second digits, as OpenFGA writes them."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class _Store:
    id: str
    name: str
    created_at: str
    updated_at: str
    deleted: bool = False

    def body(self) -> dict[str, str]:
        return {
            "id": self.id,
            "name": self.name,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class FakeOpenFga:
    """The fake's state: pre-shared keys, stores and authorization models, behind one lock."""

    keys: frozenset[str]
    name_filter: bool = True
    max_model_bytes: int = 256 * 1024
    model_write_delay_s: float = 0.0  # like a slow datastore: lets a test interrupt the write
    stores: dict[str, _Store] = field(default_factory=dict)
    models: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_ulid: int = 0

    def new_ulid(self) -> str:
        """A ULID greater than every earlier one (monotonic within a millisecond)."""
        value = max((time.time_ns() // 1_000_000) << 80 | secrets.randbits(80), self.last_ulid + 1)
        self.last_ulid = value
        return "".join(ULID_ALPHABET[(value >> shift) & 31] for shift in range(125, -1, -5))

    def authenticate(self, header: str | None) -> None:
        """OpenFGA's pre-shared key check (grpc-middleware's AuthFromMD, then the key); without
        keys, like `--authn-method none`, everyone is let in."""
        if not self.keys:
            return
        scheme, _, token = (header or "").partition(" ")
        if not header or " " not in header or scheme.lower() != "bearer":
            raise ApiError(HTTPStatus.UNAUTHORIZED, "bearer_token_missing", "missing bearer token")
        if not any(secrets.compare_digest(token, key) for key in self.keys):
            raise ApiError(HTTPStatus.UNAUTHORIZED, "unauthenticated", "unauthenticated")

    def route(
        self, method: str, parts: list[str], query: dict[str, str], body: dict[str, Any]
    ) -> Callable[[], tuple[HTTPStatus, dict[str, Any] | None]]:
        """The operation for a request; 404 `undefined_endpoint` (unknown path) or `unimplemented`
        (known path, other method) as OpenFGA's grpc-gateway answers otherwise."""
        match method, parts:
            case "GET", ["stores"]:
                return lambda: (HTTPStatus.OK, self.list_stores(query))
            case "POST", ["stores"]:
                return lambda: (HTTPStatus.CREATED, self.create_store(body))
            case "GET", ["stores", store_id]:
                return lambda: (HTTPStatus.OK, self.get_store(store_id))
            case "DELETE", ["stores", store_id]:
                return lambda: self.delete_store(store_id)
            case "GET", ["stores", store_id, "authorization-models"]:
                return lambda: (HTTPStatus.OK, self.read_models(store_id, query))
            case "POST", ["stores", store_id, "authorization-models"]:
                time.sleep(self.model_write_delay_s)  # outside the lock: other calls go on
                return lambda: (HTTPStatus.CREATED, self.write_model(store_id, body))
            case _, ["stores"] | ["stores", _] | ["stores", _, "authorization-models"]:
                # grpc-gateway: a known path with another method is codes.Unimplemented.
                raise ApiError(HTTPStatus.NOT_FOUND, "unimplemented", "Method Not Allowed")
        raise ApiError(HTTPStatus.NOT_FOUND, "undefined_endpoint", "Not Found")

    def list_stores(self, query: dict[str, str]) -> dict[str, Any]:
        name = query.get("name") if self.name_filter else None
        if name is not None and not re.match(STORE_NAME_PATTERN, name):
            raise _regex_error("ListStoresRequest", "Name", STORE_NAME_PATTERN)
        stores = [
            store.body()
            for store in sorted(self.stores.values(), key=lambda store: store.id)
            if not store.deleted and (not name or store.name == name)
        ]
        page, token = _paginate(stores, query, "ListStoresRequest")
        return {"stores": page, "continuation_token": token}

    def create_store(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("name")
        if not isinstance(name, str) or not re.match(STORE_NAME_PATTERN, name):
            raise _regex_error("CreateStoreRequest", "Name", STORE_NAME_PATTERN)
        now = _timestamp()
        store = _Store(id=self.new_ulid(), name=name, created_at=now, updated_at=now)
        self.stores[store.id] = store
        return store.body()

    def get_store(self, store_id: str) -> dict[str, Any]:
        store = self.stores.get(_store_id(store_id, "GetStoreRequest"))
        if store is None or store.deleted:
            raise ApiError(HTTPStatus.NOT_FOUND, "store_id_not_found", "Store ID not found")
        return store.body()

    def delete_store(self, store_id: str) -> tuple[HTTPStatus, None]:
        store = self.stores.get(_store_id(store_id, "DeleteStoreRequest"))
        if store is not None:
            store.deleted = True
        return HTTPStatus.NO_CONTENT, None

    def read_models(self, store_id: str, query: dict[str, str]) -> dict[str, Any]:
        models = self.models.get(_store_id(store_id, "ReadAuthorizationModelsRequest"), [])
        newest_first = sorted(models, key=lambda model: model["id"], reverse=True)
        page, token = _paginate(newest_first, query, "ReadAuthorizationModelsRequest")
        return {"authorization_models": page, "continuation_token": token}

    def write_model(self, store_id: str, body: dict[str, Any]) -> dict[str, Any]:
        request = "WriteAuthorizationModelRequest"
        store_id = _store_id(store_id, request)
        types = body.get("type_definitions") or []
        if not isinstance(types, list) or not types:
            raise _validation(
                request,
                "TypeDefinitions",
                "value must contain at least 1 item(s)",
                "type_definitions_too_few_items",
            )
        for index, definition in enumerate(types):
            if not isinstance(definition, dict) or not re.match(
                TYPE_PATTERN, str(definition.get("type", ""))
            ):
                raise _regex_error(request, f"TypeDefinitions[{index}].Type", TYPE_PATTERN)
        version = body.get("schema_version")
        if version not in SCHEMA_VERSIONS:
            raise _validation(
                request, "SchemaVersion", f"value must be in list {list(SCHEMA_VERSIONS)}"
            )
        model = {
            "id": self.new_ulid(),
            "schema_version": version,
            "type_definitions": types,
            "conditions": body.get("conditions") or {},
        }
        # OpenFGA measures the protobuf encoding (--max-authorization-model-size-in-bytes);
        # the fake measures the JSON one.
        size = len(json.dumps(model, separators=(",", ":")))
        if size > self.max_model_bytes:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "exceeded_entity_limit",
                f"model exceeds size limit: {size} bytes vs {self.max_model_bytes} bytes",
            )
        self.models.setdefault(store_id, []).append(model)
        return {"authorization_model_id": model["id"]}


def _store_id(store_id: str, request: str) -> str:
    if not re.match(ULID_PATTERN, store_id):
        raise _regex_error(request, "StoreId", ULID_PATTERN)
    return store_id


def _paginate(
    items: list[dict[str, Any]], query: dict[str, str], request: str
) -> tuple[list[dict[str, Any]], str]:
    """One page of `items` (sorted, each with an "id") after the continuation token's id."""
    try:
        size = int(query.get("page_size") or DEFAULT_PAGE_SIZE)
    except ValueError:
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            "validation_error",
            f"type mismatch, parameter: page_size, error: invalid integer {query['page_size']!r}",
        ) from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise _validation(
            request,
            "PageSize",
            f"value must be inside range [1, {MAX_PAGE_SIZE}]",
            "page_size_invalid",
        )
    start = 0
    if token := query.get("continuation_token"):
        try:
            after = json.loads(base64.urlsafe_b64decode(token))["after"]
            start = next(i for i, item in enumerate(items) if item["id"] == after) + 1
        except (binascii.Error, ValueError, KeyError, TypeError, StopIteration):
            raise ApiError(
                HTTPStatus.BAD_REQUEST, "invalid_continuation_token", "Invalid continuation token"
            ) from None
    page = items[start : start + size]
    if start + size >= len(items):
        return page, ""
    return page, base64.urlsafe_b64encode(json.dumps({"after": page[-1]["id"]}).encode()).decode()


def _handler(fake: FakeOpenFga) -> type[FakeHandler]:
    class Handler(FakeHandler):
        """Routes OpenFGA's HTTP paths to the fake's state."""

        def _dispatch(self) -> None:
            url = urlsplit(self.path)
            parts = [part for part in url.path.split("/") if part]
            query = {key: values[-1] for key, values in parse_qs(url.query).items()}
            try:
                body = self._body()
                if parts == ["healthz"] and self.command == "GET":
                    self.reply(HTTPStatus.OK, {"status": "SERVING"})
                    return
                operation = fake.route(self.command, parts, query, body)
                fake.authenticate(self.headers.get("Authorization"))
                with fake.lock:
                    status, answer = operation()
                self.reply(status, answer)
            except ApiError as error:
                self.reply(error.status, {"code": error.code, "message": error.message})
            except Exception:
                # A bug in the fake: answer like OpenFGA's internal error, then let the server
                # log it.
                body = {"code": "internal_error", "message": "Internal Server Error"}
                self.reply(HTTPStatus.INTERNAL_SERVER_ERROR, body)
                raise

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _dispatch

        def _body(self) -> dict[str, Any]:
            raw = self.read_body()
            if not raw:
                return {}
            try:
                body = json.loads(raw)
            except ValueError:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST, "validation_error", "malformed JSON"
                ) from None
            if not isinstance(body, dict):
                raise ApiError(HTTPStatus.BAD_REQUEST, "validation_error", "malformed JSON")
            return body

    return Handler


@dataclass(frozen=True)
class OpenFgaServer:
    """An OpenFGA HTTP API (the fake, or a real server from the environment) and its key."""

    url: str
    api_key: str
    fake: bool
    startup_s: float

    def client(self, api_key: str | None = None) -> httpx.Client:
        """An httpx client for the API, authenticated with `api_key` (default: the valid key)."""
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {api_key or self.api_key}"},
            timeout=5,
        )

    def create_store(self, name: str) -> str:
        """Create a store named `name`; return its id."""
        with self.client() as client:
            response = client.post("/stores", json={"name": name})
        response.raise_for_status()
        return str(response.json()["id"])

    def delete_store(self, store_id: str) -> None:
        with self.client() as client:
            client.delete(f"/stores/{store_id}").raise_for_status()

    def stores(self, name: str | None = None) -> list[dict[str, Any]]:
        """The live stores (named exactly `name`, if given), over every page."""
        found: list[dict[str, Any]] = []
        params: dict[str, str | int] = {"page_size": MAX_PAGE_SIZE}
        with self.client() as client:
            while True:
                page = client.get("/stores", params=params).raise_for_status().json()
                found += [store for store in page["stores"] if name in (None, store["name"])]
                if not page["continuation_token"]:
                    return found
                params["continuation_token"] = page["continuation_token"]

    def store_ids(self, name: str) -> list[str]:
        """Ids of the live stores named exactly `name`."""
        return [store["id"] for store in self.stores(name)]

    def write_model(self, store_id: str, *types: str) -> str:
        """Write an authorization model with these types; return its id."""
        body = {"schema_version": "1.1", "type_definitions": [{"type": t} for t in types]}
        with self.client() as client:
            response = client.post(f"/stores/{store_id}/authorization-models", json=body)
        return str(response.raise_for_status().json()["authorization_model_id"])


def _serve_fake(fake: FakeOpenFga) -> Iterator[OpenFgaServer]:
    """Run the fake in a thread of the test session until the session ends."""
    started = time.monotonic()
    with FakeHttpServer(_handler(fake)) as server:
        yield OpenFgaServer(
            url=server.url,
            api_key=next(iter(fake.keys), ""),
            fake=True,
            startup_s=time.monotonic() - started,
        )


@pytest.fixture(scope="session")
def openfga() -> Iterator[OpenFgaServer]:
    """OpenFGA with pre-shared key auth: `SENSE_TEST_OPENFGA_URL`, else the fake (see above)."""
    url = os.environ.get("SENSE_TEST_OPENFGA_URL")
    if url:
        key = os.environ.get("SENSE_TEST_OPENFGA_KEY")
        if not key:
            pytest.fail("SENSE_TEST_OPENFGA_URL needs SENSE_TEST_OPENFGA_KEY (a pre-shared key)")
        yield OpenFgaServer(url=url.rstrip("/"), api_key=key, fake=False, startup_s=0.0)
        return
    yield from _serve_fake(FakeOpenFga(keys=frozenset({secrets.token_urlsafe(24)})))


@pytest.fixture(scope="session")
def openfga_without_name_filter() -> Iterator[OpenFgaServer]:
    """The fake as an OpenFGA release from before ListStores' `name` filter: grpc-gateway
    ignores the unknown query parameter and every store comes back, page by page."""
    fake = FakeOpenFga(keys=frozenset({secrets.token_urlsafe(24)}), name_filter=False)
    yield from _serve_fake(fake)


@pytest.fixture(scope="session")
def openfga_without_auth() -> Iterator[OpenFgaServer]:
    """The fake as OpenFGA run with `--authn-method none`: any key, or none, is let in."""
    yield from _serve_fake(FakeOpenFga(keys=frozenset()))


@pytest.fixture(scope="session")
def openfga_slow_models() -> Iterator[OpenFgaServer]:
    """The fake with a datastore that takes 20 s to write an authorization model."""
    yield from _serve_fake(
        FakeOpenFga(keys=frozenset({secrets.token_urlsafe(24)}), model_write_delay_s=20)
    )


@pytest.fixture(scope="session")
def openfga_tiny_models() -> Iterator[OpenFgaServer]:
    """The fake as OpenFGA run with `--max-authorization-model-size-in-bytes 16`: creating a
    store works, writing any authorization model fails (400 `exceeded_entity_limit`)."""
    fake = FakeOpenFga(keys=frozenset({secrets.token_urlsafe(24)}), max_model_bytes=16)
    yield from _serve_fake(fake)
