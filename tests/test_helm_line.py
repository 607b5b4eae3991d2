"""`sense-preflight helm upgrade --install …`: the pasted Helm line, read like Helm's flag
parser; the Helm plugin entry; `-n`/`--kube-context` on run."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from preflight import __version__
from preflight.commands.helm import LineError, notes, parse, run_argv
from tests.cli import EXAMPLE_VALUES, REPO_ROOT, CliResult, run_cli
from tests.servers.kubernetes import KubeCluster

GUIDE_CHART = "oci://europe-west1-docker.pkg.dev/axionx-infra/axion/charts/axion-sense"


def guide_line(values: Path | str = EXAMPLE_VALUES) -> list[str]:
    """The install guide's section 3, as written there."""
    return [
        "upgrade", "--install", "axion-sense", GUIDE_CHART, "--version", "0.0.0-latest",
        "-n", "axion-sense", "--create-namespace", "-f", str(values),
        "--atomic", "--wait", "--timeout", "15m",
    ]  # fmt: skip


def argv(args: list[str], **env: str) -> list[str]:
    """The `run` arguments of a helm line, with these HELM_* variables."""
    return run_argv(parse(args), env)


def test_the_guides_line_is_read_like_helm() -> None:
    line = parse(guide_line())
    assert (line.release, line.chart) == ("axion-sense", GUIDE_CHART)
    assert run_argv(line, {}) == [
        "--namespace=axion-sense", "--create-namespace", f"--values={EXAMPLE_VALUES}",
    ]  # fmt: skip
    assert line.ignored == ["--install", "--version", "--atomic", "--wait", "--timeout"]
    said = "\n".join(notes(line))
    assert "--version, --atomic, --wait, --timeout" in said  # Helm's 15m is not our timeout
    assert "not the preflight's deadline per check" in said and "--preflight-timeout" in said


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["-fa.yaml,b.yaml", "--values=c.yaml"], ["--values=a.yaml", "--values=b.yaml", "--values=c.yaml"]),
        (["--set", "a=1", "--set=b=-2"], ["--set=a=1", "--set=b=-2"]),
        (["--set-json", 'a={"b":1}', "--set-literal", "c=d,e"], ['--set-json=a={"b":1}', "--set-literal=c=d,e"]),
        (["--set-string", "p=5432", "--set-file", "k=f.txt"], ["--set-string=p=5432", "--set-file=k=f.txt"]),
        (["-nsense"], ["--namespace=sense"]),
        (["-n=sense"], ["--namespace=sense"]),
        (["--namespace", "a", "-n", "sense"], ["--namespace=sense"]),  # the last one wins
        (["--kube-context", "prod"], ["--context=prod"]),
        (["--kubeconfig=/k/config"], ["--kubeconfig=/k/config"]),
        (["--create-namespace=false"], []),
        (["--preflight-timeout", "2.5"], ["--timeout=2.5"]),
        (["--only", "values,kafka", "--skip", "s3"], ["--only=values,kafka", "--skip=s3"]),
        (["--strict", "--read-only=true"], ["--strict", "--read-only"]),
        (["--format", "json", "-o", "report.json"], ["--format=json", "--output=report.json"]),
        (["--bundle", "b.tar.gz"], ["--bundle=b.tar.gz"]),
    ],
)  # fmt: skip
def test_flags_used(flags: list[str], expected: list[str]) -> None:
    got = argv(["upgrade", "r", "./chart", "-n", "ns", *flags])
    assert [arg for arg in got if arg != "--namespace=ns"] == expected


@pytest.mark.parametrize(
    "flags",
    [
        ["--dry-run=server", "--wait=watcher", "--server-side", "auto"],
        ["-o", "json"],  # Helm's release summary format, not our report file
        ["--username", "u", "--password", "p", "--repo", "https://charts.example"],
        ["-l", "team=a", "--description", "first", "--history-max", "3", "--debug"],
        ["--reuse-values", "--kube-token", "t", "--kube-as-group", "g"],
    ],
)
def test_helms_own_flags_are_ignored(flags: list[str]) -> None:
    line = parse(["upgrade", "r", "./chart", *flags])
    assert line.positionals == ["r", "./chart"]
    assert line.given == {}
    assert line.ignored


def test_install_with_generate_name_takes_only_the_chart() -> None:
    assert parse(["install", "-g", "./chart.tgz"]).chart == "./chart.tgz"
    assert parse(["install", "-g", "./chart.tgz"]).release is None
    with pytest.raises(LineError, match="needs RELEASE CHART"):
        parse(["install", "./chart.tgz"])


def test_the_guides_template_line_is_read_too() -> None:
    """Troubleshooting: `helm template axion-sense oci://… --version … -f custom-values.yaml`."""
    line = parse(
        ["template", "axion-sense", GUIDE_CHART, "--version", "0.0.0-latest", "-f", "v.yaml"]
    )
    assert (line.release, line.chart, line.given) == (
        "axion-sense",
        GUIDE_CHART,
        {"--values": ["v.yaml"]},
    )
    assert (
        parse(["template", "./chart", "-s", "templates/api.yaml", "--validate"]).chart == "./chart"
    )


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["status", "r"], "must start with `upgrade`, `install` or `template`"),
        (["upgrade", "r", "c", "--frobnicate"], "unknown flag --frobnicate"),
        (["upgrade", "r", "c", "-x"], "unknown flag -x"),
        (["upgrade", "r", "c", "--set"], "--set needs a value"),
        (["upgrade", "r", "c", "--atomic=maybe"], "--atomic takes true or false"),
        (["upgrade", "r", "c", "--set", "a=1", "b=2"], "takes RELEASE CHART, this line has 3"),
        (["upgrade", "r"], "needs RELEASE CHART"),
    ],
)
def test_refused_lines(args: list[str], problem: str) -> None:
    with pytest.raises(LineError) as caught:
        parse(args)
    assert any(problem in line for line in caught.value.problems)


def test_helm_environment_fills_what_the_line_leaves_out() -> None:
    env = {"HELM_NAMESPACE": "from-helm", "HELM_KUBECONTEXT": "ctx", "HELM_KUBECONFIG": "/kc"}
    assert argv(["upgrade", "r", "c"], **env) == [
        "--kubeconfig=/kc", "--context=ctx", "--namespace=from-helm",
    ]  # fmt: skip
    mine = argv(["upgrade", "r", "c", "-n", "mine", "--kube-context", "other"], **env)
    assert mine == ["--namespace=mine", "--context=other", "--kubeconfig=/kc"]


def test_without_any_namespace_it_is_the_contexts_then_default(
    kube: KubeCluster, tmp_path: Path
) -> None:
    config = kube.write_kubeconfig(tmp_path / "kubeconfig", namespace="ctx-ns")
    assert "--namespace=ctx-ns" in argv(["upgrade", "r", "c", "--kubeconfig", str(config)])
    bare = kube.write_kubeconfig(tmp_path / "bare")
    assert "--namespace=default" in argv(["upgrade", "r", "c", "--kubeconfig", str(bare)])


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (["--format", "yaml"], "--format must be one of "),
        (
            ["--preflight-timeout", "soon"],
            "--preflight-timeout takes seconds per check (at least 0.1)",
        ),
    ],
)
def test_refused_run_options_use_the_lines_names(flags: list[str], problem: str) -> None:
    with pytest.raises(LineError) as caught:
        argv(["upgrade", "r", "c", "-n", "ns", *flags])
    assert len(caught.value.problems) == 1 and caught.value.problems[0].startswith(problem)


# --- through the CLI ---------------------------------------------------------------------------


def test_the_guides_line_runs_the_preflight(tmp_path: Path) -> None:
    result = run_cli("helm", *guide_line(), "--only", "values", "--format", "json")
    assert result.code == 0, result.stderr
    assert [c["id"] for c in result.report["checks"]] == ["values"]
    assert "note: Helm's own flags, not used by the preflight" in result.stderr
    assert "--preflight-timeout" in result.stderr


def test_the_guides_secrets_on_the_line_reach_the_values(tmp_path: Path) -> None:
    values = yaml.safe_load(EXAMPLE_VALUES.read_text())
    del values["postgres"]["api"]["password"]
    path = tmp_path / "custom-values.yaml"
    path.write_text(yaml.safe_dump(values))
    missing = run_cli("helm", *guide_line(path), "--only", "values")
    assert (
        missing.code == 2 and "postgres.api.password: required value is missing" in missing.stdout
    )
    given = run_cli(
        "helm",
        *guide_line(path),
        "--set",
        "postgres.api.password=Pw-on-the-line",
        "--only",
        "values",
    )
    assert given.code == 0, given.stdout
    assert "Pw-on-the-line" not in given.stdout + given.stderr


def test_a_refused_line_says_what_was_understood() -> None:
    result = run_cli(
        "helm", "upgrade", "--install", "r", "c", "-f", EXAMPLE_VALUES, "--set", "k=S3cr3t",
        "--atomic", "--frobnicate=S3cr3t",
    )  # fmt: skip
    assert result.code == 2
    assert "error: unknown flag --frobnicate (neither Helm's nor the preflight's)" in result.stderr
    assert "used: --values, --set; Helm's own, ignored: --install, --atomic" in result.stderr
    assert "sense-preflight helm --help" in result.stderr
    assert "S3cr3t" not in result.stdout + result.stderr


def test_help_lists_every_flag() -> None:
    result = run_cli("helm", "--help")
    assert result.code == 0
    for flag in ("--set-literal", "--kube-context", "--preflight-timeout", "--atomic"):
        assert flag in result.stdout


def test_run_takes_helms_spelling_of_namespace_and_context(
    kube: KubeCluster, tmp_path: Path
) -> None:
    config = kube.write_kubeconfig(tmp_path / "kubeconfig", context="fake")
    result = run_cli(
        EXAMPLE_VALUES, "--only", "kubernetes", "--kubeconfig", config, "--kube-context", "fake",
        "-n", "axion-sense", "--format", "json", env={"HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.code == 0, result.stdout + result.stderr
    assert "context fake" in result.check("kubernetes")["facts"]["cluster_source"]
    wrong = run_cli(
        EXAMPLE_VALUES, "--only", "kubernetes", "--kubeconfig", config, "--kube-context", "nope",
        "--format", "json", env={"HOME": str(tmp_path)},
    )  # fmt: skip
    assert wrong.check("kubernetes")["status"] == "fail"


# --- the Helm plugin ---------------------------------------------------------------------------


def run_as_helm_plugin(args: list[str], env: dict[str, str], bin_dir: Path) -> CliResult:
    """Run plugin.yaml's command the way Helm's plugin runtime does (an emulation: there is
    no helm binary here): ExpandEnv, split on spaces, the line's arguments appended, Helm's
    settings in HELM_* variables. `sense-preflight` is this checkout, put on PATH."""
    plugin = yaml.safe_load((REPO_ROOT / "plugin.yaml").read_text())
    launcher = bin_dir / "sense-preflight"
    launcher.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m preflight "$@"\n')
    launcher.chmod(0o755)
    full_env = {
        **os.environ,
        "NO_COLOR": "1",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HELM_PLUGIN_NAME": plugin["name"],
        "HELM_PLUGIN_DIR": str(REPO_ROOT),
        **env,
    }
    main, *base = os.path.expandvars(plugin["command"]).split(" ")
    proc = subprocess.run(
        [main, *base, *args], capture_output=True, text=True, timeout=120, env=full_env
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr, 0.0)


def test_plugin_metadata_is_a_valid_helm_plugin() -> None:
    plugin = yaml.safe_load((REPO_ROOT / "plugin.yaml").read_text())
    assert plugin["name"] == "preflight"
    assert plugin["version"] == __version__
    assert plugin["command"].split(" ")[:2] == ["sense-preflight", "helm"]
    assert "platformCommand" not in plugin  # Helm 4 refuses both at once


def test_the_plugin_runs_the_guides_line_with_helms_settings(
    kube: KubeCluster, tmp_path: Path
) -> None:
    """Helm took `-n sense-new --kube-context fake --kubeconfig FILE` off the line."""
    config = kube.write_kubeconfig(tmp_path / "kubeconfig", context="fake")
    line = guide_line()
    at = line.index("-n")
    del line[at : at + 2]
    env = {"HELM_NAMESPACE": "sense-new", "HELM_KUBECONTEXT": "fake", "KUBECONFIG": str(config)}
    noted = run_as_helm_plugin(
        [*line, "--only", "kubernetes", "--format", "json"], {**env, "HOME": str(tmp_path)},
        tmp_path,
    )  # fmt: skip
    assert noted.code == 0, noted.stdout + noted.stderr
    check = noted.check("kubernetes")
    assert "namespace sense-new does not exist yet" in check["message"]
    assert "context fake" in check["facts"]["cluster_source"]
    line.remove("--create-namespace")
    failed = run_as_helm_plugin(
        [*line, "--only", "kubernetes", "--format", "json"], {**env, "HOME": str(tmp_path)},
        tmp_path,
    )  # fmt: skip
    assert failed.code == 3
    assert failed.failed_step("kubernetes")["name"] == "namespace"


def test_a_local_chart_on_the_line_is_read_with_its_defaults_and_schema(tmp_path: Path) -> None:
    from tests.test_chart import chart_tgz

    packaged = chart_tgz(tmp_path)
    assert f"--chart={packaged}" in argv(["upgrade", "r", str(packaged)])
    values = tmp_path / "custom-values.yaml"
    values.write_text(EXAMPLE_VALUES.read_text())
    result = run_cli(
        "helm", "upgrade", "--install", "axion-sense", packaged, "-f", values,
        "--only", "values", "--format", "json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    facts = result.check("values")["facts"]
    assert (facts["chart"]["name"], facts["chart"]["version"]) == ("axion-sense", "1.5.0")


def test_a_remote_chart_is_named_as_not_read() -> None:
    line = parse(["upgrade", "--install", "axion-sense", GUIDE_CHART, "-f", "v.yaml"])
    assert "--chart" not in " ".join(run_argv(line, {"HELM_NAMESPACE": "ns"}))
    assert any(
        f"the chart {GUIDE_CHART} is not a local directory or .tgz" in n for n in notes(line)
    )
