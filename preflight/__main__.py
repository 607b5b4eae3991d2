"""`python -m preflight` is the same as the `sense-preflight` command."""

from preflight.cli import program

program()
