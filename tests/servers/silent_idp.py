"""A FAKE identity provider that refuses without saying why: the provider of issue 14, seen by a
new user (not one of ours, and not one that can run here), rebuilt from what it answered.

- `GET /.well-known/openid-configuration`: grant_types_supported lists only
  `authorization_code` and `implicit` and scopes_supported only `openid`, although the token
  endpoint issues client_credentials tokens to a client for the scopes it may use;
- `POST /oauth2/token` (client by HTTP Basic or in the form), checked in this order: a
  request without `scope` → 403 with an empty body, whatever the credentials (a wrong secret
  too); a scope the client may not use (`openid` included; any scope for an unknown client) →
  400 `{"error": "scope_invalid"}`; a wrong secret → 401 with `WWW-Authenticate: Basic` and an
  empty body; else 200 with an opaque bearer token for that scope.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.servers._idp import Answer, FakeIdp, IdpClient, serve

CLIENT_SCOPE = "sense-api/read"


@dataclass(frozen=True)
class SilentIdp(IdpClient):
    """The fake provider's issuer and the one client, allowed only `scope`."""

    scope: str = CLIENT_SCOPE


class _Provider(FakeIdp):
    keys_path = "/oauth2/keys"
    token_path = "/oauth2/token"

    def __init__(self, base: str, client_id: str, client_secret: str) -> None:
        super().__init__(base)
        self.client = (client_id, client_secret)

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.base,
            "authorization_endpoint": f"{self.base}/oauth2/authorize",
            "token_endpoint": f"{self.base}{self.token_path}",
            "jwks_uri": f"{self.base}{self.keys_path}",
            "grant_types_supported": ["authorization_code", "implicit"],
            "response_types_supported": ["code", "token", "id_token"],
            "scopes_supported": ["openid"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }

    def token(self, form: dict[str, str], client: tuple[str, str]) -> Answer:
        if form.get("grant_type") != "client_credentials":
            return Answer(400, {"error": "unsupported_grant_type"})
        scopes = form.get("scope", "").split()
        if not scopes:
            return Answer(403, None)
        if client[0] != self.client[0] or set(scopes) - {CLIENT_SCOPE}:
            return Answer(400, {"error": "scope_invalid"})
        if not secrets.compare_digest(client[1], self.client[1]):
            return Answer(401, None, {"WWW-Authenticate": 'Basic realm="oauth2"'})
        return Answer(
            200,
            {
                "access_token": secrets.token_urlsafe(32),
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": CLIENT_SCOPE,
            },
        )


@pytest.fixture(scope="session")
def silent_idp() -> Iterator[SilentIdp]:
    """The fake provider with its client registered."""
    client_id, secret = "sense-api-client", secrets.token_urlsafe(24)
    with serve(lambda base: _Provider(base, client_id, secret)) as provider:
        yield SilentIdp(provider.base, client_id, secret)
