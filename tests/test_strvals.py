"""`--set` parsing against Helm's documented examples and edge cases."""

from __future__ import annotations

from typing import Any

import pytest

from preflight.values.strvals import SetSyntaxError, parse_into, set_literal, typed_value

HELM_EXAMPLES: list[tuple[str, dict[str, Any]]] = [
    ("name=value", {"name": "value"}),
    ("a=b,c=d", {"a": "b", "c": "d"}),
    ("outer.inner=value", {"outer": {"inner": "value"}}),
    ("name={a,b,c}", {"name": ["a", "b", "c"]}),
    ("name=", {"name": ""}),
    ("name={}", {"name": []}),
    ("servers[0].port=80", {"servers": [{"port": 80}]}),
    ("servers[0].port=80,servers[0].host=example", {"servers": [{"port": 80, "host": "example"}]}),
    ("name[0]=a,name[1]=b", {"name": ["a", "b"]}),
    ("name[2]=c", {"name": [None, None, "c"]}),
    ("nested[0][1]=x", {"nested": [[None, "x"]]}),
    (r"name=value1\,value2", {"name": "value1,value2"}),
    (
        r"nodeSelector.kubernetes\.io/role=master",
        {"nodeSelector": {"kubernetes.io/role": "master"}},
    ),
    (r"path=C:\\dir", {"path": "C:\\dir"}),
    ("a.b.c=1,a.b.d=2", {"a": {"b": {"c": 1, "d": 2}}}),
    ("flag=true,off=FALSE,none=null", {"flag": True, "off": False, "none": None}),
    (
        "zero=0,lead=0123,neg=-5,big=12345678901",
        {"zero": 0, "lead": "0123", "neg": -5, "big": 12345678901},
    ),
    ("float=1.5,word=yes", {"float": "1.5", "word": "yes"}),
    ("list={1,true,x}", {"list": [1, True, "x"]}),
    ("a={x,y},b=z", {"a": ["x", "y"], "b": "z"}),
    ("url=https://h:1/p?q=1", {"url": "https://h:1/p?q=1"}),
]


@pytest.mark.parametrize(("text", "expected"), HELM_EXAMPLES)
def test_helm_examples(text: str, expected: dict[str, Any]) -> None:
    data: dict[str, Any] = {}
    parse_into(data, text)
    assert data == expected


def test_set_string_keeps_strings() -> None:
    data: dict[str, Any] = {}
    parse_into(data, "port=5432,flag=true,list={1,null}", as_string=True)
    assert data == {"port": "5432", "flag": "true", "list": ["1", "null"]}


def test_later_set_overrides_and_merges() -> None:
    data: dict[str, Any] = {"postgres": {"api": {"host": "a", "port": 1}}}
    parse_into(data, "postgres.api.host=b")
    assert data == {"postgres": {"api": {"host": "b", "port": 1}}}


def test_set_replaces_a_scalar_with_a_map() -> None:
    data: dict[str, Any] = {"a": "scalar"}
    parse_into(data, "a.b=1")
    assert data == {"a": {"b": 1}}


def test_set_literal_takes_any_content() -> None:
    data: dict[str, Any] = {}
    set_literal(data, "tls.ca[0]", "-----BEGIN, =x {y}\n")
    assert data == {"tls": {"ca": ["-----BEGIN, =x {y}\n"]}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name", "key has no value"),
        ("a,b=1", "key has no value"),
        ("=x", "empty key"),
        ("a.=x", "empty key"),
        ("a[x]=1", "list index is not a number"),
        ("a[0", "unterminated list index"),
        ("a[-1]=1", "negative list index"),
        ("a[70000]=1", "larger than 65536"),
        ("a={x", "closing '}'"),
        ("a={x}y", "unexpected 'y' after a list"),
        ("a[0]", "list index 0 has no value"),
    ],
)
def test_malformed(text: str, message: str) -> None:
    with pytest.raises(SetSyntaxError, match=message.replace("[", r"\[").replace("{", r"\{")):
        parse_into({}, text)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("true", True),
        ("True", True),
        ("false", False),
        ("null", None),
        ("0", 0),
        ("42", 42),
        ("007", "007"),
        ("", ""),
    ],
)
def test_typed_value(raw: str, value: object) -> None:
    assert typed_value(raw) == value
    assert type(typed_value(raw)) is type(value)
