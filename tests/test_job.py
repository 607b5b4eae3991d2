"""`sense-preflight job`: valid manifests, no secret in them, RBAC exactly what the checks read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from preflight.report.redact import find_secrets
from tests.cli import example_values, run_cli, write_values
from tests.servers.kubernetes import (
    KubeCluster,
    cert_manager_crds,
    ingress_class,
    issuer,
    run_preflight,
    secret,
)

MODELS = {
    "ServiceAccount": "V1ServiceAccount",
    "ClusterRole": "V1ClusterRole",
    "ClusterRoleBinding": "V1ClusterRoleBinding",
    "Role": "V1Role",
    "RoleBinding": "V1RoleBinding",
    "Job": "V1Job",
}


def full_values() -> dict[str, Any]:
    """Values that make every read of both checks happen, with recognisable secrets."""
    values = example_values()
    values["global"] = {"imagePullSecrets": [{"name": "registry-creds"}]}
    values["api"]["ingress"] = {"enabled": True, "className": "nginx", "hosts": [{"host": "a"}]}
    values["api"]["certificate"] = {
        "enabled": True,
        "dnsNames": ["a"],
        "issuerRef": {"name": "ca", "kind": "Issuer"},
    }
    values["worker"]["certificate"] = {
        "enabled": True,
        "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"},
    }
    values["postgres"]["api"]["password"] = "pg-secret-4471"
    values["s3"]["secretKey"] = "s3-secret-9930"
    return values


def job_documents(tmp_path: Path, *args: str) -> tuple[str, list[dict[str, Any]]]:
    result = run_cli("job", "-f", write_values(tmp_path, full_values()), *args)
    assert result.code == 0, result.stderr
    return result.stdout, [d for d in yaml.safe_load_all(result.stdout) if d]


def test_the_oidc_scope_reaches_the_job(tmp_path: Path) -> None:
    _, docs = job_documents(tmp_path, "--oidc-scope", "api://sense/.default")
    args = docs[-1]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[-2:] == ["--oidc-scope", "api://sense/.default"]


def test_every_object_is_valid_for_its_kind(tmp_path: Path) -> None:
    from kubernetes.client import ApiClient

    _, docs = job_documents(tmp_path)
    assert [d["kind"] for d in docs] == list(MODELS)
    api = ApiClient()
    for doc in docs:
        # The client's models require the mandatory fields; a round trip drops unknown ones.
        model = api.deserialize(SimpleNamespace(data=json.dumps(doc)), MODELS[doc["kind"]])
        assert api.sanitize_for_serialization(model) == doc, doc["kind"]


def test_job_runs_once_non_root_read_only_with_values_from_the_secret(tmp_path: Path) -> None:
    _, docs = job_documents(
        tmp_path,
        "--namespace",
        "sense",
        "--image",
        "reg.example/pf:1",
        "--timeout",
        "20",
        "--only",
        "kubernetes,gpu",
    )
    job = docs[-1]
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert set(container["resources"]) == {"requests", "limits"}
    assert container["image"] == "reg.example/pf:1"
    assert container["args"] == [
        "run",
        "--values",
        "/etc/sense-preflight/custom-values.yaml",
        "--in-cluster",
        "--namespace",
        "sense",
        "--timeout",
        "20",
        "--only",
        "kubernetes,gpu",
    ]
    assert {
        "name": "values",
        "secret": {"secretName": "sense-preflight-values", "defaultMode": 0o440},
    } in pod["volumes"]
    assert pod["imagePullSecrets"] == [{"name": "registry-creds"}]
    assert all(d["metadata"].get("namespace", "sense") == "sense" for d in docs)


def test_no_secret_value_in_the_output_and_the_steps_are_printed(tmp_path: Path) -> None:
    text, _ = job_documents(tmp_path)
    secrets = find_secrets(full_values())
    assert {"pg-secret-4471", "s3-secret-9930"} <= secrets
    assert not [s for s in secrets if s in text]
    assert "create secret generic sense-preflight-values --from-file=custom-values.yaml" in text
    assert "wait --for=condition=complete" in text
    assert "logs job/sense-preflight" in text


def _grants(docs: list[dict[str, Any]]) -> dict[str, list[tuple[str | None, dict[str, Any]]]]:
    """The fake's RBAC from the printed Roles and their bindings."""
    roles = {(d["kind"], d["metadata"]["name"]): d for d in docs if "rules" in d}
    grants: dict[str, list[tuple[str | None, dict[str, Any]]]] = {}
    for binding in (d for d in docs if "roleRef" in d):
        role = roles[(binding["roleRef"]["kind"], binding["roleRef"]["name"])]
        for subject in binding["subjects"]:
            user = f"system:serviceaccount:{subject['namespace']}:{subject['name']}"
            scope = role["metadata"].get("namespace")
            grants.setdefault(user, []).extend((scope, rule) for rule in role["rules"])
    return grants


def _in_cluster(kube: KubeCluster, tmp_path: Path, grants: dict) -> dict[str, str]:
    """Run both checks as the Job's service account; {check id: status}."""
    kube.state.grants = grants
    env = kube.write_service_account(tmp_path / "sa")
    result = run_preflight(
        kube,
        tmp_path,
        "kubernetes,gpu",
        "--in-cluster",
        values=full_values(),
        kubeconfig=False,
        env=env,
    )
    return {c["id"]: c["status"] for c in result.report["checks"] if c["id"] != "values"}


def test_rbac_grants_exactly_what_the_checks_read(kube: KubeCluster, tmp_path: Path) -> None:
    _, docs = job_documents(tmp_path)
    kube.state.objects += [
        *cert_manager_crds(),
        issuer("ca"),
        issuer("letsencrypt", None),
        secret("registry-creds"),
        ingress_class("nginx"),
    ]
    grants = _grants(docs)
    assert _in_cluster(kube, tmp_path, grants) == {"kubernetes": "pass", "gpu": "pass"}

    # Every rule is needed: without any one of them, a check says it cannot verify.
    ((user, rules),) = grants.items()
    for index in range(len(rules)):
        fewer = {user: rules[:index] + rules[index + 1 :]}
        statuses = _in_cluster(kube, tmp_path, fewer)
        assert "warn" in statuses.values(), rules[index]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kubectl_client_dry_run_accepts_the_output(kube: KubeCluster, tmp_path: Path) -> None:
    text, docs = job_documents(tmp_path)
    env = {
        **os.environ,
        "KUBECONFIG": str(kube.write_kubeconfig(tmp_path / "config")),
        "KUBECACHEDIR": str(tmp_path / "cache"),
    }
    result = subprocess.run(
        ["kubectl", "apply", "--dry-run=client", "--validate=false", "-f", "-"],
        input=text,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    created = [line for line in result.stdout.splitlines() if line.endswith("created (dry run)")]
    assert len(created) == len(docs)
    assert "job.batch/sense-preflight created (dry run)" in created
