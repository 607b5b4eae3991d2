"""The `gpu` check through the real CLI, against the fake kube-apiserver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from checks.kubernetes.gpu import tolerates
from tests.cli import example_values
from tests.servers.kubernetes import (
    GFD_LABELS,
    ClusterState,
    KubeCluster,
    daemonset,
    namespace,
    node,
    run_preflight,
)

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
PLUGIN = daemonset("nvidia-device-plugin-daemonset")


def _triton(**settings: Any) -> dict[str, Any]:
    values = example_values()
    values["vision"]["triton"].update(settings)
    return values


def _cluster(*objects: dict[str, Any]) -> ClusterState:
    return ClusterState(objects=[namespace("axion-sense"), node("cpu-1"), *objects])


def test_gpu_node_with_plugin_passes_with_gfd_facts(kube: KubeCluster, tmp_path: Path) -> None:
    result = run_preflight(kube, tmp_path, "gpu")
    check = result.check("gpu")
    assert (result.code, check["status"]) == (0, "pass")
    assert [s["name"] for s in check["steps"]][-3:] == ["nodes", "device-plugin", "scheduling"]
    assert check["message"] == "Triton fits on gpu-1"
    assert check["facts"]["gpu_nodes"] == [
        {
            "node": "gpu-1",
            "allocatable": 1,
            "product": "NVIDIA-L4",
            "memory_mib": "23034",
            "count": "1",
            "driver": "550.54.15",
            "cuda": "12.4",
        }
    ]
    assert check["facts"]["device_plugins"] == {
        "kube-system/nvidia-device-plugin-daemonset": [1, 1]
    }


def test_no_gpu_node_fails_naming_the_device_plugin(kube: KubeCluster, tmp_path: Path) -> None:
    kube.state = _cluster(node("gpu-1", labels={"nvidia.com/gpu.present": "true"}), PLUGIN)
    result = run_preflight(kube, tmp_path, "gpu")
    step = result.failed_step("gpu")
    assert (result.code, step["name"]) == (3, "nodes")
    assert step["detail"].startswith("no node has allocatable nvidia.com/gpu (2 nodes checked)")
    assert "gpu-1 carry GPU labels but advertise none" in step["detail"]
    assert "NVIDIA device plugin (or the NVIDIA GPU Operator)" in step["remediation"]


def test_gpu_nodes_tainted_and_not_tolerated_fail_naming_the_taint(
    kube: KubeCluster, tmp_path: Path
) -> None:
    kube.state = _cluster(node("gpu-1", gpus=1, taints=[GPU_TAINT]), PLUGIN)
    result = run_preflight(kube, tmp_path, "gpu")
    step = result.failed_step("gpu")
    assert step["name"] == "scheduling"
    assert step["detail"] == (
        "Triton would stay Pending: gpu-1: taint nvidia.com/gpu=present:NoSchedule not "
        "tolerated by vision.triton.tolerations"
    )
    assert "vision.triton.tolerations" in step["remediation"]


@pytest.mark.parametrize(
    "toleration",
    [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present"},
        {"operator": "Exists"},
    ],
)
def test_tolerated_taint_passes(kube: KubeCluster, tmp_path: Path, toleration: dict) -> None:
    kube.state = _cluster(node("gpu-1", gpus=1, taints=[GPU_TAINT]), PLUGIN)
    result = run_preflight(kube, tmp_path, "gpu", values=_triton(tolerations=[toleration]))
    assert result.check("gpu")["status"] == "pass", result.stdout


def test_node_selector_selecting_no_gpu_node_fails(kube: KubeCluster, tmp_path: Path) -> None:
    result = run_preflight(kube, tmp_path, "gpu", values=_triton(nodeSelector={"pool": "a100"}))
    step = result.failed_step("gpu")
    assert step["name"] == "scheduling"
    assert "gpu-1: label pool=a100 (vision.triton.nodeSelector) not on the node" in step["detail"]


def test_required_affinity_selects_among_gpu_nodes(kube: KubeCluster, tmp_path: Path) -> None:
    kube.state = _cluster(
        node("gpu-a", gpus=1, labels={**GFD_LABELS, "nvidia.com/gpu.memory": "81920"}),
        node("gpu-b", gpus=2, labels=GFD_LABELS),
        PLUGIN,
    )
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "nvidia.com/gpu.memory", "operator": "Gt", "values": ["40000"]}
                        ]
                    }
                ]
            }
        }
    }
    fits = run_preflight(kube, tmp_path, "gpu", values=_triton(affinity=affinity))
    assert fits.check("gpu")["message"] == "Triton fits on gpu-a"

    two_gpus = _triton(affinity=affinity, resources={"limits": {"nvidia.com/gpu": 2}})
    pending = run_preflight(kube, tmp_path, "gpu", values=two_gpus)
    detail = pending.failed_step("gpu")["detail"]
    assert "gpu-a: offers 1 nvidia.com/gpu, Triton asks for 2" in detail
    assert "gpu-b: vision.triton.affinity (required node affinity) does not select it" in detail


def test_device_plugin_missing_is_a_warning(kube: KubeCluster, tmp_path: Path) -> None:
    kube.state = _cluster(node("gpu-1", gpus=1))
    result = run_preflight(kube, tmp_path, "gpu")
    check = result.check("gpu")
    assert (result.code, check["status"]) == (0, "warn")
    assert check["message"].startswith(
        "device-plugin: no NVIDIA device-plugin or GPU Operator DaemonSet found"
    )


def test_device_plugin_not_ready_fails(kube: KubeCluster, tmp_path: Path) -> None:
    operator_plugin = daemonset(
        "nvidia-device-plugin-daemonset", "gpu-operator", desired=2, ready=1
    )
    kube.state = _cluster(node("gpu-1", gpus=1), operator_plugin)
    result = run_preflight(kube, tmp_path, "gpu")
    step = result.failed_step("gpu")
    assert step["name"] == "device-plugin"
    assert step["detail"] == (
        "device plugin not ready: gpu-operator/nvidia-device-plugin-daemonset 1/2 pods ready"
    )


def test_forbidden_nodes_is_a_warning(kube: KubeCluster, tmp_path: Path) -> None:
    kube.state.forbidden.add("nodes")
    result = run_preflight(kube, tmp_path, "gpu")
    check = result.check("gpu")
    assert (result.code, check["status"]) == (0, "warn")
    assert check["message"] == "nodes: cannot verify: the service account lacks list on nodes"
    assert "ClusterRole printed by `sense-preflight job`" in check["remediation"]


def test_vision_disabled_skips(kube: KubeCluster, tmp_path: Path) -> None:
    values = example_values()
    values["vision"] = {"enabled": False}
    result = run_preflight(kube, tmp_path, "gpu", values=values)
    assert result.check("gpu")["status"] == "skip"
    assert "vision.enabled: false" in result.check("gpu")["message"]
    assert kube.requests == []


@pytest.mark.parametrize(
    ("toleration", "expected"),
    [
        ({"key": "nvidia.com/gpu", "operator": "Exists"}, True),
        ({"key": "nvidia.com/gpu", "value": "other"}, False),
        ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"key": "other", "operator": "Exists"}, False),
        ({"effect": "NoSchedule", "operator": "Exists"}, True),
        ({"operator": "Equal"}, False),
    ],
)
def test_toleration_semantics(toleration: dict, expected: bool) -> None:
    assert tolerates(toleration, GPU_TAINT) is expected
