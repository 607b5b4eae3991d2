"""`--release NAME`: the values of an installed release, read from Helm's own records in the
(fake) cluster, as `helm get values` shows them, with -f/--set on top."""

from __future__ import annotations

import base64
import gzip
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from checks.kubernetes.helm_release import decode_payload
from tests.cli import CliResult, example_values, run_cli, write_values
from tests.helm_records import (
    encode,
    go_json,
    key,
    release,
    release_config_map,
    release_secret,
)
from tests.servers.kubernetes import SA_USER, KubeCluster, config_map, secret
from tests.test_kubernetes_server import kubectl, needs_kubectl
from tests.test_redaction import ALL_SECRETS, secret_values

NAME, NS = "axion-sense", "axion-sense"


def installed(kube: KubeCluster, *records: dict[str, Any]) -> None:
    """Put Helm's Secrets for these revisions into the fake cluster."""
    kube.state.objects += [release_secret(r) for r in records]


def cli(kube: KubeCluster, tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    """The CLI against the fake cluster, from a clean HOME."""
    config = kube.write_kubeconfig(tmp_path / "kubeconfig")
    return run_cli(
        *args,
        "--namespace",
        NS,
        "--kubeconfig",
        str(config),
        env={"HOME": str(tmp_path), "KUBECONFIG": "", **(env or {})},
    )


def validate(kube: KubeCluster, tmp_path: Path, *args: str, **kw: Any) -> CliResult:
    return cli(kube, tmp_path, "validate", "--release", NAME, "--format", "json", *args, **kw)


def merged_values(kube: KubeCluster, tmp_path: Path, *args: str) -> dict[str, Any]:
    """The values a run used, as the support bundle shows them (secrets redacted)."""
    bundle = tmp_path / "b.tar.gz"
    result = cli(
        kube, tmp_path, "bundle", "--release", NAME, "--only", "kubernetes",
        "--bundle", str(bundle), "--format", "json", *args,
    )  # fmt: skip
    assert result.code in (0, 3), result.stderr
    with tarfile.open(bundle) as archive:
        member = archive.extractfile("sense-preflight-bundle/values.yaml")
        assert member is not None
        return dict(yaml.safe_load(member.read()))


def one_line_error(result: CliResult) -> str:
    assert result.code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# --- the record, as Helm writes it, read back by independent tools -----------------------


def test_the_record_is_helms_format_read_back_by_kubectl_base64_and_gzip(
    kube: KubeCluster, tmp_path: Path
) -> None:
    if not (shutil.which("kubectl") and shutil.which("base64") and shutil.which("gzip")):
        pytest.skip("kubectl, base64 and gzip are needed")
    values = example_values()
    values["api"]["note"] = "<a&b>"  # Go's json.Marshal escapes HTML characters
    record = release(NAME, 1, "deployed", values)
    installed(kube, record)
    config = kube.write_kubeconfig(tmp_path / "config")

    listed = kubectl(config, tmp_path, "get", "secrets", "-n", NS, "-l", "owner=helm", "-o", "name")
    assert listed.stdout.split() == [f"secret/{key(NAME, 1)}"], listed.stderr
    labels = kubectl(
        config, tmp_path, "get", "secret", key(NAME, 1), "-n", NS,
        "-o", "jsonpath={.type} {.metadata.labels.status} {.metadata.labels.version}",
    )  # fmt: skip
    assert labels.stdout == "helm.sh/release.v1 deployed 1"
    data = kubectl(
        config, tmp_path, "get", "secret", key(NAME, 1), "-n", NS, "-o", "jsonpath={.data.release}"
    )
    # The API's base64, Helm's base64, gzip: undone by the system's own tools.
    pipeline = "base64 -d | base64 -d | gzip -dc"
    raw = subprocess.run(
        ["sh", "-c", pipeline], input=data.stdout.encode(), capture_output=True, timeout=30
    )
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout == go_json(record)
    assert b'"note":"\\u003ca\\u0026b\\u003e"' in raw.stdout
    assert raw.stdout.startswith(b'{"name":"axion-sense","info":{"first_deployed":')
    assert json.loads(raw.stdout)["config"] == values
    # gzip's header as Go's compress/gzip writes it at BestCompression: no name, mtime 0,
    # XFL 2, OS 255; and our decoder agrees with the tools.
    helm_payload = subprocess.run(
        ["base64", "-d"], input=data.stdout.encode(), capture_output=True, timeout=30
    ).stdout.decode()
    assert base64.b64decode(helm_payload)[:10] == bytes.fromhex("1f8b08000000000002ff")
    assert decode_payload(helm_payload) == json.loads(raw.stdout)


def test_a_payload_stored_before_helm_compressed_is_read_too() -> None:
    record = release(NAME, 1, "deployed", {"a": 1})
    plain = base64.b64encode(go_json(record)).decode()
    assert decode_payload(plain) == decode_payload(encode(record))


@needs_kubectl
def test_kubectl_lists_helms_configmaps(kube: KubeCluster, tmp_path: Path) -> None:
    kube.state.objects.append(release_config_map(release(NAME, 2, "deployed", {"a": 1})))
    kube.state.objects.append(config_map("unrelated", data={"k": "v"}))
    result = kubectl(
        kube.write_kubeconfig(tmp_path / "config"), tmp_path,
        "get", "configmaps", "-n", NS, "-l", "owner=helm,status=deployed", "-o", "name",
    )  # fmt: skip
    assert result.stdout.split() == [f"configmap/{key(NAME, 2)}"], result.stderr


# --- which revision ------------------------------------------------------------------------


def test_the_latest_deployed_revision_wins_and_a_later_failed_one_is_ignored(
    kube: KubeCluster, tmp_path: Path
) -> None:
    first, second, third = example_values(), example_values(), example_values()
    first["api"]["replicaCount"] = 1
    second["api"]["replicaCount"] = 2
    third["api"]["replicaCount"] = "three"  # the failed upgrade's values would be an error
    installed(
        kube,
        release(NAME, 1, "superseded", first),
        release(NAME, 2, "deployed", second),
        release(NAME, 3, "failed", third),
    )
    result = validate(kube, tmp_path)
    assert result.code == 0, (result.stdout, result.stderr)
    facts = result.check("values")["facts"]
    assert facts["release"] == {
        "name": NAME,
        "namespace": NS,
        "revision": 2,
        "status": "deployed",
        "last_deployed": "2026-01-02T00:00:00Z",
        "storage": f"Secret {key(NAME, 2)}",
    }
    assert facts["chart"]["name"] == "axion-sense"
    assert facts["chart"]["version"] == "1.4.0"
    assert merged_values(kube, tmp_path)["api"]["replicaCount"] == 2


def test_revision_10_is_later_than_revision_9(kube: KubeCluster, tmp_path: Path) -> None:
    """The API lists by name (…v10 before …v9): the revision number decides, as in Helm,
    also between two revisions marked deployed (Helm: "take the latest")."""
    values = example_values()
    installed(kube, *(release(NAME, n, "superseded", values) for n in range(1, 9)))
    installed(kube, release(NAME, 9, "deployed", values))
    values["api"]["replicaCount"] = 10
    installed(kube, release(NAME, 10, "deployed", values))
    kube.state.objects.sort(key=lambda o: o["metadata"]["name"])
    result = validate(kube, tmp_path)
    assert result.check("values")["facts"]["release"]["revision"] == 10
    assert merged_values(kube, tmp_path)["api"]["replicaCount"] == 10


@pytest.mark.parametrize("last", ["failed", "pending-install", "superseded"])
def test_a_release_without_a_deployed_revision_names_its_last_status(
    kube: KubeCluster, tmp_path: Path, last: str
) -> None:
    installed(kube, release(NAME, 1, "failed", {}), release(NAME, 2, last, example_values()))
    line = one_line_error(validate(kube, tmp_path))
    assert f"no deployed revision in namespace {NS}" in line
    assert f"the last, revision 2, is {last}" in line


def test_a_missing_release_lists_the_releases_in_the_namespace(
    kube: KubeCluster, tmp_path: Path
) -> None:
    installed(
        kube,
        release("grafana", 1, "deployed", {}),
        release("loki", 1, "deployed", {}),
        release("other-ns", 1, "deployed", {}, namespace="default"),
    )
    line = one_line_error(validate(kube, tmp_path))
    assert line == (
        f"error: --release {NAME}: no such release in namespace {NS} (Secret driver); "
        "releases there: grafana, loki"
    )
    kube.state.objects.clear()
    assert one_line_error(validate(kube, tmp_path)).endswith("; no Helm release there")


def test_no_right_to_read_secrets_says_which_verb_and_namespace(
    kube: KubeCluster, tmp_path: Path
) -> None:
    installed(kube, release(NAME, 1, "deployed", example_values()))
    kube.state.forbidden.add("secrets")
    line = one_line_error(validate(kube, tmp_path))
    assert line == (
        f"error: --release {NAME}: not allowed to list secrets in namespace {NS} "
        "(grant get and list on secrets there)"
    )


def test_a_stalled_api_server_or_a_bad_name_is_one_line_too(
    kube: KubeCluster, tmp_path: Path
) -> None:
    kube.state.stall.add(f"/api/v1/namespaces/{NS}/secrets")
    result = cli(kube, tmp_path, "run", "--release", NAME, "--timeout", "1")
    assert "the API server timed out before answering" in one_line_error(result)
    bad = cli(kube, tmp_path, "validate", "--release", "Axion,owner=x")
    assert "not a Helm release name" in one_line_error(bad)


def test_a_payload_that_does_not_decode(kube: KubeCluster, tmp_path: Path) -> None:
    broken = release_secret(release(NAME, 1, "deployed", {}), payload="H4sI-not-base64!")
    kube.state.objects.append(broken)
    line = one_line_error(validate(kube, tmp_path))
    assert f"Secret {key(NAME, 1)}: the payload does not decode" in line
    truncated = encode(release(NAME, 1, "deployed", example_values()))[:80]
    kube.state.objects[-1] = release_secret(release(NAME, 1, "deployed", {}), payload=truncated)
    assert "the payload does not decode" in one_line_error(validate(kube, tmp_path))


def test_the_configmap_driver(kube: KubeCluster, tmp_path: Path) -> None:
    values = example_values()
    values["api"]["replicaCount"] = 4
    kube.state.objects.append(release_config_map(release(NAME, 5, "deployed", values)))
    assert "no such release" in one_line_error(validate(kube, tmp_path))  # not in Secrets
    result = validate(kube, tmp_path, env={"HELM_DRIVER": "configmap"})
    assert result.code == 0, result.stderr
    assert result.check("values")["facts"]["release"]["storage"] == f"ConfigMap {key(NAME, 5)}"
    line = one_line_error(validate(kube, tmp_path, env={"HELM_DRIVER": "sql"}))
    assert "HELM_DRIVER=sql: only the secret and configmap drivers" in line


# --- values: the release's, with the command line on top; secrets stay secret --------------


def test_set_and_files_go_on_top_of_the_release_values(kube: KubeCluster, tmp_path: Path) -> None:
    values = example_values()
    values["postgres"]["api"]["port"] = 5432
    values["api"]["replicaCount"] = 2
    installed(kube, release(NAME, 1, "deployed", values))
    extra = write_values(tmp_path, {"worker": {"replicaCount": 3}}, "extra.yaml")
    merged = merged_values(
        kube,
        tmp_path,
        "-f",
        str(extra),
        "--set",
        "postgres.api.port=6543",
        "--set",
        "api.replicaCount=null",
    )
    assert merged["postgres"]["api"]["port"] == 6543
    assert merged["worker"]["replicaCount"] == 3
    assert "replicaCount" not in merged["api"]  # null deletes, as in Helm
    assert merged["postgres"]["api"]["host"] == values["postgres"]["api"]["host"]
    assert merged["postgres"]["api"]["password"] == "<redacted>"
    bad = validate(kube, tmp_path, "--set", "postgres.api.port=x")
    assert bad.code == 2
    assert "postgres.api.port: must be a port number" in bad.stdout


def test_release_secrets_are_redacted_everywhere_and_the_raw_record_never_leaves(
    kube: KubeCluster, tmp_path: Path
) -> None:
    values = secret_values()
    record = release(NAME, 1, "deployed", values)
    installed(kube, record)
    bundle = tmp_path / "support.tar.gz"
    result = cli(
        kube, tmp_path, "bundle", "--release", NAME, "--only", "kubernetes",
        "--bundle", str(bundle), "--format", "json",
    )  # fmt: skip
    assert result.code in (0, 3), result.stderr
    with tarfile.open(bundle) as archive:
        texts = {
            m.name: archive.extractfile(m).read().decode()  # type: ignore[union-attr]
            for m in archive.getmembers()
        }
    report = json.loads(texts["sense-preflight-bundle/report.json"])
    values_check = next(c for c in report["checks"] if c["id"] == "values")
    assert values_check["facts"]["release"]["revision"] == 1
    everything = result.stdout + result.stderr + "".join(texts.values())
    leaked = [s for s in ALL_SECRETS if s in everything]
    assert not leaked
    payload = encode(record)
    assert payload[:40] not in everything
    assert "manifest" not in everything


# --- done when: a release run is a values-file run -----------------------------------------


def test_run_from_the_release_is_the_run_of_its_values_file(
    kube: KubeCluster, tmp_path: Path
) -> None:
    values = example_values()
    installed(kube, release(NAME, 3, "deployed", values))
    common = ("--format", "json", "--timeout", "5")
    from_release = cli(kube, tmp_path, "run", "--release", NAME, *common)
    from_file = cli(kube, tmp_path, "run", str(write_values(tmp_path, values)), *common)

    def verdicts(result: CliResult) -> dict[str, tuple[str, list[str]]]:
        return {
            c["id"]: (c["status"], [s["name"] for s in c["steps"]]) for c in result.report["checks"]
        }

    assert from_release.code == from_file.code == 3, from_release.stderr
    assert verdicts(from_release) == verdicts(from_file)
    assert len(verdicts(from_release)) > 10  # every check ran
    assert from_release.check("values")["facts"]["release"]["revision"] == 3


# --- the Job -----------------------------------------------------------------------------


def job_documents(
    kube: KubeCluster, tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    result = cli(kube, tmp_path, "job", *args, env=env)
    assert result.code == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def test_job_with_a_release_may_read_only_secrets_of_its_namespace(
    kube: KubeCluster, tmp_path: Path
) -> None:
    values = example_values()
    values["global"] = {"imagePullSecrets": [{"name": "registry-creds"}]}
    installed(kube, release(NAME, 1, "deployed", values))
    plain = job_documents(kube, tmp_path, "-f", str(write_values(tmp_path, values)))
    docs = job_documents(kube, tmp_path, "--release", NAME)
    kinds = {d["kind"]: d for d in docs}
    plain_kinds = {d["kind"]: d for d in plain}
    assert kinds["ClusterRole"]["rules"] == plain_kinds["ClusterRole"]["rules"]
    added = [r for r in kinds["Role"]["rules"] if r not in plain_kinds["Role"]["rules"]]
    assert added == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]
    pod = kinds["Job"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"][:3] == ["run", "--release", NAME]
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]  # no values Secret to mount
    assert [m["name"] for m in pod["containers"][0]["volumeMounts"]] == ["tmp"]
    assert pod["imagePullSecrets"] == [{"name": "registry-creds"}]  # read from the release

    # In the cluster, as the Job's service account with exactly these rights: it reads it.
    from tests.test_job import _grants

    kube.state.objects.append(secret("registry-creds"))
    grants = _grants(docs)
    kube.state.grants = grants
    env = kube.write_service_account(tmp_path / "sa")
    run = run_cli(
        "validate", "--release", NAME, "--namespace", NS, "--format", "json",
        env={"HOME": str(tmp_path), "KUBECONFIG": "", **env},
    )  # fmt: skip
    assert run.code == 0, run.stderr
    # Without the added rule it cannot.
    kube.state.grants = {SA_USER: [g for g in grants[SA_USER] if g[1] not in added]}
    denied = run_cli(
        "validate", "--release", NAME, "--namespace", NS,
        env={"HOME": str(tmp_path), "KUBECONFIG": "", **env},
    )  # fmt: skip
    assert "not allowed to list secrets in namespace axion-sense" in one_line_error(denied)


def test_job_with_a_release_in_configmaps_reads_configmaps(
    kube: KubeCluster, tmp_path: Path
) -> None:
    kube.state.objects.append(release_config_map(release(NAME, 1, "deployed", example_values())))
    docs = job_documents(kube, tmp_path, "--release", NAME, env={"HELM_DRIVER": "configmap"})
    role = next(d for d in docs if d["kind"] == "Role")
    assert {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]} in role[
        "rules"
    ]
    container = docs[-1]["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "HELM_DRIVER", "value": "configmap"} in container["env"]


def test_decode_payload_names_the_broken_layer() -> None:
    with pytest.raises(ValueError, match="Error"):
        decode_payload("%%%")
    not_json = base64.b64encode(gzip.compress(b"{nope")).decode()
    with pytest.raises(ValueError, match="not JSON"):
        decode_payload(not_json)
