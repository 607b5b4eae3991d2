"""A secret that is also an ordinary word (`postgres`, `default`, a host, the user name) never
rewrites the report's structure, and is removed wherever it stands as the secret: in every
sentence the checks and their client libraries can produce."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import quote

import pytest

from preflight.report.redact import REDACTED, Redactor
from preflight.report.renderers import FORMATS, renderer
from preflight.report.renderers.text import check_lines
from preflight.report.result import CheckResult, Report, Status, StepResult

#: The issue's secrets: a component, ClickHouse's user, a common word, the database, the
#: host, and (axion_user) the user name.
WEAK_SECRETS = ["postgres", "default", "admin", "axion_sense", "127.0.0.1", "axion_user"]
STRONG = "Zq-7f3a9c1e-long-random"

# Every sentence shape that can carry a secret; {s} is the secret, {q} the secret URL-quoted.
SENTENCES = [
    # psycopg / libpq
    "host=127.0.0.1 port=5432 dbname=axion_sense user=axion_user password={s} sslmode=prefer",
    "postgresql://axion_user:{s}@127.0.0.1:5432/axion_sense?sslmode=require",
    "postgresql://axion_user:{q}@127.0.0.1:5432/axion_sense",
    "2026-12-02 10:00:00,000 INFO psycopg: connect: host='127.0.0.1' password='{s}'",
    # Npgsql connection strings (custom layers)
    "Host=127.0.0.1;Port=5432;Database=axion_sense;Username=axion_user;Password={s};SSL Mode=Require",
    "Host=127.0.0.1;Password='{s}';Database=axion_sense",
    # librdkafka, through its logger and its own config echo
    "%7|1764672000.123|CONF|rdkafka#producer-1| [thrd:app]: Client config: sasl.password = {s}",
    "2026-12-02 10:00:00,000 WARNING rdkafka: SASL PLAIN as axion_user with password {s} refused",
    # botocore
    "DEBUG botocore.auth: Credential={s}/20261202/eu-west-1/s3/aws4_request, SignedHeaders=host",
    "headers={'Authorization': b'Bearer {s}', 'X-Amz-Date': b'20261202T100000Z'}",
    # HTTP (OIDC, OpenFGA, detectors, registries)
    "Authorization: Bearer {s}",
    "client_id=axion-sense-api&client_secret={s}&grant_type=client_credentials",
    'request body {"username": "axion_user", "password": "{s}"}',
    "http://fgauser:{s}@127.0.0.1:8080/stores",
    # an exception's text, an echoed config line
    "RuntimeError: client said: login with {s} refused.",
    "  password: {s}",
]

#: Report words that must survive every secret above (dotted names, paths, hyphenated ids).
KEPT = ["postgres.api", "postgres.worker", "clickhouse.password", "map-matching", "axion-sense-api"]


def values_with(secret: str) -> dict:
    return {
        "postgres": {
            "api": {
                "host": "127.0.0.1",
                "database": "axion_sense",
                "username": "axion_user",
                "password": secret,
            }
        },
        "clickhouse": {"username": "default", "password": STRONG},
        "oidc": {"clientId": "axion-sense-api"},
    }


def whole_token(secret: str) -> re.Pattern[str]:
    """The secret standing alone (not inside a longer word or dotted name)."""
    return re.compile(rf"(?<![\w-])(?<![\w-]\.){re.escape(secret)}(?![\w-])(?!\.[\w-])")


@pytest.mark.parametrize("secret", [*WEAK_SECRETS, STRONG])
@pytest.mark.parametrize("sentence", SENTENCES)
def test_every_secret_bearing_sentence_loses_the_secret(sentence: str, secret: str) -> None:
    redact = Redactor.for_values(values_with(secret))
    text = sentence.replace("{s}", secret).replace("{q}", quote(secret, safe=""))
    tail = (
        " — check postgres.api, postgres.worker, clickhouse.password, map-matching, axion-sense-api"
    )
    out = redact(text + tail)
    assert REDACTED in out
    assert not whole_token(secret).search(out), out
    assert quote(secret, safe="") not in out.replace(REDACTED, "") or secret == quote(secret)
    for word in KEPT:
        assert word in out


def test_a_word_secret_is_removed_only_where_it_stands_alone() -> None:
    redact = Redactor.for_values(values_with("postgres"))
    assert redact("postgres.api: connection to postgres failed") == (
        f"postgres.api: connection to {REDACTED} failed"
    )
    assert redact("password=postgres123 postgresql") == "password=postgres123 postgresql"


def test_a_long_random_secret_is_removed_even_inside_words() -> None:
    redact = Redactor.for_values(values_with(STRONG))
    assert redact(f"x{STRONG}y and {quote(STRONG)}") == f"x{REDACTED}y and {REDACTED}"


def sample_report(secret: str) -> Report:
    """A report whose free text carries the secret everywhere it could."""
    passed = ("config", "dns", "tcp", "tls", "auth", "version", "permissions")
    steps = (
        *(StepResult(name, Status.PASS, f"{name} ok") for name in passed),
        StepResult(
            "roundtrip",
            Status.FAIL,
            f"login with {secret} refused: password={secret}",
            f"check postgres.api.password (not {secret})",
        ),
    )
    check = CheckResult(
        "postgres.api",
        f"PostgreSQL API database ({secret})",
        Status.FAIL,
        message=f"roundtrip: login with '{secret}' refused",
        remediation=f"Bearer {secret}",
        steps=steps,
        facts={"address": "127.0.0.1:5432", "server_version": "17.2", "seen": [f"pw {secret}"]},
        logs=(f"psycopg: password={secret}",),
    )
    values = CheckResult(
        "values",
        "Values",
        Status.WARN,
        "1 warning(s)",
        steps=(StepResult("postgres.api.password", Status.WARN, "weak"),),
    )
    return Report((values, check), 0.5, "0.0.0")


def structure(report: Report) -> list[tuple[str, str, str, list[str], list[str]]]:
    return [
        (c.id, c.component, c.status.value, [s.name for s in c.steps], sorted(c.facts))
        for c in report.checks
    ]


@pytest.mark.parametrize("secret", [*WEAK_SECRETS, STRONG, "permissions", "roundtrip"])
def test_the_report_structure_is_never_rewritten(secret: str) -> None:
    report = sample_report(secret)
    redact = Redactor.for_values(values_with(secret))
    clean = redact.report(report)
    assert structure(clean) == structure(report)
    check = clean.checks[1]
    free_text = [check.title, check.message, check.remediation, *check.logs, str(check.facts)]
    free_text += [s.detail + s.remediation for s in check.steps]
    for text in free_text:
        assert not whole_token(secret).search(text), text
    assert check.steps[-1].remediation == f"check postgres.api.password (not {REDACTED})"
    for fmt in FORMATS:
        render = renderer(fmt)
        out = redact.render(render, report)
        assert "postgres.api" in out, fmt
        if fmt != "text":  # text shows a step's name only when several steps are flagged
            assert "roundtrip" in out and "permissions" in out, fmt
        if secret == STRONG:
            assert secret not in out, fmt


@dataclass(frozen=True)
class WithHint(CheckResult):
    """A result with a free-text field the redactor does not know (added later, say)."""

    hint: str = ""


def test_the_safety_net_catches_a_long_secret_in_a_field_redaction_missed() -> None:
    redact = Redactor.for_values(values_with(STRONG))
    report = sample_report("permissions")
    report = replace(
        report, checks=(*report.checks, WithHint("oidc", "OIDC", Status.PASS, hint=STRONG))
    )

    def hinting(r: Report) -> str:  # a renderer that shows the new field
        return renderer("json")(r) + "".join(getattr(c, "hint", "") for c in r.checks)

    out = redact.render(hinting, report)
    assert STRONG not in out and out.endswith(REDACTED)
    assert '"name": "permissions"' in out and '"id": "oidc"' in out


def test_progress_lines_are_scrubbed_like_the_report() -> None:
    redact = Redactor.for_values(values_with("admin"))
    check = sample_report("admin").checks[1]
    lines = redact.render(lambda r: "\n".join(check_lines(r)), check)
    assert lines.startswith("FAIL  postgres.api ")
    assert not whole_token("admin").search(lines)
