"""The JSON report read back into a Report: the inverse of `json_report`, so that a saved
report.json or bundle can be rendered again in any format (`sense-preflight report`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from preflight import __version__
from preflight.report.renderers.json_report import CONTRACT_VERSION
from preflight.report.result import CheckResult, Report, Status, StepResult

_REQUIRED = object()
_NUMBER = (int, float)
_STATUSES = ", ".join(status.value for status in Status)
_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true or false",
    type(None): "null",
}


class ReportFormatError(ValueError):
    """The text is not a JSON report this version reads; the message is one line."""


def parse_report(text: str) -> Report:
    """The Report a `--format json` run wrote; ReportFormatError for anything else."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ReportFormatError(f"not a sense-preflight bundle or JSON report ({exc})") from None
    if not isinstance(document, dict) or document.get("tool") != "sense-preflight":
        raise ReportFormatError('not a sense-preflight report (no "tool": "sense-preflight")')
    contract = _field(document, "contract_version", (int,), "", default=1)
    if contract > CONTRACT_VERSION:
        raise ReportFormatError(
            f"a report of contract version {contract} (sense-preflight "
            f"{document.get('version')}); this sense-preflight {__version__} reads up to "
            f"version {CONTRACT_VERSION}: upgrade sense-preflight"
        )
    checks = _field(document, "checks", (list,), "")
    files = _field(document, "values_files", (list,), "", default=[])
    return Report(
        checks=tuple(_check(check, f"checks[{i}].") for i, check in enumerate(checks)),
        duration_s=_field(document, "duration_s", _NUMBER, ""),
        version=_field(document, "version", (str,), ""),
        started=_field(document, "started", (str, type(None)), "", default=None),
        in_cluster=_field(document, "in_cluster", (bool, type(None)), "", default=None),
        values_files=tuple(_text(name, f"values_files[{i}]") for i, name in enumerate(files)),
    )


def _check(node: Any, where: str) -> CheckResult:
    node = _object(node, where)
    steps = _field(node, "steps", (list,), where, default=[])
    return CheckResult(
        id=_field(node, "id", (str,), where),
        title=_field(node, "title", (str,), where, default=""),
        status=_status(node, where),
        message=_field(node, "message", (str,), where, default=""),
        remediation=_field(node, "remediation", (str,), where, default=""),
        steps=tuple(_step(step, f"{where}steps[{i}].") for i, step in enumerate(steps)),
        facts=_field(node, "facts", (dict,), where, default={}),
        duration_s=_field(node, "duration_s", _NUMBER, where, default=0.0),
        accepted=_field(node, "accepted", (bool,), where, default=False),
    )


def _step(node: Any, where: str) -> StepResult:
    node = _object(node, where)
    return StepResult(
        name=_field(node, "name", (str,), where),
        status=_status(node, where),
        detail=_field(node, "detail", (str,), where, default=""),
        remediation=_field(node, "remediation", (str,), where, default=""),
        duration_s=_field(node, "duration_s", _NUMBER, where, default=0.0),
    )


def _status(node: Mapping[str, Any], where: str) -> Status:
    value = _field(node, "status", (str,), where)
    try:
        return Status(value)
    except ValueError:
        raise ReportFormatError(f"{where}status: {value!r} is not one of {_STATUSES}") from None


def _object(node: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(node, dict):
        raise ReportFormatError(f"{where.rstrip('.')}: expected an object, not {_kind(node)}")
    return node


def _text(node: Any, where: str) -> str:
    if not isinstance(node, str):
        raise ReportFormatError(f"{where}: expected a string, not {_kind(node)}")
    return node


def _field(
    node: Mapping[str, Any],
    key: str,
    kinds: tuple[type, ...],
    where: str,
    default: Any = _REQUIRED,
) -> Any:
    """node[key], which must be of one of `kinds` (a bool is no number); `default` when
    absent, or an error when no default is given."""
    if key not in node:
        if default is _REQUIRED:
            raise ReportFormatError(f"{where}{key}: missing")
        return default
    value = node[key]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        expected = " or ".join(dict.fromkeys(_JSON_TYPES[kind] for kind in kinds))
        raise ReportFormatError(f"{where}{key}: expected {expected}, not {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)
