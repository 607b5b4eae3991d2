"""What every command shares: the values source of its arguments, comma lists, and a
one-line error exit."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from preflight.values.load import ValuesSource


def source(params: dict[str, Any]) -> ValuesSource:
    """The values files and --set* flags a command was given."""
    return ValuesSource(
        files=(*params["files"], *params["value_files"]),
        set=params["set_"],
        set_string=params["set_string"],
        set_file=params["set_file"],
    )


def csv(items: tuple[str, ...]) -> list[str]:
    """`--only a,b --only c` → [a, b, c]."""
    return [name.strip() for item in items for name in item.split(",") if name.strip()]


def error(message: str) -> None:
    """One `error:` line on stderr."""
    click.echo(f"error: {message}", err=True)


def fail(code: int, message: str) -> NoReturn:
    """One line on stderr, then exit with `code`."""
    error(message)
    sys.exit(code)
