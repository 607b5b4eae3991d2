"""`--chart PATH`: the chart's values.yaml is the bottom layer, its values.schema.json is
applied as Helm applies it, and its defaults are compared with the install guide's."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli import CliResult, example_values, run_cli, write_values
from tests.helm_records import chart, release, release_secret
from tests.servers.kubernetes import KubeCluster
from tests.test_helm_release import one_line_error

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["api", "postgres"],
    "properties": {
        "api": {
            "type": "object",
            "properties": {"replicaCount": {"type": "integer", "minimum": 1, "maximum": 10}},
        },
        "postgres": {
            "type": "object",
            "properties": {
                "api": {
                    "type": "object",
                    "properties": {"sslMode": {"enum": ["disable", "require", "verify-full"]}},
                }
            },
        },
    },
}
CHART_VALUES: dict[str, Any] = {
    "api": {"replicaCount": 1, "service": {"type": "ClusterIP"}},
    "postgres": {"api": {"port": 5432, "sslMode": "require"}},
    "clickhouse": {"port": 8124, "database": "axion_sense"},  # the guide says 8123
    "kafka": {"filterByEnv": False},
}


def chart_files(schema: Any = SCHEMA, values: dict[str, Any] | None = None) -> dict[str, bytes]:
    files = {
        "Chart.yaml": b"apiVersion: v2\nname: axion-sense\nversion: 1.5.0\nappVersion: 1.1.0\n",
        "values.yaml": yaml.safe_dump(values or CHART_VALUES).encode(),
        "templates/api.yaml": b"kind: Deployment\n",
    }
    if schema is not None:
        text = schema if isinstance(schema, str) else json.dumps(schema)
        files["values.schema.json"] = text.encode()
    return files


def chart_dir(folder: Path, **kw: Any) -> Path:
    root = folder / "axion-sense"
    for name, data in chart_files(**kw).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def chart_tgz(folder: Path, **kw: Any) -> Path:
    """A packaged chart as `helm package` writes it: everything under `axion-sense/`."""
    path = folder / "axion-sense-1.5.0.tgz"
    with tarfile.open(path, "w:gz") as archive:
        for name, data in chart_files(**kw).items():
            info = tarfile.TarInfo(f"axion-sense/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        sub = b"apiVersion: v2\nname: sub\nversion: 0.1.0\n"  # a subchart's Chart.yaml
        info = tarfile.TarInfo("axion-sense/charts/sub/Chart.yaml")
        info.size = len(sub)
        archive.addfile(info, io.BytesIO(sub))
    return path


def validate(tmp_path: Path, chart_path: Path, *args: str, values: Any = None) -> CliResult:
    given = values if values is not None else example_values(filled=True)
    return run_cli(
        "validate", write_values(tmp_path, given), "--chart", chart_path, "--format", "json", *args
    )


def steps(result: CliResult) -> list[tuple[str, str, str]]:
    return [(s["name"], s["status"], s["detail"]) for s in result.check("values")["steps"]]


@pytest.mark.parametrize("packaged", [False, True], ids=["directory", "tgz"])
def test_chart_defaults_are_the_bottom_layer_and_a_stale_guide_default_warns(
    tmp_path: Path, packaged: bool
) -> None:
    path = chart_tgz(tmp_path) if packaged else chart_dir(tmp_path)
    result = validate(tmp_path, path)
    assert result.code == 0, (result.stdout, result.stderr)
    check = result.check("values")
    assert check["status"] == "warn"
    assert steps(result) == [
        (
            "clickhouse.port",
            "warn",
            "the chart's default is 8124, the install guide says 8123: the chart's is used "
            "(the guide is stale)",
        )
    ]
    assert check["facts"]["chart"] == {
        "name": "axion-sense",
        "version": "1.5.0",
        "app_version": "1.1.0",
        "source": str(path),
        "schema": True,
    }
    assert "chart axion-sense 1.5.0" in check["message"]


def test_the_checks_use_the_chart_default_over_the_guides(tmp_path: Path) -> None:
    """The chart's clickhouse.port (8124) is what the checks get, not the guide's 8123; a
    value given by the user still wins over the chart's."""
    bundle = tmp_path / "b.tar.gz"
    given = write_values(
        tmp_path,
        {
            **example_values(filled=True),
            "api": {**example_values(filled=True)["api"], "replicaCount": 3},
        },
    )
    result = run_cli(
        "bundle", given, "--chart", chart_dir(tmp_path), "--only", "kubernetes",
        "--bundle", bundle, "--format", "json", env={"HOME": str(tmp_path), "KUBECONFIG": ""},
    )  # fmt: skip
    assert result.code == 0, result.stderr
    with tarfile.open(bundle) as archive:
        member = archive.extractfile("sense-preflight-bundle/values.yaml")
        assert member is not None
        merged = yaml.safe_load(member.read())
    assert merged["clickhouse"]["port"] == 8124
    assert merged["api"]["service"] == {"type": "ClusterIP"}  # only the chart has it
    assert merged["api"]["replicaCount"] == 3
    assert (
        merged["postgres"]["api"]["host"] == example_values(filled=True)["postgres"]["api"]["host"]
    )


def test_every_schema_violation_is_listed_and_exits_2(tmp_path: Path) -> None:
    values = example_values(filled=True)
    values["api"]["replicaCount"] = 11
    values["postgres"]["api"]["sslMode"] = "prefer"
    result = validate(tmp_path, chart_dir(tmp_path), values=values)
    assert result.code == 2
    failed = [(name, detail) for name, status, detail in steps(result) if status == "fail"]
    assert failed == [
        ("api.replicaCount", "the value is greater than the maximum of 10 (chart schema)"),
        (
            "postgres.api.sslMode",
            "the value is not one of ['disable', 'require', 'verify-full'] (chart schema)",
        ),
    ]


def test_the_chart_default_meets_the_schema_and_our_rules_still_apply(tmp_path: Path) -> None:
    values = example_values(filled=True)
    del values["postgres"]["api"]["password"]  # our rule: required
    values["api"]["replicaCount"] = "2"  # the chart's schema and our rule: an integer
    result = validate(tmp_path, chart_dir(tmp_path), values=values)
    assert result.code == 2
    failed = {name for name, status, _ in steps(result) if status == "fail"}
    assert failed == {"postgres.api.password", "api.replicaCount"}
    details = [d for n, s, d in steps(result) if n == "api.replicaCount"]
    assert any("(chart schema)" in d for d in details)
    assert any("must be an integer" in d for d in details)


def test_a_draft_07_schema_asserts_formats_as_helm_does(tmp_path: Path) -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "properties": {"oidc": {"properties": {"contact": {"format": "email"}}}},
    }
    values = example_values(filled=True)
    values["oidc"]["contact"] = "not-an-email"
    result = validate(tmp_path, chart_dir(tmp_path, schema=schema), values=values)
    assert result.code == 2
    assert ("oidc.contact", "fail", "the value is not a 'email' (chart schema)") in steps(result)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"  # format: annotation
    again = validate(tmp_path, chart_dir(tmp_path / "b", schema=schema), values=values)
    assert again.code == 0, again.stdout


def test_bad_charts_are_one_line_each(tmp_path: Path) -> None:
    no_chart = tmp_path / "empty"
    no_chart.mkdir()
    assert one_line_error(validate(tmp_path, no_chart)) == (
        f"error: --chart {no_chart}: not a chart (no Chart.yaml)"
    )
    corrupt = tmp_path / "corrupt.tgz"
    corrupt.write_bytes(chart_tgz(tmp_path).read_bytes()[:200])
    assert f"--chart {corrupt}: not a readable chart archive" in one_line_error(
        validate(tmp_path, corrupt)
    )
    garbage = tmp_path / "garbage.tgz"
    garbage.write_bytes(b"\x00not a tar at all" * 10)
    assert "not a readable chart archive" in one_line_error(validate(tmp_path, garbage))
    bad_schema = chart_dir(tmp_path / "s", schema={"type": 12})
    assert one_line_error(validate(tmp_path, bad_schema)) == (
        f"error: --chart {bad_schema}: values.schema.json: not a valid JSON Schema at type: "
        "12 is not valid under any of the given schemas"
    )
    not_json = chart_dir(tmp_path / "j", schema="{nope")
    assert "values.schema.json: not valid JSON" in one_line_error(validate(tmp_path, not_json))


def test_a_schema_referring_to_another_document_is_one_problem_not_a_fetch(
    tmp_path: Path,
) -> None:
    schema = {"properties": {"api": {"$ref": "https://schemas.invalid/api.json"}}}
    result = validate(tmp_path, chart_dir(tmp_path, schema=schema))
    assert result.code == 2
    ((_, _, detail),) = [s for s in steps(result) if s[1] == "fail"]
    assert detail.startswith("the chart's values.schema.json cannot be applied: ")
    assert "https://schemas.invalid/api.json" in detail


def test_a_chart_without_schema_only_gives_its_defaults(tmp_path: Path) -> None:
    values = example_values(filled=True)
    values["api"]["replicaCount"] = 50
    result = validate(tmp_path, chart_dir(tmp_path, schema=None), values=values)
    assert result.code == 0
    assert result.check("values")["facts"]["chart"]["schema"] is False


# --- with --release: the chart stored in the release ----------------------------------------


def test_the_release_brings_its_chart_schema_and_defaults(
    kube: KubeCluster, tmp_path: Path
) -> None:
    config = example_values(filled=True)
    config["api"]["replicaCount"] = 12  # the schema's maximum is 10
    stored = chart(version="1.4.0", values=CHART_VALUES, schema=SCHEMA)
    kube.state.objects.append(
        release_secret(release("axion-sense", 2, "deployed", config, chart_record=stored))
    )
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    env = {"HOME": str(tmp_path), "KUBECONFIG": ""}
    common = ("--release", "axion-sense", "--kubeconfig", str(kubeconfig), "--format", "json")
    result = run_cli("validate", *common, env=env)
    assert result.code == 2
    found = {(n, s) for n, s, _ in steps(result)}
    assert ("api.replicaCount", "fail") in found
    assert ("clickhouse.port", "warn") in found
    assert result.check("values")["facts"]["chart"]["source"] == "release axion-sense revision 2"

    # --set on top fixes it; an explicit --chart (the next version) replaces the stored one.
    fixed = run_cli("validate", *common, "--set", "api.replicaCount=3", env=env)
    assert fixed.code == 0, fixed.stdout
    newer = chart_dir(tmp_path, values={**CHART_VALUES, "clickhouse": {"port": 8123}})
    upgrade = run_cli("validate", *common, "--set", "api.replicaCount=3", "--chart", newer, env=env)
    assert upgrade.code == 0
    assert upgrade.check("values")["status"] == "pass"
    assert upgrade.check("values")["facts"]["chart"]["version"] == "1.5.0"
