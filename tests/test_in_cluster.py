"""`sense-preflight in-cluster` against the fake cluster, whose kubelet runs the real
sense-preflight: the same report and exit code as `run`, every start failure in one line,
nothing left behind (also on Ctrl-C), no secret in any output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli import REPO_ROOT, CliResult, example_values, run_cli, write_values
from tests.servers._kubernetes_workloads import pod_security_violations
from tests.servers.hostile import HostileServers
from tests.servers.kubernetes import KubeCluster, namespace
from tests.servers.postgres import PostgresServer
from tests.test_gpu_probe import FAKE_PYNVML
from tests.test_kubernetes_server import kubectl, needs_kubectl
from tests.test_kubernetes_workloads import wait_for
from tests.test_postgres import database_values

IMAGE = "registry.example/axion/sense-preflight:test"
PRIVATE_IMAGE = "registry.example/private/sense-preflight:test"
RUN_LABEL = "app.kubernetes.io/name"
CREATED_KINDS = (
    "Secret",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "Job",
    "Pod",
)


def run_objects(kube: KubeCluster) -> list[str]:
    """`Kind/name` of every object of an in-cluster run still in the fake's store."""
    return [
        f"{o['kind']}/{o['metadata']['name']}"
        for o in kube.state.objects
        if o["kind"] in CREATED_KINDS
        and (o["metadata"].get("labels") or {}).get(RUN_LABEL) == "sense-preflight"
    ]


@pytest.fixture(autouse=True)
def images(kube: KubeCluster) -> Iterator[None]:
    """The registries hold the image (and a private one); after each test nothing is left."""
    kube.server.fake.workloads.settings.images.update({IMAGE: None, PRIVATE_IMAGE: "regcred"})
    yield
    assert run_objects(kube) == []
    assert all(run.done.is_set() for run in kube.server.fake.workloads.runs.values())


def values_with_postgres(server: PostgresServer) -> dict[str, Any]:
    values = example_values(filled=True)
    values["postgres"]["api"] = database_values(server)
    return values


def in_cluster(
    kube: KubeCluster,
    tmp_path: Path,
    values: dict[str, Any],
    *args: str,
    image: str = IMAGE,
    start_timeout: float = 20,
) -> CliResult:
    return run_cli(
        "in-cluster",
        write_values(tmp_path, values),
        "--kubeconfig",
        kube.write_kubeconfig(tmp_path / "kubeconfig"),
        "--image",
        image,
        "--start-timeout",
        str(start_timeout),
        *args,
        env={"HOME": str(tmp_path), "KUBECONFIG": ""},
    )


def verdicts(text: str) -> list[str]:
    """`STATUS id` of each check line of a text report (durations differ between runs)."""
    return [
        " ".join(line.split()[:2])
        for line in text.splitlines()
        if line.split()[:1] and line.split()[0] in ("PASS", "WARN", "FAIL", "SKIP")
    ]


def test_prints_the_same_report_as_run_with_the_same_exit_code(
    kube: KubeCluster, tmp_path: Path, postgres17: PostgresServer
) -> None:
    values = values_with_postgres(postgres17)
    only = ("--only", "postgres.api,kubernetes", "--timeout", "10")
    result = in_cluster(kube, tmp_path, values, *only)
    local = run_cli(
        write_values(tmp_path, values, "local.yaml"),
        *only,
        "--kubeconfig",
        kube.write_kubeconfig(tmp_path / "admin"),
        env={"HOME": str(tmp_path), "KUBECONFIG": ""},
    )
    assert result.code == local.code == 0, result.stdout + result.stderr
    assert (
        verdicts(result.stdout)
        == verdicts(local.stdout)
        == [  # the order of `sense-preflight checks`, whichever finished first
            "PASS values",
            "PASS kubernetes",
            "PASS postgres.api",
        ]
    )
    assert result.stdout.splitlines()[-1].startswith("Summary: 3 passed, 0 warnings, 0 failed")
    assert "BEGIN SENSE-PREFLIGHT REPORT" not in result.stdout  # the frame is stripped
    # It ran in the pod, as the run's own service account, under the least RBAC it created.
    sa_users = {u for _, _, u in kube.requests if u.startswith("system:serviceaccount:")}
    assert len(sa_users) == 1 and sa_users.pop().startswith(
        "system:serviceaccount:axion-sense:sense-preflight-"
    )
    assert "in-cluster: pod sense-preflight-" in result.stderr
    assert "runs on node cpu-1" in result.stderr and "removed 7 objects" in result.stderr
    assert postgres17.owner.password not in result.stdout + result.stderr
    assert postgres17.scratch_tables() == []
    # No secret in any object it created but the values Secret (base64 there, as data).
    created = kube.server.fake.workloads.created
    assert [o["kind"] for o in created if postgres17.owner.password in json.dumps(o)] == []
    (values_secret,) = [o for o in created if o["kind"] == "Secret"]
    assert values_secret["immutable"] is True and set(values_secret["data"]) == {
        "custom-values.yaml"
    }


def test_every_format_and_the_bundle_come_from_the_pods_report(
    kube: KubeCluster, tmp_path: Path, postgres17: PostgresServer
) -> None:
    values = values_with_postgres(postgres17)
    del values["postgres"]["api"]["password"]  # given with --set: it never touches a file here
    junit, bundle = tmp_path / "report.xml", tmp_path / "bundle.tar.gz"
    result = in_cluster(
        kube,
        tmp_path,
        values,
        "--set",
        f"postgres.api.password={postgres17.owner.password}",
        "--only",
        "postgres.api",
        "--format",
        "json",
        "--bundle",
        str(bundle),
    )
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert [(c["id"], c["status"]) for c in report["checks"]] == [
        ("values", "pass"),
        ("postgres.api", "pass"),
    ]
    assert report["checks"][1]["facts"]["server_version"].startswith("17.")
    with tarfile.open(bundle) as archive:
        members = {
            m.name.split("/", 1)[1]: archive.extractfile(m).read().decode()  # type: ignore[union-attr]
            for m in archive.getmembers()
        }
    environment = json.loads(members["environment.json"])
    assert environment["in_cluster"] is True and environment["node"] == "cpu-1"
    assert environment["pod"].startswith("sense-preflight-")
    assert json.loads(members["report.json"])["summary"] == report["summary"]
    secret = postgres17.owner.password
    assert all(secret not in text for text in [*members.values(), result.stdout, result.stderr])

    as_junit = in_cluster(
        kube,
        tmp_path,
        values_with_postgres(postgres17),
        "--only",
        "postgres.api",
        "--format",
        "junit",
        "-o",
        str(junit),
    )
    assert as_junit.code == 0, as_junit.stderr
    assert verdicts(as_junit.stdout) == ["PASS values", "PASS postgres.api"]  # the pod's log
    assert 'name="postgres.api"' in junit.read_text()
    # No RBAC without a cluster check: only the Secret, the ServiceAccount and the Job.
    created = [path for method, path, _ in kube.requests if method == "POST"]
    assert [p.rsplit("/", 1)[1] for p in created[-3:]] == ["serviceaccounts", "secrets", "jobs"]
    assert not any("rbac" in p for p in created)


def test_a_failing_check_exits_3_as_run_does(kube: KubeCluster, tmp_path: Path) -> None:
    result = in_cluster(
        kube, tmp_path, example_values(filled=True), "--only", "oidc", "--timeout", "3"
    )
    assert result.code == 3, result.stderr
    assert verdicts(result.stdout) == ["PASS values", "FAIL oidc"]


def test_bad_values_exit_2_without_touching_the_cluster(kube: KubeCluster, tmp_path: Path) -> None:
    values = example_values(filled=True)
    del values["postgres"]["api"]["password"]
    result = in_cluster(kube, tmp_path, values)
    assert result.code == 2
    assert "postgres.api.password: required value is missing" in result.stdout
    assert kube.requests == []


def set_tiny_nodes(kube: KubeCluster) -> None:
    for obj in kube.state.objects:
        if obj["kind"] == "Node":
            obj["status"]["allocatable"] = {**obj["status"]["allocatable"], "cpu": "50m"}


def deny_pods_by_pod_security(kube: KubeCluster) -> None:
    kube.server.fake.workloads.settings.pod_rejection = (
        'pods "{pod}" is forbidden: violates PodSecurity "restricted:latest": '
        'seccompProfile (pod or container "preflight" must set securityContext.seccompProfile.type '
        'to "RuntimeDefault" or "Localhost")'
    )


def deny_pods_by_quota(kube: KubeCluster) -> None:
    kube.server.fake.workloads.settings.pod_rejection = (
        'pods "{pod}" is forbidden: exceeded quota: compute, requested: limits.cpu=1, '
        "used: limits.cpu=4, limited: limits.cpu=4"
    )


def deny_creating_secrets(kube: KubeCluster) -> None:
    rules = [
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "delete"]},
        {"apiGroups": [""], "resources": ["serviceaccounts", "pods"], "verbs": ["*"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["*"], "verbs": ["*"]},
    ]
    kube.state.grants["kubernetes-admin"] = [(None, rule) for rule in rules]


def deny_creating_cluster_roles(kube: KubeCluster) -> None:
    rules = [
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["secrets", "serviceaccounts"], "verbs": ["*"]},
    ]
    kube.state.grants["kubernetes-admin"] = [(None, rule) for rule in rules]


START_FAILURES = {
    "image-not-found": (
        lambda kube: None,
        ["--image", "registry.example/axion/sense-preflight:nope"],
        "image registry.example/axion/sense-preflight:nope was not found in its registry — "
        "push it there",
    ),
    "pull-denied": (
        lambda kube: None,
        ["--image", PRIVATE_IMAGE],
        f"the registry denied pulling image {PRIVATE_IMAGE} (pull secrets: none) — give "
        "--image-pull-secret NAME",
    ),
    "unschedulable": (
        set_tiny_nodes,
        [],
        "the pod cannot be scheduled: 0/2 nodes are available: 2 Insufficient cpu.",
    ),
    "pod-security": (
        deny_pods_by_pod_security,
        [],
        "Pod Security admission of namespace axion-sense rejected the pod: violates PodSecurity",
    ),
    "quota": (
        deny_pods_by_quota,
        [],
        "the ResourceQuota of namespace axion-sense has no room for the pod: exceeded quota",
    ),
    "namespace-missing": (
        lambda kube: None,
        ["--namespace", "nowhere"],
        "namespace nowhere does not exist — create it (kubectl create namespace nowhere)",
    ),
    "rbac-secrets": (
        deny_creating_secrets,
        [],
        'RBAC denies User "kubernetes-admin" create on secrets in namespace axion-sense — ask for '
        "create on secrets in namespace axion-sense",
    ),
    "rbac-cluster-roles": (
        deny_creating_cluster_roles,
        ["--only", "kubernetes"],
        'RBAC denies User "kubernetes-admin" create on clusterroles.rbac.authorization.k8s.io at '
        "the cluster scope",
    ),
}


@pytest.mark.parametrize("case", list(START_FAILURES))
def test_a_start_failure_is_one_line_with_its_fix_and_nothing_is_left(
    kube: KubeCluster, tmp_path: Path, case: str
) -> None:
    arrange, args, expected = START_FAILURES[case]
    arrange(kube)
    values = example_values(filled=True)
    values["s3"]["secretKey"] = "s3-secret-7731"
    values["vision"]["enabled"] = False  # the Job's own pod (the GPU probe pod: below)
    result = in_cluster(kube, tmp_path, values, *args)
    assert result.code == 1, result.stdout + result.stderr
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert expected in error, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert "s3-secret-7731" not in result.stderr
    kube.state.grants.clear()  # the fixture's check reads the store directly


def test_admission_rejecting_the_gpu_probe_pod_is_the_same_one_line(
    kube: KubeCluster, tmp_path: Path
) -> None:
    deny_pods_by_pod_security(kube)
    result = in_cluster(kube, tmp_path, example_values(filled=True), "--only", "gpu")
    assert result.code == 1
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith(
        "error: Pod Security admission of namespace axion-sense rejected the pod: violates"
    )
    assert "removed 3 objects" in result.stderr  # the ServiceAccount and cluster RBAC; no Job


@pytest.mark.parametrize("check", ["kubernetes", "gpu"])
def test_the_pods_meet_the_restricted_pod_security_standard(
    kube: KubeCluster, tmp_path: Path, gpu_driver: Path, check: str
) -> None:
    """The Job's pod and the GPU probe pod are admitted by a namespace enforcing `restricted`
    (the fake evaluates the standard's checks on them)."""
    ns = namespace("axion-sense")
    ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "restricted"
    kube.state.objects = [o for o in kube.state.objects if o["kind"] != "Namespace"] + [ns]
    result = in_cluster(kube, tmp_path, example_values(filled=True), "--only", check)
    assert result.code == 0, result.stderr
    assert verdicts(result.stdout) == ["PASS values", f"PASS {check}"]
    specs = [
        o["spec"]["template"]["spec"] if o["kind"] == "Job" else o["spec"]
        for o in kube.server.fake.workloads.created
        if o["kind"] in ("Job", "Pod")
    ]
    assert len(specs) == (2 if check == "gpu" else 1)
    assert all(pod_security_violations(spec, "restricted") == [] for spec in specs)


def test_a_pull_secret_lets_the_private_image_be_pulled(kube: KubeCluster, tmp_path: Path) -> None:
    from tests.servers.kubernetes import secret

    kube.state.objects.append(secret("regcred"))
    result = in_cluster(
        kube,
        tmp_path,
        example_values(filled=True),
        "--only",
        "kubernetes",
        "--image-pull-secret",
        "regcred",
        image=PRIVATE_IMAGE,
    )
    assert result.code == 0, result.stderr


def test_an_unschedulable_pod_waits_while_the_autoscaler_scales_up(
    kube: KubeCluster, tmp_path: Path
) -> None:
    """With a TriggeredScaleUp Event the pod may still start: it is waited for, then the
    deadline ends the run with the last state."""
    set_tiny_nodes(kube)
    workloads = kube.server.fake.workloads
    original = workloads._schedule

    def scaling(pod: dict[str, Any]) -> str | None:
        placed = original(pod)
        workloads.event(pod, "TriggeredScaleUp", "pod triggered scale-up: [{pool 1->2 (max: 5)}]")
        return placed

    workloads._schedule = scaling  # type: ignore[method-assign]
    try:
        result = in_cluster(kube, tmp_path, example_values(filled=True), start_timeout=2)
    finally:
        workloads._schedule = original  # type: ignore[method-assign]
    assert result.code == 1
    assert "error: the pod did not start in time: Pending — raise --start-timeout" in result.stderr


def test_ctrl_c_mid_run_removes_everything_and_exits_130(
    kube: KubeCluster, tmp_path: Path, hostile: HostileServers
) -> None:
    values = example_values(filled=True)
    values["postgres"]["api"].update(host="127.0.0.1", port=hostile.hang)
    command = [
        sys.executable,
        "-m",
        "preflight",
        "in-cluster",
        str(write_values(tmp_path, values)),
        "--kubeconfig",
        str(kube.write_kubeconfig(tmp_path / "kubeconfig")),
        "--image",
        IMAGE,
        "--only",
        "postgres.api",
        "--timeout",
        "60",
    ]
    env = {**os.environ, "HOME": str(tmp_path), "KUBECONFIG": "", "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        runs = kube.server.fake.workloads.runs
        run = wait_for(lambda: next((r for r in runs.values() if r.process), None))
        time.sleep(1.0)  # the pod's checks are under way, its log followed
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "removed 3 objects" in stderr
    assert run_objects(kube) == []
    assert run.process is not None and run.process.poll() is not None  # the container stopped
    assert "Traceback" not in stderr


@needs_kubectl
def test_keep_leaves_everything_and_its_removal_commands_work(
    kube: KubeCluster, tmp_path: Path
) -> None:
    result = in_cluster(
        kube, tmp_path, example_values(filled=True), "--only", "kubernetes", "--keep"
    )
    assert result.code == 0, result.stderr
    kept = run_objects(kube)
    assert sorted(o.split("/")[0] for o in kept) == sorted(CREATED_KINDS)
    commands = [
        line.removeprefix("in-cluster:   ")
        for line in result.stderr.splitlines()
        if line.startswith("in-cluster:   kubectl ")
    ]
    assert len(commands) == 2
    config = tmp_path / "kubeconfig"
    for command in commands:
        removed = kubectl(config, tmp_path, *command.split()[1:], "--wait=false")
        assert removed.returncode == 0, removed.stderr
    assert run_objects(kube) == []


# --- the GPU probe pod -----------------------------------------------------------------------


@pytest.fixture
def gpu_driver(kube: KubeCluster, tmp_path: Path) -> Path:
    """The NVIDIA driver as the container runtime would mount it into a GPU pod: here the
    FAKE pynvml of tests/test_gpu_probe.py (NVML's calls, nvidia-ml-py's names)."""
    folder = tmp_path / "nvidia-driver"
    folder.mkdir()
    (folder / "pynvml.py").write_text(FAKE_PYNVML)
    kube.server.fake.workloads.settings.gpu_driver = folder
    return folder


def gpu_step(result: CliResult) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `gpu` check of a JSON report and its probe-pod step."""
    entry = result.check("gpu")
    steps = {s["name"]: s for s in entry["steps"]}
    assert list(steps)[-1] == "probe-pod", entry
    return entry, steps["probe-pod"]


def test_the_gpu_probe_pod_proves_the_driver_where_triton_runs(
    kube: KubeCluster, tmp_path: Path, gpu_driver: Path
) -> None:
    values = example_values(filled=True)
    values["vision"]["triton"]["nodeSelector"] = {"nvidia.com/gpu.present": "true"}
    result = in_cluster(kube, tmp_path, values, "--only", "gpu", "--format", "json")
    assert result.code == 0, result.stderr
    entry, step = gpu_step(result)
    assert step["status"] == "pass"
    assert step["detail"] == (
        "on node gpu-1: NVIDIA driver 550.54.15, CUDA 12.4, NVIDIA L4 (23034 MiB), "
        "NVIDIA A100-SXM4-80GB (81920 MiB)"
    )
    assert entry["facts"]["probe_pod"]["node"] == "gpu-1"
    assert "GPU probe pod on node gpu-1: 2 GPU(s), driver 550.54.15" in result.stderr
    # The probe pod asked for one GPU, was placed by Triton's values, ran without a token.
    probe = next(body for body in kube.server.fake.workloads.created if body["kind"] == "Pod")
    assert probe["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert probe["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert probe["spec"]["automountServiceAccountToken"] is False


def test_a_gpu_node_without_a_working_driver_fails_the_gpu_check(
    kube: KubeCluster, tmp_path: Path, gpu_driver: Path
) -> None:
    kube.server.fake.workloads.settings.broken_driver_nodes.add("gpu-1")
    result = in_cluster(
        kube, tmp_path, example_values(filled=True), "--only", "gpu", "--format", "json"
    )
    assert result.code == 3, result.stderr
    entry, step = gpu_step(result)
    assert entry["status"] == "fail" and step["status"] == "fail"
    assert step["detail"].startswith(
        "on node gpu-1, a pod given a GPU sees no working driver: no NVIDIA driver here"
    )
    assert "nvidia-uvm" in step["remediation"]


def test_a_probe_pod_that_stays_pending_gives_the_schedulers_reason(
    kube: KubeCluster, tmp_path: Path, gpu_driver: Path
) -> None:
    gpu_node = next(o for o in kube.state.objects if o["metadata"]["name"] == "gpu-1")
    gpu_node["status"]["allocatable"] = {**gpu_node["status"]["allocatable"], "memory": "64Mi"}
    result = in_cluster(
        kube, tmp_path, example_values(filled=True), "--only", "gpu", "--format", "json"
    )
    assert result.code == 3, result.stderr
    _, step = gpu_step(result)
    assert step["detail"] == (
        "a pod asking for 1 nvidia.com/gpu with Triton's tolerations, nodeSelector and affinity "
        "did not run: the pod cannot be scheduled: 0/2 nodes are available: 1 Insufficient "
        "memory, 1 Insufficient nvidia.com/gpu. preemption: 0/2 nodes are available: 2 "
        "Preemption is not helpful for scheduling."
    )
