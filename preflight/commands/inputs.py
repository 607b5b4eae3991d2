"""Where a command's values come from, bottom to top as Helm stacks them: the chart's
values.yaml (`--chart`, or the chart stored in the release), the installed release's values
(`--release`, as `helm upgrade --reuse-values` reuses them), then the files and --set* flags.
Bad input here (no such release, no chart, a corrupt archive) is one line and exit 2."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from preflight.commands.common import fail, source
from preflight.engine.options import RunOptions
from preflight.report.exit_codes import EXIT_BAD_INPUT
from preflight.values.load import ValuesError, ValuesSource

if TYPE_CHECKING:
    from checks.kubernetes.helm_release import Release
    from preflight.values.helm_chart import Chart


@dataclass(frozen=True)
class Inputs:
    """The values source with its layers, the chart (for its schema), and the facts about
    the release and chart the report carries."""

    source: ValuesSource
    chart: Chart | None = None
    facts: dict[str, Any] = field(default_factory=dict)


def inputs(params: dict[str, Any], options: RunOptions) -> Inputs:
    """Read --chart and --release (when given) and stack them under the files and flags."""
    given = source(params)
    chart_path: Path | None = params.get("chart")
    release_name: str | None = params.get("release")
    if chart_path is None and not release_name:
        return Inputs(given)
    from preflight.values.helm_chart import chart_of_release, load_chart

    facts: dict[str, Any] = {}
    config: dict[str, Any] = {}
    chart = None
    try:
        if chart_path is not None:
            chart = load_chart(chart_path)
        if release_name:
            release = _read_release(options, release_name)
            facts["release"] = release.facts
            config = release.config
            if chart is None:
                origin = f"release {release.name} revision {release.revision}"
                chart = chart_of_release(release.record, origin)
    except ValuesError as exc:
        fail(EXIT_BAD_INPUT, "; ".join(exc.problems))
    if chart is not None:
        facts["chart"] = chart.facts
    layers = (dict(chart.values) if chart else {}, config)
    return Inputs(replace(given, layers=layers), chart, facts)


def _read_release(options: RunOptions, name: str) -> Release:
    """The release's deployed revision, or exit 2 with the one-line reason."""
    from checks.kubernetes.helm_release import ReleaseError, read_release

    try:
        return read_release(options, name, os.environ.get("HELM_DRIVER", ""))
    except ReleaseError as exc:
        fail(EXIT_BAD_INPUT, str(exc))


def cluster_options(params: dict[str, Any]) -> RunOptions:
    """The cluster access of a command without run options (validate, checks, job)."""
    return RunOptions(
        namespace=params["namespace"],
        kubeconfig=params.get("kubeconfig"),
        context=params.get("context"),
    )
