"""The fake apiserver's writes, Jobs, Pods, logs and Events answer real clients as a cluster
does: the real kubectl (`apply`, `get`, `wait`, `logs`, `delete`) and the `kubernetes` client."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli import example_values, run_cli, write_values
from tests.servers.hostile import HostileServers
from tests.servers.kubernetes import KubeCluster
from tests.test_kubernetes_server import kubectl, needs_kubectl

IMAGE = "registry.example/axion/sense-preflight:test"


def wait_for(condition: Any, timeout: float = 30.0) -> Any:
    """Poll until condition() is truthy (the fake's controllers run in threads)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def of_kind(kube: KubeCluster, kind: str) -> list[dict[str, Any]]:
    return [o for o in kube.state.objects if o["kind"] == kind]


def applied_job(
    kube: KubeCluster, tmp_path: Path, values: dict[str, Any], *job_args: str
) -> tuple[Path, Path, str]:
    """`sense-preflight job` manifests and the values Secret, applied with the real kubectl:
    (kubeconfig, manifests file, kubectl apply's output)."""
    kube.server.fake.workloads.settings.images[IMAGE] = None
    path = write_values(tmp_path, values)
    printed = run_cli("job", "-f", path, "--image", IMAGE, *job_args)
    assert printed.code == 0, printed.stderr
    manifests = tmp_path / "job.yaml"
    manifests.write_text(printed.stdout)
    config = kube.write_kubeconfig(tmp_path / "config")
    secret = kubectl(
        config,
        tmp_path,
        "-n",
        "axion-sense",
        "create",
        "secret",
        "generic",
        "sense-preflight-values",
        f"--from-file=custom-values.yaml={path}",
    )
    assert secret.returncode == 0, secret.stderr
    applied = kubectl(config, tmp_path, "apply", "--validate=false", "-f", str(manifests))
    assert applied.returncode == 0, applied.stderr
    return config, manifests, applied.stdout


def wait_for_condition(config: Path, tmp_path: Path, condition: str) -> None:
    """`kubectl wait --for=condition=...` on the Job (a watch while it runs)."""
    waited = kubectl(
        config,
        tmp_path,
        "-n",
        "axion-sense",
        "wait",
        f"--for=condition={condition}",
        "--timeout=60s",
        "job/sense-preflight",
    )
    assert waited.returncode == 0, waited.stderr
    assert "job.batch/sense-preflight condition met" in waited.stdout


@needs_kubectl
def test_kubectl_applies_the_job_waits_for_it_reads_its_log_and_deletes_it(
    kube: KubeCluster, tmp_path: Path
) -> None:
    config, manifests, applied = applied_job(
        kube, tmp_path, example_values(filled=True), "--only", "kubernetes"
    )
    assert "job.batch/sense-preflight created" in applied
    assert "clusterrole.rbac.authorization.k8s.io/sense-preflight-axion-sense created" in applied

    wait_for_condition(config, tmp_path, "complete")

    jobs = kubectl(config, tmp_path, "-n", "axion-sense", "get", "jobs", "-o", "json")
    (job,) = json.loads(jobs.stdout)["items"]
    assert job["status"]["succeeded"] == 1

    phase = kubectl(
        config,
        tmp_path,
        "-n",
        "axion-sense",
        "get",
        "pods",
        "-l",
        "job-name=sense-preflight",
        "-o",
        "jsonpath={.items[0].status.phase} {.items[0].status.containerStatuses[0].state.terminated.exitCode}",
    )
    assert phase.stdout == "Succeeded 0", phase.stderr

    logs = kubectl(config, tmp_path, "-n", "axion-sense", "logs", "job/sense-preflight")
    assert logs.returncode == 0, logs.stderr
    # The real preflight ran in the "pod", as its service account, with only the Job's RBAC.
    assert logs.stdout.startswith("done  values: pass")  # progress, then the report
    assert "\nPASS  values" in logs.stdout
    assert "PASS  kubernetes" in logs.stdout, logs.stdout
    assert any(
        user.startswith("system:serviceaccount:axion-sense:") for _, _, user in kube.requests
    )

    events = kubectl(config, tmp_path, "-n", "axion-sense", "get", "events", "-o", "json")
    reasons = {e["reason"] for e in json.loads(events.stdout)["items"]}
    assert {"SuccessfulCreate", "Scheduled", "Pulled", "Started"} <= reasons

    deleted = kubectl(config, tmp_path, "delete", "--wait=false", "-f", str(manifests))
    assert deleted.returncode == 0, deleted.stderr
    assert 'job.batch "sense-preflight" deleted' in deleted.stdout
    # kubectl deletes with propagationPolicy=Background: the pod goes with its Job.
    assert of_kind(kube, "Job") == [] and of_kind(kube, "Pod") == []


def test_the_python_client_sees_pull_failures_events_403_and_missing_namespaces(
    kube: KubeCluster, tmp_path: Path
) -> None:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    api = config.new_client_from_config(str(kube.write_kubeconfig(tmp_path / "config")))
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pull"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "registry.example/missing:1"}],
                }
            },
        },
    }
    created = batch.create_namespaced_job("axion-sense", job)
    assert created.spec.selector.match_labels["batch.kubernetes.io/controller-uid"]

    def backing_off() -> Any:
        pods = core.list_namespaced_pod("axion-sense", label_selector="job-name=pull").items
        waiting = (
            pods
            and pods[0].status.container_statuses
            and pods[0].status.container_statuses[0].state.waiting
        )
        return waiting if waiting and waiting.reason == "ImagePullBackOff" else None

    assert wait_for(backing_off).message == 'Back-off pulling image "registry.example/missing:1"'
    (pod,) = core.list_namespaced_pod("axion-sense", label_selector="job-name=pull").items
    failed = core.list_namespaced_event(
        "axion-sense", field_selector=f"involvedObject.name={pod.metadata.name},reason=Failed"
    ).items
    assert failed[0].message.endswith("registry.example/missing:1: not found")
    with pytest.raises(ApiException) as waiting:
        core.read_namespaced_pod_log(pod.metadata.name, "axion-sense")
    assert waiting.value.status == 400
    assert "is waiting to start: trying and failing to pull image" in waiting.value.body

    batch.delete_namespaced_job("pull", "axion-sense")  # Orphan, batch/v1's default
    assert [p["metadata"]["ownerReferences"] for p in of_kind(kube, "Pod")] == [[]]

    kube.state.grants["kubernetes-admin"] = [
        (None, {"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]})
    ]
    with pytest.raises(ApiException) as denied:
        core.create_namespaced_secret(
            "axion-sense", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
        )
    assert denied.value.status == 403
    assert (
        'User "kubernetes-admin" cannot create resource "secrets" in API group "" in the '
        'namespace "axion-sense"' in json.loads(denied.value.body)["message"]
    )
    del kube.state.grants["kubernetes-admin"]
    with pytest.raises(ApiException) as missing:
        core.create_namespaced_secret(
            "nowhere", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
        )
    assert missing.value.status == 404
    assert json.loads(missing.value.body)["message"] == 'namespaces "nowhere" not found'
    core.create_namespaced_secret(
        "axion-sense",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}},
    )
    assert core.read_namespaced_secret("s", "axion-sense").data == {"k": "dg=="}
    with pytest.raises(ApiException) as exists:
        core.create_namespaced_secret(
            "axion-sense", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
        )
    assert exists.value.status == 409


def test_an_unschedulable_pod_says_why_as_the_scheduler_does(
    kube: KubeCluster, tmp_path: Path
) -> None:
    from kubernetes import client, config

    api = config.new_client_from_config(str(kube.write_kubeconfig(tmp_path / "config")))
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "big"},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "c", "image": "x:1", "resources": {"requests": {"cpu": "64"}}}
                    ],
                }
            }
        },
    }
    client.BatchV1Api(api).create_namespaced_job("axion-sense", job)
    core = client.CoreV1Api(api)

    def unscheduled() -> Any:
        pods = core.list_namespaced_pod("axion-sense").items
        conditions = (pods and pods[0].status.conditions) or []
        return next((c for c in conditions if c.type == "PodScheduled"), None)

    condition = wait_for(unscheduled)
    assert (condition.status, condition.reason) == ("False", "Unschedulable")
    assert condition.message.startswith("0/2 nodes are available: 2 Insufficient cpu.")


def test_pod_security_restricted_finds_what_a_pod_misses() -> None:
    from tests.servers._kubernetes_workloads import pod_security_violations

    spec = {
        "containers": [{"name": "c", "image": "x", "securityContext": {"privileged": True}}],
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
    }
    found = pod_security_violations(spec, "restricted")
    assert [problem.split(" (")[0] for problem in found] == [
        "privileged",
        "allowPrivilegeEscalation != false",
        "unrestricted capabilities",
        "runAsNonRoot != true",
        "seccompProfile",
        "restricted volume types",
    ]
    assert pod_security_violations(spec, "baseline") == [found[0]]


@needs_kubectl
def test_kubectl_waits_on_a_running_job_through_a_watch_and_follows_its_log(
    kube: KubeCluster, tmp_path: Path, hostile: HostileServers
) -> None:
    """The pod's check hangs until its --timeout: kubectl wait must watch the Job fail."""
    values = example_values(filled=True)
    values["postgres"]["api"].update(host="127.0.0.1", port=hostile.hang)
    job_args = ("--only", "postgres.api", "--timeout", "3")
    config, manifests, _ = applied_job(kube, tmp_path, values, *job_args)
    ns = ("-n", "axion-sense")
    wait_for_condition(config, tmp_path, "failed")
    followed = kubectl(config, tmp_path, *ns, "logs", "-f", "job/sense-preflight")
    assert "FAIL  postgres.api" in followed.stdout, followed.stdout + followed.stderr
    assert kubectl(config, tmp_path, "delete", "--wait=false", "-f", str(manifests)).returncode == 0
