"""`sense-preflight job`: the manifests that run the same preflight as a Job in the cluster.

The Job sees the network the chart's pods will see. Its service account gets exactly the read
rights the `kubernetes` and `gpu` checks use; the values come from a Secret the user creates
(the printed manifests never hold a value), and the Job's exit code is the preflight's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from preflight import __version__
from preflight.commands.common import fail
from preflight.engine.options import DEFAULT_IMAGE, DEFAULT_NAMESPACE
from preflight.report.exit_codes import EXIT_BAD_INPUT
from preflight.values.load import ValuesError, ValuesSource, load_values

VALUES_DIR = "/etc/sense-preflight"
VALUES_KEY = "custom-values.yaml"
CERT_MANAGER_CRDS = [
    "certificates.cert-manager.io",
    "issuers.cert-manager.io",
    "clusterissuers.cert-manager.io",
]

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
    ttl_seconds: int = 3600
    active_deadline_seconds: int = 900


def labels(spec: JobSpec) -> dict[str, str]:
    return {"app.kubernetes.io/name": "sense-preflight", "app.kubernetes.io/instance": spec.name}


def _meta(spec: JobSpec, name: str, namespaced: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels(spec)}
    if namespaced:
        meta["namespace"] = spec.namespace
    return meta


def _rule(group: str, resource: str, verbs: list[str], names: list[str] | None = None) -> Manifest:
    rule: Manifest = {"apiGroups": [group], "resources": [resource], "verbs": verbs}
    if names:
        rule["resourceNames"] = names
    return rule


def cluster_rules() -> list[Manifest]:
    """Cluster-wide reads of the checks: nodes, namespaces, DaemonSets, IngressClasses,
    cert-manager's CRDs (by name) and ClusterIssuers."""
    return [
        _rule("", "nodes", ["list"]),
        _rule("", "namespaces", ["get"]),
        _rule("apps", "daemonsets", ["list"]),
        _rule("networking.k8s.io", "ingressclasses", ["list"]),
        _rule("apiextensions.k8s.io", "customresourcedefinitions", ["get"], CERT_MANAGER_CRDS),
        _rule("cert-manager.io", "clusterissuers", ["get"]),
    ]


def namespace_rules(spec: JobSpec) -> list[Manifest]:
    """Reads inside the namespace: Issuers, and the pull Secrets by name (never all Secrets)."""
    rules = [_rule("cert-manager.io", "issuers", ["get"])]
    if spec.pull_secrets:
        rules.append(_rule("", "secrets", ["get"], list(spec.pull_secrets)))
    return rules


def _binding(spec: JobSpec, kind: str, name: str, role_kind: str) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": _meta(spec, name, namespaced=kind == "RoleBinding"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": spec.name, "namespace": spec.namespace}],
    }


def job(spec: JobSpec) -> Manifest:
    """The Job: one try, non-root, read-only root filesystem, values mounted from the Secret."""
    args = [
        "run",
        "--values",
        f"{VALUES_DIR}/{VALUES_KEY}",
        "--in-cluster",
        "--namespace",
        spec.namespace,
        *spec.run_args,
    ]
    pod: Manifest = {
        "serviceAccountName": spec.name,
        "restartPolicy": "Never",
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
                "env": [
                    {"name": "HOME", "value": "/tmp"},
                    # the node, for the report and the support bundle (downward API)
                    {
                        "name": "NODE_NAME",
                        "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                    },
                ],
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"cpu": "1", "memory": "512Mi"},
                },
                "volumeMounts": [
                    {"name": "values", "mountPath": VALUES_DIR, "readOnly": True},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            }
        ],
        "volumes": [
            {"name": "values", "secret": {"secretName": spec.values_secret, "defaultMode": 0o440}},
            {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        ],
    }
    pulls = dict.fromkeys((*spec.pull_secrets, *spec.image_pull_secrets))
    if pulls:
        pod["imagePullSecrets"] = [{"name": name} for name in pulls]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(spec, spec.name),
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": spec.ttl_seconds,
            "activeDeadlineSeconds": spec.active_deadline_seconds,
            "template": {"metadata": {"labels": labels(spec)}, "spec": pod},
        },
    }


def manifests(spec: JobSpec) -> list[Manifest]:
    """ServiceAccount, ClusterRole + binding, Role + binding, Job."""
    cluster_name = f"{spec.name}-{spec.namespace}"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(spec, spec.name)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta(spec, cluster_name, namespaced=False),
            "rules": cluster_rules(),
        },
        _binding(spec, "ClusterRoleBinding", cluster_name, "ClusterRole"),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(spec, spec.name),
            "rules": namespace_rules(spec),
        },
        _binding(spec, "RoleBinding", spec.name, "Role"),
        job(spec),
    ]


def instructions(spec: JobSpec) -> list[str]:
    """The steps around the manifests, as the lines of a comment block."""
    ns, name = spec.namespace, spec.name
    return [
        f"sense-preflight {__version__}: run the preflight as a Job in namespace {ns}.",
        "1. Put the values into a Secret (never into this file):",
        f"   kubectl create namespace {ns} --dry-run=client -o yaml | kubectl apply -f -",
        f"   kubectl -n {ns} create secret generic {spec.values_secret} --from-file={VALUES_KEY}",
        "2. Apply this file (delete an earlier run first: kubectl delete -f THIS_FILE):",
        "   kubectl apply -f THIS_FILE",
        "3. Wait for it (a failing preflight fails the Job: then wait for condition=failed):",
        f"   kubectl -n {ns} wait --for=condition=complete --timeout=15m job/{name}",
        "4. Read the report:",
        f"   kubectl -n {ns} logs job/{name}",
        "The Job's exit code is the preflight's: 0 ok, 3 a check failed, 4 warnings (--strict).",
        f"Clean up: kubectl delete -f THIS_FILE; kubectl -n {ns} delete secret "
        f"{spec.values_secret}",
    ]


def render(spec: JobSpec) -> str:
    """The instructions as a YAML comment, then the manifests as one multi-document YAML."""
    header = "".join(f"# {line}\n" for line in instructions(spec))
    body = yaml.safe_dump_all(manifests(spec), sort_keys=False, default_flow_style=False)
    return header + "---\n" + body


def pull_secret_names(given: ValuesSource) -> list[str]:
    """The names in global.imagePullSecrets of the given values (for the Job's manifests)."""
    if given.empty:
        return []
    try:
        entries = load_values(given).get("global.imagePullSecrets") or []
    except ValuesError as exc:
        fail(EXIT_BAD_INPUT, "; ".join(exc.problems))
    return [str(e.get("name") if isinstance(e, dict) else e) for e in entries]


def run_args(
    timeout: float | None, only: list[str], skip: list[str], strict: bool, read_only: bool
) -> tuple[str, ...]:
    """The `sense-preflight run` flags the Job passes on."""
    return (
        *(["--timeout", f"{timeout:g}"] if timeout else []),
        *(["--only", ",".join(only)] if only else []),
        *(["--skip", ",".join(skip)] if skip else []),
        *(["--strict"] if strict else []),
        *(["--read-only"] if read_only else []),
    )
