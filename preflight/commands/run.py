"""`sense-preflight run` (and `bundle`): values → rules → checks → runner → report (and
bundle), always written through redaction."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click

from preflight import __version__
from preflight.commands.common import csv, fail, run_options
from preflight.commands.inputs import Inputs, inputs
from preflight.engine import forked, preload
from preflight.engine.check import Check
from preflight.engine.forked import Child
from preflight.engine.options import RunOptions, in_cluster
from preflight.engine.runner import CLEANUP_WAIT_S, run_checks, start_child
from preflight.engine.waiting import Patience
from preflight.report.accept import (
    Acceptance,
    BadAcceptance,
    accept,
    parse_accept,
    unknown_acceptances,
)
from preflight.report.exit_codes import (
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    exit_code,
)
from preflight.report.redact import Redactor, find_secrets, proxy_secrets, value_words
from preflight.report.renderers import rendered
from preflight.report.renderers.text import LiveProgress
from preflight.report.result import CheckResult, Report, Status, utc_now
from preflight.values.check import ID as VALUES_ID
from preflight.values.check import load_checked
from preflight.values.load import Values

DEFAULT_INTERVAL_S = 5.0


@dataclass(frozen=True)
class Invocation:
    """One run as the user asked for it."""

    inputs: Inputs
    options: RunOptions
    only: list[str]
    skip: list[str]
    format: str
    output: Path | None
    strict: bool
    bundle: Path | None
    #: Also print the report framed for `sense-preflight in-cluster` (preflight.report.frame).
    frame: bool = False
    accept: tuple[Acceptance, ...] = ()
    patience: Patience | None = None  # --wait

    @classmethod
    def from_params(cls, params: dict[str, Any], bundle: Path | None) -> Invocation:
        options = replace(
            run_options(params, params["timeout"], params["read_only"]),
            gpu_probe=params.get("gpu_probe_result"),
        )
        return cls(
            inputs=inputs(params, options),
            options=options,
            only=csv(params["only"]),
            skip=csv(params["skip"]),
            format=params["format_"],
            output=params["output"],
            strict=params["strict"],
            bundle=bundle,
            frame=params.get("report_frame", False),
            accept=tuple(_acceptances(params["accept"])),
            patience=_patience(params["wait"], params["interval"]),
        )


def _acceptances(items: tuple[str, ...]) -> list[Acceptance]:
    """--accept entries, or a one-line error (exit 2)."""
    try:
        return parse_accept(csv(items))
    except BadAcceptance as exc:
        fail(EXIT_BAD_INPUT, str(exc))


def _patience(wait_s: float | None, interval_s: float | None) -> Patience | None:
    """--wait and --interval, or a one-line error for an interval without a wait (exit 2)."""
    if wait_s is None:
        if interval_s is not None:
            fail(EXIT_BAD_INPUT, "--interval needs --wait DURATION")
        return None
    return Patience(wait_s, DEFAULT_INTERVAL_S if interval_s is None else interval_s)


def execute(call: Invocation) -> int:
    """Values → rules → checks → runner → report (and bundle), written through redaction.
    Returns the exit code. Where it may, part of the checks run in a child forked first
    (engine.forked), which imports their clients while the values load here."""
    started_at = utc_now()
    started = time.monotonic()
    child = start_child(call.only, call.skip) if _processes(call) == 2 else None
    try:
        return _execute(call, child, started_at, started)
    except KeyboardInterrupt:  # the checks' cleanups ran (engine.runner)
        click.echo("\ninterrupted: cleanups ran; no report", err=True)
        return EXIT_INTERRUPTED
    finally:
        if child is not None:  # done already, or never handed checks (bad values, Ctrl-C)
            child.stop()
            child.wait(CLEANUP_WAIT_S)


def _execute(call: Invocation, child: Child | None, started_at: str, started: float) -> int:
    import logging

    from preflight.report.bundle import write_bundle

    if child is None:  # else the child imports its share's clients, this process its own later
        preload.start(call.only, call.skip)  # the checks' clients load while the values do
    given = call.inputs
    values, values_check = load_checked(given.source, given.chart, given.facts)
    data = values.data if values else {}
    secrets = find_secrets(data) | proxy_secrets(call.options.proxy_env)
    redact = Redactor(secrets, value_words(data))
    logging.getLogger().addHandler(logging.NullHandler())  # client libraries never print
    output = Output(call.format, call.output)
    try:
        checks = _selected(values, values_check, call.only, call.skip, call.accept)
        progress = output.progress(redact)
        if progress is not None:
            progress.show(values_check)
        results = [values_check]
        if checks and values is not None:
            ran = _run(call, checks, values, progress, redact, child)
            results += accept(ran, call.accept)
        report = Report(
            tuple(results),
            time.monotonic() - started,
            __version__,
            started=started_at,
            in_cluster=in_cluster(call.options),
            values_files=call.inputs.source.file_names,
        )
        output.write(report, redact, progress)
        if call.frame:
            from preflight.report.frame import render as framed

            sys.stdout.write(framed(report, redact))
        if call.bundle is not None:
            size = write_bundle(
                call.bundle, report, values.data if values else {}, call.options, redact
            )
            click.echo(
                f"support bundle: {call.bundle} ({size / 1024:.1f} KiB)", err=progress is None
            )
    except BrokenPipeError:
        raise  # the reader left (`| head`): click ends the program quietly
    except OSError as exc:
        fail(EXIT_INTERNAL, redact(f"cannot write {exc.filename}: {exc.strerror or exc}"))
    except Exception as exc:  # never a traceback, never a secret
        fail(EXIT_INTERNAL, redact(f"internal error: {type(exc).__name__}: {exc}"))
    return exit_code(report, call.strict)


def _processes(call: Invocation) -> int:
    """2 where a forked child may run part of a single run's checks, else 1; a bad
    SENSE_PREFLIGHT_PROCESSES is a one-line error (exit 2)."""
    try:
        wanted = forked.processes()
    except forked.BadSetting as exc:
        fail(EXIT_BAD_INPUT, str(exc))
    return 1 if call.patience is not None else wanted


def _run(
    call: Invocation,
    checks: list[Check],
    values: Values,
    progress: LiveProgress | None,
    redact: Redactor,
    child: Child | None,
) -> list[CheckResult]:
    """Run the checks once (part in `child`), or under --wait until they pass; progress sees
    each result as --accept makes it."""
    from preflight.engine.waiting import run_until_passing

    def on_event(event: str, check: Check, result: CheckResult | None) -> None:
        if progress is not None:
            progress(event, check, accept([result], call.accept)[0] if result else None)

    if call.patience is None:
        return run_checks(checks, values, call.options, on_event, child=child)

    def failing(result: CheckResult) -> bool:
        return accept([result], call.accept)[0].status is Status.FAIL

    def on_attempt(attempt: int, still: list[CheckResult], pause_s: float, left_s: float) -> None:
        names = "; ".join(f"{r.id} ({r.message})" for r in still)
        line = redact(
            f"waiting ({left_s:.0f}s left): attempt {attempt} still fails: {names}; "
            f"next attempt in {pause_s:.1f}s"
        )
        if progress is not None:
            progress.note(line)
        else:
            click.echo(line, err=True)

    return run_until_passing(
        checks, values, call.options, call.patience, failing, on_event, on_attempt
    )


def _selected(
    values: Values | None,
    values_check: CheckResult,
    only: list[str],
    skip: list[str],
    acceptances: tuple[Acceptance, ...] = (),
) -> list[Check]:
    """The checks to run, or none when the values failed; unknown --only/--skip/--accept
    names exit 2."""
    if values is None or values_check.status is Status.FAIL:
        return []
    from preflight.engine import registry

    if VALUES_ID in skip:
        fail(EXIT_BAD_INPUT, "--skip values: the values check always runs (every check reads them)")
    available = registry.all_checks(values)
    unknown = registry.unknown_names(available, [*only, *skip])
    if unknown:
        fail(
            EXIT_BAD_INPUT,
            f"unknown check id(s): {', '.join(unknown)} (see `sense-preflight checks`)",
        )
    known = sorted({name for check in available for name in (check.id, check.component)})
    not_checks = unknown_acceptances(acceptances, known)
    if not_checks:
        fail(
            EXIT_BAD_INPUT,
            f"--accept: unknown check id(s) {', '.join(not_checks)}; valid: all, "
            + ", ".join(known),
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
