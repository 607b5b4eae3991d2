"""The command line. Commands stay thin: they parse options and call plain functions."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from preflight import __version__, registry
from preflight.options import DEFAULT_NAMESPACE, DEFAULT_TIMEOUT_S, RunOptions
from preflight.redact import Redactor
from preflight.renderers import FORMATS
from preflight.renderers.text import LiveProgress
from preflight.result import CheckResult, Report, Status
from preflight.rules import Problem, json_schema
from preflight.runner import run_checks
from preflight.values import Values, ValuesError, ValuesSource, load_values
from preflight.values_check import result_for, values_result

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_STRICT_WARN, EXIT_INTERRUPTED = (
    0,
    1,
    2,
    3,
    4,
    130,
)


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


def values_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Helm's values inputs, in Helm's precedence: files, --set, --set-string, --set-file."""
    for decorator in reversed(
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
                "--set-file",
                multiple=True,
                metavar="K=PATH",
                help="Set a value to a file's content.",
            ),
        ]
    ):
        command = decorator(command)
    return command


def source_from(
    files: tuple[str, ...],
    value_files: tuple[str, ...],
    set_: tuple[str, ...],
    set_string: tuple[str, ...],
    set_file: tuple[str, ...],
) -> ValuesSource:
    return ValuesSource(
        files=(*files, *value_files), set=set_, set_string=set_string, set_file=set_file
    )


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

    def write(
        self, report: Report, redact: Callable[[str], str], progress: LiveProgress | None
    ) -> None:
        text = redact(FORMATS[self.format](report))
        if self.path is not None:
            try:
                self.path.write_text(text, encoding="utf-8")
            except OSError as exc:
                fail(EXIT_INTERNAL, f"cannot write {self.path}: {exc.strerror or exc}")
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


def _exit_code(report: Report, strict: bool) -> int:
    if any(check.status is Status.FAIL for check in report.checks):
        return (
            EXIT_BAD_INPUT
            if report.checks[0].id == "values" and report.checks[0].status is Status.FAIL
            else EXIT_FAILED
        )
    if strict and any(check.status is Status.WARN for check in report.checks):
        return EXIT_STRICT_WARN
    return EXIT_OK


def _csv(items: tuple[str, ...]) -> list[str]:
    return [name.strip() for item in items for name in item.split(",") if name.strip()]


@main.command()
@values_options
@click.option(
    "--only",
    multiple=True,
    metavar="ID[,ID]",
    help="Run only these checks (a component matches all its checks).",
)
@click.option("--skip", multiple=True, metavar="ID[,ID]", help="Skip these checks.")
@click.option(
    "--format", "format_", type=click.Choice(sorted(FORMATS)), default="text", show_default=True
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report to FILE.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_TIMEOUT_S,
    show_default=True,
    help="Seconds per check.",
)
@click.option("--strict", is_flag=True, help="Warnings fail the run (exit 4).")
@click.option(
    "--read-only", is_flag=True, help="No write probes (scratch tables, topics, objects, stores)."
)
@click.option(
    "--ca-bundle",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CA bundle (PEM) to verify TLS servers.",
)
@click.option(
    "--insecure-skip-tls-verify",
    is_flag=True,
    help="Do not verify TLS certificates (reported as a warning).",
)
@click.option(
    "--namespace",
    default=DEFAULT_NAMESPACE,
    show_default=True,
    help="Namespace the chart is installed in.",
)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Kubeconfig file (default: KUBECONFIG, ~/.kube/config).",
)
@click.option("--context", help="Kubeconfig context.")
@click.option("--in-cluster", is_flag=True, help="Running as a pod: cluster access is required.")
@click.option(
    "--registry-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Docker config.json with registry credentials.",
)
def run(
    files: tuple[str, ...],
    value_files: tuple[str, ...],
    set_: tuple[str, ...],
    set_string: tuple[str, ...],
    set_file: tuple[str, ...],
    only: tuple[str, ...],
    skip: tuple[str, ...],
    format_: str,
    output: Path | None,
    timeout: float,
    strict: bool,
    read_only: bool,
    ca_bundle: Path | None,
    insecure_skip_tls_verify: bool,
    namespace: str,
    kubeconfig: Path | None,
    context: str | None,
    in_cluster: bool,
    registry_config: Path | None,
) -> None:
    """Run every check that applies to the values."""
    options = RunOptions(
        timeout_s=timeout,
        read_only=read_only,
        ca_bundle=ca_bundle,
        insecure_skip_tls_verify=insecure_skip_tls_verify,
        namespace=namespace,
        kubeconfig=kubeconfig,
        context=context,
        in_cluster=in_cluster,
        registry_config=registry_config,
    )
    report = execute(
        source_from(files, value_files, set_, set_string, set_file),
        options,
        _csv(only),
        _csv(skip),
        Output(format_, output),
    )
    sys.exit(_exit_code(report, strict))


def execute(
    source: ValuesSource, options: RunOptions, only: list[str], skip: list[str], output: Output
) -> Report:
    """Values → rules → checks → runner → report, written through redaction."""
    started = time.monotonic()
    values, values_check = _load(source)
    redact = Redactor.for_values(values.data if values else {})
    logging.getLogger().addHandler(logging.NullHandler())  # client libraries never print
    try:
        results = [values_check]
        checks = []
        if values is not None and values_check.status is not Status.FAIL:
            available = registry.all_checks(values)
            unknown = registry.unknown_names(available, [*only, *skip])
            if unknown:
                fail(
                    EXIT_BAD_INPUT,
                    f"unknown check id(s): {', '.join(unknown)} (see `sense-preflight checks`)",
                )
            checks = registry.select(available, only, skip)
        progress = output.progress(redact)
        if progress is not None:
            progress.show(values_check)
        if checks:
            results += run_checks(checks, values or Values(), options, progress)
        report = Report(tuple(results), time.monotonic() - started, __version__)
        output.write(report, redact, progress)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: cleanups ran; no report", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # never a traceback, never a secret
        fail(EXIT_INTERNAL, redact(f"internal error: {type(exc).__name__}: {exc}"))
    return report


@main.command()
@values_options
@click.option(
    "--format", "format_", type=click.Choice(sorted(FORMATS)), default="text", show_default=True
)
@click.option("--strict", is_flag=True, help="Warnings fail (exit 4).")
def validate(
    files: tuple[str, ...],
    value_files: tuple[str, ...],
    set_: tuple[str, ...],
    set_string: tuple[str, ...],
    set_file: tuple[str, ...],
    format_: str,
    strict: bool,
) -> None:
    """Check the values only: no network."""
    started = time.monotonic()
    values, values_check = _load(source_from(files, value_files, set_, set_string, set_file))
    redact = Redactor.for_values(values.data if values else {})
    report = Report((values_check,), time.monotonic() - started, __version__)
    text = FORMATS[format_](report)
    sys.stdout.write(redact(text))
    sys.exit(_exit_code(report, strict))


@main.command(name="checks")
@values_options
def list_checks(
    files: tuple[str, ...],
    value_files: tuple[str, ...],
    set_: tuple[str, ...],
    set_string: tuple[str, ...],
    set_file: tuple[str, ...],
) -> None:
    """List the checks: id, title and the values each reads."""
    source = source_from(files, value_files, set_, set_string, set_file)
    values = Values()
    if source.files or source.set or source.set_string or source.set_file:
        try:
            values = load_values(source)
        except ValuesError as exc:
            for problem in exc.problems:
                click.echo(f"error: {problem}", err=True)
            sys.exit(EXIT_BAD_INPUT)
    click.echo(f"{'values':<22} {'Values: required, conditional and typed values of the chart'}")
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
