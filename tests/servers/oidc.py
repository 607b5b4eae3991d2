"""Real OpenID Providers for the tests: panva's certified `oidc-provider` on Node.

`tests/servers/oidc_server.mjs` runs the npm package that `.ci/setup/oidc.sh` installs. Every
provider knows the same four clients (`OidcProvider`): one whose client_credentials token is a JWT
for its own client id (the healthy case), one with an opaque token, one whose JWT is for another
audience, and one that may not use client_credentials at all. The healthy client may ask for the
scope `api:read` (SCOPE_ALLOWED) and no other of the provider's scopes: asked for `api:write`
(SCOPE_DENIED), the provider answers `invalid_scope`.

Fixtures, each started once per session on a free loopback port, only when a test asks for it:
- `oidc_provider`: http, issuer with a Keycloak-like path (`http://127.0.0.1:P/realms/sense`);
- `oidc_provider_tls`: https with a certificate from the session CA, issuer at the root;
- `oidc_provider_post_only`: http, discovery advertises `client_secret_post` only (oidc-provider
  still takes either method from a client registered for one of them, as the spec allows);
- `oidc_provider_without_client_credentials`: http, the grant is switched off provider-wide.

Sources, in order: `SENSE_TEST_OIDC_ISSUER` / `SENSE_TEST_OIDC_TLS_ISSUER` (with
`SENSE_TEST_OIDC_TLS_CA`, a PEM file) name a provider of your own for the first two fixtures; it
must know the clients given as JSON in `SENSE_TEST_OIDC_CLIENTS`
(`{"service": ["id", "secret"], "opaque": [...], "other_audience": [...], "interactive": [...]}`;
the service client allowed the scope `api:read` and not `api:write`).
Else the local Node process. There is no container image of oidc-provider, so no testcontainers
path; without Node or the package the tests are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import trustme

from tests.servers._process import free_port, start_process, tools_dir, wait_for_port
from tests.servers._tls import issue_cert

SERVER_SCRIPT = Path(__file__).with_name("oidc_server.mjs")
PACKAGE = Path("oidc/node_modules/oidc-provider/package.json")
HOST = "127.0.0.1"
REALM_PATH = "/realms/sense"
API_RESOURCE = "https://api.sense.test"
OTHER_RESOURCE = "https://other.sense.test"
OTHER_AUDIENCE = "sense-other-api"
BOTH_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
SCOPE_ALLOWED, SCOPE_DENIED = "api:read", "api:write"


@dataclass(frozen=True)
class OidcClient:
    """A client registered at the provider."""

    client_id: str
    client_secret: str


@dataclass(frozen=True)
class OidcProvider:
    """A running OpenID Provider and the clients it knows."""

    issuer: str
    host: str
    port: int
    ca: Path | None
    auth_methods: tuple[str, ...]
    client_credentials: bool
    service: OidcClient
    opaque: OidcClient
    other_audience: OidcClient
    interactive: OidcClient
    startup_s: float

    @property
    def origin(self) -> str:
        """scheme://host:port of the provider, without the issuer's path."""
        scheme = self.issuer.split("://", 1)[0]
        return f"{scheme}://{self.host}:{self.port}"


def _clients() -> dict[str, OidcClient]:
    """The four test clients, from SENSE_TEST_OIDC_CLIENTS or fresh for this session."""
    given = os.environ.get("SENSE_TEST_OIDC_CLIENTS")
    if given:
        return {role: OidcClient(*pair) for role, pair in json.loads(given).items()}
    clients = {
        role: OidcClient(f"sense-{role.replace('_', '-')}", secrets.token_urlsafe(16))
        for role in ("service", "opaque", "other_audience", "interactive")
    }
    # Characters (VSCHAR) that client_secret_basic must form-encode (RFC 6749 2.3.1).
    service = clients["service"]
    clients["service"] = OidcClient(service.client_id, service.client_secret + " +:/%&")
    return clients


def _client_metadata(
    clients: dict[str, OidcClient], auth_method: str, client_credentials: bool
) -> list[dict[str, object]]:
    """oidc-provider client registrations for the four roles.

    Without the client_credentials grant at the provider, every client is an interactive one
    (oidc-provider refuses a registration with a grant it does not support).
    """
    machine = {"grant_types": ["client_credentials"], "response_types": [], "redirect_uris": []}
    web = {
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "redirect_uris": ["https://app.sense.test/callback"],
    }
    return [
        {
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "token_endpoint_auth_method": auth_method,
            **(machine if client_credentials and role != "interactive" else web),
            **({"scope": SCOPE_ALLOWED} if role == "service" else {}),
        }
        for role, client in clients.items()
    ]


def _from_env(issuer_var: str, ca_var: str | None) -> OidcProvider | None:
    """A provider named in the environment, or None."""
    issuer = os.environ.get(issuer_var)
    if not issuer:
        return None
    if not os.environ.get("SENSE_TEST_OIDC_CLIENTS"):
        pytest.fail(f"{issuer_var} needs SENSE_TEST_OIDC_CLIENTS (see tests/servers/oidc.py)")
    url = urlsplit(issuer)
    ca = os.environ.get(ca_var) if ca_var else None
    return OidcProvider(
        issuer=issuer,
        host=url.hostname or "",
        port=url.port or (443 if url.scheme == "https" else 80),
        ca=Path(ca) if ca else None,
        auth_methods=BOTH_AUTH_METHODS,
        client_credentials=True,
        startup_s=0.0,
        **_clients(),
    )


def _start(
    name: str,
    session_dir: Path,
    *,
    ca: trustme.CA | None = None,
    path: str = "",
    auth_methods: tuple[str, ...] = BOTH_AUTH_METHODS,
    client_credentials: bool = True,
    issuer_port: int | None = None,
) -> Iterator[OidcProvider]:
    """Run oidc_server.mjs with a config for these options; stop it at the end. `issuer_port`
    makes the issuer (and every URL in its discovery) name another port than the listener's,
    one a proxy in front of it listens on."""
    package_dir = tools_dir() / PACKAGE.parts[0]
    if shutil.which("node") is None or not (tools_dir() / PACKAGE).is_file():
        pytest.skip(f"oidc-provider not installed under {tools_dir()}: run .ci/setup/oidc.sh")
    workdir = session_dir / name
    workdir.mkdir()
    port = free_port()
    cert = issue_cert(ca, workdir / "tls") if ca else None
    scheme = "https" if cert else "http"
    clients = _clients()
    config = {
        "issuer": f"{scheme}://{HOST}:{issuer_port or port}{path}",
        "host": HOST,
        "port": port,
        "tls": {"key": str(cert.key), "cert": str(cert.cert)} if cert else None,
        "clients": _client_metadata(clients, auth_methods[0], client_credentials),
        "clientAuthMethods": list(auth_methods),
        "clientCredentials": client_credentials,
        "scopes": ["openid", "offline_access", SCOPE_ALLOWED, SCOPE_DENIED],
        "resources": {
            API_RESOURCE: {"audience": clients["service"].client_id},
            OTHER_RESOURCE: {"audience": OTHER_AUDIENCE},
        },
        "defaultResources": {
            clients["service"].client_id: API_RESOURCE,
            clients["other_audience"].client_id: OTHER_RESOURCE,
        },
    }
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config, indent=2))
    started = time.monotonic()
    server = start_process(
        name, ["node", str(SERVER_SCRIPT), str(config_path)], workdir, cwd=package_dir
    )
    try:
        wait_for_port(HOST, port, timeout=30, proc=server.proc)
    except (RuntimeError, TimeoutError) as exc:
        server.stop()
        pytest.fail(f"{name} did not start: {exc}\n{server.log_tail()}")
    try:
        yield OidcProvider(
            issuer=str(config["issuer"]),
            host=HOST,
            port=port,
            ca=cert.ca if cert else None,
            auth_methods=auth_methods,
            client_credentials=client_credentials,
            startup_s=time.monotonic() - started,
            **clients,
        )
    finally:
        server.stop()


@pytest.fixture(scope="session")
def oidc_provider(session_dir: Path) -> Iterator[OidcProvider]:
    """An http provider whose issuer has a path, like a Keycloak realm."""
    given = _from_env("SENSE_TEST_OIDC_ISSUER", None)
    if given:
        yield given
        return
    yield from _start("oidc-http", session_dir, path=REALM_PATH)


@pytest.fixture(scope="session")
def oidc_provider_tls(session_dir: Path, test_ca: trustme.CA) -> Iterator[OidcProvider]:
    """An https provider (certificate from the session CA) whose issuer is its origin."""
    given = _from_env("SENSE_TEST_OIDC_TLS_ISSUER", "SENSE_TEST_OIDC_TLS_CA")
    if given:
        yield given
        return
    yield from _start("oidc-https", session_dir, ca=test_ca)


@pytest.fixture(scope="session")
def oidc_provider_post_only(session_dir: Path) -> Iterator[OidcProvider]:
    """An http provider whose token endpoint accepts client_secret_post only."""
    yield from _start(
        "oidc-post-only", session_dir, path=REALM_PATH, auth_methods=("client_secret_post",)
    )


@pytest.fixture(scope="session")
def oidc_provider_without_client_credentials(session_dir: Path) -> Iterator[OidcProvider]:
    """An http provider with the client_credentials grant switched off altogether."""
    yield from _start(
        "oidc-no-client-credentials", session_dir, path=REALM_PATH, client_credentials=False
    )
