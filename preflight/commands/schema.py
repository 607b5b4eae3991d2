"""`sense-preflight schema`: the values rules as JSON Schema (values.schema.json)."""

from __future__ import annotations

import json

from preflight.values.rules import json_schema


def schema_text() -> str:
    """The values rules as an indented JSON Schema document."""
    return json.dumps(json_schema(), indent=2) + "\n"
