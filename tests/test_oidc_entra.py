"""The `oidc` check against Entra ID (Azure AD), which wants `scope=<resource>/.default` in a
client_credentials request: through the real CLI, against the FAKE tenant of
tests/servers/entra.py (Entra ID is a cloud service; no server of it runs here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli import CliResult, example_values, run_cli, write_values
from tests.servers._idp import verified_claims
from tests.servers.entra import EntraTenant


def _run(tmp_path: Path, tenant: EntraTenant, **oidc: Any) -> CliResult:
    values = example_values()
    values["oidc"] = {
        "authority": tenant.authority,
        "clientId": tenant.client_id,
        "clientSecret": tenant.client_secret,
        "requireHttpsMetadata": False,
        **oidc,
    }
    result = run_cli(write_values(tmp_path, values), "--only", "oidc", "--format", "json")
    assert tenant.client_secret not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


def _client_step(result: CliResult) -> dict[str, Any]:
    return next(s for s in result.check("oidc")["steps"] if s["name"] == "client")


def test_the_api_scope_is_asked_for_and_the_secret_proven(
    tmp_path: Path, entra_tenant: EntraTenant
) -> None:
    result = _run(tmp_path, entra_tenant, audience=entra_tenant.api_app_id)
    check = result.check("oidc")
    assert (result.code, check["status"]) == (0, "pass"), check
    scope = f"{entra_tenant.api_app_id}/.default"
    assert check["facts"]["requested_scope"] == scope
    assert check["facts"]["issued_audience"] == [entra_tenant.api_app_id]
    assert check["facts"]["issuer"] == entra_tenant.authority
    detail = _client_step(result)["detail"]
    assert detail.startswith("client_credentials JWT issued for audience")
    assert detail.endswith(f"(asked with scope {scope}, as Entra ID requires)")


def test_a_wrong_secret_fails_although_entra_first_asks_for_a_scope(
    tmp_path: Path, entra_tenant: EntraTenant
) -> None:
    result = _run(
        tmp_path, entra_tenant, audience=entra_tenant.api_app_id, clientSecret="wrong-secret-9"
    )
    step = _client_step(result)
    assert (result.code, step["status"]) == (3, "fail"), step
    assert step["detail"].startswith("client id or secret wrong (invalid_client: AADSTS7000215")


def test_an_unknown_client_id_fails(tmp_path: Path, entra_tenant: EntraTenant) -> None:
    result = _run(tmp_path, entra_tenant, audience=entra_tenant.api_app_id, clientId="no-app")
    step = _client_step(result)
    assert (result.code, step["status"]) == (3, "fail"), step
    assert step["detail"].startswith("client id unknown to the tenant (unauthorized_client")


def test_an_app_id_uri_audience_warns_that_v2_tokens_carry_the_app_id(
    tmp_path: Path, entra_tenant: EntraTenant
) -> None:
    result = _run(tmp_path, entra_tenant, audience=entra_tenant.api_app_id_uri)
    step = _client_step(result)
    assert (result.code, step["status"]) == (0, "warn"), step
    assert f"its aud ['{entra_tenant.api_app_id}'] does not contain oidc.audience" in step["detail"]


def test_an_unknown_resource_is_not_verified_and_says_what_was_asked(
    tmp_path: Path, entra_tenant: EntraTenant
) -> None:
    result = _run(tmp_path, entra_tenant, audience="api://no-such-api")
    step = _client_step(result)
    assert step["status"] == "warn", step
    assert "credentials not verified" in step["detail"]
    assert "invalid_resource: AADSTS500011" in step["detail"]
    assert step["detail"].endswith(
        "(asked with scope api://no-such-api/.default, as Entra ID requires)"
    )


# --- the fake's fidelity to the documented behaviour ----------------------------------------


def _token_endpoint(tenant: EntraTenant) -> str:
    discovery = httpx.get(f"{tenant.authority}/.well-known/openid-configuration").json()
    return str(discovery["token_endpoint"])


@pytest.mark.parametrize(
    ("form", "status", "error", "code"),
    [
        ({}, 400, "invalid_request", 900144),
        ({"scope": "api://axion-sense-api/read"}, 400, "invalid_scope", 1002012),
        (
            {"scope": "api://axion-sense-api/.default", "client_secret": "x"},
            401,
            "invalid_client",
            7000215,
        ),
        ({"scope": "api://elsewhere/.default"}, 400, "invalid_resource", 500011),
    ],
)
def test_fake_refusals_have_entra_shapes(
    entra_tenant: EntraTenant, form: dict[str, str], status: int, error: str, code: int
) -> None:
    data = {
        "grant_type": "client_credentials",
        "client_id": entra_tenant.client_id,
        "client_secret": entra_tenant.client_secret,
        **form,
    }
    answer = httpx.post(_token_endpoint(entra_tenant), data=data)
    body = answer.json()
    assert (answer.status_code, body["error"], body["error_codes"]) == (status, error, [code])
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert "\r\nTrace ID: " in body["error_description"]
    assert set(body) == {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
    }


def test_fake_token_is_an_rs256_jwt_signed_by_a_published_key(entra_tenant: EntraTenant) -> None:
    answer = httpx.post(
        _token_endpoint(entra_tenant),
        data={
            "grant_type": "client_credentials",
            "scope": f"{entra_tenant.api_app_id_uri}/.default",
        },
        auth=(entra_tenant.client_id, entra_tenant.client_secret),
    )
    assert answer.status_code == 200
    assert answer.json()["token_type"] == "Bearer"
    discovery = httpx.get(f"{entra_tenant.authority}/.well-known/openid-configuration").json()
    claims = verified_claims(answer.json()["access_token"], discovery["jwks_uri"])
    assert (claims["aud"], claims["ver"], claims["iss"]) == (
        entra_tenant.api_app_id,
        "2.0",
        entra_tenant.authority,
    )
