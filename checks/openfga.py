"""OpenFGA, where the API keeps fine-grained permissions: health, API key, store, round trip.

Steps: config → dns → tcp → tls → health → auth → store → roundtrip. The store is looked up by
its exact name over every page of `GET /stores` (the `name` filter is sent, and applied again
here for servers that ignore it). The round trip (skipped under --read-only) creates a
`sense-preflight-…` store, writes a one-type authorization model and deletes the store again,
also when a step in between fails — what the API's migration does on first start.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from preflight.engine.check import Check, Probe, StepFailed
from preflight.net import (
    Ahead,
    Endpoint,
    ProxyEnv,
    TlsSettings,
    cleanup_client,
    http_client,
    http_request,
    http_url,
    json_object,
    proxy_env,
    reach_url,
    short,
)
from preflight.values.load import Values

if TYPE_CHECKING:
    import httpx

DEFAULT_STORE = "axion-sense"
PAGE_SIZE = 100
MAX_PAGES = 1000
SCRATCH_PREFIX = "sense-preflight-"
SCRATCH_MODEL = {"schema_version": "1.1", "type_definitions": [{"type": "user"}]}
_FIX_URL = (
    "openfga.apiUrl must be OpenFGA's HTTP API (port 8080 by default), not its gRPC port "
    "(8081) or the playground (3000)"
)
_FIX_KEY = (
    "openfga.apiKey must be one of the server's pre-shared keys (--authn-preshared-keys / "
    "OPENFGA_AUTHN_PRESHARED_KEYS)"
)


def checks(values: Values) -> list[Check]:
    """The one OpenFGA check."""
    return [
        Check(
            id="openfga",
            title="OpenFGA: health, API key, store, write probe",
            run=run,
            reads=(
                "openfga.apiUrl",
                "openfga.apiKey",
                "openfga.storeName",
                "api.migration.enabled",
            ),
        )
    ]


@dataclass(frozen=True)
class OpenFgaSettings:
    """What the values say about the OpenFGA API."""

    api_url: str
    endpoint: Endpoint
    api_key: str
    store_name: str

    def url(self, path: str) -> str:
        """An API URL below openfga.apiUrl (which may carry a proxy's path prefix)."""
        return f"{self.api_url.rstrip('/')}{path}"

    def client_options(self) -> dict[str, Any]:
        """httpx client options: JSON, and the key as a bearer token (a request may drop it
        with `auth=None`)."""

        def bearer(request: httpx.Request) -> httpx.Request:
            if self.api_key:
                request.headers["Authorization"] = f"Bearer {self.api_key}"
            return request

        return {"headers": {"Accept": "application/json"}, "auth": bearer}


def run(probe: Probe) -> None:
    """config → dns → tcp → tls → health → auth → store → roundtrip."""
    settings = read_settings(probe)
    tls = reach_url(probe, settings.endpoint)
    with http_client(probe, tls, **settings.client_options()) as client:
        # Without a key, sent now on a connection of its own; judged at the auth step.
        anonymous = (
            Ahead(lambda: _list_stores(probe, client, settings, anonymous=True), probe.deadline)
            if settings.api_key
            else None
        )
        check_health(probe, client, settings)
        first_page = check_key(probe, client, settings, anonymous)
        store_found = find_store(probe, client, settings, first_page)
        if probe.options.read_only:
            probe.skip("roundtrip", "--read-only: no scratch store created")
            return
        roundtrip(probe, client, settings, tls, store_found)


def read_settings(probe: Probe) -> OpenFgaSettings:
    """config: an absolute API URL, the key (may be empty: the server then says so), the store."""
    values = probe.values
    with probe.step("config") as step:
        api_url = str(values.get("openfga.apiUrl", "")).strip()
        endpoint = http_url(api_url, "openfga.apiUrl")
        store_name = str(values.get("openfga.storeName") or DEFAULT_STORE).strip()
        api_key = str(values.get("openfga.apiKey") or "")
        step.detail = f"{api_url}, store {store_name!r}" + ("" if api_key else ", no API key")
    return OpenFgaSettings(api_url, endpoint, api_key, store_name)


def check_health(probe: Probe, client: httpx.Client, settings: OpenFgaSettings) -> None:
    """health: GET /healthz says SERVING."""
    url = settings.url("/healthz")
    with probe.step("health") as step:
        response = http_request(probe, client, "GET", url)
        if response.status_code != 200:
            raise StepFailed(f"GET {url} answered HTTP {response.status_code}", _FIX_URL)
        status = json_object(response, f"GET {url}").get("status")
        if status != "SERVING":
            raise StepFailed(
                f"OpenFGA reports {status!r}, not SERVING",
                "check OpenFGA's log and its datastore (OPENFGA_DATASTORE_URI)",
            )
        step.detail = "SERVING"


def check_key(
    probe: Probe,
    client: httpx.Client,
    settings: OpenFgaSettings,
    anonymous: Ahead[httpx.Response] | None,
) -> httpx.Response:
    """auth: the key may list stores (the listing is the store step's first page); and the
    server does not answer the same request without a key."""
    with probe.step("auth") as step:
        response = _list_stores(probe, client, settings)
        if response.status_code == 401:
            code, message = _error(response)
            missing = code == "bearer_token_missing" or not settings.api_key
            raise StepFailed(
                f"API key {'missing' if missing else 'rejected'} ({code}: {message})", _FIX_KEY
            )
        # OpenFGA authenticates before it validates: a 400 (a store name it refuses) accepted
        # the key, and the store step reports the refusal.
        if response.status_code != 400:
            _expect(response, 200, "listing stores")
        step.detail = "API key accepted"
        if anonymous is not None and anonymous.result().status_code == 200:
            step.warn(
                "OpenFGA also answers without an API key: its authentication is off",
                "run OpenFGA with --authn-method preshared --authn-preshared-keys KEY",
            )
    return response


def _list_stores(
    probe: Probe, client: httpx.Client, settings: OpenFgaSettings, anonymous: bool = False
) -> httpx.Response:
    """The first page of the stores named like the chart's (with the key, or without any)."""
    params = {"page_size": PAGE_SIZE, "name": settings.store_name}
    url = settings.url("/stores")
    if anonymous:
        return http_request(probe, client, "GET", url, params=params, auth=None)
    return http_request(probe, client, "GET", url, params=params)


def find_store(
    probe: Probe, client: httpx.Client, settings: OpenFgaSettings, first_page: httpx.Response
) -> bool:
    """store: find the store by exact name (the auth step read the first page); report its
    id and latest authorization model."""
    with probe.step("store") as step:
        url = settings.url("/stores")
        ids = _store_ids(
            lambda params: http_request(probe, client, "GET", url, params=params),
            settings.store_name,
            first_page,
        )
        if not ids:
            probe.facts["store_id"] = None
            step.detail = f"store {settings.store_name!r} not found: the API migration creates it"
            if probe.options.read_only:
                step.detail += " (that this key may create stores is not shown under --read-only)"
            if not probe.values.enabled("api.migration.enabled", True):
                step.warn(
                    f"store {settings.store_name!r} not found and api.migration.enabled is false",
                    "create the store with your external migration before installing",
                )
            return False
        probe.facts["store_id"] = ids[0]
        model = _latest_model(probe, client, settings, ids[0])
        probe.facts["authorization_model_id"] = model
        step.detail = f"store {settings.store_name!r} is {ids[0]}, " + (
            f"latest authorization model {model}" if model else "no authorization model yet"
        )
        if len(ids) > 1:
            probe.facts["store_ids"] = ids
            step.warn(
                f"{len(ids)} stores are named {settings.store_name!r} ({', '.join(ids)})",
                "delete the extra stores or set openfga.storeName to a unique name",
            )
        return True


Fetch = Callable[[dict[str, str | int]], "httpx.Response"]


def _store_ids(fetch: Fetch, name: str, first_page: httpx.Response | None = None) -> list[str]:
    """Ids of the stores named exactly `name`, following continuation tokens from the first
    page (fetched here unless given). The `name` filter is sent, and applied again here for
    servers that ignore it."""
    ids: list[str] = []
    params: dict[str, str | int] = {"page_size": PAGE_SIZE, "name": name}
    response = first_page
    for _ in range(MAX_PAGES):
        if response is None:
            response = fetch(params)
        _expect(response, 200, "listing stores")
        page = json_object(response, "GET /stores")
        ids += [
            str(store.get("id"))
            for store in page.get("stores") or []
            if isinstance(store, dict) and store.get("name") == name
        ]
        token = str(page.get("continuation_token") or "")
        if not token:
            return ids
        params["continuation_token"] = token
        response = None
    raise StepFailed(f"GET /stores still had more pages after {MAX_PAGES}")


def _latest_model(
    probe: Probe, client: httpx.Client, settings: OpenFgaSettings, store_id: str
) -> str | None:
    """The newest authorization model id of a store (OpenFGA lists newest first)."""
    url = settings.url(f"/stores/{store_id}/authorization-models")
    response = http_request(probe, client, "GET", url, params={"page_size": 1})
    _expect(response, 200, "reading authorization models")
    models = json_object(response, "GET authorization-models").get("authorization_models") or []
    return str(models[0].get("id")) if models and isinstance(models[0], dict) else None


def roundtrip(
    probe: Probe,
    client: httpx.Client,
    settings: OpenFgaSettings,
    tls: TlsSettings | None,
    store_found: bool,
) -> None:
    """roundtrip: create a scratch store, write a model into it, delete it (always)."""
    scratch = _Scratch(f"{SCRATCH_PREFIX}{secrets.token_hex(6)}")
    proxies = proxy_env(probe)
    # Registered before the store exists: an interrupted create still gets cleaned up.
    probe.cleanup(
        f"delete scratch OpenFGA store {scratch.name}",
        lambda: scratch.remove(settings, tls, proxies),
    )
    with probe.step("roundtrip") as step:
        stores_url = settings.url("/stores")
        response = http_request(probe, client, "POST", stores_url, json={"name": scratch.name})
        _expect(response, 201, "creating a store")
        scratch.store_id = str(json_object(response, "POST /stores").get("id"))
        url = settings.url(f"/stores/{scratch.store_id}/authorization-models")
        response = http_request(probe, client, "POST", url, json=SCRATCH_MODEL)
        _expect(response, 201, "writing an authorization model")
        url = settings.url(f"/stores/{scratch.store_id}")
        _expect(http_request(probe, client, "DELETE", url), 204, "deleting the scratch store")
        scratch.deleted = True
        step.detail = (
            f"created store {scratch.name}, wrote an authorization model, deleted the store"
        )
        if not store_found:
            step.detail += f"; the migration may create {settings.store_name!r}"


@dataclass
class _Scratch:
    """The round trip's scratch store, as far as it got."""

    name: str
    store_id: str | None = None
    deleted: bool = False

    def remove(self, settings: OpenFgaSettings, tls: TlsSettings | None, proxies: ProxyEnv) -> None:
        """Delete it unless the round trip did; runs after the check's client is closed, maybe
        past its deadline, so with a client and a short timeout of its own."""
        if self.deleted:
            return
        with cleanup_client(proxies, tls, **settings.client_options()) as client:
            url = settings.url("/stores")
            ids = (
                [self.store_id]
                if self.store_id
                else _store_ids(lambda params: client.get(url, params=params), self.name)
            )
            for store_id in ids:
                client.delete(settings.url(f"/stores/{store_id}")).raise_for_status()
        self.deleted = True


def _expect(response: httpx.Response, status: int, doing: str) -> None:
    """StepFailed with OpenFGA's error code and message unless the status is as expected."""
    if response.status_code == status or (status == 204 and response.status_code == 200):
        return
    code, message = _error(response)
    if response.status_code == 401:
        fix = _FIX_KEY
    elif code == "validation_error" and "Name" in message:
        fix = (
            "openfga.storeName must be 3-64 letters, digits, spaces or . - / ^ _ & @ "
            "(OpenFGA's rule for store names)"
        )
    elif response.status_code == 403:
        fix = (
            "give this API key the right to create stores and write models (OpenFGA access control)"
        )
    else:
        fix = "check OpenFGA's log"
    raise StepFailed(f"{doing} failed: HTTP {response.status_code} ({code}: {message})", fix)


def _error(response: httpx.Response) -> tuple[str, str]:
    """OpenFGA's error `code` and `message` (or what came instead)."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "code" in body:
        return str(body["code"]), short(body.get("message", ""))
    return "no OpenFGA error body", short(response.text)
