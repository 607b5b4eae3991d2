"""A token endpoint's refusal fails the `oidc` check only when it proves the client id or secret
wrong (RFC 6749 §5.2); any other refusal warns, in the provider's words, with the fix.

Through the real CLI against the real oidc-provider (a client limited to some scopes), and
against two FAKES of providers that cannot run here (tests/servers/auth0.py, silent_idp.py),
whose wire behaviour the last tests prove with httpx."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from checks._token_answer import Meaning, Refusal
from tests.cli import CliResult, example_values, run_cli, write_values
from tests.servers._idp import verified_claims
from tests.servers.auth0 import Auth0Tenant
from tests.servers.oidc import SCOPE_ALLOWED, SCOPE_DENIED, OidcProvider
from tests.servers.silent_idp import SilentIdp

WRONG = "wrong-secret-5521"
NOT_VERIFIED = "client secret not verified"


def _run(
    tmp_path: Path, authority: str, client: tuple[str, str], *extra: str, **oidc: Any
) -> CliResult:
    """The oidc check only, for this authority and (client id, secret)."""
    values = example_values()
    values["oidc"] = {
        "authority": authority,
        "clientId": client[0],
        "clientSecret": client[1],
        "requireHttpsMetadata": False,
        **oidc,
    }
    result = run_cli(
        write_values(tmp_path, values),
        *("--only", "oidc", "--format", "json", "--timeout", "5", *extra),
    )
    assert client[1] not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


def _silent(tmp_path: Path, idp: SilentIdp, *extra: str, secret: str = "") -> CliResult:
    """The check against the silent provider, as its client (with this secret)."""
    return _run(tmp_path, idp.authority, (idp.client_id, secret or idp.client_secret), *extra)


def _auth0(
    tmp_path: Path, tenant: Auth0Tenant, client: tuple[str, str] = ("", ""), **oidc: Any
) -> CliResult:
    """The check against the Auth0 tenant, by default as its M2M app for its API."""
    oidc.setdefault("audience", tenant.api_identifier)
    return _run(
        tmp_path,
        tenant.authority,
        client if client[0] else (tenant.client_id, tenant.client_secret),
        **oidc,
    )


def _steps(result: CliResult) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in result.check("oidc")["steps"]}


# --- the silent provider: bare 403s, scope_invalid, a token only for the right scope ---------


def test_silent_403_warns_naming_it_and_the_scope_option(
    tmp_path: Path, silent_idp: SilentIdp
) -> None:
    result = _silent(tmp_path, silent_idp)
    check = result.check("oidc")
    assert (result.code, check["status"]) == (0, "warn"), check
    steps = _steps(result)
    assert [name for name in steps if name.startswith("client")] == [
        "client attempt 1",
        "client attempt 2",
        "client",
    ]
    assert steps["client attempt 1"]["detail"] == (
        "asked as is: HTTP 403 without an OAuth error; asking again"
    )
    assert "with audience" in steps["client attempt 2"]["detail"]
    detail = steps["client"]["detail"]
    assert detail.startswith("credentials not verified: the provider refused the token request")
    assert "asked as is: HTTP 403 without an OAuth error" in detail
    assert NOT_VERIFIED in detail and "RFC 6749 §5.2" in detail
    assert "grant_types_supported authorization_code, implicit" in detail
    assert "--oidc-scope SCOPE" in check["remediation"]
    strict = _silent(tmp_path, silent_idp, "--strict")
    assert strict.code == 4


def test_silent_403_to_a_wrong_secret_is_no_proof_either(
    tmp_path: Path, silent_idp: SilentIdp
) -> None:
    result = _silent(tmp_path, silent_idp, secret=WRONG)
    assert (result.code, result.check("oidc")["status"]) == (0, "warn")
    assert NOT_VERIFIED in _steps(result)["client"]["detail"]


def test_the_right_scope_passes(tmp_path: Path, silent_idp: SilentIdp) -> None:
    result = _silent(tmp_path, silent_idp, "--oidc-scope", silent_idp.scope)
    check = result.check("oidc")
    assert (result.code, check["status"]) == (0, "pass"), check
    assert check["facts"]["requested_scope"] == silent_idp.scope
    assert _steps(result)["client"]["detail"] == (
        "client_credentials token issued (opaque, so its audience is not checked) "
        f"(asked with scope {silent_idp.scope}, from --oidc-scope)"
    )


def test_a_wrong_secret_with_the_right_scope_fails(tmp_path: Path, silent_idp: SilentIdp) -> None:
    result = _silent(tmp_path, silent_idp, "--oidc-scope", silent_idp.scope, secret=WRONG)
    step = result.failed_step("oidc")
    assert (result.code, step["name"]) == (3, "client"), result.check("oidc")
    assert step["detail"] == (
        "client id or secret wrong (HTTP 401 without an OAuth error (WWW-Authenticate: Basic "
        f'realm="oauth2"), asked with scope {silent_idp.scope}, from --oidc-scope)'
    )


def test_a_scope_the_client_may_not_use_warns_with_scope_invalid(
    tmp_path: Path, silent_idp: SilentIdp
) -> None:
    result = _silent(tmp_path, silent_idp, "--oidc-scope", "openid")
    steps = _steps(result)
    assert result.check("oidc")["status"] == "warn"
    assert [name for name in steps if name.startswith("client")] == ["client attempt 1", "client"]
    detail = steps["client"]["detail"]
    assert detail.startswith("credentials not verified: the provider refused the token request")
    assert "(scope_invalid)" in detail
    assert detail.endswith(
        "(asked with audience " + silent_idp.client_id + " and scope openid, as Auth0 requires)"
    )


# --- Auth0: a client_credentials token only for an `audience` ------------------------------


def test_auth0_passes_through_the_audience_retry(tmp_path: Path, auth0_tenant: Auth0Tenant) -> None:
    tenant = auth0_tenant
    result = _auth0(tmp_path, tenant)
    check = result.check("oidc")
    assert (result.code, check["status"]) == (0, "pass"), check
    steps = _steps(result)
    assert steps["client attempt 1"]["detail"] == (
        "asked as is: access_denied: Non-global clients are not allowed access to APIv1; "
        "asking again"
    )
    assert steps["client"]["detail"] == (
        f"client_credentials JWT issued for audience {tenant.api_identifier!r} (decoded, "
        f"signature not checked) (asked with audience {tenant.api_identifier}, as Auth0 requires)"
    )
    assert check["facts"]["requested_audience"] == tenant.api_identifier
    assert check["facts"]["issued_audience"] == [tenant.api_identifier]


def test_auth0_wrong_secret_fails_at_once(tmp_path: Path, auth0_tenant: Auth0Tenant) -> None:
    tenant = auth0_tenant
    result = _auth0(tmp_path, tenant, (tenant.client_id, WRONG))
    step = result.failed_step("oidc")
    assert (result.code, step["name"]) == (3, "client")
    assert step["detail"] == "client id or secret wrong (access_denied: Unauthorized)"
    assert [s["name"] for s in result.check("oidc")["steps"]][-1] == "client"


def test_auth0_app_without_the_grant_warns(tmp_path: Path, auth0_tenant: Auth0Tenant) -> None:
    tenant = auth0_tenant
    result = _auth0(tmp_path, tenant, (tenant.interactive_id, tenant.interactive_secret))
    check = result.check("oidc")
    assert (result.code, check["status"]) == (0, "warn")
    assert "client attempt 1" not in _steps(result)
    assert check["message"].startswith(
        "client: credentials not verified: this client may not use client_credentials "
        "(unauthorized_client: Grant type 'client_credentials' not allowed for the client.)"
    )
    assert "allow the client_credentials grant" in check["remediation"]


def test_auth0_api_without_a_client_grant_warns(tmp_path: Path, auth0_tenant: Auth0Tenant) -> None:
    tenant = auth0_tenant
    result = _auth0(tmp_path, tenant, audience=tenant.ungranted_api)
    assert result.check("oidc")["status"] == "warn"
    detail = _steps(result)["client"]["detail"]
    assert f'Client is not authorized to access "{tenant.ungranted_api}"' in detail
    assert NOT_VERIFIED in detail


# --- the real oidc-provider: a client limited to some scopes ------------------------------


@pytest.mark.server("oidc")
def test_oidc_provider_scopes(tmp_path: Path, oidc_provider: OidcProvider) -> None:
    service = (oidc_provider.service.client_id, oidc_provider.service.client_secret)
    allowed = _run(tmp_path, oidc_provider.issuer, service, "--oidc-scope", SCOPE_ALLOWED)
    assert (allowed.code, allowed.check("oidc")["status"]) == (0, "pass"), allowed.stdout
    denied = _run(tmp_path, oidc_provider.issuer, service, "--oidc-scope", SCOPE_DENIED)
    detail = _steps(denied)["client"]["detail"]
    assert (denied.code, denied.check("oidc")["status"]) == (0, "warn")
    assert "(invalid_scope: requested scope is not allowed)" in detail
    assert NOT_VERIFIED in detail
    wrong = _run(tmp_path, oidc_provider.issuer, (service[0], WRONG), "--oidc-scope", SCOPE_ALLOWED)
    assert wrong.code == 3
    assert wrong.failed_step("oidc")["detail"].startswith(
        "client id or secret wrong (invalid_client: "
    )


# --- the fakes' fidelity, seen by a plain HTTP client -------------------------------------


def _endpoints(authority: str) -> dict[str, Any]:
    return dict(httpx.get(authority.rstrip("/") + "/.well-known/openid-configuration").json())


@pytest.mark.parametrize(
    ("scope", "secret", "status", "body"),
    [
        (None, "right", 403, b""),
        (None, "wrong", 403, b""),
        ("openid", "right", 400, b'{"error": "scope_invalid"}'),
        ("right", "wrong", 401, b""),
    ],
)
def test_fake_silent_provider_answers(
    silent_idp: SilentIdp, scope: str | None, secret: str, status: int, body: bytes
) -> None:
    endpoints = _endpoints(silent_idp.authority)
    assert endpoints["grant_types_supported"] == ["authorization_code", "implicit"]
    assert endpoints["scopes_supported"] == ["openid"]
    data = {"grant_type": "client_credentials"}
    if scope:
        data["scope"] = silent_idp.scope if scope == "right" else scope
    auth = (silent_idp.client_id, silent_idp.client_secret if secret == "right" else WRONG)
    answer = httpx.post(endpoints["token_endpoint"], data=data, auth=auth)
    assert (answer.status_code, answer.content) == (status, body)
    if status == 401:
        assert answer.headers["www-authenticate"] == 'Basic realm="oauth2"'


def test_fake_silent_provider_issues_for_the_right_scope(silent_idp: SilentIdp) -> None:
    answer = httpx.post(
        _endpoints(silent_idp.authority)["token_endpoint"],
        data={
            "grant_type": "client_credentials",
            "scope": silent_idp.scope,
            "client_id": silent_idp.client_id,
            "client_secret": silent_idp.client_secret,
        },
    )
    assert answer.status_code == 200
    assert answer.json()["token_type"] == "Bearer" and answer.json()["scope"] == silent_idp.scope


@pytest.mark.parametrize(
    ("who", "audience", "status", "error", "words"),
    [
        ("wrong", "api", 401, "access_denied", "Unauthorized"),
        ("web", "api", 403, "unauthorized_client", "Grant type 'client_credentials' not allowed"),
        ("m2m", None, 403, "access_denied", "Non-global clients are not allowed access to APIv1"),
        ("m2m", "https://nope.test", 403, "access_denied", "Service not found: https://nope.test"),
        ("m2m", "ungranted", 403, "access_denied", 'You need to create a "client-grant"'),
    ],
)
def test_fake_auth0_refusals(
    auth0_tenant: Auth0Tenant,
    who: str,
    audience: str | None,
    status: int,
    error: str,
    words: str,
) -> None:
    tenant = auth0_tenant
    client = {
        "wrong": (tenant.client_id, WRONG),
        "web": (tenant.interactive_id, tenant.interactive_secret),
        "m2m": (tenant.client_id, tenant.client_secret),
    }[who]
    body = {"grant_type": "client_credentials", "client_id": client[0], "client_secret": client[1]}
    if audience:
        body["audience"] = {"api": tenant.api_identifier, "ungranted": tenant.ungranted_api}.get(
            audience, audience
        )
    answer = httpx.post(_endpoints(tenant.authority)["token_endpoint"], json=body)
    assert (answer.status_code, answer.json()["error"]) == (status, error)
    assert words in answer.json()["error_description"]


def test_fake_auth0_token_is_a_jwt_for_the_audience(auth0_tenant: Auth0Tenant) -> None:
    tenant = auth0_tenant
    endpoints = _endpoints(tenant.authority)
    assert endpoints["issuer"] == tenant.authority and tenant.authority.endswith("/")
    assert "grant_types_supported" not in endpoints
    answer = httpx.post(
        endpoints["token_endpoint"],
        data={"grant_type": "client_credentials", "audience": tenant.api_identifier},
        auth=(tenant.client_id, tenant.client_secret),
    )
    assert answer.status_code == 200
    assert (answer.json()["token_type"], answer.json()["expires_in"]) == ("Bearer", 86400)
    claims = verified_claims(answer.json()["access_token"], endpoints["jwks_uri"])
    assert (claims["aud"], claims["iss"], claims["gty"], claims["sub"]) == (
        tenant.api_identifier,
        tenant.authority,
        "client-credentials",
        f"{tenant.client_id}@clients",
    )


# --- what each provider's refusal proves, as documented (no server of theirs runs here) -----


@pytest.mark.parametrize(
    ("status", "body", "headers", "meaning"),
    [
        (401, {"error": "invalid_client"}, {}, Meaning.BAD_CLIENT),  # RFC 6749 §5.2
        (400, {"error": "invalid_client"}, {}, Meaning.BAD_CLIENT),
        (401, None, {"WWW-Authenticate": "Basic"}, Meaning.BAD_CLIENT),
        # Keycloak: a wrong secret, then a client without service accounts
        (
            401,
            {"error": "unauthorized_client", "error_description": "Invalid client credentials"},
            {},
            Meaning.BAD_CLIENT,
        ),
        (
            400,
            {
                "error": "unauthorized_client",
                "error_description": "Client not enabled to retrieve service account",
            },
            {},
            Meaning.GRANT,
        ),
        (400, {"error": "unsupported_grant_type"}, {}, Meaning.GRANT),
        (400, {"error": "invalid_scope"}, {}, Meaning.SCOPE),
        (400, {"error": "scope_invalid"}, {}, Meaning.SCOPE),
        (400, {"error": "invalid_target"}, {}, Meaning.SCOPE),  # RFC 8707
        (403, None, {}, Meaning.UNKNOWN),
        (400, None, {}, Meaning.UNKNOWN),
        (401, None, {}, Meaning.UNKNOWN),  # no challenge, no error: a proxy's, maybe
        (500, {"error": "server_error"}, {}, Meaning.UNKNOWN),
    ],
)
def test_what_a_refusal_proves(
    status: int, body: dict[str, str] | None, headers: dict[str, str], meaning: Meaning
) -> None:
    response = (
        httpx.Response(status, json=body, headers=headers)
        if body
        else httpx.Response(status, headers=headers)
    )
    assert Refusal.of(response).meaning is meaning
