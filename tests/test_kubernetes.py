"""The `kubernetes` check through the real CLI, against the fake kube-apiserver."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.cli import example_values, run_cli, write_values
from tests.servers.hostile import HostileServers
from tests.servers.kubernetes import (
    SA_TOKEN,
    SA_USER,
    TOKEN,
    KubeCluster,
    cert_manager_crds,
    issuer,
    run_preflight,
    secret,
)


def test_healthy_cluster_passes_with_every_layer(kube: KubeCluster, tmp_path: Path) -> None:
    result = run_preflight(kube, tmp_path, "kubernetes")
    check = result.check("kubernetes")
    assert result.code == 0, result.stdout
    assert check["status"] == "pass"
    assert [s["name"] for s in check["steps"]] == [
        "config",
        "dns",
        "tcp",
        "tls",
        "auth",
        "version",
        "namespace",
    ]
    assert check["facts"]["server_version"] == "v1.30.2"
    assert check["facts"]["cluster_server"] == kube.server.url
    assert "context fake" in check["facts"]["cluster_source"]
    assert TOKEN not in result.stdout + result.stderr


def test_text_report_names_the_version(kube: KubeCluster, tmp_path: Path) -> None:
    values = write_values(tmp_path, example_values())
    config = kube.write_kubeconfig(tmp_path / "kubeconfig")
    result = run_cli(
        values, "--only", "kubernetes", "--kubeconfig", config, env={"HOME": str(tmp_path)}
    )
    assert result.code == 0, result.stdout
    assert "kubernetes" in result.stdout and "namespace axion-sense exists" in result.stdout


@pytest.mark.parametrize(
    ("version", "code", "status"), [("1.26.15", 3, "fail"), ("1.30.2", 0, "pass")]
)
def test_version_gate(
    kube: KubeCluster, tmp_path: Path, version: str, code: int, status: str
) -> None:
    kube.state.version = version
    result = run_preflight(kube, tmp_path, "kubernetes")
    assert (result.code, result.check("kubernetes")["status"]) == (code, status)
    if status == "fail":
        step = result.failed_step("kubernetes")
        assert step["name"] == "version"
        assert "v1.26.15 is older than the chart's minimum 1.27" in step["detail"]
        assert "upgrade" in result.check("kubernetes")["remediation"]


def test_missing_namespace_is_a_note_with_create_namespace(
    kube: KubeCluster, tmp_path: Path
) -> None:
    result = run_preflight(kube, tmp_path, "kubernetes", "-n", "sense-new", "--create-namespace")
    check = result.check("kubernetes")
    assert (result.code, check["status"]) == (0, "pass")
    assert "namespace sense-new does not exist yet" in check["message"]
    assert "--create-namespace" in check["message"]
    assert check["facts"]["namespace_exists"] is False


def test_missing_namespace_fails_without_create_namespace(
    kube: KubeCluster, tmp_path: Path
) -> None:
    result = run_preflight(kube, tmp_path, "kubernetes", "--namespace", "sense-new")
    step = result.failed_step("kubernetes")
    assert result.code == 3
    assert step["name"] == "namespace"
    assert "namespace sense-new does not exist" in step["detail"]
    assert "--create-namespace" in result.check("kubernetes")["remediation"]
    assert "kubectl create namespace sense-new" in result.check("kubernetes")["remediation"]


def _with_ingress(class_name: str) -> dict:
    values = example_values()
    values["api"]["ingress"] = {
        "enabled": True,
        "className": class_name,
        "hosts": [{"host": "api.example.com"}],
    }
    values["api"]["ingressGrpc"] = {
        "enabled": True,
        "className": "nginx",
        "hosts": [{"host": "grpc.example.com"}],
    }
    return values


def test_ingress_class_that_exists(kube: KubeCluster, tmp_path: Path) -> None:
    result = run_preflight(kube, tmp_path, "kubernetes", values=_with_ingress("nginx"))
    check = result.check("kubernetes")
    assert check["status"] == "pass", check
    assert {"name": "ingress-class", "status": "pass"}.items() <= check["steps"][-1].items()
    assert check["facts"]["ingress_classes"] == ["nginx"]


def test_ingress_class_missing_fails_naming_it(kube: KubeCluster, tmp_path: Path) -> None:
    result = run_preflight(kube, tmp_path, "kubernetes", values=_with_ingress("traefik"))
    step = result.failed_step("kubernetes")
    assert result.code == 3
    assert step["name"] == "ingress-class"
    assert "IngressClass 'traefik' (api.ingress.className) does not exist" in step["detail"]
    assert "(the cluster has: nginx)" in step["detail"]


def _with_certificate(kind: str, name: str) -> dict:
    values = example_values()
    values["api"]["certificate"] = {
        "enabled": True,
        "dnsNames": ["api.example.com"],
        "issuerRef": {"name": name, "kind": kind},
    }
    return values


def test_certificate_without_cert_manager_fails(kube: KubeCluster, tmp_path: Path) -> None:
    result = run_preflight(
        kube, tmp_path, "kubernetes", values=_with_certificate("ClusterIssuer", "letsencrypt")
    )
    step = result.failed_step("kubernetes")
    assert step["name"] == "cert-manager"
    assert "cert-manager is not installed: CRD certificates.cert-manager.io" in step["detail"]


def test_ready_cluster_issuer_passes(kube: KubeCluster, tmp_path: Path) -> None:
    kube.state.objects += [*cert_manager_crds(), issuer("letsencrypt", None)]
    result = run_preflight(
        kube, tmp_path, "kubernetes", values=_with_certificate("ClusterIssuer", "letsencrypt")
    )
    check = result.check("kubernetes")
    assert check["status"] == "pass", check
    assert check["message"] == "ClusterIssuer letsencrypt Ready"


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        ([], "Issuer 'ca' (api.certificate.issuerRef) not found in namespace axion-sense"),
        ([issuer("ca", ready=False)], "Issuer 'ca' is not Ready: Error initializing issuer"),
        ([issuer("ca", "other-namespace")], "Issuer 'ca' (api.certificate.issuerRef) not found"),
    ],
)
def test_issuer_missing_or_not_ready_fails(
    kube: KubeCluster, tmp_path: Path, objects: list, expected: str
) -> None:
    kube.state.objects += [*cert_manager_crds(), *objects]
    result = run_preflight(kube, tmp_path, "kubernetes", values=_with_certificate("Issuer", "ca"))
    step = result.failed_step("kubernetes")
    assert step["name"] == "issuer"
    assert expected in step["detail"]


def _with_pull_secrets(*names: str) -> dict:
    values = example_values(filled=True)
    values["global"] = {"imagePullSecrets": [{"name": n} for n in names]}
    return values


def test_pull_secrets_present_and_never_printed(kube: KubeCluster, tmp_path: Path) -> None:
    password = "registry-pass-ee81"
    kube.state.objects.append(
        secret(
            "registry-creds",
            data={".dockerconfigjson": f'{{"auths":{{"r":{{"password":"{password}"}}}}}}'},
        )
    )
    result = run_preflight(
        kube, tmp_path, "kubernetes", values=_with_pull_secrets("registry-creds")
    )
    assert result.check("kubernetes")["status"] == "pass", result.stdout
    assert result.check("kubernetes")["message"] == "pull secrets registry-creds present"
    assert password not in result.stdout + result.stderr


def test_pull_secret_missing_or_of_the_wrong_type_fails(kube: KubeCluster, tmp_path: Path) -> None:
    kube.state.objects.append(secret("plain", type_="Opaque", data={"k": "v"}))
    result = run_preflight(
        kube, tmp_path, "kubernetes", values=_with_pull_secrets("plain", "absent")
    )
    step = result.failed_step("kubernetes")
    assert step["name"] == "pull-secrets"
    assert "Secret 'plain' is of type Opaque, not kubernetes.io/dockerconfigjson" in step["detail"]
    assert "Secret 'absent' not found in namespace axion-sense" in step["detail"]
    assert "create secret docker-registry" in result.check("kubernetes")["remediation"]


def test_rbac_denial_is_a_warning_that_names_the_right(kube: KubeCluster, tmp_path: Path) -> None:
    kube.state.forbidden.add("secrets")
    result = run_preflight(kube, tmp_path, "kubernetes", values=_with_pull_secrets("x"))
    check = result.check("kubernetes")
    assert result.code == 0
    assert check["status"] == "warn"
    assert check["message"] == (
        "pull-secrets: cannot verify: the service account lacks get on secrets "
        "in namespace axion-sense"
    )
    assert (
        run_preflight(kube, tmp_path, "kubernetes", "--strict", values=_with_pull_secrets("x")).code
        == 4
    )


def test_bad_token_fails_auth_with_401(kube: KubeCluster, tmp_path: Path) -> None:
    kube.state.tokens = {}
    result = run_preflight(kube, tmp_path, "kubernetes")
    step = result.failed_step("kubernetes")
    assert (result.code, step["name"]) == (3, "auth")
    assert step["detail"] == "the API server rejected the credentials (401 Unauthorized)"


def test_unknown_context_fails_listing_the_known_ones(kube: KubeCluster, tmp_path: Path) -> None:
    result = run_preflight(kube, tmp_path, "kubernetes", "--context", "prod")
    step = result.failed_step("kubernetes")
    assert step["name"] == "config"
    assert "prod" in step["detail"]
    assert result.check("kubernetes")["remediation"] == "use --context with one of: fake"


def test_laptop_without_cluster_skips(kube: KubeCluster, tmp_path: Path) -> None:
    result = run_preflight(kube, tmp_path, "kubernetes", kubeconfig=False)
    check = result.check("kubernetes")
    assert (result.code, check["status"]) == (0, "skip")
    assert check["message"].startswith("no cluster access: no in-cluster service account")


def test_in_cluster_flag_without_service_account_fails(kube: KubeCluster, tmp_path: Path) -> None:
    result = run_preflight(kube, tmp_path, "kubernetes", "--in-cluster", kubeconfig=False)
    step = result.failed_step("kubernetes")
    assert (result.code, step["name"]) == (3, "config")
    assert step["detail"].startswith("--in-cluster, but no service account is mounted")


def test_in_cluster_service_account(kube: KubeCluster, tmp_path: Path) -> None:
    env = kube.write_service_account(tmp_path / "sa")
    result = run_preflight(kube, tmp_path, "kubernetes", "--in-cluster", kubeconfig=False, env=env)
    check = result.check("kubernetes")
    assert check["status"] == "pass", check
    assert check["facts"]["cluster_source"] == "in-cluster service account"
    assert ("GET", "/version", SA_USER) in kube.requests
    assert SA_TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("scheme", "server", "step", "detail"),
    [
        ("https", "hang", "tls", "TLS: handshake timed out"),
        ("https", "tls_untrusted", "tls", "TLS: certificate signed by unknown authority"),
        ("https", "closed", "tcp", "connection refused"),
        ("http", "hangup", "auth", "closed it without answering /api (disconnected)"),
    ],
)
def test_hostile_api_server_fails_in_time(
    kube: KubeCluster,
    hostile: HostileServers,
    tmp_path: Path,
    scheme: str,
    server: str,
    step: str,
    detail: str,
) -> None:
    config = kube.write_kubeconfig(
        tmp_path / "hostile", server=f"{scheme}://127.0.0.1:{getattr(hostile, server)}"
    )
    result = run_preflight(kube, tmp_path, "kubernetes", "--timeout", "2", kubeconfig=config)
    failed = result.failed_step("kubernetes")
    assert (failed["name"], result.code) == (step, 3)
    assert detail in failed["detail"]
    assert result.check("kubernetes")["duration_s"] < 2.5


def test_api_server_that_never_answers_fails_within_the_timeout(
    kube: KubeCluster, tmp_path: Path
) -> None:
    kube.state.stall.add("/version")
    result = run_preflight(kube, tmp_path, "kubernetes", "--timeout", "2")
    step = result.failed_step("kubernetes")
    assert step["name"] == "version"
    assert "timed out before answering /version" in step["detail"]
    assert result.check("kubernetes")["duration_s"] < 2.5


def _exec_user(tmp_path: Path, script: str) -> dict:
    """A kubeconfig user whose token comes from an exec credential plugin (as EKS/GKE/AKS)."""
    plugin = tmp_path / "credential-plugin.py"
    plugin.write_text(script)
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": sys.executable,
            "args": [str(plugin)],
            "interactiveMode": "Never",
        }
    }


def test_exec_credential_plugin_token_is_used(kube: KubeCluster, tmp_path: Path) -> None:
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "kind": "ExecCredential",
        "status": {"token": TOKEN},
    }
    user = _exec_user(tmp_path, f"import json; print(json.dumps({credential!r}))")
    config = kube.write_kubeconfig(tmp_path / "exec-config", user=user)
    result = run_preflight(kube, tmp_path, "kubernetes", kubeconfig=config)
    assert result.check("kubernetes")["status"] == "pass", result.stdout
    assert ("GET", "/api", "kubernetes-admin") in kube.requests


def test_failing_exec_plugin_is_reported_as_missing_credentials(
    kube: KubeCluster, tmp_path: Path
) -> None:
    user = _exec_user(tmp_path, "import sys; sys.exit('token expired, run aws sso login')")
    config = kube.write_kubeconfig(tmp_path / "exec-config", user=user)
    result = run_preflight(kube, tmp_path, "kubernetes", kubeconfig=config)
    step = result.failed_step("kubernetes")
    assert step["name"] == "auth"
    assert "the API server sees no credentials (anonymous)" in step["detail"]


def short_lived_credential(calls: Path) -> str:
    """Plugin lines that count each call in `calls` and print a credential whose token has a
    minute left: one the client calls expired (under 5 minutes) and fetches again before
    each request (kubelogin's cache near its end)."""
    soon = "(datetime.now(timezone.utc) + timedelta(minutes=1)).strftime('%Y-%m-%dT%H:%M:%SZ')"
    credential = {"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential"}
    return (
        "import json\n"
        "from datetime import datetime, timedelta, timezone\n"
        f"open({str(calls)!r}, 'a').write('.')\n"
        f"status = {{'token': {TOKEN!r}, 'expirationTimestamp': {soon}}}\n"
        f"print(json.dumps({{**{credential!r}, 'status': status}}))\n"
    )


def _hanging_plugin(pids: Path) -> str:
    """Plugin lines that start a child, write both pids to `pids`, and hang (a kubelogin
    waiting for a browser login)."""
    return (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "time.sleep(600)\n"
    )


def _assert_stopped(pids: Path) -> None:
    """The plugin and its child, as `_hanging_plugin` recorded them, did not outlive the run."""
    plugin_pids = [int(pid) for pid in pids.read_text().split()]
    try:
        assert _all_gone(plugin_pids, within_s=3), "the credential plugin outlived the run"
    finally:
        for pid in plugin_pids:
            if _running(pid):
                psutil.Process(pid).kill()


def test_hanging_exec_plugin_is_stopped_when_the_check_is_abandoned(
    kube: KubeCluster, tmp_path: Path
) -> None:
    """The check times out in config, and the plugin (with its own child) is not left running
    after the program ends."""
    pids = tmp_path / "plugin.pids"
    user = _exec_user(tmp_path, _hanging_plugin(pids))
    config = kube.write_kubeconfig(tmp_path / "exec-config", user=user)
    result = run_preflight(kube, tmp_path, "kubernetes", "--timeout", "2", kubeconfig=config)
    assert result.check("kubernetes")["message"] == "config: timed out during config (--timeout 2s)"
    _assert_stopped(pids)


def test_a_plugin_hanging_in_a_token_refresh_is_stopped_too(
    kube: KubeCluster, tmp_path: Path
) -> None:
    """The first call gives a token with a minute left; the refresh before the first request
    hangs, in auth: that plugin is stopped as the first load's would be, and the kubeconfig's
    inline files are removed."""
    pids, calls = tmp_path / "plugin.pids", tmp_path / "plugin.calls"
    script = (
        f"import pathlib, sys\nif not pathlib.Path({str(calls)!r}).exists():\n"
        + "".join(f"    {line}\n" for line in short_lived_credential(calls).splitlines())
        + "    sys.exit()\n"
        + _hanging_plugin(pids)
    )
    config = kube.write_kubeconfig(tmp_path / "exec-config", user=_exec_user(tmp_path, script))
    temp_dir = tmp_path / "tmpdir"
    temp_dir.mkdir()
    env = {"TMPDIR": str(temp_dir)}
    result = run_preflight(
        kube, tmp_path, "kubernetes", "--timeout", "2", kubeconfig=config, env=env
    )
    assert result.check("kubernetes")["message"] == "auth: timed out during auth (--timeout 2s)"
    _assert_stopped(pids)
    assert list(temp_dir.iterdir()) == []


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for an init that may never reap it)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _all_gone(pids: list[int], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while any(_running(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_hanging_exec_plugin_times_out_in_config(kube: KubeCluster, tmp_path: Path) -> None:
    user = _exec_user(tmp_path, "import time; time.sleep(5)")
    config = kube.write_kubeconfig(tmp_path / "exec-config", user=user)
    result = run_preflight(kube, tmp_path, "kubernetes", "--timeout", "1", kubeconfig=config)
    check = result.check("kubernetes")
    assert check["message"] == "config: timed out during config (--timeout 1s)"
    assert check["duration_s"] < 1.5
