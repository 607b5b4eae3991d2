"""Redaction: one stage every output passes through. Secrets are found in the merged values
(by key name, URL user info, connection-string passwords) and scrubbed by value.

The report's structure is never rewritten: check ids, components, step names, statuses and
fact keys stay as they are. Secrets are removed from the free text (titles, messages, details,
remediations, fact values, log lines) before anything is rendered, wherever they stand as a
whole token — as every value position is: after `password=` or `Bearer`, in a URL's user
info, in quotes, in an echoed config line. A long secret inside none of the report's words
(ids, names, value paths, hosts, users) is also removed inside longer text, and once more from
the rendered text (`net`), where the rendered structure cannot contain it. A secret that is
such a word (`postgres`, `default`, `127.0.0.1`) stays visible in the ids and names: the
values check warns about it (preflight/secret_values.py).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from html import escape as xml_escape
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

from preflight.report.result import CheckResult, Report, StepResult

REDACTED = "<redacted>"
MIN_SECRET_LENGTH = 3
#: A secret at least this long that is inside none of the report's words is removed wherever
#: it appears; any other where it stands as a whole token.
STRONG_LENGTH = 8
TOOL = "sense-preflight"

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
# A token of the report: words, dotted names and hyphenated names (`postgres.api`, `127.0.0.1`).
_TOKEN = re.compile(r"[\w.-]+")
_TOKEN_CHAR = re.compile(r"[\w.-]")
# Token boundaries: no word character or hyphen next to it, nor a dot joining it to one
# (a sentence's final dot is no part of the token).
_BEFORE = r"(?<![\w-])(?<![\w-]\.)"
_AFTER = r"(?![\w-])(?!\.[\w-])"


def is_secret_key(key: str) -> bool:
    """True for keys whose values are secrets (password, secretKey, apiKey, authToken, key…)."""
    return bool(_SECRET_KEY.search(key)) and not _SECRET_REFERENCE_KEY.search(key)


def leaves(node: Any, path: str = "", secret: bool = False) -> Iterator[tuple[str, Any, bool]]:
    """(dotted path, value, under a secret key) for every scalar of a values tree."""
    if isinstance(node, Mapping):
        for key, child in node.items():
            yield from leaves(
                child, f"{path}.{key}" if path else str(key), secret or is_secret_key(str(key))
            )
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from leaves(child, f"{path}[{index}]", secret)
    elif isinstance(node, str | int | float) and not isinstance(node, bool):
        yield path, node, secret


def secret_paths(values: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(value path, secret) for every secret in the values: under secret keys, in URLs, in
    connection strings."""
    for path, value, secret in leaves(values):
        text = str(value)
        if secret:
            yield path, text
        for embedded in embedded_secrets(text):
            yield path, embedded


def find_secrets(values: Mapping[str, Any]) -> set[str]:
    """Every secret string in the values."""
    return {secret for _, secret in secret_paths(values) if len(secret) >= MIN_SECRET_LENGTH}


def embedded_secrets(text: str) -> Iterable[str]:
    """The passwords of a URL's user info and of a connection string."""
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


def words(strings: Iterable[str]) -> set[str]:
    """The words these structural strings give the report: each string, its tokens, and the
    dotted parts of each token (`postgres.api.password` → `postgres`, `api`, `password`…)."""
    found: set[str] = set()
    for text in strings:
        found.add(text)
        for token in _TOKEN.findall(text):
            parts = token.split(".")
            found.add(token)
            found.update(parts)
            found.update(".".join(parts[:end]) for end in range(2, len(parts)))
    found.discard("")
    return found


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


def value_words(values: Mapping[str, Any]) -> set[str]:
    """The words a report may show from these values: every value path and every value that
    is not a secret (user names, hosts, databases…), less the secrets embedded in it (a URL's
    password). A secret equal to such a value (the user name) stays a word."""
    strings = [TOOL]
    for path, value, secret in leaves(values):
        strings.append(path)
        if not secret:
            text = str(value)
            for embedded in embedded_secrets(text):
                text = text.replace(embedded, " ") if embedded else text
            strings.append(text)
    return words(strings)


def report_words(report: Report) -> set[str]:
    """The structural words of a report (ids, components, statuses, step names, fact keys)."""
    return set().union(*(result_words(check) for check in report.checks))


def result_words(check: CheckResult) -> set[str]:
    keys: list[str] = []
    _fact_keys(check.facts, keys)
    return words(
        [check.id, check.component, check.status.value] + [step.name for step in check.steps] + keys
    )


def _fact_keys(node: Any, into: list[str]) -> None:
    if isinstance(node, Mapping):
        for key, child in node.items():
            into.append(str(key))
            _fact_keys(child, into)
    elif isinstance(node, list | tuple):
        for child in node:
            _fact_keys(child, into)


def skeleton(report: Report) -> Report:
    """The report's structure alone: built from its structural fields only, so every other
    field (free text, or one added later) is empty in it."""
    return Report(
        tuple(skeleton_result(check) for check in report.checks), report.duration_s, report.version
    )


def skeleton_result(check: CheckResult) -> CheckResult:
    return CheckResult(
        id=check.id,
        title="",
        status=check.status,
        steps=tuple(StepResult(s.name, s.status, duration_s=s.duration_s) for s in check.steps),
        facts=blank(dict(check.facts)),
        duration_s=check.duration_s,
        accepted=check.accepted,
    )


def blank(node: Any) -> Any:
    """A nested structure with its keys and numbers kept and every string emptied."""
    if isinstance(node, Mapping):
        return {key: blank(child) for key, child in node.items()}
    if isinstance(node, list | tuple):
        return [blank(child) for child in node]
    return "" if isinstance(node, str) else node


def _forms(secret: str) -> set[str]:
    """A secret and the encodings a message may carry it in (URL, JSON, XML)."""
    forms = {secret, quote(secret, safe=""), json.dumps(secret)[1:-1], xml_escape(secret)}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def _alternation(forms: Iterable[str], bounded: bool = False) -> str:
    def one(form: str) -> str:
        if not bounded:
            return re.escape(form)
        before = _BEFORE if _TOKEN_CHAR.match(form[0]) else ""
        after = _AFTER if _TOKEN_CHAR.match(form[-1]) else ""
        return f"{before}{re.escape(form)}{after}"

    return "|".join(one(form) for form in sorted(forms, key=len, reverse=True))


def _strong(secret: str, known: Iterable[str]) -> bool:
    """Long, and inside none of the report's words: safe to remove wherever it appears."""
    return len(secret) >= STRONG_LENGTH and not any(secret in word for word in known)


class _Rules:
    """The compiled pattern for one vocabulary of report words: a strong secret anywhere,
    any other as a whole token."""

    def __init__(self, secrets: Iterable[str], known: set[str]) -> None:
        anywhere: set[str] = set()
        tokens: set[str] = set()
        for secret in secrets:
            (anywhere if _strong(secret, known) else tokens).update(_forms(secret))
        parts = [_alternation(anywhere)] if anywhere else []
        parts += [_alternation(tokens, bounded=True)] if tokens else []
        self.pattern = re.compile("|".join(parts)) if parts else None

    def apply(self, text: str, marker: str = REDACTED) -> str:
        return self.pattern.sub(marker, text) if self.pattern else text


R = TypeVar("R", Report, CheckResult)


class Redactor:
    """Removes each known secret, and its common encodings, from free text and values;
    `words` are the values' own words (paths, hosts, user names): a secret inside one of them
    is removed as a whole token, never inside longer text."""

    def __init__(self, secrets: Iterable[str] = (), words: Iterable[str] = ()) -> None:
        self.secrets = frozenset(s for s in secrets if len(s) >= MIN_SECRET_LENGTH)
        self.words = frozenset(words) | {TOOL}
        self._rules: dict[frozenset[str], _Rules] = {}

    @classmethod
    def for_values(cls, values: Mapping[str, Any]) -> Redactor:
        return cls(find_secrets(values), value_words(values))

    def _for(self, known: Iterable[str] = ()) -> _Rules:
        vocabulary = self.words | frozenset(known)
        if vocabulary not in self._rules:
            self._rules[vocabulary] = _Rules(self.secrets, set(vocabulary))
        return self._rules[vocabulary]

    def __call__(self, text: str, marker: str = REDACTED, known: Iterable[str] = ()) -> str:
        """Free text with every secret removed (see the module's docstring)."""
        return self._for(known).apply(text, marker)

    def report(self, report: Report) -> Report:
        """The report with its free text (messages, steps, facts, logs) scrubbed."""
        known = frozenset(report_words(report))
        return replace(report, checks=tuple(self.result(check, known) for check in report.checks))

    def result(self, check: CheckResult, known: Iterable[str] | None = None) -> CheckResult:
        """One check's result with its free text scrubbed; id, step names and fact keys kept."""
        vocabulary = frozenset(result_words(check) if known is None else known)
        clean = self._for(vocabulary).apply
        return replace(
            check,
            title=clean(check.title),
            message=clean(check.message),
            remediation=clean(check.remediation),
            steps=tuple(
                replace(s, detail=clean(s.detail), remediation=clean(s.remediation))
                for s in check.steps
            ),
            facts=self.scrub(dict(check.facts), vocabulary),
            logs=tuple(clean(line) for line in check.logs),
        )

    def scrub(self, node: Any, known: Iterable[str] = ()) -> Any:
        """A copy of a nested structure with known secrets scrubbed from every string value,
        by value only (keys are kept; facts such as `token_endpoint` are not secrets)."""
        if isinstance(node, Mapping):
            return {key: self.scrub(child, known) for key, child in node.items()}
        if isinstance(node, list | tuple):
            return [self.scrub(child, known) for child in node]
        return self(node, known=known) if isinstance(node, str) else node

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

    def net(self, text: str, structure: str = "", marker: str = REDACTED) -> str:
        """The last safety net over rendered text: every long secret that is none of the
        values' words and that the text's `structure` (its rendering without free text) does
        not contain, removed by value — so it can never touch an id, a name or a key."""
        forms = [
            _forms(secret)
            for secret in self.secrets
            if _strong(secret, self.words) and not any(form in structure for form in _forms(secret))
        ]
        if not forms:
            return text
        return re.sub(_alternation(set().union(*forms)), marker, text)

    def render(self, render: Callable[[R], str], item: R, marker: str = REDACTED) -> str:
        """`render(item)` of the scrubbed report (or result), through the safety net."""
        if isinstance(item, Report):
            clean: Any = self.report(item)
            bare: Any = skeleton(clean)
        else:
            clean = self.result(item)
            bare = skeleton_result(clean)
        return self.net(render(clean), render(bare), marker)
