"""The pieces every FAKE identity provider of the tests shares (Entra ID, Auth0, the silent
provider): an RS256 signing key published as a JWK, the client's credentials read from a token
request (RFC 6749 2.3.1), and one HTTP handler (the detectors' `JsonHandler`) that routes
discovery, keys and token requests to a `FakeIdp`, served on a loopback port by the detectors'
`ThreadedServer`.

A fake lives here only where the real provider cannot run (a cloud service); each says so in
its module and proves its wire behaviour with httpx in its tests.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote_plus

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HOST = "127.0.0.1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_b64url(number: int) -> str:
    return b64url(number.to_bytes((number.bit_length() + 7) // 8, "big"))


class SigningKey:
    """An RSA key that signs RS256 JWTs, and its public JWK."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = b64url(uuid.uuid4().bytes)

    def jwk(self, **extra: str) -> dict[str, str]:
        public = self.key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": _int_b64url(public.n),
            "e": _int_b64url(public.e),
            **extra,
        }

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        signing_input = ".".join(
            b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"


def verified_claims(token: str, jwks_uri: str) -> dict[str, Any]:
    """The claims of an RS256 JWT whose signature checks with its key from `jwks_uri`, fetched
    with httpx as a resource server would (InvalidSignature when the fake signs badly)."""
    header_b64, claims_b64, signature_b64 = token.split(".")
    header = json.loads(_unb64url(header_b64))
    assert header["alg"] == "RS256"
    (key,) = [k for k in httpx.get(jwks_uri).json()["keys"] if k["kid"] == header["kid"]]
    numbers = rsa.RSAPublicNumbers(
        int.from_bytes(_unb64url(key["e"]), "big"), int.from_bytes(_unb64url(key["n"]), "big")
    )
    numbers.public_key().verify(
        _unb64url(signature_b64),
        f"{header_b64}.{claims_b64}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    return dict(json.loads(_unb64url(claims_b64)))


def client_credentials(authorization: str, form: dict[str, str]) -> tuple[str, str]:
    """The client id and secret of a token request: HTTP Basic with both form-encoded
    (RFC 6749 2.3.1, client_secret_basic), else `client_id`/`client_secret` in the form."""
    if authorization.startswith("Basic "):
        pair = base64.b64decode(authorization.removeprefix("Basic ")).decode()
        client_id, _, secret = pair.partition(":")
        return unquote_plus(client_id), unquote_plus(secret)
    return form.get("client_id", ""), form.get("client_secret", "")


@dataclass(frozen=True)
class IdpClient:
    """What a test gets of a fake provider: its authority and a registered client."""

    authority: str
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class Answer:
    """A fake's HTTP answer: status, JSON body (None: an empty body), extra headers."""

    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)


class FakeIdp:
    """What a fake identity provider serves at its three paths; subclasses fill them in."""

    discovery_path = "/.well-known/openid-configuration"
    keys_path = "/.well-known/jwks.json"
    token_path = "/oauth/token"

    def __init__(self, base: str) -> None:
        self.base = base
        self.signing_key = SigningKey()

    def discovery(self) -> dict[str, Any]:
        raise NotImplementedError

    def keys(self) -> dict[str, Any]:
        return {"keys": [self.signing_key.jwk()]}

    def token(self, form: dict[str, str], client: tuple[str, str]) -> Answer:
        """The token endpoint's answer to a POSTed form from the client (id, secret)."""
        raise NotImplementedError


Idp = TypeVar("Idp", bound=FakeIdp)


def _handler() -> type[BaseHTTPRequestHandler]:
    """The handler class, built on the detectors' JsonHandler. Imported here, not at the top:
    this module loads as a plugin before `detectors` does, and pytest rewrites a plugin's asserts
    only if nothing imported it first."""
    from tests.servers.detectors import JsonHandler

    class FakeIdpHandler(JsonHandler):
        """Routes GET discovery / keys and POST token to the server's `idp`; 404 elsewhere."""

        def _send(self, answer: Answer) -> None:
            if answer.body is not None:
                self.reply(answer.status, answer.body, answer.headers)
                return
            self.send_response(answer.status)
            for name, value in {"Content-Length": "0", **answer.headers}.items():
                self.send_header(name, value)
            self.end_headers()

        @property
        def idp(self) -> FakeIdp:
            idp: FakeIdp = getattr(self.server, "idp")  # noqa: B009 (set by `serve`)
            return idp

        def do_GET(self) -> None:
            pages = {self.idp.discovery_path: self.idp.discovery, self.idp.keys_path: self.idp.keys}
            page = pages.get(self.path)
            self._send(Answer(200, page()) if page else Answer(404, {"error": "not_found"}))

        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            if self.headers.get("Content-Type", "").startswith("application/json"):
                form = {key: str(value) for key, value in json.loads(data or "{}").items()}
            else:
                form = {key: values[0] for key, values in parse_qs(data).items()}
            if self.path != self.idp.token_path:
                self._send(Answer(404, {"error": "not_found"}))
                return
            client = client_credentials(self.headers.get("Authorization", ""), form)
            self._send(self.idp.token(form, client))

    return FakeIdpHandler


@contextmanager
def serve(make: Callable[[str], Idp]) -> Iterator[Idp]:
    """Serve the fake that `make` builds for its base URL (`http://127.0.0.1:PORT`)."""
    from tests.servers.detectors import ThreadedServer

    server = ThreadedServer(_handler())
    idp = make(f"http://{HOST}:{server.port}")
    server.idp = idp  # type: ignore[attr-defined]
    try:
        yield idp
    finally:
        server.stop()
