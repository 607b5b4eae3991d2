"""Text for people: one line per check and per failing step, then a summary.

On a terminal `LiveProgress` prints each check as it finishes, with a "running:" line that
is rewritten in place, and colours (none with NO_COLOR). In a pod log or a pipe (no TTY) it
prints one short line per finished check as progress, then the whole report in the order of
`sense-preflight checks`, so two runs of the same values read the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

import click

from preflight.report.result import CheckResult, Report, Status

if TYPE_CHECKING:
    from preflight.engine.check import Check
    from preflight.report.redact import Redactor

#: How a progress line starts (a run without a terminal, before the report).
PROGRESS = "done  "

_COLOR = {
    Status.PASS: "green",
    Status.WARN: "yellow",
    Status.FAIL: "red",
    Status.SKIP: "bright_black",
}


def check_lines(result: CheckResult, color: bool = False) -> list[str]:
    """The check's line, and for a failure or warning, its failing step and the fix."""
    label = f"{result.status.value.upper():4}"
    if color:
        label = click.style(label, fg=_COLOR[result.status], bold=result.status is Status.FAIL)
    timing = f" ({result.duration_s:.2f}s)" if result.status is not Status.SKIP else ""
    accepted = "[accepted failure, --accept] " if result.accepted else ""
    lines = [f"{label}  {result.id:<22} {accepted}{result.message}{timing}"]
    if result.status in (Status.FAIL, Status.WARN):
        flagged = [step for step in result.steps if step.status in (Status.FAIL, Status.WARN)]
        if len(flagged) > 1:
            lines += [f"      {step.status.value}: {step.name}: {step.detail}" for step in flagged]
        if result.remediation:
            lines.append(f"      fix: {result.remediation}")
    return lines


def summary_line(report: Report, color: bool = False) -> str:
    counts = report.summary
    accepted = f" ({report.accepted} accepted)" if report.accepted else ""
    parts = [
        (f"{counts['pass']} passed", Status.PASS),
        (f"{counts['warn']} warnings{accepted}", Status.WARN),
        (f"{counts['fail']} failed", Status.FAIL),
        (f"{counts['skip']} skipped", Status.SKIP),
    ]
    shown = ", ".join(click.style(text, fg=_COLOR[s]) if color else text for text, s in parts)
    return f"Summary: {shown} in {report.duration_s:.1f}s"


def render_text(report: Report) -> str:
    """The whole report at once (for -o FILE and for non-live output)."""
    lines: list[str] = []
    for result in report.checks:
        lines += check_lines(result)
    lines += ["", summary_line(report)]
    return "\n".join(lines) + "\n"


def progress_line(result: CheckResult) -> str:
    """A finished check in one line (the progress of a run without a terminal)."""
    return f"{PROGRESS}{result.id}: {result.status.value} ({result.duration_s:.2f}s)"


def report_lines(report: Report) -> str:
    """Every check's lines, in the report's order (that of `sense-preflight checks`)."""
    return "\n".join(line for result in report.checks for line in check_lines(result))


class LiveProgress:
    """Prints each check's lines as it finishes (an event listener for the runner)."""

    def __init__(self, stream: TextIO, redact: Redactor, *, tty: bool, color: bool) -> None:
        self.stream = stream
        self.redact = redact
        self.tty = tty
        self.color = color
        self.running: list[str] = []

    def __call__(self, event: str, check: Check, result: CheckResult | None) -> None:
        if event == "start":
            self.running.append(check.id)
            self._clear_status()
            self._show_status()
            self.stream.flush()
        elif event == "retry":  # --wait tries it again: not its final result yet
            if check.id in self.running:
                self.running.remove(check.id)
        elif result is not None:
            if check.id in self.running:
                self.running.remove(check.id)
            self.show(result)

    def show(self, result: CheckResult) -> None:
        """Print a finished check's lines (on a terminal) or its progress line."""
        self._clear_status()
        render = self._lines if self.tty else progress_line
        self.stream.write(self.redact.render(render, result) + "\n")
        self._show_status()
        self.stream.flush()

    def _lines(self, result: CheckResult) -> str:
        return "\n".join(check_lines(result, self.color))

    def note(self, line: str) -> None:
        """A line about the run itself (what --wait is still waiting for)."""
        self._clear_status()
        self.stream.write(self.redact(click.style(line, dim=True) if self.color else line) + "\n")
        self._show_status()
        self.stream.flush()

    def finish(self, report: Report) -> None:
        """The summary; without a terminal, the whole report first, in the checks' order."""
        self._clear_status()
        if not self.tty:
            self.stream.write("\n" + self.redact.render(report_lines, report) + "\n")
        self.stream.write("\n" + summary_line(report, self.color) + "\n")
        self.stream.flush()

    def _show_status(self) -> None:
        if self.tty and self.running:
            shown = ", ".join(self.running[:4]) + (" …" if len(self.running) > 4 else "")
            self.stream.write(
                click.style(f"running: {shown}", dim=True) if self.color else f"running: {shown}"
            )

    def _clear_status(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
