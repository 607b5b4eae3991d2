"""An installed release as Helm itself records it (`--release NAME`): the latest deployed
revision, read from Helm's storage in the release's namespace.

Helm (pkg/storage/driver) keeps one object per revision, named `sh.helm.release.v1.<name>.v<N>`
and labelled `owner=helm`, `name=<name>`, `status=<status>`, `version=<N>`: a Secret of type
`helm.sh/release.v1` (the default driver) or, with `HELM_DRIVER=configmap`, a ConfigMap. Its
`release` key holds base64 of the gzipped JSON release (pkg/release/v1); a Secret's data is
base64 once more, as every Secret's. Like `helm upgrade --reuse-values`, the latest revision
whose status is `deployed` counts; later failed or pending ones do not.

The cluster connection is the `kubernetes` check's (kubeconfig, context, in-cluster service
account, exec plugins), under one deadline of --timeout seconds.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from checks.kubernetes.api import Cluster, Forbidden, connect
from preflight.engine.check import Check, Probe, StepFailed
from preflight.engine.deadline import Deadline, DeadlineExceeded
from preflight.engine.options import RunOptions
from preflight.values.load import Values

OWNER = "helm"
DEPLOYED = "deployed"
_GZIP_MAGIC = b"\x1f\x8b\x08"
#: Helm's ValidateReleaseName (pkg/chart/v2/util/validate_name.go): at most 53 characters.
_RELEASE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
MAX_RELEASE_NAME = 53
#: HELM_DRIVER values (as Helm's action config reads them) → the kind holding the records.
DRIVERS = {"": "Secret", "secret": "Secret", "secrets": "Secret"} | {
    "configmap": "ConfigMap",
    "configmaps": "ConfigMap",
}


class ReleaseError(Exception):
    """The release cannot be read; the message is one line for the user."""


@dataclass(frozen=True)
class Release:
    """The deployed revision: its user-supplied values (`config`, as `helm get values` shows)
    and the whole decoded record (the chart's values and schema are in it). Never written to
    any output: only `facts` are."""

    name: str
    namespace: str
    revision: int
    storage: str  # e.g. "Secret sh.helm.release.v1.axion-sense.v3"
    record: Mapping[str, Any]

    @property
    def config(self) -> dict[str, Any]:
        config = self.record.get("config")
        return dict(config) if isinstance(config, Mapping) else {}

    @property
    def facts(self) -> dict[str, Any]:
        info = self.record.get("info") or {}
        return {
            "name": self.name,
            "namespace": self.namespace,
            "revision": self.revision,
            "status": info.get("status", DEPLOYED),
            "last_deployed": info.get("last_deployed", ""),
            "storage": self.storage,
        }


def decode_payload(payload: str) -> dict[str, Any]:
    """Helm's `decodeRelease`: base64, then gzip when the gzip magic leads, then JSON.
    ValueError (with the reason) when any layer is wrong."""
    try:
        data = base64.b64decode(payload, validate=True)
        if data[:3] == _GZIP_MAGIC:
            data = gzip.decompress(data)
        record = json.loads(data)
    except (binascii.Error, OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg}") from None
    if not isinstance(record, dict):
        raise ValueError("not a release object")
    return record


def stored_payload(item: Mapping[str, Any], kind: str) -> str:
    """The `release` key of a storage object: a Secret's data is base64 once more."""
    value = (item.get("data") or {}).get("release")
    if not isinstance(value, str):
        raise ValueError("no `release` key")
    if kind == "Secret":
        try:
            return base64.b64decode(value, validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ValueError(f"{type(exc).__name__}: {exc}") from None
    return value


def driver_kind(helm_driver: str) -> str:
    """The storage kind for a HELM_DRIVER value; ReleaseError for those not in the cluster."""
    kind = DRIVERS.get(helm_driver.strip().lower())
    if kind is None:
        raise ReleaseError(
            f"HELM_DRIVER={helm_driver}: only the secret and configmap drivers keep releases "
            "in the cluster"
        )
    return kind


def read_release(options: RunOptions, name: str, helm_driver: str = "") -> Release:
    """The latest deployed revision of `name` in options.namespace; ReleaseError otherwise."""
    kind = driver_kind(helm_driver)
    if len(name) > MAX_RELEASE_NAME or not _RELEASE_NAME.fullmatch(name):
        raise ReleaseError(
            f"--release {name}: not a Helm release name (lowercase letters, digits, '-' and "
            f"'.', at most {MAX_RELEASE_NAME} characters)"
        )
    probe = Probe(
        Check("release", f"Helm release {name}", lambda _: None),
        Values(),
        options,
        Deadline.after(options.timeout_s),
    )
    try:
        with connect(probe) as cluster:
            if cluster is None:
                raise ReleaseError(
                    f"--release {name}: no cluster access (give --kubeconfig/--context, set "
                    "KUBECONFIG, or run it in the cluster)"
                )
            return _latest_deployed(cluster, name, options.namespace, kind)
    except StepFailed as exc:
        raise ReleaseError(f"--release {name}: {exc.detail}") from None
    except DeadlineExceeded:
        raise ReleaseError(
            f"--release {name}: the API server did not answer in time "
            f"(--timeout {options.timeout_s:g}s)"
        ) from None
    finally:
        probe.cleanups.run_all()


def _latest_deployed(cluster: Cluster, name: str, namespace: str, kind: str) -> Release:
    plural = f"{kind.lower()}s"
    path = f"/api/v1/namespaces/{namespace}/{plural}"
    where = f"namespace {namespace} ({kind} driver)"
    try:
        revisions = cluster.items(path, labelSelector=f"owner={OWNER},name={name}")
        if not revisions:
            others = cluster.items(path, labelSelector=f"owner={OWNER}")
    except Forbidden as exc:
        raise ReleaseError(
            f"--release {name}: not allowed to {exc.verb} {plural} in namespace {namespace} "
            f"(grant get and list on {plural} there)"
        ) from None
    if not revisions:
        names = sorted({str(_labels(o).get("name")) for o in others if _labels(o).get("name")})
        there = f"releases there: {', '.join(names)}" if names else "no Helm release there"
        raise ReleaseError(f"--release {name}: no such release in {where}; {there}")
    deployed = [o for o in revisions if _labels(o).get("status") == DEPLOYED]
    if not deployed:
        last = max(revisions, key=_revision)
        raise ReleaseError(
            f"--release {name}: no deployed revision in {where}; the last, revision "
            f"{_revision(last)}, is {_labels(last).get('status') or 'unknown'} "
            f"(helm history {name} -n {namespace})"
        )
    item = max(deployed, key=_revision)
    storage = f"{kind} {item['metadata']['name']}"
    try:
        record = decode_payload(stored_payload(item, kind))
    except ValueError as exc:
        raise ReleaseError(
            f"--release {name}: {storage}: the payload does not decode ({exc})"
        ) from None
    return Release(name, namespace, int(record.get("version") or _revision(item)), storage, record)


def _labels(item: Mapping[str, Any]) -> Mapping[str, str]:
    return (item.get("metadata") or {}).get("labels") or {}


def _revision(item: Mapping[str, Any]) -> int:
    """The revision of a storage object: its `version` label, else the `.v<N>` of its name."""
    text = str(_labels(item).get("version") or "")
    if not text.isdigit():
        text = str((item.get("metadata") or {}).get("name", "")).rpartition(".v")[2]
    return int(text) if text.isdigit() else 0
