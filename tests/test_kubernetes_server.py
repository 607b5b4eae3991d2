"""The fake kube-apiserver answers real clients as a kube-apiserver does (kubectl, kubernetes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.servers.kubernetes import (
    SA_DIR_ENV,
    SA_TOKEN,
    SA_USER,
    ClusterState,
    KubeCluster,
    daemonset,
    node,
    selector_matches,
)

needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")


def kubectl(kubeconfig: Path, tmp_path: Path, *args: str, stdin: str | None = None):
    """Run the real kubectl against the fake, with its discovery cache in a temp folder."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(tmp_path / "cache")}
    return subprocess.run(
        ["kubectl", *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


@needs_kubectl
def test_kubectl_lists_the_fakes_nodes(kube: KubeCluster, tmp_path: Path) -> None:
    kube.state = ClusterState(objects=[node("alpha"), node("beta", gpus=2)])
    started = time.monotonic()
    result = kubectl(kube.write_kubeconfig(tmp_path / "config"), tmp_path, "get", "nodes")
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["NAME", "alpha", "beta"]
    assert time.monotonic() - started < 10


@needs_kubectl
def test_kubectl_with_a_bad_token_gets_401(kube: KubeCluster, tmp_path: Path) -> None:
    result = kubectl(
        kube.write_kubeconfig(tmp_path / "config", token="wrong"), tmp_path, "get", "nodes"
    )
    assert result.returncode == 1
    assert "You must be logged in to the server" in result.stderr  # what kubectl says on 401


@needs_kubectl
def test_kubectl_sees_version_selectors_forbidden_and_not_found(
    kube: KubeCluster, tmp_path: Path
) -> None:
    kube.state.version = "1.26.15"
    kube.state.objects.append(daemonset("gpu-operator", "gpu-operator", desired=2, ready=1))
    config = kube.write_kubeconfig(tmp_path / "config")

    version = kubectl(config, tmp_path, "version")
    assert "Server Version: v1.26.15" in version.stdout

    gpu = kubectl(
        config, tmp_path, "get", "nodes", "-l", "nvidia.com/gpu.present=true", "-o", "name"
    )
    assert gpu.stdout.split() == ["node/gpu-1"]

    ds = kubectl(config, tmp_path, "get", "daemonsets", "-n", "gpu-operator", "-o", "name")
    assert ds.stdout.split() == ["daemonset.apps/gpu-operator"]

    missing = kubectl(config, tmp_path, "get", "node", "nope")
    assert 'Error from server (NotFound): nodes "nope" not found' in missing.stderr

    kube.state.forbidden.add("nodes")
    forbidden = kubectl(config, tmp_path, "get", "nodes")
    assert "Error from server (Forbidden)" in forbidden.stderr
    assert 'cannot list resource "nodes" in API group "" at the cluster scope' in forbidden.stderr


@needs_kubectl
def test_kubectl_client_dry_run_resolves_kinds_without_writing(
    kube: KubeCluster, tmp_path: Path
) -> None:
    manifest = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: sense-preflight, namespace: axion-sense}
---
apiVersion: batch/v1
kind: Job
metadata: {name: sense-preflight, namespace: axion-sense}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: preflight, image: example/preflight:1}]
"""
    result = kubectl(
        kube.write_kubeconfig(tmp_path / "config"),
        tmp_path,
        "apply",
        "--dry-run=client",
        "--validate=false",
        "-f",
        "-",
        stdin=manifest,
    )
    assert result.returncode == 0, result.stderr
    assert "job.batch/sense-preflight created (dry run)" in result.stdout
    assert all(method == "GET" for method, _, _ in kube.requests)


def test_python_client_in_cluster_with_lowercase_bearer(kube: KubeCluster, tmp_path: Path) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.incluster_config import InClusterConfigLoader

    env = kube.write_service_account(tmp_path / "sa")
    sa = Path(env[SA_DIR_ENV])
    configuration = client.Configuration()
    InClusterConfigLoader(
        token_filename=str(sa / "token"), cert_filename=str(sa / "ca.crt"), environ=env
    ).load_and_set(configuration)
    assert configuration.api_key["BearerToken"] == f"bearer {SA_TOKEN}"
    api = client.ApiClient(configuration)

    assert client.VersionApi(api).get_code().git_version == "v1.30.2"
    gpu_nodes = client.CoreV1Api(api).list_node(label_selector="nvidia.com/gpu.present")
    assert [n.status.allocatable["nvidia.com/gpu"] for n in gpu_nodes.items] == ["1"]
    assert kube.requests[-1] == ("GET", "/api/v1/nodes", SA_USER)
    # The typed models reject objects missing required fields: every kind deserializes.
    assert client.AppsV1Api(api).list_daemon_set_for_all_namespaces().items[0].status.number_ready
    assert len(client.CoreV1Api(api).list_namespace().items) == 3
    assert client.NetworkingV1Api(api).read_ingress_class("nginx").spec.controller

    kube.state.forbidden.add("daemonsets")
    with pytest.raises(ApiException) as denied:
        client.AppsV1Api(api).list_namespaced_daemon_set("kube-system")
    assert denied.value.status == 403
    assert (
        f'User "{SA_USER}" cannot list resource "daemonsets" in API group "apps" in the '
        'namespace "kube-system"' in json.loads(denied.value.body)["message"]
    )

    with pytest.raises(ApiException) as missing:
        client.CustomObjectsApi(api).get_cluster_custom_object(
            "cert-manager.io", "v1", "clusterissuers", "letsencrypt"
        )
    assert missing.value.status == 404  # no cert-manager CRDs → no such API group


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("a=1", True),
        ("a==1", True),
        ("a!=1", False),
        ("a", True),
        ("!a", False),
        ("a in (1,2),b", True),
        ("a notin (1)", False),
        ("a=1,c", False),
        ("", True),
    ],
)
def test_label_selectors(selector: str, expected: bool) -> None:
    assert selector_matches(selector, {"a": "1", "b": ""}) is expected


def test_bad_label_selector_is_a_400_status(kube: KubeCluster) -> None:
    code, body = kube.server.fake.get("/api/v1/nodes", {"labelSelector": "a in 1"}, "admin")
    assert (code, body["kind"], body["reason"]) == (400, "Status", "BadRequest")
