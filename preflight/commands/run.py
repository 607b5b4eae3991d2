"""`sense-preflight run` (and `bundle`): values → rules → checks → runner → report (and
bundle), always written through redaction."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import click

from preflight import __version__
from preflight.commands.common import csv, fail, source
from preflight.engine import preload
from preflight.engine.check import Check
from preflight.engine.options import RunOptions
from preflight.report.exit_codes import (
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    exit_code,
)
from preflight.report.redact import REDACTED, Redactor
from preflight.report.renderers import FORMATS
from preflight.report.renderers.text import LiveProgress
from preflight.report.result import CheckResult, Report, Status
from preflight.values.check import load_checked
from preflight.values.load import Values, ValuesSource


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
        return cls(
            source=source(params),
            options=RunOptions(
                timeout_s=params["timeout"],
                read_only=params["read_only"],
                ca_bundle=params["ca_bundle"],
                insecure_skip_tls_verify=params["insecure_skip_tls_verify"],
                namespace=params["namespace"],
                kubeconfig=params["kubeconfig"],
                context=params["context"],
                in_cluster=params["in_cluster"],
                registry_config=params["registry_config"],
                oidc_scope=params["oidc_scope"],
            ),
            only=csv(params["only"]),
            skip=csv(params["skip"]),
            format=params["format_"],
            output=params["output"],
            strict=params["strict"],
            bundle=bundle,
        )


def execute(call: Invocation) -> int:
    """Values → rules → checks → runner → report (and bundle), written through redaction.
    Returns the exit code."""
    import logging

    from preflight.engine.runner import run_checks
    from preflight.report.bundle import write_bundle

    started = time.monotonic()
    preload.start(call.only, call.skip)  # the checks' clients load while the values do
    values, values_check = load_checked(call.source)
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
) -> list[Check]:
    """The checks to run, or none when the values failed; unknown --only/--skip names exit 2."""
    if values is None or values_check.status is Status.FAIL:
        return []
    from preflight.engine import registry

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
        marker = escape(REDACTED) if self.format == "junit" else REDACTED
        text = redact(FORMATS[self.format](redact.report(report)), marker)
        if self.path is not None:
            self.path.write_text(text, encoding="utf-8")
        if progress is not None:
            progress.finish(report)
        else:
            sys.stdout.write(text)
