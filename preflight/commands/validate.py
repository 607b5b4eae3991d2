"""`sense-preflight validate`: the values check alone, rendered; no network."""

from __future__ import annotations

import sys
import time
from typing import Any

from preflight import __version__
from preflight.commands.inputs import cluster_options, inputs
from preflight.report.exit_codes import exit_code
from preflight.report.redact import Redactor
from preflight.report.renderers import rendered
from preflight.report.result import Report, utc_now
from preflight.values.check import load_checked


def validate(params: dict[str, Any], format_: str, strict: bool) -> int:
    """Render the values check in `format_`; return the exit code."""
    started_at = utc_now()
    started = time.monotonic()
    given = inputs(params, cluster_options(params))
    values, values_check = load_checked(given.source, given.chart, given.facts)
    redact = Redactor.for_values(values.data if values else {})
    report = Report(
        (values_check,),
        time.monotonic() - started,
        __version__,
        started=started_at,
        values_files=given.source.file_names,
    )
    sys.stdout.write(rendered(report, format_, redact))
    return exit_code(report, strict)
