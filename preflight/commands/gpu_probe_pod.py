"""The GPU probe pod of `sense-preflight in-cluster`: the GPU proven where Triton will run.

Allocatable `nvidia.com/gpu` on a node does not prove a working driver. With Vision on, the
in-cluster run first starts a short pod with Triton's tolerations, nodeSelector and affinity
(vision.triton) and a request of one `nvidia.com/gpu`, whose container runs `sense-preflight
gpu-probe --format json` (NVML). What it answered — or why it never ran (the scheduler's
message, an image pull) — goes to the Job as `gpu-probe.json`, and the `gpu` check makes it
its last step, `probe-pod` (checks/kubernetes/gpu.py).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from preflight.commands import job as job_manifests

GPU = "nvidia.com/gpu"
PROBE_KEY = "gpu-probe.json"
PROBE_FILE = f"{job_manifests.VALUES_DIR}/{PROBE_KEY}"
ROLE_LABEL = "sense-preflight/role"
Manifest = dict[str, Any]


def manifest(spec: job_manifests.JobSpec, triton: Mapping[str, Any]) -> Manifest:
    """The probe pod: the Job's pod (non-root, read-only root, restricted) running gpu-probe,
    asking for one GPU, placed by Triton's own scheduling values; no token, no values."""
    template = copy.deepcopy(job_manifests.job(spec)["spec"]["template"])
    pod = template["spec"]
    container = pod["containers"][0]
    resources = container["resources"]
    container.update(
        args=["gpu-probe", "--format", "json"],
        resources={
            "requests": {**resources["requests"], GPU: "1"},
            "limits": {**resources["limits"], GPU: "1"},
        },
        volumeMounts=[m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"],
    )
    pod["volumes"] = [v for v in pod["volumes"] if "emptyDir" in v]
    pod["automountServiceAccountToken"] = False
    for key in ("tolerations", "nodeSelector", "affinity"):
        if triton.get(key):
            pod[key] = copy.deepcopy(triton[key])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{spec.name}-gpu-probe",
            "namespace": spec.namespace,
            "labels": {**template["metadata"]["labels"], ROLE_LABEL: "gpu-probe"},
        },
        "spec": pod,
    }


def ran(pod: str, node: str, log: str, exit_code: int) -> dict[str, Any]:
    """The answer of a probe that ran: gpu-probe's JSON from its log."""
    start = log.find("{")
    try:
        found, _ = json.JSONDecoder().raw_decode(log[start:]) if start >= 0 else ({}, 0)
    except ValueError:
        found = {}
    if not isinstance(found, dict) or "gpus" not in found:
        found = {"gpus": [], "error": f"gpu-probe printed no report (exit code {exit_code})"}
    return {"pod": pod, "node": node, "ran": True, "gpu": found}


def not_run(pod: str, node: str, why: str) -> dict[str, Any]:
    """The answer of a probe that never ran: why (Pending, image pull, admission)."""
    return {"pod": pod, "node": node, "ran": False, "why": why}
