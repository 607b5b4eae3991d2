"""The client libraries of the selected checks are imported ahead, in a background thread."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from preflight.engine.registry import chosen_components

CLIENTS = ("psycopg", "botocore.session", "kubernetes", "clickhouse_connect", "confluent_kafka")


def _imported_after_preload(*args: str) -> dict[str, bool]:
    """In a fresh interpreter: which clients preload.start(only, skip) imported."""
    code = (
        "import json, sys; from preflight.engine import preload;"
        f"preload.start(*{args!r}).join();"
        f"print(json.dumps({{name: name in sys.modules for name in {CLIENTS!r}}}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


def test_every_check_module_names_its_client() -> None:
    assert _imported_after_preload() == dict.fromkeys(CLIENTS, True)


def test_only_the_selected_components_clients() -> None:
    imported = _imported_after_preload(["postgres.api"], ["kafka"])
    assert imported == {name: name == "psycopg" for name in CLIENTS}


@pytest.mark.parametrize(
    ("component", "only", "skip", "wanted"),
    [
        ("postgres", [], [], True),
        ("postgres", ["postgres.worker"], [], True),
        ("postgres", ["s3"], [], False),
        ("kafka", [], ["kafka"], False),
        ("kafka", ["kafka", "s3"], ["kafka"], False),
    ],
)
def test_chosen_components(component: str, only: list[str], skip: list[str], wanted: bool) -> None:
    assert (component in chosen_components(only, skip)) is wanted
