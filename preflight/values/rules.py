"""The chart's values rules, written once as data (from the install guide), evaluated here and
published as JSON Schema (`sense-preflight schema`).

Every problem is found at once; each is one line: the value path, what is wrong, and the
guide's description of the value.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from preflight.values.load import Values

# --- conditions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class When:
    """A condition on another value: `equals` it, or (equals None) that it is set at all.
    `negate` turns `vision.enabled == False` into "vision is not disabled"."""

    path: str
    equals: Any = None
    negate: bool = False
    prefix: str | None = None

    def holds(self, values: Values) -> bool:
        value = values.get(self.path)
        if self.prefix is not None:
            result = isinstance(value, str) and value.upper().startswith(self.prefix)
        elif self.equals is None:
            result = values.has(self.path)
        else:
            result = value == self.equals
        return result != self.negate

    def describe(self) -> str:
        if self.prefix is not None:
            return f"{self.path} is {self.prefix}*"
        if self.equals is None:
            return f"{self.path} is set"
        shown = str(self.equals).lower() if isinstance(self.equals, bool) else f'"{self.equals}"'
        return f"{self.path} is {'not ' if self.negate else ''}{shown}"

    def schema(self) -> dict[str, Any]:
        """A JSON Schema `if` clause for this condition."""
        if self.prefix is not None:
            leaf: dict[str, Any] = {"type": "string", "pattern": f"(?i)^{self.prefix}"}
        elif self.equals is None:
            leaf = {"not": {"enum": [None, ""]}}
        else:
            leaf = {"const": self.equals}
        clause = _nest(self.path, leaf, required=True)
        return {"not": clause} if self.negate else clause


VISION = When("vision.enabled", False, negate=True)


# --- rules ----------------------------------------------------------------------------------

STRING, INTEGER, BOOLEAN, PORT, URL, LIST, MAP = (
    "string",
    "integer",
    "boolean",
    "port",
    "url",
    "list",
    "map",
)


@dataclass(frozen=True)
class Rule:
    """One value: its type, the guide's description, and when it is required.
    `path` may hold `[]` for every item of a list (`vision.config.detectors[].name`)."""

    path: str
    type: str
    description: str
    required: bool = False
    when: tuple[When, ...] = ()
    min_items: int = 0
    #: The install guide's documented default (None where it documents none).
    default: Any = None

    def active(self, values: Values) -> bool:
        return all(condition.holds(values) for condition in self.when)


def _r(
    path: str, kind: str, description: str, *when: When, required: bool = True, **extra: Any
) -> Rule:
    """A rule; required unless `required=False`, and only while every `when` holds. A
    `default=` (the guide's) is appended to the description: "API replicas (default 1)"."""
    if extra.get("default") is not None:
        description = f"{description} (default {shown_default(extra['default'])})"
    return Rule(path, kind, description, required, tuple(when), **extra)


def shown_default(value: Any) -> str:
    """A default as the guide writes it: true/false, [], numbers and words as they are."""
    return json.dumps(value) if isinstance(value, bool | list | dict) else str(value)


_opt = partial(_r, required=False)


RULES: tuple[Rule, ...] = (
    # Required values (guide, section 1)
    _r("api.image.repository", STRING, "Full image path for the API in your private registry"),
    _r("api.image.tag", STRING, "API image version tag"),
    _r(
        "worker.image.repository", STRING, "Full image path for the Worker in your private registry"
    ),
    _r("worker.image.tag", STRING, "Worker image version tag"),
    _r("oidc.authority", URL, "OIDC issuer URL (e.g. https://idp.example.com/realms/main)"),
    _r("oidc.clientId", STRING, "OAuth2 client ID"),
    _r("oidc.clientSecret", STRING, "OAuth2 client secret"),
    _r(
        "kafka.bootstrapServers",
        STRING,
        "Kafka bootstrap servers (host:9092 or comma-separated list)",
    ),
    _r("s3.host", STRING, "S3-compatible endpoint (e.g. s3.amazonaws.com)"),
    _r("s3.framesBucketName", STRING, "Bucket where frame images are stored"),
    _r("s3.accessKey", STRING, "S3 access key"),
    _r("s3.secretKey", STRING, "S3 secret key"),
    _r("postgres.api.host", STRING, "PostgreSQL hostname for the API database"),
    _r("postgres.api.database", STRING, "API database name (e.g. axion_sense)"),
    _r("postgres.api.username", STRING, "API database user"),
    _r("postgres.api.password", STRING, "API database password"),
    _r("postgres.worker.host", STRING, "PostgreSQL hostname for the Worker / Hangfire database"),
    _r("postgres.worker.database", STRING, "Worker database name (e.g. axion_sense_tasks)"),
    _r("postgres.worker.username", STRING, "Worker database user"),
    _r("postgres.worker.password", STRING, "Worker database password"),
    _r("clickhouse.host", STRING, "ClickHouse hostname"),
    _r("clickhouse.username", STRING, "ClickHouse user"),
    _r("clickhouse.password", STRING, "ClickHouse password"),
    _r("openfga.apiUrl", URL, "OpenFGA HTTP API URL"),
    _r("openfga.apiKey", STRING, "OpenFGA pre-shared API key"),
    _r(
        "vision.image.repository",
        STRING,
        "Vision image path (shared by detections-api, worker, quality, clusterization, matching)",
        VISION,
    ),
    _r("vision.image.tag", STRING, "Vision image version tag", VISION),
    _r("vision.triton.image.repository", STRING, "Triton inference server image path", VISION),
    _r("vision.triton.image.tag", STRING, "Triton image version tag", VISION),
    _r(
        "vision.config.detectors",
        LIST,
        "At least one detector backend (name, apiUrl, optional authToken)",
        VISION,
        min_items=1,
    ),
    _r("vision.config.detectors[].name", STRING, "Detector name", VISION),
    _r("vision.config.detectors[].apiUrl", URL, "Detector upload URL", VISION),
    _opt("vision.config.detectors[].authToken", STRING, "Detector bearer token (optional)", VISION),
    # Conditionally required
    _r("api.apiKeys.keys[].key", STRING, "API key value"),
    _r("api.apiKeys.keys[].serviceName", STRING, "Service the API key belongs to"),
    _r(
        "api.ingress.hosts",
        LIST,
        "Ingress hosts for the API",
        When("api.ingress.enabled", True),
        min_items=1,
    ),
    _r(
        "api.ingressGrpc.hosts",
        LIST,
        "Ingress hosts for the API's gRPC endpoint",
        When("api.ingressGrpc.enabled", True),
        min_items=1,
    ),
    _r(
        "api.certificate.issuerRef.name",
        STRING,
        "cert-manager issuer for the API certificate",
        When("api.certificate.enabled", True),
    ),
    _r(
        "api.certificate.dnsNames",
        LIST,
        "DNS names of the API certificate",
        When("api.certificate.enabled", True),
        min_items=1,
    ),
    _r(
        "worker.ingress.hosts",
        LIST,
        "Ingress hosts for the Hangfire dashboard",
        When("worker.ingress.enabled", True),
        min_items=1,
    ),
    _r(
        "kafka.saslUsername",
        STRING,
        "SASL user name (e.g. Confluent Cloud API key)",
        When("kafka.securityProtocol", prefix="SASL"),
    ),
    _r(
        "kafka.saslPassword",
        STRING,
        "SASL password (e.g. Confluent Cloud API secret)",
        When("kafka.securityProtocol", prefix="SASL"),
    ),
    _r(
        "worker.customLayersSync.connectionString",
        STRING,
        "Custom-layers source database connection string",
        When("worker.customLayersSync.enabled", True),
    ),
    _r(
        "worker.customLayersSync.password",
        STRING,
        "Custom-layers source database password",
        When("worker.customLayersSync.enabled", True),
    ),
    _r(
        "vision.config.mapMatching.mapMatchingApi.baseUrl",
        URL,
        "Map-matching API base URL",
        VISION,
        When("vision.config.mapMatching.backend", "map_matching_api"),
    ),
    _r(
        "vision.valhalla.enabled",
        BOOLEAN,
        "Bundled Valhalla must be enabled for the valhalla map-matching backend",
        VISION,
        When("vision.config.mapMatching.backend", "valhalla"),
    ),
    # Types of optional values (defaults from the guide)
    _opt("vision.enabled", BOOLEAN, "Vision tier on", default=True),
    _opt("api.replicaCount", INTEGER, "API replicas", default=1),
    _opt("worker.replicaCount", INTEGER, "Worker replicas", default=1),
    _opt("s3.secured", BOOLEAN, "HTTPS to S3", default=True),
    _opt("postgres.api.port", PORT, "API database port", default=5432),
    _opt("postgres.worker.port", PORT, "Worker database port", default=5432),
    _opt("postgres.api.maxPoolSize", INTEGER, "API connection pool size", default=20),
    _opt("postgres.worker.maxPoolSize", INTEGER, "Worker connection pool size", default=10),
    _opt("clickhouse.port", PORT, "ClickHouse HTTP port", default=8123),
    _opt("clickhouse.database", STRING, "ClickHouse database", default="axion_sense"),
    _opt("openfga.storeName", STRING, "OpenFGA store name", default="axion-sense"),
    _opt("oidc.audience", STRING, "Token audience (default = clientId)"),
    _opt("oidc.requireHttpsMetadata", BOOLEAN, "Require https for OIDC metadata", default=True),
    _opt("api.migration.enabled", BOOLEAN, "Run API migrations", default=True),
    _opt("worker.migration.enabled", BOOLEAN, "Run Worker migrations", default=True),
    _opt("api.ingress.enabled", BOOLEAN, "Expose the API through an Ingress"),
    _opt("api.ingressGrpc.enabled", BOOLEAN, "Expose the API's gRPC endpoint through an Ingress"),
    _opt("api.certificate.enabled", BOOLEAN, "Issue the API certificate with cert-manager"),
    _opt("worker.ingress.enabled", BOOLEAN, "Expose the Hangfire dashboard through an Ingress"),
    _opt("worker.customLayersSync.enabled", BOOLEAN, "Sync custom layers from a partner database"),
    _opt("kafka.filterByEnv", BOOLEAN, "Share Kafka topics across environments", default=False),
    _opt("global.imagePullSecrets", LIST, "Image pull secrets", default=[]),
    _opt("vision.valhalla.enabled", BOOLEAN, "Bundled Valhalla", default=False),
)

KNOWN_TOP_LEVEL = (
    "global",
    "api",
    "worker",
    "oidc",
    "kafka",
    "s3",
    "postgres",
    "clickhouse",
    "openfga",
    "vision",
)
KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MAP_MATCHING_BACKENDS = ("map_matching_api", "valhalla")


# --- evaluation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One values problem: an error stops the run (exit 2), a warning does not."""

    path: str
    message: str
    error: bool = True

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def _instances(values: Values, path: str) -> Iterator[str]:
    """Expand `a.b[].c` into `a.b[0].c`, `a.b[1].c`… for the items that exist."""
    head, sep, tail = path.partition("[]")
    if not sep:
        yield path
        return
    items = values.get(head)
    if isinstance(items, list):
        for index in range(len(items)):
            yield from _instances(values, f"{head}[{index}]{tail}")


def _type_problem(rule: Rule, value: Any) -> str | None:
    if rule.type == STRING:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return f"must be a string, got {_kind(value)}"
    elif rule.type == INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer, got {_kind(value)}"
    elif rule.type == PORT:
        return _port_problem(value)
    elif rule.type == BOOLEAN:
        if not isinstance(value, bool):
            return f"must be true or false, got {_shown(value)}"
    elif rule.type == URL:
        if not isinstance(value, str):
            return f"must be a URL, got {_kind(value)}"
        try:
            parts = urlsplit(value)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
            _ = parts.port
        except ValueError:
            ok = False
        if not ok:
            return "must be an absolute http(s) URL with a host"
    elif rule.type == LIST:
        if not isinstance(value, list):
            return f"must be a list, got {_kind(value)}"
        if len(value) < rule.min_items:
            return f"must have at least {rule.min_items} item(s)"
    return None


def _port_problem(value: Any) -> str | None:
    """A port is a number 1-65535, or a string of digits (`"5432"`, what `--set-string` and
    quoting in a values file give), which Helm renders the same."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be a port number 1-65535, got {_shown(value)}: not a number"
    if not 0 < value < 65536:
        return f"must be a port number 1-65535, got {value}: out of range"
    return None


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    """A non-secret value shown in a message (only for booleans, numbers and short words)."""
    if isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= 20):
        return repr(value)
    return _kind(value)


def check_values(values: Values) -> list[Problem]:
    """Every values problem at once: missing required values, wrong types, bad enums,
    unknown top-level keys (warnings)."""
    problems: list[Problem] = []
    for rule in RULES:
        if not rule.active(values):
            continue
        for path in _instances(values, rule.path):
            if not values.has(path):
                if rule.required:
                    why = (
                        f" (required because {', '.join(c.describe() for c in rule.when)})"
                        if rule.when
                        else ""
                    )
                    problems.append(
                        Problem(path, f"required value is missing{why} — {rule.description}")
                    )
                continue
            problem = _type_problem(rule, values.get(path))
            if problem:
                problems.append(Problem(path, f"{problem} — {rule.description}"))
    problems += _enum_problems(values)
    problems += _unique_detector_names(values)
    problems += _unknown_top_level(values)
    return problems


def _enum_problems(values: Values) -> list[Problem]:
    problems = []
    protocol = values.get("kafka.securityProtocol")
    if protocol is not None and str(protocol).upper() not in KAFKA_PROTOCOLS:
        problems.append(
            Problem("kafka.securityProtocol", f"must be one of {', '.join(KAFKA_PROTOCOLS)}")
        )
    backend = values.get("vision.config.mapMatching.backend")
    if VISION.holds(values) and backend is not None and backend not in MAP_MATCHING_BACKENDS:
        problems.append(
            Problem(
                "vision.config.mapMatching.backend",
                f"must be one of {', '.join(MAP_MATCHING_BACKENDS)}",
            )
        )
    if (
        VISION.holds(values)
        and backend == "valhalla"
        and values.get("vision.valhalla.enabled") is False
    ):
        problems.append(
            Problem(
                "vision.valhalla.enabled",
                'must be true when vision.config.mapMatching.backend is "valhalla"',
            )
        )
    return problems


def _unique_detector_names(values: Values) -> list[Problem]:
    detectors = values.get("vision.config.detectors")
    if not VISION.holds(values) or not isinstance(detectors, list):
        return []
    names = [d.get("name") for d in detectors if isinstance(d, dict) and d.get("name")]
    duplicates = sorted({str(n) for n in names if names.count(n) > 1})
    return [
        Problem("vision.config.detectors", f"detector name {n!r} is used more than once")
        for n in duplicates
    ]


def _unknown_top_level(values: Values) -> list[Problem]:
    problems = []
    for key in values.data:
        if key not in KNOWN_TOP_LEVEL:
            close = difflib.get_close_matches(str(key), KNOWN_TOP_LEVEL, n=1)
            hint = f" — did you mean {close[0]!r}?" if close else ""
            problems.append(
                Problem(str(key), f"unknown top-level key, the chart ignores it{hint}", error=False)
            )
    return problems


# --- JSON Schema ----------------------------------------------------------------------------


def _nest(path: str, leaf: dict[str, Any], *, required: bool) -> dict[str, Any]:
    """Wrap a leaf schema in the objects (and `items`) of a dotted path."""
    parts = path.split(".")
    schema = leaf
    for part in reversed(parts):
        name, is_list = (part[:-2], True) if part.endswith("[]") else (part, False)
        if is_list:
            schema = {"type": "array", "items": schema}
        schema = {"type": "object", "properties": {name: schema}}
        if required:
            schema["required"] = [name]
    return schema


#: A string of digits 1-65535 (a quoted port).
PORT_PATTERN = (
    "^([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$"
)

_SCHEMA_TYPES: dict[str, dict[str, Any]] = {
    STRING: {"type": ["string", "number"]},
    INTEGER: {"type": "integer"},
    PORT: {
        "anyOf": [
            {"type": "integer", "minimum": 1, "maximum": 65535},
            {"type": "string", "pattern": PORT_PATTERN},
        ]
    },
    BOOLEAN: {"type": "boolean"},
    URL: {"type": "string", "format": "uri", "pattern": "^https?://"},
    LIST: {"type": "array"},
    MAP: {"type": "object"},
}


def json_schema() -> dict[str, Any]:
    """The rules as a draft-07 JSON Schema (`values.schema.json`) for editors and `helm lint`."""
    clauses: list[dict[str, Any]] = []
    for rule in RULES:
        leaf = dict(_SCHEMA_TYPES[rule.type], description=rule.description)
        if rule.min_items:
            leaf["minItems"] = rule.min_items
        if rule.default is not None:
            leaf["default"] = rule.default
        if rule.type == STRING and rule.required:
            leaf["minLength"] = 1
        if "[]" in rule.path:
            # Items of a list: the item's own keys are required whenever the item exists.
            head, _, tail = rule.path.rpartition("[].")
            item = {"type": "object", "properties": {tail: leaf}}
            if rule.required:
                item["required"] = [tail]
            body = _nest(head, {"type": "array", "items": item}, required=False)
        else:
            body = _nest(rule.path, leaf, required=rule.required)
        if rule.when:
            condition: dict[str, Any] = {"allOf": [c.schema() for c in rule.when]}
            clauses.append({"if": condition, "then": body})
        else:
            clauses.append(body)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "axion-sense values (sense-preflight)",
        "type": "object",
        "allOf": clauses,
    }
