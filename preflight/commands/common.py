"""What every command shares: the values source of its arguments, comma lists, and a
one-line error exit."""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import click

from preflight.engine.options import RunOptions
from preflight.values.load import ValuesSource


def source(params: dict[str, Any]) -> ValuesSource:
    """The values files and --set* flags a command was given."""
    return ValuesSource(
        files=(*params["files"], *params["value_files"]),
        set=params["set_"],
        set_string=params["set_string"],
        set_file=params["set_file"],
        set_json=params["set_json"],
        set_literal=params["set_literal"],
    )


def run_options(params: dict[str, Any], timeout_s: float, read_only: bool) -> RunOptions:
    """The run-wide settings of a command's TLS and cluster flags."""
    from preflight.net.proxy import captured  # the network layers load for a run, not validate

    return RunOptions(
        timeout_s=timeout_s,
        read_only=read_only,
        ca_bundle=params["ca_bundle"],
        insecure_skip_tls_verify=params["insecure_skip_tls_verify"],
        namespace=params["namespace"],
        create_namespace=params.get("create_namespace", False),
        kubeconfig=params["kubeconfig"],
        context=params["context"],
        in_cluster=params["in_cluster"],
        registry_config=params["registry_config"],
        oidc_scope=params["oidc_scope"],
        proxy_env=captured(os.environ),
        use_proxy=not params["no_proxy"],
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
