"""The `oidc` check through the real CLI against real oidc-provider instances."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cli import CliResult, example_values, run_cli, write_values
from tests.servers.oidc import OTHER_AUDIENCE, OidcClient, OidcProvider

pytestmark = pytest.mark.server("oidc")

TIMEOUT_S = 5.0


def _run(
    tmp_path: Path,
    authority: str,
    client: OidcClient,
    *extra: str,
    text: bool = False,
    **oidc: Any,
) -> CliResult:
    """Run the oidc check only, for this authority and client (https metadata not required
    unless a test says so)."""
    values = example_values(filled=True)
    values["oidc"] = {
        "authority": authority,
        "clientId": client.client_id,
        "clientSecret": client.client_secret,
        "requireHttpsMetadata": False,
        **oidc,
    }
    result = run_cli(
        write_values(tmp_path, values),
        "--only",
        "oidc",
        "--format",
        "text" if text else "json",
        "--timeout",
        str(TIMEOUT_S),
        *extra,
    )
    assert client.client_secret not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


def _steps(result: CliResult) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in result.check("oidc")["steps"]}


def test_healthy_provider_passes_with_facts(tmp_path: Path, oidc_provider: OidcProvider) -> None:
    result = _run(tmp_path, oidc_provider.issuer, oidc_provider.service)
    assert result.code == 0, result.stdout
    check = result.check("oidc")
    assert check["status"] == "pass", check
    assert list(_steps(result)) == [
        "config",
        "dns",
        "tcp",
        "discovery",
        "issuer",
        "keys",
        "client",
    ]
    facts = check["facts"]
    assert "<redacted>" not in str(facts)  # no fact name looks like a secret's
    assert facts["issuer"] == oidc_provider.issuer
    assert facts["discovery_url"] == f"{oidc_provider.issuer}/.well-known/openid-configuration"
    assert facts["grant_endpoint"] == f"{oidc_provider.issuer}/token"
    assert facts["jwks_uri"] == f"{oidc_provider.issuer}/jwks"
    assert facts["signing_algorithms"] == ["RS256"]
    assert "client_credentials" in facts["grant_types_supported"]
    assert facts["client_auth_method"] == "client_secret_basic"
    assert facts["issued_format"] == "JWT"
    assert facts["issued_type"] == "Bearer"
    assert facts["issued_audience"] == [oidc_provider.service.client_id]
    assert "signature not checked" in check["message"]
    print(f"oidc check against oidc-provider: {check['duration_s']:.3f}s")


def test_healthy_provider_in_text(tmp_path: Path, oidc_provider: OidcProvider) -> None:
    result = _run(tmp_path, oidc_provider.issuer, oidc_provider.service, text=True)
    assert result.code == 0
    assert "PASS  oidc" in result.stdout
    assert "client_credentials JWT issued" in result.stdout


@pytest.mark.parametrize("text", [False, True], ids=["json", "text"])
def test_wrong_secret_fails_at_client(
    tmp_path: Path, oidc_provider: OidcProvider, text: bool
) -> None:
    wrong = OidcClient(oidc_provider.service.client_id, "wrong-secret-8841")
    result = _run(tmp_path, oidc_provider.issuer, wrong, text=text)
    assert result.code == 3
    output = result.stdout
    if text:
        assert "FAIL  oidc" in output
        assert "client: client id or secret wrong (invalid_client" in output
        assert "fix: check oidc.clientId / oidc.clientSecret" in output
    else:
        assert result.failed_step("oidc")["name"] == "client"
        assert result.check("oidc")["message"].startswith("client: client id or secret wrong")


def test_client_without_client_credentials_warns(
    tmp_path: Path, oidc_provider: OidcProvider
) -> None:
    result = _run(tmp_path, oidc_provider.issuer, oidc_provider.interactive)
    assert result.code == 0
    check = result.check("oidc")
    assert check["status"] == "warn"
    assert _steps(result)["client"]["status"] == "warn"
    assert (
        "credentials not verified: this client may not use client_credentials" in (check["message"])
    )
    strict = _run(tmp_path, oidc_provider.issuer, oidc_provider.interactive, "--strict")
    assert strict.code == 4


def test_provider_without_client_credentials_warns(
    tmp_path: Path, oidc_provider_without_client_credentials: OidcProvider
) -> None:
    provider = oidc_provider_without_client_credentials
    result = _run(tmp_path, provider.issuer, provider.service, text=True)
    assert result.code == 0
    assert "WARN  oidc" in result.stdout
    assert "may not use client_credentials (unsupported_grant_type" in result.stdout


def test_other_audience_warns_and_matching_audience_passes(
    tmp_path: Path, oidc_provider: OidcProvider
) -> None:
    result = _run(tmp_path, oidc_provider.issuer, oidc_provider.other_audience)
    check = result.check("oidc")
    assert (result.code, check["status"]) == (0, "warn")
    assert (
        f"does not contain oidc.audience {oidc_provider.other_audience.client_id!r}"
        in (check["message"])
    )
    assert OTHER_AUDIENCE in check["message"]
    assert check["facts"]["issued_audience"] == [OTHER_AUDIENCE]
    given = _run(
        tmp_path, oidc_provider.issuer, oidc_provider.other_audience, audience=OTHER_AUDIENCE
    )
    assert given.check("oidc")["status"] == "pass"


def test_opaque_token_passes(tmp_path: Path, oidc_provider: OidcProvider) -> None:
    result = _run(tmp_path, oidc_provider.issuer, oidc_provider.opaque)
    check = result.check("oidc")
    assert (result.code, check["status"]) == (0, "pass")
    assert check["facts"]["issued_format"] == "opaque"
    assert "opaque" in check["message"]


def test_post_only_provider_gets_client_secret_post(
    tmp_path: Path, oidc_provider_post_only: OidcProvider
) -> None:
    provider = oidc_provider_post_only
    result = _run(tmp_path, provider.issuer, provider.service)
    check = result.check("oidc")
    assert (result.code, check["status"]) == (0, "pass")
    assert check["facts"]["client_auth_method"] == "client_secret_post"


@pytest.mark.parametrize("text", [False, True], ids=["json", "text"])
def test_trailing_slash_is_an_issuer_mismatch(
    tmp_path: Path, oidc_provider: OidcProvider, text: bool
) -> None:
    authority = oidc_provider.issuer + "/"
    result = _run(tmp_path, authority, oidc_provider.service, text=text)
    assert result.code == 3
    shown = f'the provider says "{oidc_provider.issuer}", oidc.authority is "{authority}"'
    if text:
        assert "issuer: issuer mismatch (trailing slash)" in result.stdout
        assert shown in result.stdout
    else:
        assert result.failed_step("oidc")["name"] == "issuer"
        assert shown in result.check("oidc")["message"]
        # The discovery URL is built like JwtBearer's: no double slash.
        assert result.check("oidc")["facts"]["discovery_url"] == (
            f"{oidc_provider.issuer}/.well-known/openid-configuration"
        )


def test_localhost_instead_of_the_ip_is_an_issuer_mismatch(
    tmp_path: Path, oidc_provider: OidcProvider
) -> None:
    authority = oidc_provider.issuer.replace("127.0.0.1", "localhost")
    result = _run(tmp_path, authority, oidc_provider.service)
    assert result.code == 3
    assert result.failed_step("oidc")["name"] == "issuer"
    message = result.check("oidc")["message"]
    port = oidc_provider.port
    assert f"host 127.0.0.1:{port} vs localhost:{port}" in message
    assert oidc_provider.issuer in message and authority in message


def test_wrong_path_fails_at_discovery(tmp_path: Path, oidc_provider: OidcProvider) -> None:
    result = _run(tmp_path, oidc_provider.origin + "/realms/other", oidc_provider.service)
    assert result.code == 3
    assert result.failed_step("oidc")["name"] == "discovery"
    assert "answered HTTP 404" in result.check("oidc")["message"]
    assert "/realms/other/.well-known/openid-configuration" in result.check("oidc")["message"]


@pytest.mark.parametrize("text", [False, True], ids=["json", "text"])
def test_http_authority_needs_require_https_metadata_false(
    tmp_path: Path, oidc_provider: OidcProvider, text: bool
) -> None:
    result = _run(
        tmp_path, oidc_provider.issuer, oidc_provider.service, text=text, requireHttpsMetadata=True
    )
    assert result.code == 3
    if text:
        assert "config: oidc.authority is http:// but oidc.requireHttpsMetadata is true" in (
            result.stdout
        )
        assert "set oidc.requireHttpsMetadata=false only for local dev" in result.stdout
    else:
        check = result.check("oidc")
        assert result.failed_step("oidc")["name"] == "config"
        assert "set oidc.requireHttpsMetadata=false only for local dev" in check["remediation"]
        assert [step["name"] for step in check["steps"]] == ["config"]


def test_https_provider_with_and_without_its_ca(
    tmp_path: Path, oidc_provider_tls: OidcProvider
) -> None:
    provider = oidc_provider_tls
    assert provider.ca is not None
    trusted = _run(
        tmp_path,
        provider.issuer,
        provider.service,
        "--ca-bundle",
        str(provider.ca),
        requireHttpsMetadata=True,
    )
    check = trusted.check("oidc")
    assert (trusted.code, check["status"]) == (0, "pass"), trusted.stdout
    assert "tls" in [step["name"] for step in check["steps"]]
    assert check["facts"]["tls_version"].startswith("TLS")
    untrusted = _run(tmp_path, provider.issuer, provider.service, requireHttpsMetadata=True)
    assert untrusted.code == 3
    assert untrusted.failed_step("oidc")["name"] == "tls"
    assert "certificate signed by unknown authority" in untrusted.check("oidc")["message"]
