"""The chart itself (`--chart PATH`, or the chart stored in a release): its values.yaml as the
bottom layer of the values, its values.schema.json applied as Helm applies it, and where its
defaults differ from the install guide's.

Helm (v4, santhosh-tekuri/jsonschema) validates the coalesced values against the schema,
draft 2020-12 unless the schema names another `$schema`, asserting `format` only for drafts
before 2019-09. Subcharts (`charts/`) are not read.
"""

from __future__ import annotations

import base64
import binascii
import json
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from preflight.values.load import Values, ValuesError
from preflight.values.rules import RULES, Problem, shown_default

_MISSING = object()
CHART_FILES = ("Chart.yaml", "values.yaml", "values.schema.json")
_ASSERTS_FORMAT = ("draft3", "draft4", "draft6", "draft7")


@dataclass(frozen=True)
class Chart:
    """A chart's name, version, default values and schema (None when it has none)."""

    name: str
    version: str
    app_version: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)
    schema: Mapping[str, Any] | bool | None = None
    origin: str = ""  # for messages: the --chart path, or the release it came from

    @classmethod
    def of(
        cls,
        metadata: Mapping[str, Any],
        values: Mapping[str, Any],
        schema: Mapping[str, Any] | bool | None,
        origin: str,
    ) -> Chart:
        """A chart from its Chart.yaml metadata (name, version, appVersion)."""
        return cls(
            name=str(metadata.get("name") or ""),
            version=str(metadata.get("version") or ""),
            app_version=str(metadata.get("appVersion") or ""),
            values=values,
            schema=schema,
            origin=origin,
        )

    @property
    def facts(self) -> dict[str, Any]:
        """What the report says about the chart."""
        return {
            "name": self.name,
            "version": self.version,
            "app_version": self.app_version,
            "source": self.origin,
            "schema": self.schema is not None,
        }

    def problems(self, values: Values) -> list[Problem]:
        """The schema's verdict on the merged values, then the guide's stale defaults."""
        return schema_problems(self, values) + stale_guide_defaults(self)


def load_chart(path: Path) -> Chart:
    """A chart directory or a packaged chart (.tgz); ValuesError (one line) when it is not
    one, is corrupt, or has a schema that is not JSON Schema."""
    where = f"--chart {path}"
    if path.is_dir():
        try:
            files = {n: (path / n).read_bytes() for n in CHART_FILES if (path / n).is_file()}
        except OSError as exc:
            raise ValuesError([f"{where}: cannot read {exc.filename}: {exc.strerror}"]) from None
    elif path.is_file():
        files = _archive_files(path, where)
    else:
        raise ValuesError([f"{where}: no such chart directory or archive"])
    if "Chart.yaml" not in files:
        raise ValuesError([f"{where}: not a chart (no Chart.yaml)"])
    metadata = _yaml_mapping(files["Chart.yaml"], f"{where}: Chart.yaml")
    values = _yaml_mapping(files.get("values.yaml", b""), f"{where}: values.yaml")
    schema = None
    if "values.schema.json" in files:
        schema = _schema(files["values.schema.json"], f"{where}: values.schema.json")
    return Chart.of(metadata, values, schema, str(path))


def chart_of_release(record: Mapping[str, Any], origin: str) -> Chart:
    """The chart a Helm release record stores: metadata, values, schema (JSON-encoded bytes,
    i.e. base64). ValuesError when its schema does not decode or is not JSON Schema."""
    chart = record.get("chart") or {}
    metadata = chart.get("metadata") or {}
    schema = None
    if chart.get("schema"):
        try:
            raw = base64.b64decode(chart["schema"], validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise ValuesError([f"{origin}: the chart's schema does not decode (base64)"]) from None
        schema = _schema(raw, f"{origin}: the chart's values.schema.json")
    values = chart.get("values")
    return Chart.of(metadata, values if isinstance(values, dict) else {}, schema, origin)


def _archive_files(path: Path, where: str) -> dict[str, bytes]:
    """Chart.yaml, values.yaml and values.schema.json of the chart folder in a .tgz (the
    top-level folder holding Chart.yaml, as `helm package` writes it), read in memory:
    nothing is extracted to disk."""
    try:
        with tarfile.open(path, "r:gz") as archive:  # `helm package` writes .tgz
            members = {PurePosixPath(m.name).parts: m for m in archive.getmembers() if m.isfile()}
            top = next((p[0] for p in members if len(p) == 2 and p[1] == "Chart.yaml"), "")
            found: dict[str, bytes] = {}
            for name in CHART_FILES if top else ():
                member = members.get((top, name))
                handle = archive.extractfile(member) if member is not None else None
                if handle is not None:
                    found[name] = handle.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ValuesError([f"{where}: not a readable chart archive ({_reason(exc)})"]) from None
    return found


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _yaml_mapping(data: bytes, where: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(data.decode("utf-8")) if data else None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValuesError([f"{where}: invalid YAML: {first}"]) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ValuesError([f"{where}: must be a mapping, this one is a {type(document).__name__}"])
    return document


def _schema(data: bytes, where: str) -> Mapping[str, Any] | bool:
    """Parse a values.schema.json and check that it is a JSON Schema of its draft."""
    import jsonschema

    try:
        schema = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValuesError([f"{where}: not valid JSON: {exc}"]) from None
    if not isinstance(schema, dict | bool):
        raise ValuesError([f"{where}: not a JSON Schema (a {type(schema).__name__})"])
    validator = _validator_class(schema)
    try:
        validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        at = _dotted(exc.absolute_path) or "(root)"
        raise ValuesError([f"{where}: not a valid JSON Schema at {at}: {exc.message}"]) from None
    return schema


def _validator_class(schema: Mapping[str, Any] | bool) -> Any:
    """The validator of the schema's `$schema` draft; 2020-12 when it names none (as Helm)."""
    from jsonschema import Draft202012Validator, validators

    return validators.validator_for(schema, default=Draft202012Validator)


def schema_problems(chart: Chart, values: Values) -> list[Problem]:
    """Every violation of the chart's schema by the merged values, one Problem each."""
    if chart.schema is None:
        return []
    validator_class = _validator_class(chart.schema)
    asserts_format = any(d in validator_class.__name__.lower() for d in _ASSERTS_FORMAT)
    validator = validator_class(
        chart.schema, format_checker=validator_class.FORMAT_CHECKER if asserts_format else None
    )
    try:
        errors = list(validator.iter_errors(json.loads(json.dumps(dict(values.data)))))
    except Exception as exc:  # e.g. a $ref to another document: never fetched, as no network
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [Problem("", f"the chart's values.schema.json cannot be applied: {reason}")]
    problems = []
    for error in errors:
        message = error.message
        if isinstance(error.instance, str | int | float) and not isinstance(error.instance, bool):
            message = message.replace(repr(error.instance), "the value")  # never the value
        problems.append(Problem(_dotted(error.absolute_path), f"{message} (chart schema)"))
    return sorted(problems, key=lambda p: p.path)


def _dotted(path: Any) -> str:
    """A jsonschema path deque as our values paths: `a.b[0].c`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def stale_guide_defaults(chart: Chart) -> list[Problem]:
    """A warning for each default the install guide documents that the chart sets otherwise:
    the chart's value is the one used (it is the bottom layer), the guide is stale."""
    chart_values = Values(chart.values)
    problems = []
    for rule in RULES:
        if rule.default is None:
            continue
        found = chart_values.get(rule.path, _MISSING)
        if found is not _MISSING and (
            found != rule.default or type(found) is not type(rule.default)
        ):
            problems.append(
                Problem(
                    rule.path,
                    f"the chart's default is {shown_default(found)}, the install guide says "
                    f"{shown_default(rule.default)}: the chart's is used (the guide is stale)",
                    error=False,
                )
            )
    return problems
