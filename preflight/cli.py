"""The command line. Commands stay thin: they parse options and call plain functions."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, NoReturn

import click

from preflight import __version__, gpu_probe, registry
from preflight import job as job_manifests
from preflight.bundle import write_bundle
from preflight.options import DEFAULT_NAMESPACE, DEFAULT_TIMEOUT_S, RunOptions
from preflight.redact import REDACTED, Redactor
from preflight.renderers import FORMATS
from preflight.renderers.text import LiveProgress
from preflight.result import CheckResult, Report, Status
from preflight.rules import Problem, json_schema
from preflight.runner import run_checks
from preflight.values import Values, ValuesError, ValuesSource, load_values
from preflight.values_check import result_for, values_result

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_STRICT_WARN = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130
DEFAULT_BUNDLE = "sense-preflight-bundle.tar.gz"

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


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
    ]
)

run_options = _apply(
    [
        click.option(
            "--only",
            multiple=True,
            metavar="ID[,ID]",
            help="Run only these checks (a component matches all its checks).",
        ),
        click.option("--skip", multiple=True, metavar="ID[,ID]", help="Skip these checks."),
        click.option(
            "--format",
            "format_",
            type=click.Choice(sorted(FORMATS)),
            default="text",
            show_default=True,
            help="Report format.",
        ),
        click.option(
            "-o",
            "--output",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Write the report to FILE.",
        ),
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
            "--ca-bundle",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="CA bundle (PEM) to verify TLS servers.",
        ),
        click.option(
            "--insecure-skip-tls-verify",
            is_flag=True,
            help="Do not verify TLS certificates (reported as a warning).",
        ),
        click.option(
            "--namespace",
            default=DEFAULT_NAMESPACE,
            show_default=True,
            help="Namespace the chart is installed in.",
        ),
        click.option(
            "--kubeconfig",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Kubeconfig file (default: KUBECONFIG, ~/.kube/config).",
        ),
        click.option("--context", help="Kubeconfig context."),
        click.option(
            "--in-cluster", is_flag=True, help="Running as a pod: cluster access is required."
        ),
        click.option(
            "--registry-config",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Docker config.json with registry credentials.",
        ),
    ]
)


@dataclass(frozen=True)
class Invocation:
    """One run as the user asked for it."""

    source: ValuesSource
    options: RunOptions
    only: list[str]
    skip: list[str]
    format: str
    output: Path | None
    strict: bool
    bundle: Path | None

    @classmethod
    def from_params(cls, params: dict[str, Any], bundle: Path | None) -> Invocation:
        option_names = RunOptions.__dataclass_fields__.keys() - {"timeout_s"}
        return cls(
            source=_source(params),
            options=RunOptions(
                timeout_s=params["timeout"], **{name: params[name] for name in option_names}
            ),
            only=_csv(params["only"]),
            skip=_csv(params["skip"]),
            format=params["format_"],
            output=params["output"],
            strict=params["strict"],
            bundle=bundle,
        )


def _source(params: dict[str, Any]) -> ValuesSource:
    return ValuesSource(
        files=(*params["files"], *params["value_files"]),
        set=params["set_"],
        set_string=params["set_string"],
        set_file=params["set_file"],
    )


def _csv(items: tuple[str, ...]) -> list[str]:
    return [name.strip() for item in items for name in item.split(",") if name.strip()]


@main.command()
@values_options
@run_options
@click.option(
    "--bundle",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a redacted support bundle (.tar.gz).",
)
def run(bundle: Path | None, **params: Any) -> None:
    """Run every check that applies to the values."""
    sys.exit(execute(Invocation.from_params(params, bundle)))


@main.command(name="bundle")
@values_options
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
    sys.exit(execute(Invocation.from_params(params, bundle_path)))


def execute(call: Invocation) -> int:
    """Values → rules → checks → runner → report (and bundle), written through redaction.
    Returns the exit code."""
    started = time.monotonic()
    values, values_check = _load(call.source)
    redact = Redactor.for_values(values.data if values else {})
    logging.getLogger().addHandler(logging.NullHandler())  # client libraries never print
    output = Output(call.format, call.output)
    try:
        checks = _selected(values, values_check, call.only, call.skip)
        progress = output.progress(redact)
        if progress is not None:
            progress.show(values_check)
        results = [values_check]
        if checks and values is not None:
            results += run_checks(checks, values, call.options, progress)
        report = Report(tuple(results), time.monotonic() - started, __version__)
        output.write(report, redact, progress)
        if call.bundle is not None:
            size = write_bundle(
                call.bundle, report, values.data if values else {}, call.options, redact
            )
            click.echo(
                f"support bundle: {call.bundle} ({size / 1024:.1f} KiB)", err=progress is None
            )
    except KeyboardInterrupt:
        click.echo("\ninterrupted: cleanups ran; no report", err=True)
        return EXIT_INTERRUPTED
    except OSError as exc:
        fail(EXIT_INTERNAL, redact(f"cannot write {exc.filename}: {exc.strerror or exc}"))
    except Exception as exc:  # never a traceback, never a secret
        fail(EXIT_INTERNAL, redact(f"internal error: {type(exc).__name__}: {exc}"))
    return exit_code(report, call.strict)


def _selected(
    values: Values | None, values_check: CheckResult, only: list[str], skip: list[str]
) -> list[Any]:
    """The checks to run, or none when the values failed; unknown --only/--skip names exit 2."""
    if values is None or values_check.status is Status.FAIL:
        return []
    available = registry.all_checks(values)
    unknown = registry.unknown_names(available, [*only, *skip])
    if unknown:
        fail(
            EXIT_BAD_INPUT,
            f"unknown check id(s): {', '.join(unknown)} (see `sense-preflight checks`)",
        )
    return registry.select(available, only, skip)


@dataclass(frozen=True)
class Output:
    """Where and how the report goes."""

    format: str
    path: Path | None

    def progress(self, redact: Callable[[str], str]) -> LiveProgress | None:
        """Live progress on stdout for text, or when the chosen format goes to a file."""
        if self.format != "text" and self.path is None:
            return None
        tty = sys.stdout.isatty()
        color = tty and "NO_COLOR" not in os.environ
        return LiveProgress(sys.stdout, redact, tty=tty, color=color)

    def write(self, report: Report, redact: Redactor, progress: LiveProgress | None) -> None:
        marker = escape(REDACTED) if self.format == "junit" else REDACTED
        text = redact(FORMATS[self.format](redact.report(report)), marker)
        if self.path is not None:
            self.path.write_text(text, encoding="utf-8")
        if progress is not None:
            progress.finish(report)
        else:
            sys.stdout.write(text)


def fail(code: int, message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _load(source: ValuesSource) -> tuple[Values | None, CheckResult]:
    """Load and check the values; the `values` check result either way."""
    try:
        values = load_values(source)
    except ValuesError as exc:
        return None, result_for([Problem("", problem) for problem in exc.problems])
    if not source.files and not (source.set or source.set_string or source.set_file):
        return None, result_for(
            [Problem("", "no values given: pass custom-values.yaml (or -f FILE, --set …)")]
        )
    return values, values_result(values)


def exit_code(report: Report, strict: bool) -> int:
    """The design's exit codes: 2 for values errors, 3 for a failed check, 4 strict warnings."""
    statuses = {check.id: check.status for check in report.checks}
    if statuses.get("values") is Status.FAIL:
        return EXIT_BAD_INPUT
    if Status.FAIL in statuses.values():
        return EXIT_FAILED
    if strict and Status.WARN in statuses.values():
        return EXIT_STRICT_WARN
    return EXIT_OK


@main.command()
@values_options
@click.option(
    "--format", "format_", type=click.Choice(sorted(FORMATS)), default="text", show_default=True
)
@click.option("--strict", is_flag=True, help="Warnings fail (exit 4).")
def validate(format_: str, strict: bool, **params: Any) -> None:
    """Check the values only: no network."""
    started = time.monotonic()
    values, values_check = _load(_source(params))
    redact = Redactor.for_values(values.data if values else {})
    report = Report((values_check,), time.monotonic() - started, __version__)
    sys.stdout.write(redact(FORMATS[format_](redact.report(report))))
    sys.exit(exit_code(report, strict))


@main.command(name="checks")
@values_options
def list_checks(**params: Any) -> None:
    """List the checks: id, title and the values each reads."""
    source = _source(params)
    values = Values()
    if source.files or source.set or source.set_string or source.set_file:
        try:
            values = load_values(source)
        except ValuesError as exc:
            for problem in exc.problems:
                click.echo(f"error: {problem}", err=True)
            sys.exit(EXIT_BAD_INPUT)
    click.echo(f"{'values':<22} Values: required, conditional and typed values of the chart")
    for check in registry.all_checks(values):
        click.echo(f"{check.id:<22} {check.title}")
        if check.reads:
            click.echo(f"{'':<22}   reads: {', '.join(check.reads)}")


@main.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to FILE instead of stdout.",
)
def schema(output: Path | None) -> None:
    """Print the values rules as JSON Schema (values.schema.json)."""
    text = json.dumps(json_schema(), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


@main.command()
@values_options
@click.option(
    "--namespace",
    default=DEFAULT_NAMESPACE,
    show_default=True,
    help="Namespace the chart is installed in (the Job runs there).",
)
@click.option(
    "--image",
    default=job_manifests.DEFAULT_IMAGE,
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
    **params: Any,
) -> None:
    """Print the manifests that run the same preflight as a Job in the cluster.

    Values given here are read only for global.imagePullSecrets (names); the Job reads the
    values from a Secret, so no value is ever printed.
    """
    source = _source(params)
    pull_secrets: list[str] = []
    if source.files or source.set or source.set_string or source.set_file:
        try:
            entries = load_values(source).get("global.imagePullSecrets") or []
        except ValuesError as exc:
            fail(EXIT_BAD_INPUT, "; ".join(exc.problems))
        pull_secrets = [str(e.get("name") if isinstance(e, dict) else e) for e in entries]
    run_args = [
        *(["--timeout", f"{timeout:g}"] if timeout else []),
        *(["--only", ",".join(_csv(only))] if only else []),
        *(["--skip", ",".join(_csv(skip))] if skip else []),
        *(["--strict"] if strict else []),
        *(["--read-only"] if read_only else []),
    ]
    spec = job_manifests.JobSpec(
        namespace=namespace,
        name=name,
        image=image,
        values_secret=values_secret,
        pull_secrets=tuple(pull_secrets),
        run_args=tuple(run_args),
    )
    sys.stdout.write(job_manifests.render(spec))


@main.command(name="gpu-probe")
@click.option("--format", "format_", type=click.Choice(["text", "json"]), default="text")
def gpu_probe_command(format_: str) -> None:
    """Show the NVIDIA driver, CUDA version and GPUs seen here (run it in a GPU pod)."""
    try:
        report = gpu_probe.probe()
    except gpu_probe.NoGpu as exc:
        if format_ == "json":
            sys.stdout.write(gpu_probe.render_json(None, str(exc)))
        fail(EXIT_FAILED, f"no GPU: {exc}")
    render = gpu_probe.render_json if format_ == "json" else gpu_probe.render_text
    sys.stdout.write(render(report))
