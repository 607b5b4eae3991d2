"""The checks' client libraries, imported ahead: the moment a run starts, in one background
thread, while the values load and the rules run.

A check module names the heavy libraries its checks import in a module-level `CLIENTS` tuple
(`("psycopg",)`). Imported inside each check's own thread instead, they were imported one
after another anyway (imports hold the GIL), but only once every check had started, and each
check's first request waited for all of them. Imported here in one thread, in the order of the
entry points, they are mostly loaded by the time the checks start; a check that reaches its
import earlier waits for that one module only (Python's per-module import lock). When the run forks
a child for part of its checks (engine.forked), no thread may run before the fork: the child
starts this for its share once forked, the parent for its own once the child has its checks.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence

from preflight.engine.registry import chosen_components


def start(only: Sequence[str] = (), skip: Sequence[str] = ()) -> threading.Thread:
    """Import, in a daemon thread, the check modules of the selected components and the
    client libraries they name. `only`/`skip` are the command line's check names: a component
    is left out when `skip` names it, or when `only` names none of its checks."""
    thread = threading.Thread(
        target=_import_clients, args=(only, skip), name="preload clients", daemon=True
    )
    thread.start()
    return thread


def _import_clients(only: Sequence[str], skip: Sequence[str]) -> None:
    for module_name in chosen_components(only, skip).values():
        try:
            module = importlib.import_module(module_name)
            for client in getattr(module, "CLIENTS", ()):
                importlib.import_module(client)
        except Exception:  # the registry and the check report what cannot load
            continue
