"""Values exactly as Helm reads them (pkg/cli/values MergeValues): files in order (deep merge),
then --set-json, --set, --set-string, --set-file, --set-literal. Every problem is collected and
reported at once as `ValuesError`."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from preflight.values import strvals

if TYPE_CHECKING:
    import yaml

_MISSING = object()


class ValuesError(Exception):
    """One or more problems in the values input; each is one line for the user."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class ValuesSource:
    """What the user gave on the command line, in the order Helm applies it. `layers` go
    below the files: the chart's values.yaml, then an installed release's values (--chart,
    --release)."""

    files: Sequence[str] = ()
    set: Sequence[str] = ()
    set_string: Sequence[str] = ()
    set_file: Sequence[str] = ()
    set_json: Sequence[str] = ()
    set_literal: Sequence[str] = ()
    layers: Sequence[Mapping[str, Any]] = ()

    @property
    def empty(self) -> bool:
        """No layer, no file and no --set* flag was given."""
        return not (
            self.layers
            or self.files
            or self.set
            or self.set_string
            or self.set_file
            or self.set_json
            or self.set_literal
        )

    @property
    def file_names(self) -> tuple[str, ...]:
        """The values files' names, without their folders (for the report)."""
        return tuple(Path(file).name for file in self.files)


@dataclass(frozen=True)
class Values:
    """The merged values mapping, read by dotted path (`postgres.api.host`)."""

    data: Mapping[str, Any] = field(default_factory=dict)

    def get(self, path: str, default: Any = None) -> Any:
        """The value at a dotted path, or default when any part is missing or null."""
        node: Any = self.data
        for part in split_path(path):
            if isinstance(part, int):
                if not isinstance(node, list) or not 0 <= part < len(node):
                    return default
            elif not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return default if node is None else node

    def has(self, path: str) -> bool:
        """True when the path holds a non-null, non-empty value."""
        value = self.get(path, _MISSING)
        return value is not _MISSING and value != "" and value != [] and value != {}

    def enabled(self, path: str, default: bool = False) -> bool:
        """A boolean switch; anything but a real boolean counts as its default."""
        value = self.get(path)
        return value if isinstance(value, bool) else default


def split_path(path: str) -> list[str | int]:
    """`a.b[0].c` → ['a', 'b', 0, 'c']."""
    parts: list[str | int] = []
    for piece in path.split("."):
        name, _, rest = piece.partition("[")
        if name:
            parts.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            parts.append(int(index))
            rest = rest.removeprefix("[")
    return parts


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of two values files: maps merge, everything else is replaced."""
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def drop_nulls(node: Any) -> Any:
    """Helm deletes keys set to null when it coalesces values: so do we."""
    if isinstance(node, dict):
        return {key: drop_nulls(value) for key, value in node.items() if value is not None}
    if isinstance(node, list):
        return [drop_nulls(value) for value in node]
    return node


def _read_file(path: str) -> dict[str, Any]:
    """Load one values file; raise ValuesError with file and line for anything wrong."""
    if path == "-":
        raise ValuesError(["-: reading values from standard input is not supported; use a file"])
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValuesError([f"{path}: values file not found"]) from None
    except IsADirectoryError:
        raise ValuesError([f"{path}: is a directory, not a values file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValuesError([f"{path}: cannot read values file: {reason}"]) from None
    import yaml  # here: a forked child (engine.forked) takes loaded values, never parses

    try:
        # libyaml's parser where PyYAML has it (its wheels do): the same documents and errors,
        # several times faster than the pure-Python one on a full custom-values.yaml.
        document = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ValuesError([f"{path}: {_yaml_problem(exc)}"]) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        kind = type(document).__name__
        raise ValuesError(
            [f"{path}: a values file must be a mapping of keys, this one is a {kind}"]
        )
    bad_keys = [key for key in document if not isinstance(key, str)]
    if bad_keys:
        raise ValuesError([f"{path}: top-level key {bad_keys[0]!r} is not a string"])
    return document


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"invalid YAML at {where}{problem}"


def load_values(source: ValuesSource) -> Values:
    """Merge every input in Helm's order; raise ValuesError listing every problem found."""
    problems: list[str] = []
    merged: dict[str, Any] = {}
    for layer in source.layers:
        deep_merge(merged, layer)
    for path in source.files:
        try:
            deep_merge(merged, _read_file(path))
        except ValuesError as exc:
            problems.extend(exc.problems)
    _apply(problems, "--set-json", source.set_json, lambda text: _set_json(merged, text))
    _apply(problems, "--set", source.set, lambda text: strvals.parse_into(merged, text))
    _apply(
        problems,
        "--set-string",
        source.set_string,
        lambda text: strvals.parse_into(merged, text, as_string=True),
    )
    _apply(
        problems,
        "--set-file",
        source.set_file,
        lambda text: strvals.parse_file_into(merged, text, _file_content),
    )
    _apply(
        problems,
        "--set-literal",
        source.set_literal,
        lambda text: strvals.parse_literal_into(merged, text),
    )
    if problems:
        raise ValuesError(problems)
    return Values(drop_nulls(merged))


def _apply(problems: list[str], flag: str, items: Iterable[str], apply: Any) -> None:
    for text in items:
        try:
            apply(text)
        except strvals.CommaSplitError as exc:
            problems.append(f"{flag} {exc.key}: {exc}")
        except strvals.SetSyntaxError as exc:
            problems.append(f"{flag} {_first_key(text[exc.at :])}: {exc}")
        except ValuesError as exc:
            problems.extend(f"{flag} {_first_key(text)}: {problem}" for problem in exc.problems)


def _first_key(text: str) -> str:
    """The leading key of a --set expression, never its value (which may be a secret)."""
    if text.lstrip().startswith("{"):
        return "{…}"
    key = re.match(r"[\w.\[\]\\-]*", text)
    shown = key.group(0) if key else ""
    return (shown or "(empty key)") + ("…" if len(shown) < len(text.partition("=")[0]) else "")


def _set_json(merged: dict[str, Any], text: str) -> None:
    """`--set-json key=JSON,…`, or (Helm 4) a whole JSON object merged like a values file."""
    if text.strip().startswith("{"):
        deep_merge(merged, strvals.json_object(text))
    else:
        strvals.parse_json_into(merged, text)


def _file_content(path: str) -> str:
    """A --set-file value: the content of the file at path."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValuesError([f"cannot read {path}: {reason}"]) from None
