"""The pieces every FAKE identity provider of the tests shares (Entra ID, Auth0, the silent
provider): an RS256 signing key published as a JWK, the client's credentials read from a token
request (RFC 6749 2.3.1), and one handler on the tests' HTTP fake base (`_http_fake`) that
routes discovery, keys and token requests to a `FakeIdp`.

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
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote_plus

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.servers._http_fake import FakeHandler, FakeHttpServer
from tests.servers._jwt import b64url, sign_rs256


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
        return sign_rs256(self.key, {"typ": "JWT", "alg": "RS256", "kid": self.kid}, claims)


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


class FakeIdpHandler(FakeHandler):
    """Routes GET discovery / keys and POST token to the server's `idp`; 404 elsewhere."""

    server: IdpServer

    def _send(self, answer: Answer) -> None:
        self.reply(answer.status, answer.body, answer.headers)

    def do_GET(self) -> None:
        idp = self.server.idp
        pages = {idp.discovery_path: idp.discovery, idp.keys_path: idp.keys}
        page = pages.get(self.path)
        self._send(Answer(200, page()) if page else Answer(404, {"error": "not_found"}))

    def do_POST(self) -> None:
        data = self.read_body().decode()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            form = {key: str(value) for key, value in json.loads(data or "{}").items()}
        else:
            form = {key: values[0] for key, values in parse_qs(data).items()}
        if self.path != self.server.idp.token_path:
            self._send(Answer(404, {"error": "not_found"}))
            return
        client = client_credentials(self.headers.get("Authorization", ""), form)
        self._send(self.server.idp.token(form, client))


class IdpServer(FakeHttpServer):
    """A fake HTTP server that answers for one `FakeIdp`."""

    idp: FakeIdp


@contextmanager
def serve(make: Callable[[str], Idp]) -> Iterator[Idp]:
    """Serve the fake that `make` builds for its base URL (`http://127.0.0.1:PORT`)."""
    with IdpServer(FakeIdpHandler) as server:
        idp = make(server.url)
        server.idp = idp
        yield idp
