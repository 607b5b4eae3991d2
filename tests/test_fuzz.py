"""Fuzzing the values input: any --set string or YAML document gives a clean result or a clean
ValuesError, never another exception; through the CLI, only exit 0/2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preflight.commands.helm import BY_NAME, LineError, parse
from preflight.values.load import ValuesError, ValuesSource, load_values
from preflight.values.rules import check_values
from tests.cli import run_cli

SET_ALPHABET = st.sampled_from(list("ab.=,[]{}\\0123 -_x:"))
set_text = st.text(SET_ALPHABET, max_size=30)
HELM_WORDS = [*BY_NAME, "-", "--", "-nf", "-ig", "--set=a=1", "--atomic=false", "r", "c"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(st.lists(set_text, max_size=3), st.lists(set_text, max_size=2))
@settings(max_examples=400, deadline=None)
def test_set_strings_never_crash(sets: list[str], strings: list[str]) -> None:
    try:
        values = load_values(ValuesSource(set=sets, set_string=strings))
    except ValuesError as exc:
        assert exc.problems and all("\n" not in p for p in exc.problems)
        return
    check_values(values)


JSON_ALPHABET = st.sampled_from(list('ab.=,[]{}\\0123 -_x:"tnul'))


@given(
    st.lists(st.text(JSON_ALPHABET, max_size=30), max_size=3),
    st.lists(set_text, max_size=2),
    st.lists(set_text, max_size=2),
)
@settings(max_examples=400, deadline=None)
def test_set_json_and_set_literal_never_crash(
    jsons: list[str], literals: list[str], sets: list[str]
) -> None:
    try:
        values = load_values(ValuesSource(set_json=jsons, set_literal=literals, set=sets))
    except ValuesError as exc:
        assert exc.problems and all("\n" not in p for p in exc.problems)
        return
    check_values(values)


@given(st.lists(st.sampled_from(HELM_WORDS) | st.text(max_size=8), max_size=8))
@settings(max_examples=400, deadline=None)
def test_helm_lines_never_crash(words: list[str]) -> None:
    try:
        parse(["upgrade", *words])
    except LineError as exc:
        assert exc.problems and all("\n" not in p for p in exc.problems)


@given(documents)
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_yaml_documents_never_crash(tmp_path: Path, document: object) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(document))
    try:
        values = load_values(ValuesSource(files=[str(path)]))
    except ValuesError as exc:
        assert exc.problems
        return
    check_values(values)


@given(st.text(max_size=200))
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_raw_text_files_never_crash(tmp_path: Path, text: str) -> None:
    path = tmp_path / "raw.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        values = load_values(ValuesSource(files=[str(path)]))
    except ValuesError as exc:
        assert len(exc.problems) == 1 and "\n" not in exc.problems[0]
        return
    assert isinstance(values.data, dict)


@given(documents, st.lists(set_text, max_size=2))
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_cli_run_only_exits_0_2_or_3(tmp_path: Path, document: object, sets: list[str]) -> None:
    """The whole CLI (`run`, the default command) on a values corpus: a verdict, never a crash."""
    path = tmp_path / "cli.yaml"
    path.write_text(yaml.safe_dump(document))
    args: list[str] = [str(path), "--timeout", "1"]
    for text in sets:
        args += ["--set", text]
    result = run_cli(*args)
    assert result.code in (0, 2, 3), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
