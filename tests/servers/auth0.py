"""Auth0 for the tests: a FAKE of one tenant's Authentication API, because Auth0 is a cloud
service that cannot run here.

It serves what the `oidc` check reads, as Auth0 documents it ("Client Credentials Flow",
"Authentication API: Get Token", "Validate Access Tokens") and as its maintainers describe its
answers in auth0/node-auth0 #134 and #682, auth0/ruby-auth0 #190, postman-app-support #2934:

- `GET /.well-known/openid-configuration`: issuer `<base>/` (with the trailing slash),
  token_endpoint `<base>/oauth/token`, jwks_uri `<base>/.well-known/jwks.json`,
  token_endpoint_auth_methods_supported `client_secret_basic, client_secret_post,
  private_key_jwt`, and no grant_types_supported;
- `POST /oauth/token`, form or JSON, the client by HTTP Basic or in the body, checked in this
  order: an unknown client or a wrong secret → 401 `access_denied` "Unauthorized"; a client
  without the client_credentials grant → 403 `unauthorized_client`; no `audience` → 403
  `access_denied` "Non-global clients are not allowed access to APIv1" (a tenant default
  audience does not apply to this grant); an unknown audience → 403 `access_denied` "Service not
  found: …"; no client grant for that API → 403 `access_denied` "Client is not authorized to
  access …". Else 200 with an RS256 JWT: `iss` the issuer, `sub` `<client>@clients`, `aud` the
  audience, `azp` the client, `gty` "client-credentials".
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.servers._idp import Answer, FakeIdp, IdpClient, serve

API_IDENTIFIER = "https://api.axion-sense.test"
UNGRANTED_API = "https://billing.axion-sense.test"  # an API the M2M app has no client grant for
_CLIENT_GRANTS_DOC = "https://auth0.com/docs/api/v2#!/Client_Grants/post_client_grants"


@dataclass(frozen=True)
class Auth0Tenant(IdpClient):
    """The fake tenant: its authority, the M2M application, and one without the grant."""

    interactive_id: str
    interactive_secret: str
    api_identifier: str = API_IDENTIFIER
    ungranted_api: str = UNGRANTED_API


class _Tenant(FakeIdp):
    """Applications (id → secret, whether it may use client_credentials) and client grants."""

    def __init__(self, base: str, apps: dict[str, tuple[str, bool]]) -> None:
        super().__init__(base)
        self.apps = apps
        self.client_grants = {(client, API_IDENTIFIER) for client, (_, m2m) in apps.items() if m2m}

    @property
    def issuer(self) -> str:
        return f"{self.base}/"

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.base}/authorize",
            "token_endpoint": f"{self.base}/oauth/token",
            "userinfo_endpoint": f"{self.base}/userinfo",
            "jwks_uri": f"{self.base}{self.keys_path}",
            "scopes_supported": ["openid", "profile", "offline_access", "email"],
            "response_types_supported": ["code", "token", "id_token", "code token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["HS256", "RS256", "PS256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
            ],
        }

    def token(self, form: dict[str, str], client: tuple[str, str]) -> Answer:
        client_id, secret = client
        app = self.apps.get(client_id)
        if app is None or not secrets.compare_digest(app[0], secret):
            return _denied(401, "Unauthorized")
        if form.get("grant_type") != "client_credentials" or not app[1]:
            return Answer(
                403,
                {
                    "error": "unauthorized_client",
                    "error_description": "Grant type 'client_credentials' not allowed for the "
                    "client.",
                    "error_uri": "https://auth0.com/docs/clients/client-grant-types",
                },
            )
        audience = form.get("audience", "")
        if not audience:
            return _denied(403, "Non-global clients are not allowed access to APIv1")
        if audience not in (API_IDENTIFIER, UNGRANTED_API):
            return _denied(403, f"Service not found: {audience}")
        if (client_id, audience) not in self.client_grants:
            return _denied(
                403,
                f'Client is not authorized to access "{audience}". You need to create a '
                f'"client-grant" associated to this API. See: {_CLIENT_GRANTS_DOC}',
            )
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": f"{client_id}@clients",
            "aud": audience,
            "iat": now,
            "exp": now + 86400,
            "gty": "client-credentials",
            "azp": client_id,
        }
        return Answer(
            200,
            {
                "access_token": self.signing_key.sign(claims),
                "expires_in": 86400,
                "token_type": "Bearer",
            },
        )


def _denied(status: int, description: str) -> Answer:
    return Answer(status, {"error": "access_denied", "error_description": description})


@pytest.fixture(scope="session")
def auth0_tenant() -> Iterator[Auth0Tenant]:
    """The fake Auth0 tenant with an M2M application granted the API, and a web application."""
    m2m = ("Vd3kQy8ZP0aXlM2nB7cR4tE9wU1oJ6sH", secrets.token_urlsafe(48))
    web = ("Nf5hT2gL8pWq0zXc3vB6mK9jR1yU4eA7", secrets.token_urlsafe(48))
    apps = {m2m[0]: (m2m[1], True), web[0]: (web[1], False)}
    with serve(lambda base: _Tenant(base, apps)) as tenant:
        yield Auth0Tenant(tenant.issuer, *m2m, *web)
