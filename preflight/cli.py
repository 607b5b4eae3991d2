"""The command line. Commands stay thin: they parse options and call the plain functions of
`preflight.commands`, imported only when a command runs (so `--help` stays fast)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from preflight import __version__
from preflight.engine.options import DEFAULT_IMAGE, DEFAULT_NAMESPACE, DEFAULT_TIMEOUT_S
from preflight.report.renderers import FORMATS

FORMAT_NAMES = sorted(FORMATS)
DEFAULT_BUNDLE = "sense-preflight-bundle.tar.gz"

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class Duration(click.ParamType):
    """`30s`, `5m`, `1h`, `1m30s` or plain seconds, as seconds."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        import re

        text = str(value).strip().lower()
        parts = re.fullmatch(
            r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", text
        )
        if not text or parts is None or not any(parts.groups()):
            self.fail(f"{value!r} is not a duration (e.g. 30s, 5m, 1h30m)", param, ctx)
        hours, minutes, seconds = (float(part or 0) for part in parts.groups())
        total = hours * 3600 + minutes * 60 + seconds
        if total <= 0:
            self.fail(f"{value!r} must be longer than zero", param, ctx)
        return total


class DefaultRun(click.Group):
    """`sense-preflight custom-values.yaml` means `sense-preflight run custom-values.yaml`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultRun, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sense-preflight")
def main() -> None:
    """Prove, before `helm install`, that every dependency of the axion-sense chart works.

    \b
    sense-preflight custom-values.yaml [--set k=v ...]   run every check (same as `run`)
    """


def _apply(decorators: list[Decorator]) -> Decorator:
    def wrap(command: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return wrap


format_option = click.option(
    "--format",
    "format_",
    type=click.Choice(FORMAT_NAMES),
    default="text",
    show_default=True,
    help="Report format.",
)
output_option = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report to FILE.",
)

values_options = _apply(
    [
        click.argument("files", nargs=-1, type=click.Path(dir_okay=False)),
        click.option(
            "-f",
            "--values",
            "value_files",
            multiple=True,
            metavar="FILE",
            help="Values file (repeatable, later wins).",
        ),
        click.option(
            "--set",
            "set_",
            multiple=True,
            metavar="K=V",
            help="Set values like Helm (types inferred).",
        ),
        click.option(
            "--set-string",
            multiple=True,
            metavar="K=V",
            help="Set values like Helm, always strings.",
        ),
        click.option(
            "--set-file", multiple=True, metavar="K=PATH", help="Set a value to a file's content."
        ),
        click.option(
            "--set-json", multiple=True, metavar="K=JSON", help="Set JSON values like Helm 3.10+."
        ),
        click.option(
            "--set-literal",
            multiple=True,
            metavar="K=V",
            help="Set a literal string like Helm 3.13+ (all after the first '=').",
        ),
    ]
)

namespace_option = click.option(
    "-n",
    "--namespace",
    default=DEFAULT_NAMESPACE,
    show_default=True,
    help="Namespace the chart is installed in.",
)

kube_access_options = _apply(
    [
        click.option(
            "--kubeconfig",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Kubeconfig file (default: KUBECONFIG, ~/.kube/config).",
        ),
        click.option("--context", "--kube-context", "context", help="Kubeconfig context."),
    ]
)

release_option = click.option(
    "--release",
    metavar="NAME",
    help="Start from the values of this installed Helm release (its latest deployed "
    "revision, read from the cluster); files and --set* go on top.",
)

source_options = _apply(
    [
        release_option,
        click.option(
            "--chart",
            type=click.Path(exists=True, path_type=Path),
            help="The chart (directory or .tgz): its values.yaml is the bottom layer, its "
            "values.schema.json is applied.",
        ),
    ]
)

selection_options = _apply(
    [
        click.option(
            "--only",
            multiple=True,
            metavar="ID[,ID]",
            help="Run only these checks (a component matches all its checks).",
        ),
        click.option("--skip", multiple=True, metavar="ID[,ID]", help="Skip these checks."),
    ]
)

connection_options = _apply(
    [
        click.option(
            "--ca-bundle",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="CA bundle (PEM) to verify TLS servers.",
        ),
        click.option(
            "--insecure-skip-tls-verify",
            is_flag=True,
            help="Do not verify TLS certificates (reported as a warning).",
        ),
        namespace_option,
        click.option(
            "--create-namespace",
            is_flag=True,
            help="Helm will create the namespace: a missing one is a note, not a failure.",
        ),
        kube_access_options,
        click.option(
            "--in-cluster", is_flag=True, help="Running as a pod: cluster access is required."
        ),
        click.option(
            "--registry-config",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Docker config.json with registry credentials.",
        ),
        click.option(
            "--oidc-scope",
            metavar="SCOPE",
            help="Scope the oidc check asks a client_credentials token for (preflight only).",
        ),
        click.option(
            "--no-proxy",
            is_flag=True,
            help="Ignore HTTPS_PROXY/HTTP_PROXY/NO_PROXY: every request goes direct.",
        ),
    ]
)

run_options = _apply(
    [
        selection_options,
        format_option,
        output_option,
        click.option(
            "--timeout",
            type=click.FloatRange(min=0.1),
            default=DEFAULT_TIMEOUT_S,
            show_default=True,
            help="Seconds per check.",
        ),
        click.option("--strict", is_flag=True, help="Warnings fail the run (exit 4)."),
        click.option(
            "--read-only",
            is_flag=True,
            help="No write probes (scratch tables, topics, objects, stores).",
        ),
        click.option(
            "--accept",
            multiple=True,
            metavar="ID[:STEP][,…]",
            help="Turn these failures into warnings marked accepted (`all`: all but auth).",
        ),
        click.option(
            "--wait",
            type=Duration(),
            metavar="DURATION",
            help="Rerun what fails until everything passes or DURATION (30s, 5m) ends.",
        ),
        click.option(
            "--interval",
            type=Duration(),
            metavar="DURATION",
            help="Pause between --wait attempts.  [default: 5s]",
        ),
        connection_options,
    ]
)


bundle_option = click.option(
    "--bundle",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a redacted support bundle (.tar.gz).",
)


@main.command()
@values_options
@source_options
@run_options
@bundle_option
@click.option("--report-frame", is_flag=True, hidden=True)  # the in-cluster pod's (frame.py)
@click.option(  # the in-cluster Job's: the GPU probe pod's answer (gpu_probe_pod.py)
    "--gpu-probe-result", type=click.Path(dir_okay=False, path_type=Path), hidden=True
)
def run(bundle: Path | None, **params: Any) -> None:
    """Run every check that applies to the values."""
    from preflight.commands.run import Invocation, execute

    sys.exit(execute(Invocation.from_params(params, bundle)))


@main.command(name="bundle")
@values_options
@source_options
@run_options
@click.option(
    "--bundle",
    "bundle_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_BUNDLE,
    show_default=True,
    help="Where to write the bundle.",
)
def bundle_command(bundle_path: Path, **params: Any) -> None:
    """Run every check and write a redacted support bundle (same as `run --bundle`)."""
    from preflight.commands.run import Invocation, execute

    sys.exit(execute(Invocation.from_params(params, bundle_path)))


@main.command()
@values_options
@source_options
@namespace_option
@kube_access_options
@click.option(
    "--format", "format_", type=click.Choice(FORMAT_NAMES), default="text", show_default=True
)
@click.option("--strict", is_flag=True, help="Warnings fail (exit 4).")
def validate(format_: str, strict: bool, **params: Any) -> None:
    """Check the values only: no network (beyond the API server for --release)."""
    from preflight.commands.validate import validate as validate_values

    sys.exit(validate_values(params, format_, strict))


@main.command(name="report")
@click.argument("saved", nargs=-1, required=True, metavar="BUNDLE.tar.gz|report.json")
@click.option("--diff", is_flag=True, help="Show what changed from the first report to the second.")
@format_option
@output_option
def report_command(saved: tuple[str, ...], diff: bool, format_: str, output: Path | None) -> None:
    """Render a saved report (a support bundle or a JSON report; - for stdin) again, in any
    format, without running anything; with --diff OLD NEW, what changed between two."""
    from preflight.commands.common import fail
    from preflight.commands.report import rerender, show_diff
    from preflight.report.exit_codes import EXIT_BAD_INPUT

    if diff and len(saved) != 2:
        fail(EXIT_BAD_INPUT, "--diff takes two saved reports: OLD NEW")
    if not diff and len(saved) != 1:
        fail(EXIT_BAD_INPUT, "give one saved report (or --diff OLD NEW)")
    sys.exit(
        show_diff(saved[0], saved[1], format_, output)
        if diff
        else rerender(saved[0], format_, output)
    )


@main.command(name="checks")
@values_options
@source_options
@namespace_option
@kube_access_options
def list_checks(**params: Any) -> None:
    """List the checks: id, title and the values each reads."""
    from preflight.commands.list_checks import list_checks as print_checks

    sys.exit(print_checks(params))


@main.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to FILE instead of stdout.",
)
def schema(output: Path | None) -> None:
    """Print the values rules as JSON Schema (values.schema.json)."""
    from preflight.commands.schema import schema_text

    if output is None:
        sys.stdout.write(schema_text())
    else:
        output.write_text(schema_text(), encoding="utf-8")


@main.command()
@values_options
@_apply(
    [
        selection_options,
        click.option(
            "--listen",
            default="0.0.0.0:9115",
            show_default=True,
            metavar="HOST:PORT",
            help="Address to serve /metrics, /probe, /report on.",
        ),
        click.option(
            "--interval",
            default="5m",
            show_default=True,
            help="Time between runs (30s, 5m, 1h).",
        ),
        click.option(
            "--timeout",
            default=f"{DEFAULT_TIMEOUT_S:g}s",
            show_default=True,
            help="Deadline per check (10s, 1m; a bare number is seconds).",
        ),
        click.option(
            "--write-probes",
            is_flag=True,
            help="Also run the write probes (scratch tables, topics, objects, stores).",
        ),
        connection_options,
    ]
)
def serve(**params: Any) -> None:
    """Run the checks on a schedule and export them to Prometheus (/metrics, /probe?check=ID,
    /report). Read-only unless --write-probes; SIGHUP reads the values again."""
    from preflight.commands.serve import ServeCall
    from preflight.commands.serve import serve as run_exporter

    sys.exit(run_exporter(ServeCall.from_params(params)))


@main.command()
@values_options
@click.option(
    "-n",
    "--namespace",
    default=DEFAULT_NAMESPACE,
    show_default=True,
    help="Namespace the chart is installed in (the Job runs there).",
)
@release_option
@kube_access_options
@click.option(
    "--image",
    default=DEFAULT_IMAGE,
    show_default=True,
    help="Image of sense-preflight.",
)
@click.option("--name", default="sense-preflight", show_default=True, help="Job name.")
@click.option(
    "--values-secret",
    default="sense-preflight-values",
    show_default=True,
    help="Secret holding custom-values.yaml.",
)
@click.option("--timeout", type=click.FloatRange(min=0.1), help="Seconds per check, in the Job.")
@click.option("--only", multiple=True, metavar="ID[,ID]", help="Checks to run in the Job.")
@click.option("--skip", multiple=True, metavar="ID[,ID]", help="Checks to skip in the Job.")
@click.option("--strict", is_flag=True, help="Warnings fail the Job.")
@click.option("--read-only", is_flag=True, help="No write probes in the Job.")
@click.option("--oidc-scope", metavar="SCOPE", help="Scope the Job's oidc check asks for.")
@click.option("--serve", is_flag=True, help="An exporter (Deployment + Service) instead of a Job.")
@click.option("--interval", default="5m", show_default=True, help="With --serve: run interval.")
@click.option("--write-probes", is_flag=True, help="With --serve: also the write probes.")
def job(
    namespace: str,
    image: str,
    name: str,
    values_secret: str,
    timeout: float | None,
    only: tuple[str, ...],
    skip: tuple[str, ...],
    strict: bool,
    read_only: bool,
    oidc_scope: str | None,
    serve: bool,
    interval: str,
    write_probes: bool,
    **params: Any,
) -> None:
    """Print the manifests that run the same preflight as a Job in the cluster.

    Values given here are read only for global.imagePullSecrets (names); the Job reads the
    values from a Secret, or with --release from that release (then its Role may read
    Secrets in the namespace), so no value is ever printed.
    """
    from preflight.commands import job as job_manifests
    from preflight.commands import serve_job
    from preflight.commands.common import csv
    from preflight.commands.inputs import cluster_options, inputs
    from preflight.engine import registry
    from preflight.values.chart import pull_secret_names

    params["namespace"] = namespace
    given = inputs(params, cluster_options(params))
    values = job_manifests.job_values(given.source)
    selected = registry.select(registry.all_checks(values), csv(only), csv(skip))
    if serve:
        from preflight.commands.serve import duration_option

        duration_option("interval", interval)  # a bad one exits 2 here, not in the cluster
        flags = serve_job.serve_args(
            timeout, csv(only), csv(skip), interval, write_probes, oidc_scope
        )
    else:
        flags = job_manifests.run_args(timeout, csv(only), csv(skip), strict, read_only, oidc_scope)
    spec = job_manifests.JobSpec(
        namespace=namespace,
        name=name,
        image=image,
        values_secret=values_secret,
        pull_secrets=pull_secret_names(values),
        run_args=flags,
        access=job_manifests.declared_access(selected),
        release=params["release"],
        helm_driver=os.environ.get("HELM_DRIVER", ""),
    )
    sys.stdout.write((serve_job.render if serve else job_manifests.render)(spec))


@main.command(
    name="helm",
    add_help_option=False,
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def helm_command(args: tuple[str, ...]) -> None:
    """Run the preflight for a pasted line: `helm upgrade --install RELEASE CHART …`."""
    from preflight.commands.helm import run_args

    argv = run_args(args, os.environ)
    if argv is not None:
        run.main(argv, prog_name="sense-preflight run")


@main.command(name="in-cluster")
@values_options
@source_options
@run_options
@bundle_option
@click.option("--image", default=DEFAULT_IMAGE, show_default=True, help="Image of sense-preflight.")
@click.option(
    "--image-pull-secret",
    multiple=True,
    metavar="NAME",
    help="Secret in the namespace to pull --image with (repeatable).",
)
@click.option(
    "--start-timeout",
    type=click.FloatRange(min=1),
    default=300,
    show_default=True,
    help="Seconds the pod may take to start (image pull, scheduling).",
)
@click.option("--keep", is_flag=True, help="Leave the run's objects for debugging.")
def in_cluster(
    bundle: Path | None,
    image: str,
    image_pull_secret: tuple[str, ...],
    start_timeout: float,
    keep: bool,
    **params: Any,
) -> None:
    """Run the preflight as a Job in the cluster (--namespace) and bring its report back.

    Same arguments as `run`. The values are merged here and go into a Secret; everything the
    run creates is deleted at the end (also on failure and Ctrl-C) unless --keep.
    """
    from preflight.commands.common import fail
    from preflight.commands.in_cluster import Target, execute
    from preflight.commands.run import Invocation
    from preflight.report.exit_codes import EXIT_BAD_INPUT

    if params["in_cluster"] or params["registry_config"]:
        fail(EXIT_BAD_INPUT, "--in-cluster and --registry-config do not apply to in-cluster")
    if params["accept"] or params["wait"] or params["interval"]:
        fail(EXIT_BAD_INPUT, "--accept, --wait and --interval do not apply to in-cluster yet")
    target = Target(image, image_pull_secret, keep, start_timeout)
    sys.exit(execute(Invocation.from_params(params, bundle), target))


@main.command(name="gpu-probe")
@click.option("--format", "format_", type=click.Choice(["text", "json"]), default="text")
def gpu_probe_command(format_: str) -> None:
    """Show the NVIDIA driver, CUDA version and GPUs seen here (run it in a GPU pod)."""
    from preflight.commands import gpu_probe
    from preflight.commands.common import fail
    from preflight.report.exit_codes import EXIT_FAILED

    try:
        report = gpu_probe.probe()
    except gpu_probe.NoGpu as exc:
        if format_ == "json":
            sys.stdout.write(gpu_probe.render_json(None, str(exc)))
        fail(EXIT_FAILED, f"no GPU: {exc}")
    render = gpu_probe.render_json if format_ == "json" else gpu_probe.render_text
    sys.stdout.write(render(report))


def program() -> None:
    """The `sense-preflight` console script and `python -m preflight`: run the CLI, then end
    the process at once.

    Once a command returns, the report is written and every cleanup has run; what remains is
    the interpreter tearing down the client libraries' modules (boto3, kubernetes,
    confluent-kafka...), about 0.2 s that no user waits for gladly. So flush the streams and
    leave through os._exit with the command's exit code.
    """
    try:
        main()
        code = 0
    except SystemExit as done:
        code = _exit_code(done.code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `... | head` left early; click ends such a write with 1 too
        code = 1
    os._exit(code)


def _exit_code(code: object) -> int:
    """SystemExit's code as the interpreter would end with it (a message is printed, then 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
