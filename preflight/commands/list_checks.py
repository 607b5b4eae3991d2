"""`sense-preflight checks`: every check id, its title and the values it reads."""

from __future__ import annotations

from typing import Any

import click

from preflight.commands.inputs import cluster_options, inputs
from preflight.report.exit_codes import EXIT_BAD_INPUT, EXIT_OK
from preflight.values.check import TITLE as VALUES_TITLE
from preflight.values.load import Values, ValuesError, load_values


def list_checks(params: dict[str, Any]) -> int:
    """Print the checks for the given values (or for empty values); return the exit code."""
    given = inputs(params, cluster_options(params)).source
    values = Values()
    if not given.empty:
        try:
            values = load_values(given)
        except ValuesError as exc:
            for problem in exc.problems:
                click.echo(f"error: {problem}", err=True)
            return EXIT_BAD_INPUT
    click.echo(f"{'values':<22} {VALUES_TITLE}")
    from preflight.engine import registry

    for check in registry.all_checks(values):
        click.echo(f"{check.id:<22} {check.title}")
        if check.reads:
            click.echo(f"{'':<22}   reads: {', '.join(check.reads)}")
    return EXIT_OK
