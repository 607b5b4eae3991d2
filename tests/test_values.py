"""Loading values like Helm: merge order, precedence, and one clear line per input problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from preflight.values.load import Values, ValuesError, ValuesSource, load_values
from tests.cli import EXAMPLE_VALUES, run_cli


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def test_files_merge_maps_and_replace_lists(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", "a: {b: 1, c: [1, 2], keep: x}\nlist: [1, 2]\n")
    second = write(tmp_path, "b.yaml", "a: {c: [3], d: 4}\nlist: [9]\n")
    values = load_values(ValuesSource(files=[first, second]))
    assert values.data == {"a": {"b": 1, "c": [3], "keep": "x", "d": 4}, "list": [9]}


def test_precedence_files_then_set_then_set_string_then_set_file(tmp_path: Path) -> None:
    base = write(tmp_path, "v.yaml", "k: {a: file, b: file, c: file, d: file}\n")
    content = write(tmp_path, "content.txt", "from-file")
    values = load_values(
        ValuesSource(
            files=[base],
            set=["k.b=set,k.c=set,k.d=set"],
            set_string=["k.c=7,k.d=7"],
            set_file=[f"k.d={content}"],
        )
    )
    assert values.data["k"] == {"a": "file", "b": "set", "c": "7", "d": "from-file"}


def test_null_removes_a_key(tmp_path: Path) -> None:
    base = write(tmp_path, "v.yaml", "a: {b: 1, c: 2}\n")
    values = load_values(ValuesSource(files=[base], set=["a.c=null"]))
    assert values.data == {"a": {"b": 1}}


def test_values_get_paths() -> None:
    values = Values({"a": {"list": [{"name": "x"}], "flag": False, "empty": ""}})
    assert values.get("a.list[0].name") == "x"
    assert values.get("a.list[3].name", "default") == "default"
    assert values.get("a.flag") is False
    assert values.enabled("a.flag", True) is False
    assert values.enabled("a.missing", True) is True
    assert not values.has("a.empty")
    assert values.has("a.list")


def test_every_input_problem_is_reported_at_once(tmp_path: Path) -> None:
    bad_yaml = write(tmp_path, "bad.yaml", "a:\n  b: [1\n  c: 2\n")
    a_list = write(tmp_path, "list.yaml", "- 1\n- 2\n")
    with pytest.raises(ValuesError) as caught:
        load_values(
            ValuesSource(
                files=[bad_yaml, a_list, str(tmp_path / "missing.yaml")],
                set=["novalue"],
                set_file=[f"x={tmp_path / 'nofile'}"],
            )
        )
    problems = caught.value.problems
    assert len(problems) == 5
    assert problems[0].startswith(f"{bad_yaml}: invalid YAML at line 3")
    assert problems[1] == f"{a_list}: a values file must be a mapping of keys, this one is a list"
    assert problems[2].endswith("missing.yaml: values file not found")
    assert problems[3] == "--set novalue: key has no value (expected key=value)"
    assert problems[4].startswith("--set-file x: cannot read")


def test_malformed_set_never_echoes_the_value() -> None:
    with pytest.raises(ValuesError) as caught:
        load_values(ValuesSource(set=["s3.secretKey:Sup3rS3cret"]))
    assert "Sup3rS3cret" not in str(caught.value)


def test_cli_bad_input_exits_2_one_line_each(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", "key: [unclosed\n")
    result = run_cli("validate", bad, "-f", str(tmp_path / "nope.yaml"), "--set", "a[x]=1")
    assert result.code == 2
    lines = [line for line in result.stdout.splitlines() if line.strip().startswith("fail:")]
    assert len(lines) == 3
    assert "invalid YAML at line 2" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_validate_example_values_has_no_error() -> None:
    result = run_cli("validate", EXAMPLE_VALUES)
    assert result.code == 0, result.stdout
    # valid values; its placeholders only warn (tests/test_secret_values.py)
    assert "WARN  values" in result.stdout and "fail:" not in result.stdout
