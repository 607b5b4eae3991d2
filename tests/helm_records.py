"""Helm release records, written as Helm v4 writes them (no Helm binary runs here), for the
fake apiserver of tests/servers/kubernetes.py.

From helm/helm pkg/storage/driver (util.go encodeRelease, secrets.go newSecretsObject,
cfgmaps.go newConfigMapsObject) and pkg/release/v1, pkg/chart/v2:
- the payload is Go's `json.Marshal` of the Release (struct fields in declaration order,
  `omitempty` honoured, map keys sorted, compact, `<>&` escaped as \\u003c…, YAML numbers as
  float64: 30.0 is written 30), gzipped at BestCompression (Go's header: no name, mtime 0,
  XFL 2, OS 255), then standard base64;
- it is stored under the key `release` of a Secret of type `helm.sh/release.v1` (whose data the
  API serves base64-encoded once more) or of a ConfigMap, named `sh.helm.release.v1.<name>.v<N>`
  and labelled name, owner=helm, status, version, and createdAt or modifiedAt.
The deflate stream itself comes from zlib, not Go's compress/flate: its bytes differ, the
format is the same (the tests read it back with the `gzip` tool too).
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import Mapping
from typing import Any

from tests.servers.kubernetes import Obj, config_map, secret

CREATED_AT = "1767225600"  # 2026-01-01T00:00:00Z as Unix seconds, as Helm's label holds it
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, as json.Marshal writes it


def chart(
    name: str = "axion-sense",
    version: str = "1.4.0",
    *,
    app_version: str = "1.0.0",
    values: Mapping[str, Any] | None = None,
    schema: Mapping[str, Any] | None = None,
) -> Obj:
    """A chart as the Release stores it (pkg/chart/v2.Chart): metadata, values, schema bytes."""
    metadata = {
        "name": name,
        "version": version,
        "description": "Axion Sense backend",
        "apiVersion": "v2",
        "appVersion": app_version,
        "type": "application",
    }
    raw_schema = json.dumps(schema, indent=2).encode() if schema is not None else None
    return {
        "metadata": metadata,
        "lock": None,
        "templates": [],
        "values": dict(values or {}),
        "schema": base64.b64encode(raw_schema).decode() if raw_schema else None,
        "schemamodtime": ZERO_TIME,
        "files": [],
    }


def release(
    name: str,
    revision: int,
    status: str,
    config: Mapping[str, Any] | None,
    *,
    namespace: str = "axion-sense",
    chart_record: Obj | None = None,
) -> Obj:
    """A pkg/release/v1.Release with its fields in Go's order (empty ones omitted)."""
    info = {
        "first_deployed": "2026-01-01T00:00:00Z",
        "last_deployed": f"2026-01-0{min(revision, 9)}T00:00:00Z",
        "description": "Install complete" if revision == 1 else "Upgrade complete",
        "status": status,
    }
    record: Obj = {
        "name": name,
        "info": info,
        "chart": chart_record if chart_record is not None else chart(),
        "config": dict(config or {}),
        "manifest": "---\n# Source: axion-sense/templates/api.yaml\n",
        "version": revision,
        "namespace": namespace,
    }
    if not record["config"]:
        del record["config"]  # `json:"config,omitempty"`
    return record


def go_json(value: Any) -> bytes:
    """Go's json.Marshal of decoded JSON/YAML data: maps sorted, compact, HTML-safe escapes,
    integral floats without a fraction. Struct-like dicts keep their order (they are built in
    Go's field order above); only the maps inside `config` and `values` are sorted."""
    text = json.dumps(_go_values(value), separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


def _go_values(node: Any, sort: bool = False) -> Any:
    if isinstance(node, Mapping):
        items = sorted(node.items()) if sort else node.items()
        return {k: _go_values(v, sort or k in ("config", "values")) for k, v in items}
    if isinstance(node, list):
        return [_go_values(v, sort) for v in node]
    if isinstance(node, float) and node.is_integer() and abs(node) < 1e21:
        return int(node)
    return node


def go_gzip(data: bytes) -> bytes:
    """Go's gzip.NewWriterLevel(BestCompression): a 10-byte header without name or mtime,
    XFL 2 (best compression), OS 255 (unknown); deflate; CRC-32 and size."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = deflate.compress(data) + deflate.flush()
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def encode(record: Obj) -> str:
    """util.go encodeRelease: json.Marshal, gzip at BestCompression, base64."""
    return base64.b64encode(go_gzip(go_json(record))).decode()


def key(name: str, revision: int) -> str:
    """storage.go makeKey."""
    return f"sh.helm.release.v1.{name}.v{revision}"


def _labels(record: Obj) -> dict[str, str]:
    status = record["info"]["status"]
    stamp = "createdAt" if status.startswith("pending") else "modifiedAt"
    return {
        "name": record["name"],
        "owner": "helm",
        "status": status,
        "version": str(record["version"]),
        stamp: CREATED_AT,
    }


def release_secret(record: Obj, payload: str | None = None) -> Obj:
    """The Secret the default driver writes (`payload` replaces the encoded release)."""
    return secret(
        key(record["name"], record["version"]),
        record.get("namespace", "axion-sense"),
        type_="helm.sh/release.v1",
        data={"release": encode(record) if payload is None else payload},
        labels=_labels(record),
    )


def release_config_map(record: Obj) -> Obj:
    """The ConfigMap the configmap driver (HELM_DRIVER=configmap) writes."""
    return config_map(
        key(record["name"], record["version"]),
        record.get("namespace", "axion-sense"),
        data={"release": encode(record)},
        labels=_labels(record),
    )
