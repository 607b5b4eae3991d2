"""Microsoft Entra ID (Azure AD) for the tests: a FAKE of one tenant's v2.0 endpoints, because
Entra ID is a cloud service that cannot run here.

It serves, on a loopback port in a thread of the test session, what the `oidc` check reads,
as the Microsoft identity platform documents it ("OAuth 2.0 client credentials flow",
"Scopes and permissions: the /.default scope", "Access token claims reference", and the AADSTS
error code reference):

- `GET /{tenant}/v2.0/.well-known/openid-configuration`: issuer `<base>/{tenant}/v2.0`,
  token_endpoint `<base>/{tenant}/oauth2/v2.0/token`, jwks_uri `<base>/{tenant}/discovery/v2.0/keys`,
  token_endpoint_auth_methods_supported `client_secret_post, private_key_jwt,
  client_secret_basic`, and no grant_types_supported (Entra publishes none);
- `GET .../discovery/v2.0/keys`: one RSA signing key (`kty`, `use: sig`, `kid`, `n`, `e`);
- `POST .../oauth2/v2.0/token` with `grant_type=client_credentials`, the client authenticated by
  HTTP Basic or in the form. A client_credentials request must name `scope=<resource>/.default`
  (resource: the API's application id or its application id URI). Errors are Entra's JSON
  bodies, `{"error", "error_description": "AADSTSnnn: …\\r\\nTrace ID: …", "error_codes",
  "timestamp", "trace_id", "correlation_id"}`, checked in this order (the request's parameters
  before its credentials): no scope → 400 `invalid_request` AADSTS900144; a scope without
  `/.default` → 400 `invalid_scope` AADSTS1002012; an unknown client → 400 `unauthorized_client`
  AADSTS700016; a wrong secret → 401 `invalid_client` AADSTS7000215; an unknown resource → 400
  `invalid_resource` AADSTS500011. Else 200 with an RS256 access token in the v2.0 format: `aud`
  is the API's application id (whichever form the scope named), `iss` the issuer, `azp` the
  client, `ver` "2.0".
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.servers._idp import Answer, FakeIdp, IdpClient, serve

TENANT = "3f1c5b9e-8d2a-4c6b-9e7f-0a1b2c3d4e5f"
API_APP_ID = "9b4e2f61-7c3d-4a58-b1e0-5d6c7f8a9b0c"  # the API's app registration
API_APP_ID_URI = "api://axion-sense-api"


@dataclass(frozen=True)
class EntraTenant(IdpClient):
    """The fake tenant: its authority, and the API client's registration."""

    api_app_id: str = API_APP_ID
    api_app_id_uri: str = API_APP_ID_URI


class _Tenant(FakeIdp):
    """The tenant: its signing key and the one registered client."""

    discovery_path = f"/{TENANT}/v2.0/.well-known/openid-configuration"
    keys_path = f"/{TENANT}/discovery/v2.0/keys"
    token_path = f"/{TENANT}/oauth2/v2.0/token"

    def __init__(self, base: str, client_id: str, client_secret: str) -> None:
        super().__init__(base)
        self.client_id = client_id
        self.client_secret = client_secret

    @property
    def issuer(self) -> str:
        return f"{self.base}/{TENANT}/v2.0"

    def discovery(self) -> dict[str, Any]:
        return {
            "token_endpoint": f"{self.base}/{TENANT}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{self.base}/{TENANT}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.base}/{TENANT}/oauth2/v2.0/authorize",
            "tenant_region_scope": "EU",
        }

    def keys(self) -> dict[str, Any]:
        return {"keys": [self.signing_key.jwk(issuer=self.issuer)]}

    def access_token(self) -> str:
        now = int(dt.datetime.now(dt.UTC).timestamp())
        return self.signing_key.sign(
            {
                "aud": API_APP_ID,
                "iss": self.issuer,
                "iat": now,
                "nbf": now,
                "exp": now + 3599,
                "azp": self.client_id,
                "azpacr": "1",
                "oid": str(uuid.uuid4()),
                "sub": str(uuid.uuid4()),
                "tid": TENANT,
                "ver": "2.0",
            }
        )

    def token(self, form: dict[str, str], client: tuple[str, str]) -> Answer:
        """The token endpoint's answer to a request, in Entra's order (module docstring)."""
        client_id, secret = client
        scope = form.get("scope", "")
        if form.get("grant_type") != "client_credentials":
            return _error(400, "unsupported_grant_type", 70003, _GRANT)
        if not scope:
            return _error(400, "invalid_request", 900144, _MISSING_SCOPE)
        if not scope.endswith("/.default"):
            return _error(400, "invalid_scope", 1002012, _NOT_DEFAULT.format(scope=scope))
        if client_id != self.client_id:
            return _error(400, "unauthorized_client", 700016, _NO_APP.format(app=client_id))
        if secret != self.client_secret:
            return _error(401, "invalid_client", 7000215, _BAD_SECRET.format(app=client_id))
        resource = scope.removesuffix("/.default")
        if resource not in (API_APP_ID, API_APP_ID_URI):
            return _error(400, "invalid_resource", 500011, _NO_RESOURCE.format(name=resource))
        return Answer(
            200,
            {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": self.access_token(),
            },
        )


_GRANT = "AADSTS70003: The app requested an unsupported grant type."
_MISSING_SCOPE = "AADSTS900144: The request body must contain the following parameter: 'scope'."
_NOT_DEFAULT = (
    "AADSTS1002012: The provided value for scope {scope} is not valid. Client credential flows "
    "must have a scope value with /.default suffixed to the resource identifier "
    "(application ID URI)."
)
_NO_APP = (
    "AADSTS700016: Application with identifier '{app}' was not found in the directory "
    f"'{TENANT}'. This can happen if the application has not been installed by the "
    "administrator of the tenant or consented to by any user in the tenant."
)
_BAD_SECRET = (
    "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request "
    "is the client secret value, not the client secret ID, for a secret added to app '{app}'."
)
_NO_RESOURCE = (
    "AADSTS500011: The resource principal named {name} was not found in the tenant named "
    f"{TENANT}. This can happen if the application has not been installed by the administrator "
    "of the tenant or consented to by any user in the tenant."
)


def _error(status: int, error: str, code: int, description: str) -> Answer:
    trace, correlation = uuid.uuid4(), uuid.uuid4()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return Answer(
        status,
        {
            "error": error,
            "error_description": (
                f"{description}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\n"
                f"Timestamp: {stamp}"
            ),
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": str(trace),
            "correlation_id": str(correlation),
        },
    )


@pytest.fixture(scope="session")
def entra_tenant() -> Iterator[EntraTenant]:
    """The fake Entra ID tenant, with the API's client registered."""
    client_id, secret = str(uuid.uuid4()), "Ex8Q~entra-client-secret-value-41"
    with serve(lambda base: _Tenant(base, client_id, secret)) as tenant:
        yield EntraTenant(tenant.issuer, client_id, secret)
