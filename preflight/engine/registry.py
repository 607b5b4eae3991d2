"""Finding checks: every module registered under the entry-point group
`sense_preflight.checks` provides a function `checks(values) -> list[Check]`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import cache
from importlib.metadata import EntryPoint, entry_points

from preflight.engine.check import Check, Probe, StepFailed
from preflight.values import check as values_check
from preflight.values.load import Values

GROUP = "sense_preflight.checks"

Provider = Callable[[Values], Sequence[Check]]


@cache
def _points() -> tuple[EntryPoint, ...]:
    """The group's entry points, sorted by name: read once per process (each reading scans
    every installed distribution's metadata, ~5 ms, and a run asks several times)."""
    return tuple(sorted(entry_points(group=GROUP), key=lambda point: point.name))


def providers() -> list[tuple[str, Provider | Exception]]:
    """(entry-point name, provider or the error that kept it from loading), sorted by name."""
    found: list[tuple[str, Provider | Exception]] = []
    for point in _points():
        try:
            found.append((point.name, point.load()))
        except Exception as exc:  # a broken plug-in is reported, never a traceback
            found.append((point.name, exc))
    return found


def component_modules() -> dict[str, str]:
    """Each installed component's check module: entry-point name → module name, by name."""
    return {point.name: point.module for point in _points()}


def chosen_components(only: Sequence[str] = (), skip: Sequence[str] = ()) -> dict[str, str]:
    """component_modules() less the components the command line's --only/--skip leave out:
    one `skip` names, or, when `only` is given, one with none of its checks named there."""

    def components(names: Sequence[str]) -> set[str]:
        return {name.split(".", 1)[0] for name in names}

    return {
        component: module
        for component, module in component_modules().items()
        if component not in components(skip) and (not only or component in components(only))
    }


def all_checks(values: Values) -> list[Check]:
    """Every check the installed providers give for these values; a broken provider becomes a
    check that fails with the reason."""
    checks: list[Check] = []
    for name, provider in providers():
        if isinstance(provider, Exception):
            checks.append(
                _broken(name, f"cannot load check module: {type(provider).__name__}: {provider}")
            )
            continue
        try:
            checks.extend(provider(values))
        except Exception as exc:
            checks.append(
                _broken(
                    name, f"check module failed to list its checks: {type(exc).__name__}: {exc}"
                )
            )
    seen: set[str] = set()
    unique = []
    for check in checks:
        if check.id not in seen:
            seen.add(check.id)
            unique.append(check)
    return unique


def _broken(name: str, reason: str) -> Check:
    def run(probe: Probe) -> None:
        with probe.step("load"):
            raise StepFailed(
                reason, "reinstall sense-preflight, or remove the broken plug-in package"
            )

    return Check(id=name, title=f"check module {name}", run=run)


def select(checks: Iterable[Check], only: Sequence[str], skip: Sequence[str]) -> list[Check]:
    """Apply --only/--skip; a component name (`postgres`) matches all its checks."""

    def matches(check: Check, names: Sequence[str]) -> bool:
        return any(check.id == name or check.component == name for name in names)

    chosen = [check for check in checks if not only or matches(check, only)]
    return [check for check in chosen if not matches(check, skip)]


def unknown_names(checks: Iterable[Check], names: Iterable[str]) -> list[str]:
    """Names given to --only/--skip that match no check id or component (`values`, the check
    that always runs first, is known)."""
    known = {check.id for check in checks} | {check.component for check in checks}
    known.add(values_check.ID)
    return [name for name in names if name not in known]
