"""`sense-preflight job`: the manifests that run the same preflight as a Job in the cluster.

The Job sees the network the chart's pods will see. Its service account gets exactly the read
rights the `kubernetes` and `gpu` checks use; the values come from a Secret the user creates
(the printed manifests never hold a value), and the Job's exit code is the preflight's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from preflight import __version__
from preflight.commands.common import fail
from preflight.engine.check import Access, Check
from preflight.engine.options import DEFAULT_IMAGE, DEFAULT_NAMESPACE
from preflight.report.exit_codes import EXIT_BAD_INPUT
from preflight.values.load import Values, ValuesError, ValuesSource, load_values

VALUES_DIR = "/etc/sense-preflight"
VALUES_KEY = "custom-values.yaml"

Manifest = dict[str, Any]


@dataclass(frozen=True)
class JobSpec:
    """What the user chose for the in-cluster run."""

    namespace: str = DEFAULT_NAMESPACE
    name: str = "sense-preflight"
    image: str = DEFAULT_IMAGE
    values_secret: str = "sense-preflight-values"
    #: global.imagePullSecrets: the Secrets the `kubernetes` check reads (by name), also used
    #: to pull the preflight's own image.
    pull_secrets: tuple[str, ...] = ()
    #: More Secrets to pull the preflight's own image with (never read by the checks).
    image_pull_secrets: tuple[str, ...] = ()
    #: Extra `sense-preflight run` flags (--timeout, --only, --read-only, --strict…).
    run_args: tuple[str, ...] = ()
    #: What the selected checks read from the Kubernetes API: the Job's RBAC.
    access: tuple[Access, ...] = ()
    #: --release: the Job reads the values from this Helm release (no values Secret).
    release: str | None = None
    #: HELM_DRIVER of the release's storage (secret, the default, or configmap).
    helm_driver: str = ""
    ttl_seconds: int = 3600
    active_deadline_seconds: int = 900


def labels(spec: JobSpec) -> dict[str, str]:
    return {"app.kubernetes.io/name": "sense-preflight", "app.kubernetes.io/instance": spec.name}


def meta(spec: JobSpec, name: str, namespaced: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels(spec)}
    if namespaced:
        meta["namespace"] = spec.namespace
    return meta


def _rule(access: Access) -> Manifest:
    rule: Manifest = {
        "apiGroups": [access.group],
        "resources": [access.resource],
        "verbs": list(access.verbs),
    }
    if access.names:
        rule["resourceNames"] = list(access.names)
    return rule


def cluster_rules(spec: JobSpec) -> list[Manifest]:
    """The cluster-wide reads the checks declare (nodes, IngressClasses, CRDs by name…)."""
    return [_rule(access) for access in spec.access if not access.namespaced]


def namespace_rules(spec: JobSpec) -> list[Manifest]:
    """The reads inside the namespace the checks declare (Issuers, the pull Secrets by name,
    never all Secrets); with --release, get and list on Helm's storage there (Secrets, or
    ConfigMaps)."""
    rules = [_rule(access) for access in spec.access if access.namespaced]
    if spec.release:
        rules.append(_rule(Access("", _storage(spec), ("get", "list"), namespaced=True)))
    return rules


def declared_access(checks: Iterable[Check]) -> tuple[Access, ...]:
    """Every distinct Kubernetes API read the checks declare, in their order."""
    return tuple(dict.fromkeys(access for check in checks for access in check.rbac))


def _storage(spec: JobSpec) -> str:
    """The resource that holds Helm's release records for the Job's HELM_DRIVER."""
    from checks.kubernetes.helm_release import driver_kind

    return f"{driver_kind(spec.helm_driver).lower()}s"


def _binding(spec: JobSpec, kind: str, name: str, role_kind: str) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": meta(spec, name, namespaced=kind == "RoleBinding"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": spec.name, "namespace": spec.namespace}],
    }


def pod_spec(spec: JobSpec, command: str, restart_policy: str) -> Manifest:
    """The pod of the Job (and of `job --serve`'s Deployment): non-root, read-only root
    filesystem, the values mounted from the Secret (or, with --release, read from the
    release); `sense-preflight COMMAND` with the spec's flags."""
    source = (
        ["--release", spec.release] if spec.release else ["--values", f"{VALUES_DIR}/{VALUES_KEY}"]
    )
    args = [command, *source, "--in-cluster", "--namespace", spec.namespace, *spec.run_args]
    env: list[Manifest] = [
        {"name": "HOME", "value": "/tmp"},
        # the node, for the report and the support bundle (downward API)
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    ]
    if spec.release and _storage(spec) == "configmaps":
        env.append({"name": "HELM_DRIVER", "value": "configmap"})
    mounts: list[Manifest] = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[Manifest] = [
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}
    ]
    if not spec.release:
        mounts.insert(0, {"name": "values", "mountPath": VALUES_DIR, "readOnly": True})
        volumes.insert(
            0,
            {"name": "values", "secret": {"secretName": spec.values_secret, "defaultMode": 0o440}},
        )
    pod: Manifest = {
        "serviceAccountName": spec.name,
        "restartPolicy": restart_policy,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "preflight",
                "image": spec.image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sense-preflight"],
                "args": args,
                "env": env,
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"cpu": "1", "memory": "512Mi"},
                },
                "volumeMounts": mounts,
            }
        ],
        "volumes": volumes,
    }
    pulls = dict.fromkeys((*spec.pull_secrets, *spec.image_pull_secrets))
    if pulls:
        pod["imagePullSecrets"] = [{"name": name} for name in pulls]
    return pod


def job(spec: JobSpec) -> Manifest:
    """The Job: one try (`sense-preflight run`), its exit code the preflight's."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(spec, spec.name),
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": spec.ttl_seconds,
            "activeDeadlineSeconds": spec.active_deadline_seconds,
            "template": {
                "metadata": {"labels": labels(spec)},
                "spec": pod_spec(spec, "run", "Never"),
            },
        },
    }


def manifests(spec: JobSpec) -> list[Manifest]:
    """ServiceAccount, ClusterRole + binding, Role + binding, Job."""
    return [*access(spec), job(spec)]


def access(spec: JobSpec) -> list[Manifest]:
    """ServiceAccount, ClusterRole + binding, Role + binding: what the checks may read."""
    cluster_name = f"{spec.name}-{spec.namespace}"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(spec, spec.name)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta(spec, cluster_name, namespaced=False),
            "rules": cluster_rules(spec),
        },
        _binding(spec, "ClusterRoleBinding", cluster_name, "ClusterRole"),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta(spec, spec.name),
            "rules": namespace_rules(spec),
        },
        _binding(spec, "RoleBinding", spec.name, "Role"),
    ]


def secret_steps(spec: JobSpec) -> list[str]:
    """The first step, however the preflight runs in the cluster: the values into a Secret
    (nothing to create with --release)."""
    ns = spec.namespace
    if spec.release:
        return [
            f"1. The values are those of the installed release {spec.release} (nothing to create)."
        ]
    return [
        "1. Put the values into a Secret (never into this file):",
        f"   kubectl create namespace {ns} --dry-run=client -o yaml | kubectl apply -f -",
        f"   kubectl -n {ns} create secret generic {spec.values_secret} --from-file={VALUES_KEY}",
    ]


def cleanup_line(spec: JobSpec) -> str:
    values = (
        "" if spec.release else f"; kubectl -n {spec.namespace} delete secret {spec.values_secret}"
    )
    return f"Clean up: kubectl delete -f THIS_FILE{values}"


def instructions(spec: JobSpec) -> list[str]:
    """The steps around the manifests, as the lines of a comment block."""
    ns, name = spec.namespace, spec.name
    return [
        f"sense-preflight {__version__}: run the preflight as a Job in namespace {ns}.",
        *secret_steps(spec),
        "2. Apply this file (delete an earlier run first: kubectl delete -f THIS_FILE):",
        "   kubectl apply -f THIS_FILE",
        "3. Wait for it (a failing preflight fails the Job: then wait for condition=failed):",
        f"   kubectl -n {ns} wait --for=condition=complete --timeout=15m job/{name}",
        "4. Read the report:",
        f"   kubectl -n {ns} logs job/{name}",
        "The Job's exit code is the preflight's: 0 ok, 3 a check failed, 4 warnings (--strict).",
        cleanup_line(spec),
    ]


def render(spec: JobSpec) -> str:
    """The instructions as a YAML comment, then the manifests as one multi-document YAML."""
    header = "".join(f"# {line}\n" for line in instructions(spec))
    body = yaml.safe_dump_all(manifests(spec), sort_keys=False, default_flow_style=False)
    return header + "---\n" + body


def job_values(given: ValuesSource) -> Values:
    """The given values (empty when none): the Job's manifests need only names from them."""
    if given.empty:
        return Values()
    try:
        return load_values(given)
    except ValuesError as exc:
        fail(EXIT_BAD_INPUT, "; ".join(exc.problems))


def run_args(
    timeout: float | None,
    only: list[str],
    skip: list[str],
    strict: bool,
    read_only: bool,
    oidc_scope: str | None = None,
) -> tuple[str, ...]:
    """The `sense-preflight run` flags the Job passes on."""
    return (
        *(["--timeout", f"{timeout:g}"] if timeout else []),
        *(["--only", ",".join(only)] if only else []),
        *(["--skip", ",".join(skip)] if skip else []),
        *(["--strict"] if strict else []),
        *(["--read-only"] if read_only else []),
        *(["--oidc-scope", oidc_scope] if oidc_scope else []),
    )
