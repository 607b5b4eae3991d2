"""The OIDC fixtures give real providers that behave as the `oidc` check's cases need."""

from __future__ import annotations

import base64
import json
import ssl
from typing import Any
from urllib.parse import quote_plus

import httpx
import pytest

from tests.servers.oidc import OTHER_AUDIENCE, OidcClient, OidcProvider

pytestmark = pytest.mark.server("oidc")

DISCOVERY = "/.well-known/openid-configuration"


def _discovery(provider: OidcProvider, **kwargs: Any) -> dict[str, Any]:
    response = httpx.get(provider.issuer + DISCOVERY, timeout=5, **kwargs)
    response.raise_for_status()
    return dict(response.json())


def _token(
    provider: OidcProvider, client: OidcClient, *, post: bool = False, **kwargs: Any
) -> httpx.Response:
    """A client_credentials request, with client_secret_basic or client_secret_post."""
    data = {"grant_type": "client_credentials"}
    if post:
        data |= {"client_id": client.client_id, "client_secret": client.client_secret}
        auth = None
    else:  # RFC 6749 2.3.1: form-encode both before the basic scheme's base64
        auth = (quote_plus(client.client_id), quote_plus(client.client_secret))
    token_endpoint = _discovery(provider, **kwargs)["token_endpoint"]
    return httpx.post(token_endpoint, data=data, auth=auth, timeout=5, **kwargs)


def _jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_discovery_keys_and_startup(oidc_provider: OidcProvider) -> None:
    document = _discovery(oidc_provider)
    assert document["issuer"] == oidc_provider.issuer
    assert document["token_endpoint"].startswith(oidc_provider.issuer + "/")
    assert "client_credentials" in document["grant_types_supported"]
    keys = httpx.get(document["jwks_uri"], timeout=5).json()["keys"]
    assert [(key["kty"], key["alg"], key["use"]) for key in keys] == [("RSA", "RS256", "sig")]
    print(f"oidc-provider ready in {oidc_provider.startup_s:.2f}s")
    assert oidc_provider.startup_s < 10


def test_trailing_slash_and_localhost_fetch_a_mismatched_issuer(
    oidc_provider: OidcProvider,
) -> None:
    with_slash = httpx.get(f"{oidc_provider.issuer}/{DISCOVERY.lstrip('/')}", timeout=5)
    assert with_slash.json()["issuer"] == oidc_provider.issuer
    by_name = oidc_provider.issuer.replace("127.0.0.1", "localhost")
    assert httpx.get(by_name + DISCOVERY, timeout=5).json()["issuer"] != by_name


def test_outside_the_issuer_path_is_404(oidc_provider: OidcProvider) -> None:
    assert httpx.get(oidc_provider.origin + DISCOVERY, timeout=5).status_code == 404


def test_service_client_gets_a_jwt_for_its_own_audience(oidc_provider: OidcProvider) -> None:
    response = _token(oidc_provider, oidc_provider.service)
    assert response.status_code == 200, response.text
    claims = _jwt_claims(response.json()["access_token"])
    assert claims["aud"] == oidc_provider.service.client_id
    assert claims["iss"] == oidc_provider.issuer


def test_basic_credentials_must_be_form_encoded(oidc_provider: OidcProvider) -> None:
    client = oidc_provider.service
    assert quote_plus(client.client_secret) != client.client_secret
    token_endpoint = _discovery(oidc_provider)["token_endpoint"]
    raw = httpx.post(
        token_endpoint,
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, client.client_secret),
        timeout=5,
    )
    assert raw.status_code == 400
    assert "not properly encoded" in raw.json()["error_description"]


def test_other_audience_client_gets_a_jwt_for_another_audience(oidc_provider: OidcProvider) -> None:
    response = _token(oidc_provider, oidc_provider.other_audience, post=True)
    assert _jwt_claims(response.json()["access_token"])["aud"] == OTHER_AUDIENCE


def test_opaque_client_gets_an_opaque_token(oidc_provider: OidcProvider) -> None:
    response = _token(oidc_provider, oidc_provider.opaque)
    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"
    assert "." not in response.json()["access_token"]


def test_wrong_secret_is_invalid_client(oidc_provider: OidcProvider) -> None:
    wrong = OidcClient(oidc_provider.service.client_id, "not-the-secret")
    response = _token(oidc_provider, wrong)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_interactive_client_may_not_use_client_credentials(oidc_provider: OidcProvider) -> None:
    # oidc-provider answers invalid_request here, not RFC 6749's unauthorized_client.
    response = _token(oidc_provider, oidc_provider.interactive)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "requested grant type is not allowed for this client",
    }


def test_tls_provider_needs_the_session_ca(oidc_provider_tls: OidcProvider) -> None:
    assert oidc_provider_tls.issuer.startswith("https://")
    assert oidc_provider_tls.ca is not None
    verify = ssl.create_default_context(cafile=str(oidc_provider_tls.ca))
    response = _token(oidc_provider_tls, oidc_provider_tls.service, verify=verify)
    assert response.status_code == 200
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        _discovery(oidc_provider_tls)


def test_post_only_provider_advertises_post(oidc_provider_post_only: OidcProvider) -> None:
    document = _discovery(oidc_provider_post_only)
    assert document["token_endpoint_auth_methods_supported"] == ["client_secret_post"]
    response = _token(oidc_provider_post_only, oidc_provider_post_only.service, post=True)
    assert response.status_code == 200


def test_provider_without_client_credentials(
    oidc_provider_without_client_credentials: OidcProvider,
) -> None:
    provider = oidc_provider_without_client_credentials
    assert "client_credentials" not in _discovery(provider)["grant_types_supported"]
    response = _token(provider, provider.service)
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
