"""What the rules cannot see in a well-typed value: a placeholder of the install guide or of
well-known documentation still in place (`change-me`, `xxx`, `<password>`, AWS's example key
pair, `*.example.com`, the guide's `*.partner.com` / `*.partner.internal` hosts), and a secret
so short or so ordinary that redaction cannot tell it from the report's own words.

Each is a warning that names the value path, never the value (`--strict` makes it fail).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from preflight.report.redact import (
    STRONG_LENGTH,
    embedded_secrets,
    leaves,
    secret_paths,
    value_words,
)
from preflight.values.load import Values
from preflight.values.rules import Problem

#: The install guide's placeholder secrets (section 1 and its `--set … =xxx` example).
GUIDE_PLACEHOLDERS = frozenset({"change-me", "changeme", "xxx"})
#: AWS's documentation key pair (IAM user guide), copied into many guides.
AWS_EXAMPLE_KEYS = frozenset({"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"})
_ANGLE_PLACEHOLDER = re.compile(r"^<[^<>]+>$")  # `<password>`, `<user>` from the guide
# RFC 2606's documentation domains and the guide's partner placeholders.
_PLACEHOLDER_HOST = re.compile(
    r"(?<![\w.-])(?:[\w-]+\.)*(?:example\.(?:com|org|net)|partner\.(?:com|internal))(?![\w-])",
    re.IGNORECASE,
)
_ID_SHAPE = re.compile(r"^[a-z][a-z0-9.-]*$")  # how check ids and components look

PLACEHOLDER = "still the install guide's placeholder, not a real value — set your own"
AWS_EXAMPLE = "AWS's documentation example key, not a real one — set your own key pair"
HOST = "{hosts}: a documentation placeholder host, not yours — set your own"
WEAK = (
    "weak secret ({why}): the report may show that word where it is not the secret, and "
    "hides it wherever it stands alone — use a long, random one"
)
SHORT = f"shorter than {STRONG_LENGTH} characters"
COMMON = "a word the report uses: a check id, a component, a user, host or database"


def is_placeholder(text: str) -> bool:
    """A value left as the guide wrote it (`change-me`, `xxx`, `<password>`)."""
    return text.strip().lower() in GUIDE_PLACEHOLDERS or bool(_ANGLE_PLACEHOLDER.match(text))


def secret_problems(values: Values, check_words: Callable[[], set[str]]) -> list[Problem]:
    """Every placeholder and documentation host, then every weak secret, as warnings, each
    list by value path (the same for a values file and a release's stored values).
    `check_words()` gives the check ids and components; it is asked only for a secret shaped
    like one (finding the checks costs start-up time)."""
    return [*_by_path(_placeholders(values)), *_by_path(_weak(values, check_words))]


def _by_path(problems: Iterator[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda problem: problem.path)


def _placeholders(values: Values) -> Iterator[Problem]:
    for path, value, _ in leaves(values.data):
        text = str(value)
        candidates = [text, *embedded_secrets(text)]
        if any(is_placeholder(candidate) for candidate in candidates):
            yield Problem(path, PLACEHOLDER, error=False)
        elif any(candidate.strip() in AWS_EXAMPLE_KEYS for candidate in candidates):
            yield Problem(path, AWS_EXAMPLE, error=False)
        hosts = sorted({match.lower() for match in _PLACEHOLDER_HOST.findall(text)})
        if hosts:
            yield Problem(path, HOST.format(hosts=", ".join(hosts)), error=False)


def _weak(values: Values, check_words: Callable[[], set[str]]) -> Iterator[Problem]:
    flagged: set[str] = set()
    known = value_words(values.data)
    asked = False
    for path, secret in secret_paths(values.data):
        if path in flagged or not secret or is_placeholder(secret) or secret in AWS_EXAMPLE_KEYS:
            continue
        if not asked and secret not in known and _ID_SHAPE.match(secret):
            known |= check_words()
            asked = True
        why = SHORT if len(secret) < STRONG_LENGTH else COMMON if secret in known else None
        if why is not None:
            flagged.add(path)
            yield Problem(path, WEAK.format(why=why), error=False)
