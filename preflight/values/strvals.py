"""Helm's `--set` syntax (helm.sh/helm/v3/pkg/strvals), as a small recursive-descent parser.

`a.b=c,d[0].e={x,y}`: dotted keys, `[i]` list indexes, `{x,y}` lists, `\\,` `\\.` `\\\\` escapes,
`key=` for an empty string. `--set` infers types (true/false/null/integers); `--set-string`
keeps every value a string. `parse_into` applies one flag's text onto a values mapping.
"""

from __future__ import annotations

from typing import Any

MAX_INDEX = 65536


class SetSyntaxError(ValueError):
    """A `--set` expression Helm would reject."""


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


class _Parser:
    def __init__(self, text: str, *, as_string: bool, literal: bool = False) -> None:
        self.text = text
        self.pos = 0
        self.as_string = as_string
        self.literal = literal

    # --- reading -----------------------------------------------------------------------
    def _read_until(self, stops: str) -> tuple[str, str | None]:
        """Read up to one of `stops`, honouring backslash escapes; return (text, stop or None)."""
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\" and self.pos < len(self.text):
                out.append(self.text[self.pos])
                self.pos += 1
            elif char in stops:
                return "".join(out), char
            else:
                out.append(char)
        return "".join(out), None

    def _value(self, raw: str) -> Any:
        return raw if self.as_string else typed_value(raw)

    # --- grammar -----------------------------------------------------------------------
    def parse(self, data: dict[str, Any]) -> None:
        while self.pos < len(self.text):
            self._key(data)

    def _key(self, data: dict[str, Any]) -> None:
        key, stop = self._read_until("=[,.")
        if stop is None or stop == ",":
            raise SetSyntaxError("key has no value (expected key=value)")
        if not key:
            raise SetSyntaxError(f"empty key before {stop!r}")
        if stop == "=":
            data[key] = self._assigned_value()
        elif stop == ".":
            child = data.get(key)
            if not isinstance(child, dict):
                child = {}
            data[key] = child
            self._key(child)
        else:  # "["
            items = data.get(key)
            data[key] = self._list_item(items if isinstance(items, list) else [])

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

    def _list_item(self, items: list[Any]) -> list[Any]:
        """After `key[`: read the index, then `=value`, `.rest` or `[` of a nested list."""
        index = self._index()
        items = items + [None] * (index + 1 - len(items))
        if self.pos >= len(self.text):
            raise SetSyntaxError(f"list index {index} has no value")
        char = self.text[self.pos]
        self.pos += 1
        if char == "=":
            items[index] = self._assigned_value()
        elif char == ".":
            child = items[index] if isinstance(items[index], dict) else {}
            items[index] = child
            self._key(child)
        elif char == "[":
            inner = items[index] if isinstance(items[index], list) else []
            items[index] = self._list_item(inner)
        else:
            raise SetSyntaxError(f"unexpected {char!r} after list index {index}")
        return items

    def _assigned_value(self) -> Any:
        if self.literal:
            value = self.text[self.pos :]
            self.pos = len(self.text)
            return value
        if self.text.startswith("{", self.pos):
            self.pos += 1
            return self._list_literal()
        raw, _ = self._read_until(",")
        return self._value(raw)

    def _list_literal(self) -> list[Any]:
        values: list[Any] = []
        while True:
            raw, stop = self._read_until(",}")
            if stop is None:
                raise SetSyntaxError("list is missing its closing '}'")
            if raw or stop == "," or values:
                values.append(self._value(raw))
            if stop == "}":
                break
        if self.pos < len(self.text):
            if self.text[self.pos] != ",":
                raise SetSyntaxError(f"unexpected {self.text[self.pos]!r} after a list")
            self.pos += 1
        return values


def parse_into(data: dict[str, Any], text: str, *, as_string: bool = False) -> None:
    """Apply one `--set` (or `--set-string` with as_string) expression onto data, in place."""
    _Parser(text, as_string=as_string).parse(data)


def parse_file_assignment(text: str) -> tuple[str, str]:
    """Split `--set-file key=path` into (key expression, path)."""
    key, sep, path = text.partition("=")
    if not sep or not key:
        raise SetSyntaxError("expected key=path")
    if not path:
        raise SetSyntaxError("no file path after '='")
    return key, path


def set_literal(data: dict[str, Any], key: str, value: str) -> None:
    """Set `key` (full `--set` key syntax) to `value` taken literally, as `--set-file` does."""
    _Parser(f"{key}={value}", as_string=True, literal=True).parse(data)
