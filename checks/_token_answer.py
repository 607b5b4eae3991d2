"""What a token endpoint's refusal proves about the client id and secret (RFC 6749 §5.2).

Only `invalid_client`, or an HTTP 401 that carries the challenge or an OAuth error (§5.2
reserves 401 for failed client authentication), says the id or secret is wrong. Every other
refusal (a grant the client may not use, a scope or audience it may not ask for, a bare 400 or
403 without an error body) comes whether the secret is right or not, so it proves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from preflight.net import short

if TYPE_CHECKING:
    import httpx

GRANT_ERRORS = ("unauthorized_client", "unsupported_grant_type")
# invalid_target: RFC 8707; scope_invalid and invalid_resource: providers' own spellings.
SCOPE_ERRORS = ("invalid_scope", "scope_invalid", "invalid_target", "invalid_resource")
ENTRA_UNKNOWN_APP = "AADSTS700016"


class Meaning(Enum):
    """What a refusal says about the client."""

    BAD_CLIENT = "the client id or secret is wrong"
    GRANT = "a grant the client may not use is refused whether the secret is right or not"
    SCOPE = "a scope or audience is refused whether the secret is right or not"
    UNKNOWN = "this answer does not say that the provider checked the secret"


@dataclass(frozen=True)
class Refusal:
    """A non-200 answer of the token endpoint, in the provider's own words."""

    status: int
    error: str  # the OAuth `error`; empty without an OAuth error body
    description: str
    challenge: str  # WWW-Authenticate

    @classmethod
    def of(cls, response: httpx.Response) -> Refusal:
        error, description = "", ""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            error, description = body["error"], str(body.get("error_description") or "")
        challenge = response.headers.get("www-authenticate", "")
        return cls(response.status_code, error, short(description), short(challenge))

    @property
    def said(self) -> str:
        """`invalid_scope: …`, or `HTTP 403 without an OAuth error`, as the provider said it."""
        if self.error:
            return f"{self.error}: {self.description}" if self.description else self.error
        text = f"HTTP {self.status} without an OAuth error"
        return text + (f" (WWW-Authenticate: {self.challenge})" if self.challenge else "")

    @property
    def meaning(self) -> Meaning:
        if self.error == "invalid_client" or ENTRA_UNKNOWN_APP in self.description:
            return Meaning.BAD_CLIENT
        # Keycloak answers a wrong secret 401 unauthorized_client, Auth0 401 access_denied.
        if self.status == 401 and (self.challenge or self.error):
            return Meaning.BAD_CLIENT
        if self.error in GRANT_ERRORS or (
            # oidc-provider: invalid_request "requested grant type is not allowed for this client"
            self.error == "invalid_request" and "grant" in self.description.lower()
        ):
            return Meaning.GRANT
        if self.error in SCOPE_ERRORS:
            return Meaning.SCOPE
        return Meaning.UNKNOWN

    @property
    def may_want_parameters(self) -> bool:
        """Whether asking again with a scope or an audience could get a token."""
        return self.meaning in (Meaning.SCOPE, Meaning.UNKNOWN)
