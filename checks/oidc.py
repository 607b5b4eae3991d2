"""The OIDC provider the API validates tokens with: discovery, issuer, signing keys, the client.

Steps: config → dns → tcp → tls → discovery → issuer → keys → client. The discovery URL is
built the way ASP.NET Core's JwtBearer middleware builds it from `Authority`; the issuer must
equal `oidc.authority` character for character (the classic Keycloak / Azure AD failure). The
client step asks for a `client_credentials` token to prove `oidc.clientId` / `oidc.clientSecret`;
a JWT answer is decoded (its signature is not checked) to compare `aud` with `oidc.audience`.
Only a refusal that proves the id or secret wrong fails (checks/_token_answer.py); one that may
want a parameter is asked again, with `audience` (Auth0), then with the scope
`<oidc.audience>/.default` (Entra ID), or with the scope named by `--oidc-scope`; any other
refusal warns that the secret is not verified, in the provider's words, with the fix.
The access token itself is never reported. Fact names avoid "token" and "secret": the report's
redaction hides facts with such names (the token endpoint is the fact `grant_endpoint`).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus, urlsplit

from checks._token_answer import ENTRA_UNKNOWN_APP, Meaning, Refusal
from preflight.engine.check import Check, Probe, Step, StepFailed
from preflight.net import (
    Endpoint,
    http_client,
    http_request,
    http_url,
    json_object,
    reach_url,
)
from preflight.values.load import Values

if TYPE_CHECKING:
    import httpx

DISCOVERY_PATH = ".well-known/openid-configuration"
REQUIRED_METADATA = ("issuer", "jwks_uri", "token_endpoint")
BASIC, POST = "client_secret_basic", "client_secret_post"
CLIENT_CREDENTIALS = "client_credentials"
_FIX_AUTHORITY = (
    "set oidc.authority to the provider's issuer URL (Keycloak: https://HOST/realms/REALM; "
    "Azure AD: https://login.microsoftonline.com/TENANT/v2.0)"
)
_FIX_ISSUER = (
    "set oidc.authority to exactly the issuer the provider publishes (scheme, host name, port, "
    "path and trailing slash): tokens carry it in `iss` and the API compares it as a string"
)
_FIX_HTTPS = (
    "use the provider's https:// URL; set oidc.requireHttpsMetadata=false only for local dev"
)
_FIX_CLIENT = "check oidc.clientId / oidc.clientSecret against the client registered in your IdP"
_FIX_GRANT = (
    "to let this check prove the secret, allow the client_credentials grant for this client "
    "(Keycloak: 'Service accounts roles'); the API itself only validates tokens"
)
_FIX_SCOPE = (
    "to let this check prove the secret, name a scope this client may request with "
    "--oidc-scope SCOPE (a preflight option: the chart has no such value), set oidc.audience to "
    "the API identifier your IdP issues tokens for (Auth0: the API's Identifier), or allow the "
    "client_credentials grant for this client"
)
_FIX_AUDIENCE = (
    "set oidc.audience to the audience your IdP puts in access tokens for the API, or add an "
    "audience mapper for oidc.audience in the IdP"
)


def checks(values: Values) -> list[Check]:
    """The one OIDC check."""
    return [
        Check(
            id="oidc",
            title="OIDC provider: discovery, issuer, signing keys, API client",
            run=run,
            reads=(
                "oidc.authority",
                "oidc.clientId",
                "oidc.clientSecret",
                "oidc.audience",
                "oidc.requireHttpsMetadata",
            ),
        )
    ]


@dataclass(frozen=True)
class OidcSettings:
    """What the values say about the provider and the API's client."""

    authority: str
    endpoint: Endpoint
    client_id: str
    client_secret: str
    audience: str
    require_https: bool

    @property
    def discovery_url(self) -> str:
        """Authority, a slash unless it ends with one, then the well-known path (JwtBearer)."""
        return f"{self.authority.removesuffix('/')}/{DISCOVERY_PATH}"


@dataclass(frozen=True)
class Discovery:
    """The provider's metadata that the later steps use."""

    issuer: str
    jwks_uri: str
    token_endpoint: str
    auth_methods: tuple[str, ...]
    grant_types: tuple[str, ...]  # grant_types_supported: shown, never relied on


def run(probe: Probe) -> None:
    """config → dns → tcp → tls → discovery → issuer → keys → client."""
    settings = read_settings(probe)
    tls = reach_url(probe, settings.endpoint)
    with http_client(probe, tls) as client:
        discovery = fetch_discovery(probe, client, settings)
        compare_issuer(probe, discovery, settings)
        key_ids = fetch_keys(probe, client, discovery, settings)
        request_token(probe, client, discovery, settings, key_ids)


def read_settings(probe: Probe) -> OidcSettings:
    """config: an absolute authority URL, https unless allowed otherwise, client id and secret."""
    values = probe.values
    with probe.step("config") as step:
        authority = str(values.get("oidc.authority", "")).strip()
        endpoint = http_url(authority, "oidc.authority")
        require_https = values.enabled("oidc.requireHttpsMetadata", True)
        if endpoint.scheme == "http" and require_https:
            raise StepFailed(
                "oidc.authority is http:// but oidc.requireHttpsMetadata is true: the API will "
                "not fetch the provider's metadata over http",
                _FIX_HTTPS,
            )
        missing = [path for path in ("oidc.clientId", "oidc.clientSecret") if not values.has(path)]
        if missing:
            raise StepFailed(f"{' and '.join(missing)} not set", _FIX_CLIENT)
        client_id = str(values.get("oidc.clientId")).strip()
        audience = str(values.get("oidc.audience") or client_id).strip()
        step.detail = f"authority {authority}, client {client_id}, audience {audience}"
        if endpoint.scheme == "http":
            step.detail += " (http metadata allowed: local dev only)"
    return OidcSettings(
        authority=authority,
        endpoint=endpoint,
        client_id=client_id,
        client_secret=str(values.get("oidc.clientSecret")),
        audience=audience,
        require_https=require_https,
    )


def fetch_discovery(probe: Probe, client: httpx.Client, settings: OidcSettings) -> Discovery:
    """discovery: the provider configuration document, with issuer, jwks_uri, token_endpoint."""
    url = settings.discovery_url
    probe.facts["discovery_url"] = url
    with probe.step("discovery") as step:
        response = http_request(probe, client, "GET", url, headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise StepFailed(f"GET {url} answered {_status(response)}", _FIX_AUTHORITY)
        document = json_object(response, f"GET {url}")
        missing = [
            key
            for key in REQUIRED_METADATA
            if not (isinstance(document.get(key), str) and document[key])
        ]
        if missing:
            raise StepFailed(
                f"{url} is not an OpenID Provider configuration: no {', '.join(missing)}",
                _FIX_AUTHORITY,
            )
        discovery = Discovery(
            issuer=document["issuer"],
            jwks_uri=document["jwks_uri"],
            token_endpoint=document["token_endpoint"],
            auth_methods=_strings(document.get("token_endpoint_auth_methods_supported"))
            or (BASIC,),
            grant_types=_strings(document.get("grant_types_supported")),
        )
        probe.facts.update(
            issuer=discovery.issuer,
            jwks_uri=discovery.jwks_uri,
            grant_endpoint=discovery.token_endpoint,
            grant_types_supported=list(discovery.grant_types),
            client_auth_methods_supported=list(discovery.auth_methods),
        )
        step.detail = f"fetched {url}"
    return discovery


def compare_issuer(probe: Probe, discovery: Discovery, settings: OidcSettings) -> None:
    """issuer: the published issuer equals oidc.authority exactly."""
    with probe.step("issuer") as step:
        if discovery.issuer != settings.authority:
            raise StepFailed(
                f"issuer mismatch ({_difference(discovery.issuer, settings.authority)}): the "
                f'provider says "{discovery.issuer}", oidc.authority is "{settings.authority}"',
                _FIX_ISSUER,
            )
        step.detail = f"issuer {discovery.issuer} equals oidc.authority"


def _difference(issuer: str, authority: str) -> str:
    """What differs between two URLs, in the words a user looks for."""
    if issuer.rstrip("/") == authority.rstrip("/"):
        return "trailing slash"
    mine, theirs = urlsplit(authority), urlsplit(issuer)
    if mine.scheme != theirs.scheme:
        return f"{theirs.scheme} vs {mine.scheme}"
    if mine.netloc != theirs.netloc:
        return f"host {theirs.netloc} vs {mine.netloc}"
    return "path"


def fetch_keys(
    probe: Probe, client: httpx.Client, discovery: Discovery, settings: OidcSettings
) -> set[str]:
    """keys: jwks_uri serves at least one signing key; report the algorithms; return key ids."""
    url = discovery.jwks_uri
    with probe.step("keys") as step:
        if settings.require_https and urlsplit(url).scheme != "https":
            raise StepFailed(
                f"jwks_uri {url} is not https while oidc.requireHttpsMetadata is true",
                "give the provider its external https:// URL (Keycloak: KC_HOSTNAME), or "
                "set oidc.requireHttpsMetadata=false only for local dev",
            )
        response = http_request(probe, client, "GET", url, headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise StepFailed(f"GET {url} (jwks_uri) answered {_status(response)}", _FIX_AUTHORITY)
        keys = json_object(response, f"GET {url}").get("keys")
        signing = [
            key
            for key in (keys if isinstance(keys, list) else [])
            if isinstance(key, dict) and key.get("kty") and key.get("use", "sig") == "sig"
        ]
        if not signing:
            raise StepFailed(
                f"{url} (jwks_uri) has no signing key",
                "create or enable a signing key in the provider (Keycloak: Realm settings → Keys)",
            )
        algorithms = sorted({str(key.get("alg") or f"{key['kty']} (no alg)") for key in signing})
        probe.facts["signing_algorithms"] = algorithms
        step.detail = f"{len(signing)} signing key(s): {', '.join(algorithms)}"
    return {str(key["kid"]) for key in signing if key.get("kid")}


def request_token(
    probe: Probe,
    client: httpx.Client,
    discovery: Discovery,
    settings: OidcSettings,
    key_ids: set[str],
) -> None:
    """client: a client_credentials token request proves the client id and secret.

    Asked in this order, each next way only while the answer proves nothing and may want a
    parameter (`attempts`); every way but the last is a step of its own, `client attempt N`."""
    method = next((m for m in (BASIC, POST) if m in discovery.auth_methods), None)
    if method is None:
        with probe.step("client") as step:
            step.warn(
                "credentials not verified: the token endpoint takes neither client_secret_basic "
                f"nor client_secret_post ({', '.join(discovery.auth_methods)})",
                _FIX_GRANT,
            )
        return
    probe.facts["client_auth_method"] = method
    ways = attempts(settings, probe.options.oidc_scope)
    answers: list[tuple[Attempt, Refusal]] = []
    for number, attempt in enumerate(ways, start=1):
        with probe.step("client") as step:
            for fact, field in (("requested_scope", "scope"), ("requested_audience", "audience")):
                if field in attempt.fields:
                    probe.facts[fact] = attempt.fields[field]
                else:
                    probe.facts.pop(fact, None)
            response = _ask_token(
                probe, client, discovery.token_endpoint, settings, method, attempt
            )
            if response.status_code == 200:
                _judge_token(probe, step, response, discovery, settings, key_ids)
                step.detail += f" (asked {attempt.label})" if attempt.label else ""
                return
            refusal = Refusal.of(response)
            answers.append((attempt, refusal))
            if refusal.meaning is Meaning.BAD_CLIENT:
                asked = f", asked {attempt.label}" if attempt.label else ""
                raise StepFailed(f"{_wrong_client(refusal)} ({refusal.said}{asked})", _FIX_CLIENT)
            if refusal.may_want_parameters and number < len(ways):
                step.name = f"client attempt {number}"
                step.detail = f"asked {attempt.label or 'as is'}: {refusal.said}; asking again"
                continue
            step.warn(_unverified(answers, discovery), _fix_unverified(refusal))
            return


def _wrong_client(refusal: Refusal) -> str:
    """The failure, in Entra ID's terms where it says the app does not exist."""
    if ENTRA_UNKNOWN_APP in refusal.description:
        return "client id unknown to the tenant"
    return "client id or secret wrong"


@dataclass(frozen=True)
class Attempt:
    """One way of asking for a client_credentials token: extra form fields, and how to say it."""

    fields: dict[str, str]
    label: str  # "with audience X, as Auth0 requires"; empty for the plain request


def attempts(settings: OidcSettings, scope: str | None) -> list[Attempt]:
    """The documented order: the request as is (with the --oidc-scope scope); then with
    `audience` = oidc.audience, which Auth0 requires; then, unless a scope was named, with
    `scope=<oidc.audience>/.default`, which Entra ID (Azure AD) requires."""
    named = {"scope": scope} if scope else {}
    ways = [
        Attempt(named, f"with scope {scope}, from --oidc-scope" if scope else ""),
        Attempt(
            named | {"audience": settings.audience},
            f"with audience {settings.audience}"
            + (f" and scope {scope}" if scope else "")
            + ", as Auth0 requires",
        ),
    ]
    if not scope:
        default = f"{settings.audience}/.default"
        ways.append(Attempt({"scope": default}, f"with scope {default}, as Entra ID requires"))
    return ways


def _ask_token(
    probe: Probe,
    client: httpx.Client,
    url: str,
    settings: OidcSettings,
    method: str,
    attempt: Attempt,
) -> httpx.Response:
    """POST a client_credentials request, the client authenticated by `method`."""
    data = {"grant_type": "client_credentials", **attempt.fields}
    headers = {"Accept": "application/json"}
    if method == BASIC:  # RFC 6749 2.3.1: form-encode id and secret, then base64
        pair = f"{quote_plus(settings.client_id)}:{quote_plus(settings.client_secret)}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        data |= {"client_id": settings.client_id, "client_secret": settings.client_secret}
    return http_request(probe, client, "POST", url, data=data, headers=headers)


def _unverified(answers: list[tuple[Attempt, Refusal]], discovery: Discovery) -> str:
    """The warning: what the provider said to each way of asking, and why that leaves the
    secret unproven; it ends with how the last request was asked, like a token's detail."""
    (attempt, last), earlier = answers[-1], answers[:-1]
    what = (
        "this client may not use client_credentials"
        if last.meaning is Meaning.GRANT
        else "the provider refused the token request"
    )
    text = f"credentials not verified: {what} ({last.said})"
    if earlier:
        text += "; before that, " + "; ".join(
            f"asked {way.label or 'as is'}: {refusal.said}" for way, refusal in earlier
        )
    text += (
        f" — client secret not verified: {last.meaning.value}; only invalid_client or an "
        "HTTP 401 proves the id or secret wrong (RFC 6749 §5.2)"
    )
    if discovery.grant_types and CLIENT_CREDENTIALS not in discovery.grant_types:
        text += (
            f"; discovery lists grant_types_supported {', '.join(discovery.grant_types)}, "
            "which proves nothing either way"
        )
    return text + (f" (asked {attempt.label})" if attempt.label else "")


def _fix_unverified(refusal: Refusal) -> str:
    """What would let this check prove the secret."""
    if refusal.meaning is Meaning.GRANT:
        return _FIX_GRANT
    return _FIX_SCOPE


def _judge_token(
    probe: Probe,
    step: Step,
    response: httpx.Response,
    discovery: Discovery,
    settings: OidcSettings,
    key_ids: set[str],
) -> None:
    """A token came: say what kind; for a JWT, compare aud, iss and kid with what the API uses."""
    body = json_object(response, "the token endpoint")
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise StepFailed("the token endpoint answered HTTP 200 without an access_token")
    probe.facts["issued_type"] = str(body.get("token_type", ""))
    decoded = _decode_jwt(token)
    if decoded is None:
        probe.facts["issued_format"] = "opaque"
        step.detail = "client_credentials token issued (opaque, so its audience is not checked)"
        return
    header, claims = decoded
    audiences = _audiences(claims.get("aud"))
    probe.facts.update(issued_format="JWT", issued_audience=audiences)
    problems: list[tuple[str, str]] = []  # (what is wrong, what to do)
    if settings.audience not in audiences:
        problems.append(
            (
                f"its aud {audiences} does not contain oidc.audience {settings.audience!r}",
                _FIX_AUDIENCE,
            )
        )
    if claims.get("iss", discovery.issuer) != discovery.issuer:
        problems.append(
            (f"its iss {claims['iss']!r} is not the issuer {discovery.issuer!r}", _FIX_ISSUER)
        )
    if key_ids and header.get("kid") and header["kid"] not in key_ids:
        problems.append(
            (
                f"its key id {header['kid']!r} is not in jwks_uri",
                "check the provider's key rotation",
            )
        )
    if problems:
        step.warn(
            "client_credentials JWT issued, but "
            + "; ".join(text for text, _ in problems)
            + " (decoded, signature not checked): the API would reject tokens like it",
            problems[0][1],
        )
        return
    step.detail = (
        f"client_credentials JWT issued for audience {settings.audience!r} "
        "(decoded, signature not checked)"
    )


def _audiences(aud: Any) -> list[str]:
    """The `aud` claim as a list (it may be one string)."""
    if isinstance(aud, str):
        return [aud]
    return [item for item in aud if isinstance(item, str)] if isinstance(aud, list) else []


def _decode_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Header and claims of a JWS compact token, or None for an opaque token."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, claims = (
            json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
            for part in parts[:2]
        )
    except (ValueError, binascii.Error):
        return None
    if not (isinstance(header, dict) and isinstance(claims, dict) and "alg" in header):
        return None
    return header, claims


def _strings(value: Any) -> tuple[str, ...]:
    """A metadata list of strings (anything else counts as absent)."""
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()


def _status(response: httpx.Response) -> str:
    """`HTTP 404`, with the target of a redirect."""
    location = response.headers.get("location")
    return f"HTTP {response.status_code}" + (f" (redirect to {location})" if location else "")
