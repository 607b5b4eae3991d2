"""The exporter's state as Prometheus metric families (prometheus_client).

Label values are check ids, components, statuses, step names, host names and the version —
never a message, never a secret (every label value passes through redaction as well)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from preflight import __version__
from preflight.exporter.exporter import Exporter
from preflight.report.redact import Redactor
from preflight.report.result import CheckResult, Status

PREFIX = "sense_preflight_"
STATUSES = (Status.PASS, Status.WARN, Status.FAIL, Status.SKIP)


def check_families(results: Sequence[CheckResult], redact: Redactor) -> list[Metric]:
    """Per check: status (one-hot), duration, each step's duration and success, and the TLS
    certificate's expiry. The `values` check's steps are value paths, not layers: not exported."""
    status = GaugeMetricFamily(
        f"{PREFIX}check_status",
        "The check's status in its last run: 1 for the status it had, 0 for the others.",
        labels=["check", "component", "status"],
    )
    duration = GaugeMetricFamily(
        f"{PREFIX}check_duration_seconds",
        "How long the check took in its last run.",
        labels=["check"],
    )
    step_duration = GaugeMetricFamily(
        f"{PREFIX}step_duration_seconds",
        "How long each step (dns, tcp, tls, auth…) of the check took in its last run.",
        labels=["check", "step"],
    )
    step_success = GaugeMetricFamily(
        f"{PREFIX}step_success",
        "1 when the step passed (also with a warning), 0 when it failed; skipped steps absent.",
        labels=["check", "step"],
    )
    not_after = GaugeMetricFamily(
        f"{PREFIX}tls_not_after_timestamp_seconds",
        "When the TLS leaf certificate the check verified expires (Unix time).",
        labels=["check", "host"],
    )
    for result in results:
        check = redact(result.id)
        for each in STATUSES:
            status.add_metric(
                [check, redact(result.component), each.value], float(result.status is each)
            )
        duration.add_metric([check], result.duration_s)
        if result.id != "values":
            for step, (seconds, ok) in _steps(result).items():
                step_duration.add_metric([check, redact(step)], seconds)
                step_success.add_metric([check, redact(step)], float(ok))
        expiry = _not_after(result)
        if expiry is not None:
            not_after.add_metric([check, redact(str(result.facts.get("cert_host", "")))], expiry)
    return [status, duration, step_duration, step_success, not_after]


def _steps(result: CheckResult) -> dict[str, tuple[float, bool]]:
    """Step name → (seconds, passed); a name seen twice adds its time and fails if either did."""
    steps: dict[str, tuple[float, bool]] = {}
    for step in result.steps:
        if step.status is Status.SKIP:
            continue
        seconds, ok = steps.get(step.name, (0.0, True))
        steps[step.name] = (seconds + step.duration_s, ok and step.status is not Status.FAIL)
    return steps


def _not_after(result: CheckResult) -> float | None:
    """The `cert_not_after` fact as Unix time, or None."""
    text = result.facts.get("cert_not_after")
    if not isinstance(text, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


class ExporterCollector(Collector):
    """What /metrics shows: the last scheduled run, the schedule's health, the build."""

    def __init__(self, exporter: Exporter) -> None:
        self._exporter = exporter

    def collect(self) -> Iterator[Metric]:
        exporter = self._exporter
        build = GaugeMetricFamily(
            f"{PREFIX}build_info", "The sense-preflight version, always 1.", labels=["version"]
        )
        build.add_metric([__version__], 1)
        yield build
        yield GaugeMetricFamily(
            f"{PREFIX}config_reload_success",
            "1 when the last reading of the values (start or SIGHUP) succeeded, else 0.",
            value=float(exporter.reload_ok),
        )
        yield CounterMetricFamily(
            f"{PREFIX}runs", "Scheduled runs finished since start.", value=exporter.runs
        )
        last = exporter.last
        if last is None:
            return
        yield GaugeMetricFamily(
            f"{PREFIX}last_run_timestamp_seconds",
            "When the last scheduled run ended (Unix time).",
            value=last.ended_at,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}run_duration_seconds",
            "How long the last scheduled run took.",
            value=last.duration_s,
        )
        yield from check_families(last.report.checks, exporter.config.redact)


class ResultsCollector(Collector):
    """What /probe shows: the families of the checks it just ran."""

    def __init__(self, results: Iterable[CheckResult], redact: Redactor) -> None:
        self._results = list(results)
        self._redact = redact

    def collect(self) -> Iterator[Metric]:
        yield from check_families(self._results, self._redact)
