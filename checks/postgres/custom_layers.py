"""Custom layers: the partner's PostgreSQL database the Worker syncs custom layers from
(`worker.customLayersSync.connectionString`, an Npgsql `Key=Value;` string).

Steps: config (parse the connection string) → dns → tcp → tls → auth → version → database,
the very same functions as the postgres checks (`checks.postgres.check`).
"""

from __future__ import annotations

import re

from checks.postgres.check import CLIENTS as CLIENTS
from checks.postgres.check import (
    DEFAULT_PORT,
    PgParams,
    describe_config,
    normalize_ssl_mode,
    parse_port,
    session_for,
)
from preflight.engine.check import Check, Probe, StepFailed
from preflight.net import parse_endpoint
from preflight.values.load import Values

CONNECTION_STRING = "worker.customLayersSync.connectionString"
PASSWORD = "worker.customLayersSync.password"

#: Npgsql's keywords (case and spaces do not matter) for what the preflight needs.
KEYWORDS = {
    "host": "host",
    "server": "host",
    "port": "port",
    "database": "database",
    "db": "database",
    "username": "username",
    "userid": "username",
    "uid": "username",
    "password": "password",
    "psw": "password",
    "pwd": "password",
    "sslmode": "sslMode",
    "rootcertificate": "sslRootCert",
}
#: How the user writes each parameter in the connection string.
NPGSQL_NAMES = {
    "host": "Host",
    "port": "Port",
    "database": "Database",
    "username": "Username",
    "password": "Password",
    "sslMode": "SSL Mode",
    "sslRootCert": "Root Certificate",
}
SETTINGS = {name: f"{keyword} in {CONNECTION_STRING}" for name, keyword in NPGSQL_NAMES.items()}
SETTINGS["password"] = f"{PASSWORD} (or Password in {CONNECTION_STRING})"


_PAIR = re.compile(
    r"""\s*([^=;]*?)\s*=\s*("(?:[^"]|"")*"|'(?:[^']|'')*'|[^;]*?)\s*(?:;|$)""", re.DOTALL
)


_BLANK = " ;\t\r\n"


def split_connection_string(text: str) -> dict[str, str]:
    """`Key=Value;` pairs as ADO.NET reads them: keys without case or spaces, values trimmed,
    optionally in '…' or "…" quotes (a doubled quote inside is one quote); the last one of a
    key wins. Errors name the position, never the text (it holds the password)."""
    pairs: dict[str, str] = {}
    position = 0
    while text[position:].strip(_BLANK):
        position += len(text[position:]) - len(text[position:].lstrip(_BLANK))
        match = _PAIR.match(text, position)
        if not match or not match.group(1):
            raise StepFailed(
                f"{CONNECTION_STRING}: the part at character {position + 1} is not Key=Value",
                "write it as Host=…;Port=5432;Database=…;Username=…",
            )
        key, value = "".join(match.group(1).split()).lower(), match.group(2)
        if value[:1] in ("'", '"'):
            if len(value) < 2 or value[-1] != value[0]:
                raise StepFailed(
                    f"{CONNECTION_STRING}: the value of {key} is not properly quoted",
                    "quote the whole value, doubling any quote inside it",
                )
            value = value[1:-1].replace(value[0] * 2, value[0])
        pairs[key] = value
        position = match.end()
    return pairs


def params_from_connection_string(text: str, password: str | None) -> PgParams:
    """The PostgreSQL connection parameters of an Npgsql connection string; the `password`
    value wins over the string's own Password."""
    found: dict[str, str] = {}
    for key, value in split_connection_string(text).items():
        if key in KEYWORDS:
            found[KEYWORDS[key]] = value
    if password:
        found["password"] = password
    missing = [name for name in ("host", "username", "password") if not found.get(name)]
    if missing:
        raise StepFailed(
            f"{CONNECTION_STRING} has no {', '.join(NPGSQL_NAMES[name] for name in missing)}",
            "write it as Host=…;Port=5432;Database=…;Username=…, and set " + PASSWORD,
        )
    host = found["host"].split(",")[0]  # Npgsql's multi-host lists: the first one is tried first
    port = parse_port(found.get("port", DEFAULT_PORT), SETTINGS["port"])
    endpoint = parse_endpoint(host, default_port=port)
    return PgParams(
        host=endpoint.host,
        port=endpoint.port,
        database=found.get("database") or found["username"],  # Npgsql's default
        user=found["username"],
        password=found["password"],
        ssl_mode=normalize_ssl_mode(found.get("sslMode", "prefer"), SETTINGS["sslMode"]),
        ca_file=found.get("sslRootCert") or None,
        origin=CONNECTION_STRING,
        settings=SETTINGS,
    )


def run_custom_layers(probe: Probe) -> None:
    """The custom-layers check, top to bottom."""
    with probe.step("config") as step:
        text = probe.values.get(CONNECTION_STRING)
        if not text:
            raise StepFailed(f"{CONNECTION_STRING} is not set", f"set it (and {PASSWORD})")
        params = params_from_connection_string(str(text), probe.values.get(PASSWORD))
        describe_config(probe, step, params)
    with session_for(probe, params):
        pass


def applies(values: Values) -> str | None:
    """Only when the Worker syncs custom layers."""
    if values.enabled("worker.customLayersSync.enabled"):
        return None
    return "custom-layers sync is off (worker.customLayersSync.enabled is not true)"


def checks(values: Values) -> list[Check]:
    """The custom-layers source database check."""
    return [
        Check(
            id="custom-layers",
            title="Custom-layers source database (PostgreSQL)",
            run=run_custom_layers,
            reads=("worker.customLayersSync.enabled", CONNECTION_STRING, PASSWORD),
            applies=applies,
        )
    ]
