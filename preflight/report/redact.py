"""Redaction: one stage every output passes through. Secrets are found in the merged values
(by key name, URL user info, connection-string passwords) and scrubbed by value."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from html import escape as xml_escape
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from preflight.report.result import CheckResult, Report

REDACTED = "<redacted>"
MIN_SECRET_LENGTH = 3

_SECRET_KEY = re.compile(
    r"(password|passwd|secret|token|apikey|api_key|accesskey|privatekey|connectionstring|credential|^key$)",
    re.IGNORECASE,
)
# Keys that hold the *name* of a Kubernetes Secret, not a secret: kept readable.
_SECRET_REFERENCE_KEY = re.compile(r"(secretName|imagePullSecrets|existingSecret)$", re.IGNORECASE)
# `Password=value;`, `Password='va;l''ue'` or `Password="va;l""ue"` (Npgsql/ADO.NET quoting)
_CONN_STRING_PASSWORD = re.compile(
    r"""(?:^|;)\s*(?:password|pwd)\s*=\s*('(?:[^']|'')*'|"(?:[^"]|"")*"|[^;]*)""", re.IGNORECASE
)


def is_secret_key(key: str) -> bool:
    """True for keys whose values are secrets (password, secretKey, apiKey, authToken, key…)."""
    return bool(_SECRET_KEY.search(key)) and not _SECRET_REFERENCE_KEY.search(key)


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
        raw = match.group(1).strip()
        yield raw
        if raw[:1] in "'\"" and raw[-1:] == raw[:1] and len(raw) >= 2:
            quote_char = raw[0]
            yield raw[1:-1].replace(quote_char * 2, quote_char)


def proxy_secrets(variables: Iterable[tuple[str, str]]) -> set[str]:
    """The credentials in proxy variables (HTTPS_PROXY=http://user:password@host:port): the
    password and the whole user info, raw, percent-decoded and as the Basic header's base64;
    a user without a password is taken for a token."""
    found: set[str] = set()
    for name, value in variables:
        user_info = _proxy_user_info(name, value)
        for form in (user_info, unquote(user_info)) if user_info else ():
            user, colon, password = form.partition(":")
            found.update({form, password} if colon else {user})
            found.add(base64.b64encode(form.encode()).decode())
    return {secret for secret in found if len(secret) >= MIN_SECRET_LENGTH}


def proxy_variables(variables: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The proxy variables with their user info replaced by `<redacted>`, for the bundle."""
    shown: dict[str, str] = {}
    for name, value in variables:
        user_info = _proxy_user_info(name, value)
        shown[name] = value.replace(f"{user_info}@", f"{REDACTED}@", 1) if user_info else value
    return shown


def _proxy_user_info(name: str, value: str) -> str:
    """The user info of a proxy variable's URL ('' for NO_PROXY and URLs without one)."""
    if not name.lower().endswith("_proxy") or name.lower() == "no_proxy":
        return ""
    rest = value.split("://", 1)[-1]
    return rest.rpartition("@")[0] if "@" in rest else ""


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

    def __call__(self, text: str, marker: str = REDACTED) -> str:
        return self._pattern.sub(marker, text) if self._pattern else text

    def report(self, report: Report) -> Report:
        """The report with every string (messages, steps, facts) scrubbed."""
        return replace(report, checks=tuple(self.result(check) for check in report.checks))

    def result(self, check: CheckResult) -> CheckResult:
        return replace(
            check,
            message=self(check.message),
            remediation=self(check.remediation),
            steps=tuple(
                replace(s, detail=self(s.detail), remediation=self(s.remediation))
                for s in check.steps
            ),
            facts=self.scrub(dict(check.facts)),
            logs=tuple(self(line) for line in check.logs),
        )

    def scrub(self, node: Any) -> Any:
        """A copy of a nested structure with known secrets scrubbed from every string, by value
        only (facts such as `token_endpoint` are not secrets because of their names)."""
        if isinstance(node, Mapping):
            return {key: self.scrub(child) for key, child in node.items()}
        if isinstance(node, list | tuple):
            return [self.scrub(child) for child in node]
        return self(node) if isinstance(node, str) else node

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
