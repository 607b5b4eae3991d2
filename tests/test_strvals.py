"""`--set` parsing against Helm's documented examples and edge cases."""

from __future__ import annotations

from typing import Any

import pytest

from preflight.values.strvals import (
    CommaSplitError,
    SetSyntaxError,
    json_object,
    parse_file_into,
    parse_into,
    parse_json_into,
    parse_literal_into,
    typed_value,
)

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


def test_set_file_takes_any_content_for_each_path() -> None:
    data: dict[str, Any] = {}
    contents = {"ca.pem": "-----BEGIN, =x {y}\n", "key.pem": "k"}
    parse_file_into(data, r"tls.ca[0]=ca.pem,tls\.key=key.pem", contents.__getitem__)
    assert data == {"tls": {"ca": ["-----BEGIN, =x {y}\n"]}, "tls.key": "k"}


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


# --- --set-json and --set-literal: cases from Helm's pkg/strvals tests (re-written) -----------


@pytest.mark.parametrize(
    ("text", "before", "expected"),
    [
        (  # JSON scalars; a quoted "1" stays a string, an existing key is replaced
            'outer.inner1="1",outer.inner3=3,outer.inner4=true,outer.inner5="true"',
            {"outer": {"inner1": "overwrite", "inner2": "value2"}},
            {
                "outer": {
                    "inner1": "1",
                    "inner2": "value2",
                    "inner3": 3,
                    "inner4": True,
                    "inner5": "true",
                }
            },
        ),
        (  # objects and arrays replace what was there, whole
            'outer.inner1={"a":"1","b":2,"c":[1,2,3]},outer.inner3=["new 1","new 2"],'
            'outer.inner5=[{"A":"1","C":[1,2]}]',
            {"outer": {"inner1": {"x": "overwrite"}, "inner2": "value2", "inner3": ["old"]}},
            {
                "outer": {
                    "inner1": {"a": "1", "b": 2, "c": [1, 2, 3]},
                    "inner2": "value2",
                    "inner3": ["new 1", "new 2"],
                    "inner5": [{"A": "1", "C": [1, 2]}],
                }
            },
        ),
        (  # `key=` is null; a later index changes the list just set
            'outer.inner1=,outer.inner3={"cc":[1,2,3]},outer.inner3.cc[1]=null',
            {"outer": {"inner1": {"x": "overwrite"}, "inner2": "value2"}},
            {"outer": {"inner1": None, "inner2": "value2", "inner3": {"cc": [1, None, 3]}}},
        ),
        ('a = ["x,y"] , b=1', {}, {"a ": ["x,y"], " b": 1}),  # commas inside JSON are JSON's
        ('list[1]={"k":"v"}', {}, {"list": [None, {"k": "v"}]}),
    ],
)
def test_set_json(text: str, before: dict[str, Any], expected: dict[str, Any]) -> None:
    parse_json_into(before, text)
    assert before == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('a={"a":1},b=["x"],c={"A":1}]', "unexpected text after the JSON value"),
        ("a=hello", "the value is not JSON"),
        ("a=NaN", "NaN is not JSON"),
        ("a=1x", "unexpected text after the JSON value"),
    ],
)
def test_set_json_malformed(text: str, message: str) -> None:
    with pytest.raises(SetSyntaxError, match=message):
        parse_json_into({}, text)


def test_set_json_object_form() -> None:
    assert json_object(' {"a": {"b": [1, "x"]}} ') == {"a": {"b": [1, "x"]}}
    for text in ("{bad", '{"a": NaN}', "[1]"):
        with pytest.raises(SetSyntaxError, match="not a JSON object"):
            json_object(text)


LITERALS: list[tuple[str, dict[str, Any]]] = [
    ("name=", {"name": ""}),
    ("long_int_string=1234567890", {"long_int_string": "1234567890"}),
    ("boolean=true,zero=0,null=null", {"boolean": "true,zero=0,null=null"}),
    ("name1=value,,,tail", {"name1": "value,,,tail"}),
    ("leading_zeros=00009", {"leading_zeros": "00009"}),
    ("outer.middle.inner=value", {"outer": {"middle": {"inner": "value"}}}),
    ("name1={value1,value2}", {"name1": "{value1,value2}"}),
    ("list[3]=bar", {"list": [None, None, None, "bar"]}),
    ("list[0].foo=bar", {"list": [{"foo": "bar"}]}),
    ("nested[1][1]=1", {"nested": [None, [None, "1"]]}),
    ("]={}].", {"]": "{}]."}),
    ("name=val=val.val", {"name": "val=val.val"}),
    (r"name=val\\\val", {"name": r"val\\\val"}),
    (r"a\.b=c", {"a\\": {"b": "c"}}),  # no escapes in a literal key
    ("a,b=c", {"a,b": "c"}),  # nor is a comma special there
]


@pytest.mark.parametrize(("text", "expected"), LITERALS)
def test_set_literal(text: str, expected: dict[str, Any]) -> None:
    data: dict[str, Any] = {}
    parse_literal_into(data, text)
    assert data == expected


@pytest.mark.parametrize(
    "text",
    [
        "name",
        "name1.name2",
        "name1.=name2",
        "name1.,name2",
        "list[-30].hello=world",
        "illegal[0]name.foo=bar",
    ],
)
def test_set_literal_malformed(text: str) -> None:
    with pytest.raises(SetSyntaxError):
        parse_literal_into({}, text)


def test_set_literal_into_nested_lists_keeps_what_is_there() -> None:
    data: dict[str, Any] = {"listOuter": [[[{"exited": "old"}]]]}
    parse_literal_into(data, "listOuter[0][1][0].type=listValue")
    parse_literal_into(data, "listOuter[0][0][1].status=alive")
    assert data == {
        "listOuter": [[[{"exited": "old"}, {"status": "alive"}], [{"type": "listValue"}]]]
    }


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("kafka.bootstrapServers=a:9092,b:9092", "kafka.bootstrapServers"),
        ("a=1,servers[0].host=h1,h2", "servers[0].host"),
        ("x.y=1.2.3.4,5.6.7.8", "x.y"),
    ],
)
def test_a_comma_in_a_value_names_the_key_and_both_fixes(text: str, key: str) -> None:
    with pytest.raises(CommaSplitError) as caught:
        parse_into({}, text)
    assert caught.value.key == key
    message = str(caught.value)
    assert f"{key}=first\\,second" in message and "--set-json" in message
    assert "9092" not in message and "h2" not in message and "5.6" not in message
