"""A kubeconfig's inline certificates and key, which the kubernetes client writes out to files:
never handed half-written to a second check, never left behind (checks/kubernetes/inline_files.py)."""

from __future__ import annotations

import base64
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import kubernetes  # noqa: F401  (whole: kubeclient's partial packages would break other tests)
import pytest
import yaml

from checks.kubernetes.api import _configuration
from preflight.engine.check import Check, Probe
from preflight.engine.deadline import Deadline
from preflight.engine.options import RunOptions
from preflight.values.load import Values
from tests.servers.kubernetes import KubeCluster, run_preflight
from tests.test_kubernetes import _exec_user, short_lived_credential


@pytest.fixture
def temp_dir(tmp_path: Path) -> Path:
    """An empty folder to be the runs' TMPDIR."""
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    return folder


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Threads switch as often as the interpreter can: a race shows within a few rounds."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def _probe(kubeconfig: Path) -> Probe:
    options = RunOptions(timeout_s=5, kubeconfig=kubeconfig)
    return Probe(
        Check("kubernetes", "kubernetes", lambda p: None), Values(), options, Deadline.after(5)
    )


def test_checks_loading_one_kubeconfig_at_once_each_get_the_whole_ca(
    kube: KubeCluster,
    tmp_path: Path,
    temp_dir: Path,
    fast_switching: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As `kubernetes` and `gpu` do in one process: the client named a CA file before it
    wrote it, and a check that read it then got an empty CA. Each round's CA differs (by
    trailing newlines) so that the client's cache of those files misses."""
    monkeypatch.setattr(tempfile, "tempdir", str(temp_dir))
    wrong: list[str] = []

    def load(probe: Probe, expected: bytes) -> None:
        configuration, _ = _configuration(probe)
        if Path(configuration.ssl_ca_cert).read_bytes() != expected:
            wrong.append(configuration.ssl_ca_cert)

    for round_ in range(60):
        ca = kube.server.ca_path.read_bytes() + b"\n" * round_
        kubeconfig = _with_ca(kube.write_kubeconfig(tmp_path / "kubeconfig"), ca)
        probes = [_probe(kubeconfig) for _ in range(8)]
        threads = [threading.Thread(target=load, args=(probe, ca)) for probe in probes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for probe in probes:
            probe.cleanups.run_all()
    assert wrong == []
    assert list(temp_dir.iterdir()) == []


def _with_ca(kubeconfig: Path, ca: bytes) -> Path:
    """The kubeconfig with `ca` as its cluster's certificate-authority-data."""
    config = yaml.safe_load(kubeconfig.read_text())
    config["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(ca).decode()
    kubeconfig.write_text(yaml.safe_dump(config))
    return kubeconfig


def test_the_cluster_checks_leave_no_certificate_file(
    kube: KubeCluster, tmp_path: Path, temp_dir: Path
) -> None:
    result = run_preflight(
        kube, tmp_path, "kubernetes", "--only", "gpu", env={"TMPDIR": str(temp_dir)}
    )
    assert result.check("kubernetes")["status"] == "pass", result.stdout
    assert result.check("gpu")["status"] == "pass", result.stdout
    assert list(temp_dir.iterdir()) == []


def test_a_check_abandoned_in_its_exec_plugin_leaves_no_folder(
    kube: KubeCluster, tmp_path: Path, temp_dir: Path
) -> None:
    user = _exec_user(tmp_path, "import time; time.sleep(600)")
    config = kube.write_kubeconfig(tmp_path / "exec-config", user=user)
    result = run_preflight(
        kube,
        tmp_path,
        "kubernetes",
        "--timeout",
        "1",
        kubeconfig=config,
        env={"TMPDIR": str(temp_dir)},
    )
    assert result.check("kubernetes")["message"] == "config: timed out during config (--timeout 1s)"
    assert list(temp_dir.iterdir()) == []


def test_token_refreshes_before_each_request_take_turns_and_leave_no_folder(
    kube: KubeCluster, tmp_path: Path, temp_dir: Path
) -> None:
    """The client runs the plugin again before every request of both checks, in turn, into
    the folder of the first load."""
    calls = tmp_path / "plugin.calls"
    user = _exec_user(tmp_path, short_lived_credential(calls))
    config = _with_ca(
        kube.write_kubeconfig(tmp_path / "exec-config", user=user), kube.server.ca_path.read_bytes()
    )
    env = {"TMPDIR": str(temp_dir)}
    result = run_preflight(
        kube, tmp_path, "kubernetes", "--only", "gpu", kubeconfig=config, env=env
    )
    assert result.check("kubernetes")["status"] == "pass", result.stdout
    assert result.check("gpu")["status"] == "pass", result.stdout
    assert len(calls.read_text()) > 4  # one load per check, then one refresh per request
    assert list(temp_dir.iterdir()) == []
