"""What the commands do, as plain functions over plain data: values → rules → checks →
runner → report (and bundle), always written through redaction. Imported by the CLI only when
a command runs, so `--help` stays fast."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, NoReturn

import click

from preflight import __version__
from preflight.options import RunOptions
from preflight.redact import REDACTED, Redactor
from preflight.renderers import FORMATS
from preflight.renderers.text import LiveProgress
from preflight.result import CheckResult, Report, Status
from preflight.rules import Problem, json_schema
from preflight.values import Values, ValuesError, ValuesSource, load_values
from preflight.values_check import result_for, values_result

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_STRICT_WARN = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130


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
            source=source(params),
            options=RunOptions(
                timeout_s=params["timeout"], **{name: params[name] for name in option_names}
            ),
            only=csv(params["only"]),
            skip=csv(params["skip"]),
            format=params["format_"],
            output=params["output"],
            strict=params["strict"],
            bundle=bundle,
        )


def source(params: dict[str, Any]) -> ValuesSource:
    return ValuesSource(
        files=(*params["files"], *params["value_files"]),
        set=params["set_"],
        set_string=params["set_string"],
        set_file=params["set_file"],
    )


def csv(items: tuple[str, ...]) -> list[str]:
    return [name.strip() for item in items for name in item.split(",") if name.strip()]


def execute(call: Invocation) -> int:
    """Values → rules → checks → runner → report (and bundle), written through redaction.
    Returns the exit code."""
    import logging

    from preflight.bundle import write_bundle
    from preflight.runner import run_checks

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
    except BrokenPipeError:
        raise  # the reader left (`| head`): click ends the program quietly
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
    from preflight import registry

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

    def progress(self, redact: Redactor) -> LiveProgress | None:
        """Live progress on stdout for text, or when the chosen format goes to a file."""
        if self.format != "text" and self.path is None:
            return None
        tty = sys.stdout.isatty()
        color = tty and "NO_COLOR" not in os.environ
        return LiveProgress(sys.stdout, redact, tty=tty, color=color)

    def write(self, report: Report, redact: Redactor, progress: LiveProgress | None) -> None:
        text = rendered(report, self.format, redact)
        if self.path is not None:
            self.path.write_text(text, encoding="utf-8")
        if progress is not None:
            progress.finish(report)
        else:
            sys.stdout.write(text)


def rendered(report: Report, format_: str, redact: Redactor) -> str:
    """The report in this format, its free text scrubbed before rendering (ids, names and
    keys kept), then the rendered text through the redactor's safety net."""
    marker = escape(REDACTED) if format_ == "junit" else REDACTED
    return redact.render(FORMATS[format_], report, marker)


def fail(code: int, message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _load(given: ValuesSource) -> tuple[Values | None, CheckResult]:
    """Load and check the values; the `values` check result either way."""
    try:
        values = load_values(given)
    except ValuesError as exc:
        return None, result_for([Problem("", problem) for problem in exc.problems])
    if not given.files and not (given.set or given.set_string or given.set_file):
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


def validate(params: dict[str, Any], format_: str, strict: bool) -> int:
    """The values check alone, rendered; no network."""
    started = time.monotonic()
    values, values_check = _load(source(params))
    redact = Redactor.for_values(values.data if values else {})
    report = Report((values_check,), time.monotonic() - started, __version__)
    sys.stdout.write(rendered(report, format_, redact))
    return exit_code(report, strict)


def list_checks(params: dict[str, Any]) -> int:
    """Print every check id, title and the values it reads."""
    given = source(params)
    values = Values()
    if given.files or given.set or given.set_string or given.set_file:
        try:
            values = load_values(given)
        except ValuesError as exc:
            for problem in exc.problems:
                click.echo(f"error: {problem}", err=True)
            return EXIT_BAD_INPUT
    click.echo(f"{'values':<22} Values: required, conditional and typed values of the chart")
    from preflight import registry

    for check in registry.all_checks(values):
        click.echo(f"{check.id:<22} {check.title}")
        if check.reads:
            click.echo(f"{'':<22}   reads: {', '.join(check.reads)}")
    return EXIT_OK


def schema_text() -> str:
    """The values rules as JSON Schema."""
    return json.dumps(json_schema(), indent=2) + "\n"


def pull_secret_names(params: dict[str, Any]) -> list[str]:
    """The names in global.imagePullSecrets of the given values (for the Job's manifests)."""
    given = source(params)
    if not (given.files or given.set or given.set_string or given.set_file):
        return []
    try:
        entries = load_values(given).get("global.imagePullSecrets") or []
    except ValuesError as exc:
        fail(EXIT_BAD_INPUT, "; ".join(exc.problems))
    return [str(e.get("name") if isinstance(e, dict) else e) for e in entries]
