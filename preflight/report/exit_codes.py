"""The design's exit codes, and the one a report earns."""

from __future__ import annotations

from preflight.report.result import Report, Status

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_STRICT_WARN = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130


def exit_code(report: Report, strict: bool) -> int:
    """2 for values errors, 3 for a failed check, 4 for warnings under --strict (a failure
    accepted with --accept was agreed: it does not count), else 0."""
    statuses = {check.id: check.status for check in report.checks}
    if statuses.get("values") is Status.FAIL:
        return EXIT_BAD_INPUT
    if Status.FAIL in statuses.values():
        return EXIT_FAILED
    if strict and any(c.status is Status.WARN and not c.accepted for c in report.checks):
        return EXIT_STRICT_WARN
    return EXIT_OK
