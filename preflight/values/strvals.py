"""Helm's `--set*` syntax (helm.sh/helm/v3/pkg/strvals), as a small recursive-descent parser.

`a.b=c,d[0].e={x,y}`: dotted keys, `[i]` list indexes, `{x,y}` lists, `\\,` `\\.` `\\\\` escapes,
`key=` for an empty string. The flags differ only in how a value is read:

- `--set` infers types (true/false/null/integers), `--set-string` keeps strings;
- `--set-file` reads each value as a path and takes the file's content;
- `--set-json` reads a JSON value after `=` (`key=` is null); Helm 4 also takes a whole JSON
  object (`{"a": {"b": 1}}`), merged like a values file (see `load.py`);
- `--set-literal` takes everything after the first `=` as the string, and its key has no
  escapes and no commas (Helm's literal parser).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

MAX_INDEX = 65536

#: How a value's raw text becomes the value (typed, string, or a file's content).
Reader = Callable[[str], Any]


class SetSyntaxError(ValueError):
    """A `--set*` expression Helm would reject. The message never holds a value; `at` is
    where the assignment that failed starts in the text (so its key can be named)."""

    at: int = 0


class CommaSplitError(SetSyntaxError):
    """The text after a comma is no `key=value`: in Helm's grammar a comma ends the value of
    `key` and starts a new assignment, so a value with a comma was cut in two."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"the comma in the value of {key} starts a new assignment in Helm's syntax (the "
            "text after it is no key=value); keep the comma by writing it as \\, "
            f"({key}=first\\,second), or set the value in a values file or with "
            f"--set-json '{key}=\"first,second\"'"
        )
        self.key = key


def typed_value(text: str) -> Any:
    """Helm's typedVal: true/false/null/0 and integers not starting with 0; else the string."""
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    if lowered == "null":
        return None
    if text == "0":
        return 0
    if text and text[0] != "0":
        try:
            return int(text, 10)
        except ValueError:
            pass
    return text


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


#: Go's encoding/json: no NaN or Infinity.
_JSON = json.JSONDecoder(parse_constant=_no_constant)


class _Parser:
    """One flag's text applied onto a values mapping. `reader` turns a value's text into the
    value; `json` reads JSON values instead; `literal` is Helm's `--set-literal`."""

    def __init__(
        self, text: str, reader: Reader = str, *, json: bool = False, literal: bool = False
    ) -> None:
        self.text = text
        self.pos = 0
        self.reader = reader
        self.json = json
        self.literal = literal
        #: The full path of the last assignment, for the comma-split message.
        self.last_key: str | None = None

    # --- reading -----------------------------------------------------------------------
    def _read_until(self, stops: str) -> tuple[str, str | None]:
        """Read up to one of `stops`, honouring backslash escapes (none in a literal key);
        return (text, stop or None)."""
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\" and not self.literal and self.pos < len(self.text):
                out.append(self.text[self.pos])
                self.pos += 1
            elif char in stops:
                return "".join(out), char
            else:
                out.append(char)
        return "".join(out), None

    def _skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    # --- grammar -----------------------------------------------------------------------
    def parse(self, data: dict[str, Any]) -> None:
        while self.pos < len(self.text):
            start = self.pos
            try:
                self._key(data, "")
            except SetSyntaxError as exc:
                if self.last_key is not None and self._no_assignment_at(start):
                    raise CommaSplitError(self.last_key) from None
                exc.at = start
                raise

    def _no_assignment_at(self, start: int) -> bool:
        """Whether the comma-separated piece at `start` has no `=` (so it is no assignment)."""
        self.pos = start
        return self._read_until("=,")[1] != "="

    def _key(self, data: dict[str, Any], prefix: str) -> None:
        key, stop = self._read_until("=[." if self.literal else "=[,.")
        if stop is None or stop == ",":
            raise SetSyntaxError("key has no value (expected key=value)")
        if not key:
            raise SetSyntaxError(f"empty key before {stop!r}")
        path = prefix + key
        if stop == "=":
            data[key] = self._assigned_value()
            self.last_key = path
        elif stop == ".":
            child = data.get(key)
            if not isinstance(child, dict):
                child = {}
            data[key] = child
            self._key(child, path + ".")
        else:  # "["
            items = data.get(key)
            data[key] = self._list_item(items if isinstance(items, list) else [], path)

    def _index(self) -> int:
        raw, stop = self._read_until("]")
        if stop is None:
            raise SetSyntaxError("unterminated list index (missing ']')")
        try:
            index = int(raw)
        except ValueError:
            raise SetSyntaxError("list index is not a number") from None
        if index < 0:
            raise SetSyntaxError(f"negative list index {index} is not allowed")
        if index > MAX_INDEX:
            raise SetSyntaxError(f"list index {index} is larger than {MAX_INDEX}")
        return index

    def _list_item(self, items: list[Any], path: str) -> list[Any]:
        """After `key[`: read the index, then `=value`, `.rest` or `[` of a nested list."""
        index = self._index()
        path = f"{path}[{index}]"
        items = items + [None] * (index + 1 - len(items))
        if self.pos >= len(self.text):
            raise SetSyntaxError(f"list index {index} has no value")
        char = self.text[self.pos]
        self.pos += 1
        if char == "=":
            items[index] = self._assigned_value()
            self.last_key = path
        elif char == ".":
            child = items[index] if isinstance(items[index], dict) else {}
            items[index] = child
            self._key(child, path + ".")
        elif char == "[":
            inner = items[index] if isinstance(items[index], list) else []
            items[index] = self._list_item(inner, path)
        else:
            raise SetSyntaxError(f"unexpected {char!r} after list index {index}")
        return items

    def _assigned_value(self) -> Any:
        if self.literal:
            value = self.text[self.pos :]
            self.pos = len(self.text)
            return value
        if self.json:
            return self._json_value()
        if self.text.startswith("{", self.pos):
            self.pos += 1
            return self._list_literal()
        raw, _ = self._read_until(",")
        return self.reader(raw)

    def _json_value(self) -> Any:
        """A JSON value, then blanks and the comma before the next assignment; `key=` is null."""
        self._skip_spaces()
        if self.pos >= len(self.text) or self.text[self.pos] == ",":
            self.pos += 1
            return None
        start = self.pos
        try:
            value, self.pos = _JSON.raw_decode(self.text, start)
        except json.JSONDecodeError as exc:
            raise SetSyntaxError(
                f"the value is not JSON ({exc.msg} at character {exc.pos - start + 1}); "
                'a JSON string needs double quotes: key="text"'
            ) from None
        except ValueError as exc:
            raise SetSyntaxError(f"the value is not JSON ({exc})") from None
        self._skip_spaces()
        if self.pos < len(self.text):
            if self.text[self.pos] != ",":
                raise SetSyntaxError(
                    "unexpected text after the JSON value (separate assignments with ',')"
                )
            self.pos += 1
        return value

    def _list_literal(self) -> list[Any]:
        values: list[Any] = []
        while True:
            raw, stop = self._read_until(",}")
            if stop is None:
                raise SetSyntaxError("list is missing its closing '}'")
            if raw or stop == "," or values:
                values.append(self.reader(raw))
            if stop == "}":
                break
        if self.pos < len(self.text):
            if self.text[self.pos] != ",":
                raise SetSyntaxError(f"unexpected {self.text[self.pos]!r} after a list")
            self.pos += 1
        return values


def parse_into(data: dict[str, Any], text: str, *, as_string: bool = False) -> None:
    """Apply one `--set` (or `--set-string` with as_string) expression onto data, in place."""
    _Parser(text, str if as_string else typed_value).parse(data)


def parse_json_into(data: dict[str, Any], text: str) -> None:
    """Apply one `--set-json key=JSON[,key=JSON…]` expression onto data, in place."""
    _Parser(text, json=True).parse(data)


def json_object(text: str) -> dict[str, Any]:
    """Helm 4's `--set-json '{"key": JSON, …}'`: the whole text is one JSON object."""
    try:
        document = _JSON.decode(text.strip())
    except json.JSONDecodeError as exc:
        raise SetSyntaxError(f"not a JSON object ({exc.msg} at character {exc.pos + 1})") from None
    except ValueError as exc:
        raise SetSyntaxError(f"not a JSON object ({exc})") from None
    if not isinstance(document, dict):
        raise SetSyntaxError("not a JSON object")
    return document


def parse_literal_into(data: dict[str, Any], text: str) -> None:
    """Apply one `--set-literal key=value` onto data: the value is all after the first `=`."""
    _Parser(text, literal=True).parse(data)


def parse_file_into(data: dict[str, Any], text: str, read: Reader) -> None:
    """Apply one `--set-file key=path[,key=path…]`: each value is `read(path)`."""

    def content(path: str) -> Any:
        if not path:
            raise SetSyntaxError("no file path after '='")
        return read(path)

    _Parser(text, content).parse(data)
