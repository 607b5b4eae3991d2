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


def test_helm_order_of_every_set_flag(tmp_path: Path) -> None:
    """Helm's MergeValues: files, --set-json, --set, --set-string, --set-file, --set-literal;
    each later kind wins whatever order the flags were typed in."""
    base = write(tmp_path, "v.yaml", "k: {a: file, b: file, c: file, d: file, e: file, f: file}\n")
    content = write(tmp_path, "content.txt", "from-file")
    values = load_values(
        ValuesSource(
            files=[base],
            set_literal=["k.f=lit,eral"],
            set_file=[f"k.e={content},k.f={content}"],
            set_string=["k.d=7,k.e=7,k.f=7"],
            set=["k.c=set,k.d=set,k.e=set,k.f=set"],
            set_json=['k.b={"j":[1]},k.c=1,k.d=1,k.e=1,k.f=1'],
        )
    )
    assert values.data["k"] == {
        "a": "file",
        "b": {"j": [1]},
        "c": "set",
        "d": "7",
        "e": "from-file",
        "f": "lit,eral",
    }


def test_set_json_object_merges_like_a_values_file(tmp_path: Path) -> None:
    base = write(tmp_path, "v.yaml", "a: {b: 1, c: 2}\n")
    values = load_values(ValuesSource(files=[base], set_json=['{"a": {"c": 3, "d": [true]}}']))
    assert values.data == {"a": {"b": 1, "c": 3, "d": [True]}}


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        (ValuesSource(set_json=["s3.secretKey=Sup3rS3cret"]), "--set-json s3.secretKey: the value"),
        (ValuesSource(set_json=['{"s3": Sup3rS3cret}']), "--set-json {…}: not a JSON object"),
        (ValuesSource(set_literal=["s3.secretKey"]), "--set-literal s3.secretKey: key has no"),
        (
            ValuesSource(set=["postgres.api.password=Sup3r,S3cret"]),
            "--set postgres.api.password: the comma in the value of postgres.api.password",
        ),
    ],
)
def test_set_json_and_literal_problems_never_echo_the_value(
    source: ValuesSource, problem: str
) -> None:
    with pytest.raises(ValuesError) as caught:
        load_values(source)
    assert str(caught.value).startswith(problem)
    assert "Sup3r" not in str(caught.value) and "S3cret" not in str(caught.value)


def test_a_problem_names_the_key_of_its_own_assignment() -> None:
    with pytest.raises(ValuesError) as caught:
        load_values(ValuesSource(set=["a=1,servers[x].port=2"]))
    assert caught.value.problems == ["--set servers[x].port: list index is not a number"]


def test_comma_in_a_set_value_through_the_cli() -> None:
    result = run_cli("validate", "--set", "kafka.bootstrapServers=a.example:9092,b.example:9092")
    assert result.code == 2
    assert "--set kafka.bootstrapServers: the comma in the value of kafka.bootstrapServers" in (
        result.stdout
    )
    assert "kafka.bootstrapServers=first\\,second" in result.stdout
    assert "b.example" not in result.stdout + result.stderr


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


@pytest.mark.parametrize("fmt", ["json", "junit"])
def test_only_values_runs_the_values_check_alone(fmt: str) -> None:
    result = run_cli(EXAMPLE_VALUES, "--only", "values", "--format", fmt)
    assert result.code == 0, result.stderr
    if fmt == "json":
        assert [c["id"] for c in result.report["checks"]] == ["values"]
    else:
        assert 'name="values"' in result.stdout and result.stdout.count("<testcase ") == 1


def test_skip_values_is_refused_with_the_reason() -> None:
    result = run_cli(EXAMPLE_VALUES, "--skip", "values")
    assert result.code == 2
    assert "--skip values: the values check always runs" in result.stderr
