"""`gpu`: nodes where NVIDIA Triton (vision.triton) can get a GPU. Only while Vision is enabled.

config → dns → tcp → tls → auth (checks/_kubernetes_api.py) → nodes (allocatable
nvidia.com/gpu ≥ 1, facts from the GPU Feature Discovery labels) → device-plugin (an NVIDIA
device-plugin / GPU Operator DaemonSet present and ready) → scheduling (Triton's tolerations,
nodeSelector and node affinity accept at least one GPU node) → probe-pod (in-cluster runs only:
what `gpu-probe` saw in a pod placed like Triton with one GPU — preflight/commands/gpu_probe_pod.py).
"""

from __future__ import annotations

import json
from typing import Any

from checks.kubernetes.api import CLIENTS as CLIENTS
from checks.kubernetes.api import Cluster, connect, rbac_step
from preflight.engine.check import Access, Check, Probe, StepFailed
from preflight.values.chart import vision_applies
from preflight.values.load import Values

GPU = "nvidia.com/gpu"
#: Its checks' CPU seconds in a run, clients included (bench/; engine.forked balances by it).
CPU_S = 0.08  # beside the Kubernetes client, which cluster's weight counts
#: Triton's values that decide where its pod may run.
TRITON_SCHEDULING = ("tolerations", "nodeSelector", "affinity", "resources")
_PLUGIN_FIX = (
    "install the NVIDIA device plugin (or the NVIDIA GPU Operator) so that GPU nodes advertise "
    "nvidia.com/gpu"
)
#: GPU Feature Discovery labels → fact names.
_GFD_FACTS = {
    "product": "nvidia.com/gpu.product",
    "memory_mib": "nvidia.com/gpu.memory",
    "count": "nvidia.com/gpu.count",
}
_GFD_VERSIONS = {
    "driver": (
        "nvidia.com/cuda.driver.major",
        "nvidia.com/cuda.driver.minor",
        "nvidia.com/cuda.driver.rev",
    ),
    "cuda": ("nvidia.com/cuda.runtime.major", "nvidia.com/cuda.runtime.minor"),
}


def applies(values: Values) -> str | None:
    """Only while Vision (and so Triton) is enabled."""
    reason = vision_applies(values)
    return None if reason is None else f"{reason}: no Triton, no GPU needed"


def checks(values: Values) -> list[Check]:
    """The one `gpu` check."""
    return [
        Check(
            id="gpu",
            title="GPU nodes for Triton: nvidia.com/gpu, device plugin, taints and selectors",
            run=run,
            reads=(
                "vision.enabled",
                *(f"vision.triton.{key}" for key in TRITON_SCHEDULING),
            ),
            applies=applies,
            rbac=(Access("", "nodes", ("list",)), Access("apps", "daemonsets", ("list",))),
        )
    ]


def run(probe: Probe) -> None:
    """The staged check; skipped when there is no cluster to talk to."""
    with connect(probe) as cluster:
        if cluster is None:
            return
        gpu_nodes = check_nodes(probe, cluster)
        if gpu_nodes is None:
            return
        check_device_plugin(probe, cluster)
        check_scheduling(probe, gpu_nodes)
        check_probe_pod(probe)


def allocatable_gpus(node: dict[str, Any]) -> int:
    """The node's allocatable nvidia.com/gpu (0 when it has none)."""
    value = ((node.get("status") or {}).get("allocatable") or {}).get(GPU, "0")
    try:
        return int(value)
    except ValueError:
        return 0


def check_nodes(probe: Probe, cluster: Cluster) -> list[dict[str, Any]] | None:
    """The nodes with allocatable nvidia.com/gpu; None when RBAC hides the nodes."""
    gpu_nodes: list[dict[str, Any]] | None = None
    with rbac_step(probe, "nodes") as step:
        nodes = cluster.items("/api/v1/nodes")
        gpu_nodes = [n for n in nodes if allocatable_gpus(n) >= 1]
        probe.facts["gpu_nodes"] = [gpu_facts(n) for n in gpu_nodes]
        if not gpu_nodes:
            labelled = [
                n["metadata"]["name"]
                for n in nodes
                if (n["metadata"].get("labels") or {}).get("nvidia.com/gpu.present") == "true"
            ]
            hint = (
                f"; {', '.join(labelled)} carry GPU labels but advertise none: the device "
                "plugin is not running there"
                if labelled
                else ""
            )
            raise StepFailed(
                f"no node has allocatable {GPU} ({len(nodes)} nodes checked){hint}", _PLUGIN_FIX
            )
        total = sum(allocatable_gpus(n) for n in gpu_nodes)
        step.detail = f"{len(gpu_nodes)} GPU node(s), {total} allocatable {GPU}"
    return gpu_nodes


def gpu_facts(node: dict[str, Any]) -> dict[str, Any]:
    """What the node says about its GPUs: count, and GPU Feature Discovery labels if present."""
    labels = node["metadata"].get("labels") or {}
    facts: dict[str, Any] = {
        "node": node["metadata"]["name"],
        "allocatable": allocatable_gpus(node),
    }
    facts.update({name: labels[label] for name, label in _GFD_FACTS.items() if label in labels})
    for name, parts in _GFD_VERSIONS.items():
        if all(part in labels for part in parts):
            facts[name] = ".".join(labels[part] for part in parts)
    return facts


def check_device_plugin(probe: Probe, cluster: Cluster) -> None:
    """An NVIDIA device-plugin (or GPU Operator) DaemonSet is present and ready."""
    with rbac_step(probe, "device-plugin") as step:
        plugins = [
            ds
            for ds in cluster.items("/apis/apps/v1/daemonsets")
            if "nvidia" in ds["metadata"]["name"] and "device-plugin" in ds["metadata"]["name"]
        ]
        if not plugins:
            step.warn(
                "no NVIDIA device-plugin or GPU Operator DaemonSet found (the GPUs are "
                "advertised by something else?)",
                _PLUGIN_FIX,
            )
            return
        states = {
            f"{ds['metadata']['namespace']}/{ds['metadata']['name']}": _pods(ds) for ds in plugins
        }
        probe.facts["device_plugins"] = states
        if not any(ready >= desired > 0 for ready, desired in states.values()):
            raise StepFailed(
                "device plugin not ready: "
                + ", ".join(
                    f"{name} {ready}/{desired} pods ready"
                    for name, (ready, desired) in states.items()
                ),
                "see `kubectl -n NAMESPACE describe daemonset NAME` and its pods' logs",
            )
        step.detail = ", ".join(f"{name} ready" for name in states)


def _pods(daemonset: dict[str, Any]) -> tuple[int, int]:
    """(ready, desired) pods of a DaemonSet."""
    status = daemonset.get("status") or {}
    return int(status.get("numberReady") or 0), int(status.get("desiredNumberScheduled") or 0)


def check_scheduling(probe: Probe, gpu_nodes: list[dict[str, Any]]) -> None:
    """Triton's tolerations, nodeSelector, affinity and GPU request fit at least one GPU node."""
    triton = {key: probe.values.get(f"vision.triton.{key}") for key in TRITON_SCHEDULING}
    with probe.step("scheduling") as step:
        reasons = {n["metadata"]["name"]: why_not_scheduled(n, triton) for n in gpu_nodes}
        fits = [name for name, why in reasons.items() if not why]
        if not fits:
            raise StepFailed(
                "Triton would stay Pending: "
                + "; ".join(f"{name}: {', '.join(why)}" for name, why in reasons.items()),
                "add tolerations for those taints to vision.triton.tolerations, or make "
                "vision.triton.nodeSelector / affinity select a GPU node",
            )
        step.detail = f"Triton fits on {', '.join(fits)}"


def check_probe_pod(probe: Probe) -> None:
    """The GPU probe pod's answer (given by `sense-preflight in-cluster`): a pod placed like
    Triton got a GPU and NVML saw a working driver there."""
    path = probe.options.gpu_probe
    if path is None:
        return
    with probe.step("probe-pod") as step:
        try:
            answer = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise StepFailed(
                f"cannot read the GPU probe pod's answer ({path}): {exc}",
                "run it again with sense-preflight in-cluster",
            ) from None
        node = answer.get("node") or "no node"
        if not answer.get("ran"):
            raise StepFailed(
                f"a pod asking for 1 {GPU} with Triton's tolerations, nodeSelector and affinity "
                f"did not run: {answer.get('why')}",
                "make a GPU free on a node Triton's vision.triton values select (or fix what "
                "the message names); Triton would not start either",
            )
        seen = answer.get("gpu") or {}
        if seen.get("error") or not seen.get("gpus"):
            raise StepFailed(
                f"on node {node}, a pod given a GPU sees no working driver: "
                f"{seen.get('error') or 'no GPU'}",
                f"check the NVIDIA driver on {node} (nvidia-smi; the GPU Operator's validator; "
                "the nvidia-uvm module loaded)",
            )
        gpus = seen["gpus"]
        probe.facts["probe_pod"] = {
            "node": node,
            "driver": seen.get("driver"),
            "cuda": seen.get("cuda"),
            "gpus": [{"name": g.get("name"), "memory_mib": g.get("memory_mib")} for g in gpus],
        }
        step.detail = f"on node {node}: NVIDIA driver {seen.get('driver')}, CUDA " + (
            f"{seen.get('cuda')}, "
            + ", ".join(f"{g.get('name')} ({g.get('memory_mib')} MiB)" for g in gpus)
        )


def why_not_scheduled(node: dict[str, Any], triton: dict[str, Any]) -> list[str]:
    """Why the scheduler would not put a Triton pod on this node (empty: it would)."""
    labels = node["metadata"].get("labels") or {}
    reasons = []
    if (node.get("spec") or {}).get("unschedulable"):
        reasons.append("node is cordoned")
    wanted = _requested_gpus(triton)
    if allocatable_gpus(node) < wanted:
        reasons.append(f"offers {allocatable_gpus(node)} {GPU}, Triton asks for {wanted}")
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not any(
            tolerates(t, taint) for t in triton.get("tolerations") or []
        ):
            reasons.append(f"taint {_taint_text(taint)} not tolerated by vision.triton.tolerations")
    for key, value in (triton.get("nodeSelector") or {}).items():
        if labels.get(key) != str(value):
            reasons.append(f"label {key}={value} (vision.triton.nodeSelector) not on the node")
    terms = (
        ((triton.get("affinity") or {}).get("nodeAffinity") or {})
        .get("requiredDuringSchedulingIgnoredDuringExecution", {})
        .get("nodeSelectorTerms")
    )
    if terms and not any(_term_matches(term, node) for term in terms):
        reasons.append("vision.triton.affinity (required node affinity) does not select it")
    return reasons


def _requested_gpus(triton: dict[str, Any]) -> int:
    """The GPUs Triton's pod asks for (its resources.limits, else 1)."""
    resources = triton.get("resources") or {}
    for part in ("limits", "requests"):
        value = (resources.get(part) or {}).get(GPU)
        if value is not None:
            return int(value)
    return 1


def tolerates(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
    """Kubernetes' toleration matching (core/v1 Toleration.ToleratesTaint)."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    operator = toleration.get("operator") or "Equal"
    if not toleration.get("key"):
        return operator == "Exists"
    if toleration["key"] != taint.get("key"):
        return False
    return operator == "Exists" or str(toleration.get("value") or "") == str(
        taint.get("value") or ""
    )


def _taint_text(taint: dict[str, Any]) -> str:
    value = f"={taint['value']}" if taint.get("value") else ""
    return f"{taint.get('key')}{value}:{taint.get('effect')}"


def _term_matches(term: dict[str, Any], node: dict[str, Any]) -> bool:
    """A nodeSelectorTerm: all its matchExpressions (labels) and matchFields (name) hold."""
    labels = node["metadata"].get("labels") or {}
    fields = {"metadata.name": node["metadata"]["name"]}
    return all(_expression_holds(e, labels) for e in term.get("matchExpressions") or []) and all(
        _expression_holds(e, fields) for e in term.get("matchFields") or []
    )


def _expression_holds(expression: dict[str, Any], labels: dict[str, str]) -> bool:
    """One NodeSelectorRequirement: In, NotIn, Exists, DoesNotExist, Gt, Lt."""
    key, operator = expression.get("key", ""), expression.get("operator", "")
    values = [str(v) for v in expression.get("values") or []]
    value = labels.get(key)
    if operator in ("Gt", "Lt"):
        try:
            number, bound = int(value or ""), int(values[0])
        except (ValueError, IndexError):
            return False
        return number > bound if operator == "Gt" else number < bound
    return {
        "In": value in values,
        "NotIn": value not in values,
        "Exists": value is not None,
        "DoesNotExist": value is None,
    }.get(operator, False)
