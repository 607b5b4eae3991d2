"""JSON Web Tokens as the fake token issuers sign them (RFC 7515 compact form, RS256)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64url(data: bytes) -> str:
    """Base64url without padding, as JOSE writes every part."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_rs256(
    key: rsa.RSAPrivateKey, header: Mapping[str, object], claims: Mapping[str, object]
) -> str:
    """`header.claims.signature`, the JSON compact and the signature RSASSA-PKCS1-v1_5 SHA-256."""
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"
