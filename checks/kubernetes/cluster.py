"""`kubernetes`: the cluster the chart goes into.

config → dns → tcp → tls → auth (checks/_kubernetes_api.py) → version (1.27+) → namespace →
ingress-class (when an ingress is enabled) → cert-manager and issuer (when a certificate is
enabled) → pull-secrets (when global.imagePullSecrets is set). An RBAC denial is a warning
("cannot verify …"), never a crash.
"""

from __future__ import annotations

import re
from typing import Any

from checks.kubernetes.api import CLIENTS as CLIENTS
from checks.kubernetes.api import Cluster, connect, rbac_step
from preflight.engine.check import Access, Check, Probe, StepFailed
from preflight.values.chart import pull_secret_names
from preflight.values.load import Values

MIN_VERSION = (1, 27)
#: Its checks' CPU seconds in a run, clients included (bench/; engine.forked balances by it).
CPU_S = 0.28  # the Kubernetes client's import and set-up, which gpu shares
#: cert-manager's CRDs the chart's Certificate needs (read by name).
CERT_MANAGER_CRDS = (
    "certificates.cert-manager.io",
    "issuers.cert-manager.io",
    "clusterissuers.cert-manager.io",
)
DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
#: The chart's Ingress blocks (their className is checked) and cert-manager Certificates
#: (their issuerRef).
INGRESSES = ("api.ingress", "api.ingressGrpc", "worker.ingress")
CERTIFICATES = ("api.certificate", "worker.certificate")
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"


def checks(values: Values) -> list[Check]:
    """The one `kubernetes` check."""
    return [
        Check(
            id="kubernetes",
            title="Kubernetes 1.27+: namespace, IngressClass, cert-manager, pull secrets",
            run=run,
            reads=(
                *(f"{block}.{key}" for block in INGRESSES for key in ("enabled", "className")),
                *(f"{block}.{key}" for block in CERTIFICATES for key in ("enabled", "issuerRef")),
                "global.imagePullSecrets",
            ),
            rbac=(
                Access("", "namespaces", ("get",)),
                Access("networking.k8s.io", "ingressclasses", ("list",)),
                Access(
                    "apiextensions.k8s.io", "customresourcedefinitions", ("get",), CERT_MANAGER_CRDS
                ),
                Access("cert-manager.io", "clusterissuers", ("get",)),
                Access("cert-manager.io", "issuers", ("get",), namespaced=True),
                *(
                    [Access("", "secrets", ("get",), pull_secrets, namespaced=True)]
                    if (pull_secrets := pull_secret_names(values))
                    else []
                ),
            ),
        )
    ]


def run(probe: Probe) -> None:
    """The staged check; skipped when there is no cluster to talk to."""
    with connect(probe) as cluster:
        if cluster is None:
            return
        check_version(probe, cluster)
        check_namespace(probe, cluster)
        ingresses = enabled_blocks(probe.values, INGRESSES, "className")
        if ingresses:
            check_ingress_classes(probe, cluster, ingresses)
        certificates = enabled_blocks(probe.values, CERTIFICATES, "issuerRef")
        if certificates:
            check_cert_manager(probe, cluster)
            check_issuers(probe, cluster, certificates)
        if probe.values.has("global.imagePullSecrets"):
            check_pull_secrets(probe, cluster)


def enabled_blocks(
    values: Values, blocks: tuple[str, ...], key: str
) -> list[tuple[str, dict[str, Any]]]:
    """(path, {key: value}) of each block with `enabled: true`."""
    return [
        (block, {key: values.get(f"{block}.{key}")})
        for block in blocks
        if values.enabled(f"{block}.enabled")
    ]


def check_version(probe: Probe, cluster: Cluster) -> None:
    """The server's version is 1.27 or newer."""
    with probe.step("version") as step:
        info = cluster.get("/version") or {}
        git_version = str(info.get("gitVersion", ""))
        probe.facts["server_version"] = git_version
        match = re.match(r"v?(\d+)\.(\d+)", git_version)
        if match is None:
            step.warn(
                f"cannot read the server version ({git_version!r})",
                "check that the chart supports this cluster (1.27+ needed)",
            )
            return
        if (int(match[1]), int(match[2])) < MIN_VERSION:
            raise StepFailed(
                f"Kubernetes {git_version} is older than the chart's minimum "
                f"{'.'.join(map(str, MIN_VERSION))}",
                "upgrade the cluster to Kubernetes 1.27 or newer",
            )
        step.detail = f"Kubernetes {git_version}"


def check_namespace(probe: Probe, cluster: Cluster) -> None:
    """The target namespace exists; with --create-namespace a missing one is a note that Helm
    will create it, without it Helm's install would fail, so the check fails."""
    namespace = probe.options.namespace
    with rbac_step(probe, "namespace") as step:
        found = cluster.get(f"/api/v1/namespaces/{namespace}")
        probe.facts["namespace_exists"] = found is not None
        if found:
            step.detail = f"namespace {namespace} exists"
        elif probe.options.create_namespace:
            step.detail = (
                f"namespace {namespace} does not exist yet: `helm install --create-namespace` "
                "will create it"
            )
        else:
            raise StepFailed(
                f"namespace {namespace} does not exist, and Helm creates it only with "
                "--create-namespace",
                f"add --create-namespace to the install line (and here), or create it first: "
                f"kubectl create namespace {namespace}",
            )


def check_ingress_classes(
    probe: Probe, cluster: Cluster, ingresses: list[tuple[str, dict[str, Any]]]
) -> None:
    """Each enabled ingress names an IngressClass that exists (or the cluster has a default)."""
    with rbac_step(probe, "ingress-class") as step:
        classes = cluster.items("/apis/networking.k8s.io/v1/ingressclasses")
        names = [c["metadata"]["name"] for c in classes]
        defaults = [
            c["metadata"]["name"]
            for c in classes
            if (c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"
        ]
        probe.facts["ingress_classes"] = names
        problems, used = [], set()
        for path, block in ingresses:
            wanted = block.get("className")
            if wanted and wanted not in names:
                problems.append(f"IngressClass {wanted!r} ({path}.className) does not exist")
            elif not wanted and not defaults:
                problems.append(f"{path}.className is not set and no IngressClass is the default")
            used.add(wanted or (defaults[0] if defaults else ""))
        if problems:
            raise StepFailed(
                f"{'; '.join(problems)} (the cluster has: {', '.join(names) or 'none'})",
                "install that ingress controller, or set className to an existing IngressClass",
            )
        step.detail = f"IngressClass {', '.join(sorted(used))} exists"


def check_cert_manager(probe: Probe, cluster: Cluster) -> None:
    """cert-manager's CRDs are installed."""
    with rbac_step(probe, "cert-manager") as step:
        missing = [
            name
            for name in CERT_MANAGER_CRDS
            if cluster.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            is None
        ]
        if missing:
            raise StepFailed(
                f"cert-manager is not installed: CRD {', '.join(missing)} missing",
                "install cert-manager (https://cert-manager.io/docs/installation/), or set "
                "*.certificate.enabled: false",
            )
        step.detail = "cert-manager CRDs installed"


def check_issuers(
    probe: Probe, cluster: Cluster, certificates: list[tuple[str, dict[str, Any]]]
) -> None:
    """Each enabled certificate's issuerRef (Issuer in the namespace, or ClusterIssuer) is Ready."""
    namespace = probe.options.namespace
    with rbac_step(probe, "issuer") as step:
        problems, ready = [], []
        for path, block in certificates:
            ref = block.get("issuerRef") or {}
            name, kind = ref.get("name"), ref.get("kind") or "Issuer"
            if not name:
                problems.append(f"{path}.issuerRef.name is not set")
                continue
            if kind == "ClusterIssuer":
                found = cluster.get(f"/apis/cert-manager.io/v1/clusterissuers/{name}")
                where = ""
            else:
                found = cluster.get(
                    f"/apis/cert-manager.io/v1/namespaces/{namespace}/issuers/{name}"
                )
                where = f" in namespace {namespace}"
            if found is None:
                problems.append(f"{kind} {name!r} ({path}.issuerRef) not found{where}")
            elif (reason := _not_ready(found)) is not None:
                problems.append(f"{kind} {name!r} is not Ready: {reason}")
            else:
                ready.append(f"{kind} {name}")
        if problems:
            raise StepFailed(
                "; ".join(problems),
                "create the issuer (or fix issuerRef name/kind) and wait until "
                "`kubectl get issuer,clusterissuer -A` shows it Ready",
            )
        step.detail = f"{', '.join(ready)} Ready"


def _not_ready(issuer: dict[str, Any]) -> str | None:
    """None when the Ready condition is True, else why not."""
    for condition in (issuer.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            if condition.get("status") == "True":
                return None
            return str(condition.get("message") or condition.get("reason") or "not ready")
    return "no Ready condition yet"


def check_pull_secrets(probe: Probe, cluster: Cluster) -> None:
    """Each global.imagePullSecrets entry is a dockerconfigjson Secret in the namespace."""
    namespace = probe.options.namespace
    names = pull_secret_names(probe.values)
    with rbac_step(probe, "pull-secrets") as step:
        problems = []
        for name in names:
            found = cluster.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
            if found is None:
                problems.append(f"Secret {name!r} not found in namespace {namespace}")
            elif found.get("type") != DOCKER_CONFIG_JSON:
                problems.append(
                    f"Secret {name!r} is of type {found.get('type')}, not {DOCKER_CONFIG_JSON}"
                )
        if problems:
            raise StepFailed(
                f"global.imagePullSecrets: {'; '.join(problems)}",
                f"kubectl -n {namespace} create secret docker-registry NAME "
                "--docker-server=REGISTRY --docker-username=USER --docker-password=…",
            )
        step.detail = f"pull secrets {', '.join(map(str, names))} present"
