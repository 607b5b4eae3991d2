"""Redaction: one stage every output passes through. Secrets are found in the merged values
(by key name, URL user info, connection-string passwords) and scrubbed by value."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from html import escape as xml_escape
from typing import Any
from urllib.parse import quote, unquote, urlsplit

REDACTED = "<redacted>"
MIN_SECRET_LENGTH = 3

_SECRET_KEY = re.compile(
    r"(password|passwd|secret|token|apikey|api_key|accesskey|privatekey|connectionstring|credential|^key$)",
    re.IGNORECASE,
)
_CONN_STRING_PASSWORD = re.compile(r"(?:^|;)\s*(?:password|pwd)\s*=\s*([^;]*)", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    """True for keys whose values are secrets (password, secretKey, apiKey, authToken, key…)."""
    return bool(_SECRET_KEY.search(key))


def find_secrets(values: Mapping[str, Any]) -> set[str]:
    """Every secret string in the values: under secret keys, in URLs, in connection strings."""
    found: set[str] = set()

    def walk(node: Any, secret: bool) -> None:
        if isinstance(node, Mapping):
            for key, child in node.items():
                walk(child, secret or is_secret_key(str(key)))
        elif isinstance(node, list):
            for child in node:
                walk(child, secret)
        elif isinstance(node, str | int | float) and not isinstance(node, bool):
            text = str(node)
            if secret:
                found.add(text)
            found.update(_embedded_secrets(text))

    walk(values, False)
    return {secret for secret in found if len(secret) >= MIN_SECRET_LENGTH}


def _embedded_secrets(text: str) -> Iterable[str]:
    if "://" in text:
        try:
            parts = urlsplit(text)
            if parts.password:
                yield parts.password
                yield unquote(parts.password)
        except ValueError:
            pass
    for match in _CONN_STRING_PASSWORD.finditer(text):
        yield match.group(1).strip()


class Redactor:
    """Replaces each known secret, and its common encodings, with `<redacted>`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if len(secret) < MIN_SECRET_LENGTH:
                continue
            forms.update(
                {secret, quote(secret, safe=""), json.dumps(secret)[1:-1], xml_escape(secret)}
            )
        self._pattern = (
            re.compile("|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True)))
            if forms
            else None
        )

    @classmethod
    def for_values(cls, values: Mapping[str, Any]) -> Redactor:
        return cls(find_secrets(values))

    def __call__(self, text: str) -> str:
        return self._pattern.sub(REDACTED, text) if self._pattern else text

    def values(self, node: Any, secret: bool = False) -> Any:
        """A copy of the values with every secret replaced (keys kept, so support sees them)."""
        if isinstance(node, Mapping):
            return {
                key: self.values(child, secret or is_secret_key(str(key)))
                for key, child in node.items()
            }
        if isinstance(node, list):
            return [self.values(child, secret) for child in node]
        if secret and not isinstance(node, bool) and node is not None:
            return REDACTED
        return self(node) if isinstance(node, str) else node


class RedactingFilter(logging.Filter):
    """Scrubs every log record that reaches a handler."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor(record.getMessage())
        record.args = None
        return True
