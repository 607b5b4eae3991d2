"""Reading ClickHouse's `SHOW GRANTS` output: which privileges a user holds on a database.

ClickHouse has no "may I?" function, and `system.grants` needs a grant of its own, so the check
reads the user's own `SHOW GRANTS FINAL` (roles folded in) and applies the privilege hierarchy:
`ALL` ⊃ `CREATE` ⊃ `CREATE TABLE`, `ALTER` ⊃ `ALTER TABLE` ⊃ `ALTER ADD COLUMN`…
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

#: What the chart's migration Job and Worker need on their database, in the order reported.
TABLE_PRIVILEGES = ("CREATE TABLE", "INSERT", "SELECT", "ALTER TABLE", "DROP TABLE")
CREATE_DATABASE = "CREATE DATABASE"

#: The grant names that include each privilege we look for.
_COVERED_BY = {
    "CREATE TABLE": {"CREATE TABLE", "CREATE"},
    "CREATE DATABASE": {"CREATE DATABASE", "CREATE"},
    "INSERT": {"INSERT"},
    "SELECT": {"SELECT"},
    "ALTER TABLE": {"ALTER TABLE", "ALTER"},
    "DROP TABLE": {"DROP TABLE", "DROP"},
}
_ALL = {"ALL", "ALL PRIVILEGES"}

_LINE = re.compile(
    r"^(?P<verb>GRANT|REVOKE)\s+(?:GRANT OPTION FOR\s+)?(?P<privileges>.+?)\s+ON\s+"
    r"(?P<scope>\S+)\s+(?:TO|FROM)\s",
    re.IGNORECASE,
)
# One privilege of a list: a name, maybe limited to columns: `SELECT(a, b)`.
_PRIVILEGE = re.compile(r"\s*([A-Za-z][A-Za-z ]*?)\s*(\([^)]*\))?\s*(?:,|$)")


@dataclass(frozen=True)
class _Grant:
    revoke: bool
    privileges: frozenset[str]
    database: str  # `*`, a name, or a prefix ending in `*`
    whole_database: bool  # `db.*`, not one table or some columns


def _parse(line: str) -> _Grant | None:
    match = _LINE.match(line.strip())
    if match is None:  # `GRANT role TO user` and the like
        return None
    database, _, table = match["scope"].partition(".")
    names: set[str] = set()
    whole = table == "*"
    for name, columns in _PRIVILEGE.findall(match["privileges"]):
        if columns:
            continue  # a column-level grant (or revoke) is about a table, not the database
        names.add(" ".join(name.upper().split()))
    return _Grant(
        revoke=match["verb"].upper() == "REVOKE",
        privileges=frozenset(names),
        database=database.strip('`"'),
        whole_database=whole,
    )


def _on(grant: _Grant, database: str) -> bool:
    if grant.database.endswith("*"):
        return database.startswith(grant.database[:-1])
    return grant.database == database


def _includes(names: frozenset[str], privilege: str) -> bool:
    return bool(names & (_ALL | _COVERED_BY[privilege]))


def missing_privileges(
    grants: Iterable[str], database: str, wanted: Iterable[str] = TABLE_PRIVILEGES
) -> list[str]:
    """The privileges of `wanted` that the `SHOW GRANTS` lines do not give on `database.*`."""
    parsed = [grant for line in grants if (grant := _parse(line)) is not None]
    missing = []
    for privilege in wanted:
        granted = any(
            not g.revoke
            and g.whole_database
            and _on(g, database)
            and _includes(g.privileges, privilege)
            for g in parsed
        )
        revoked = any(
            g.revoke
            and g.whole_database
            and _on(g, database)
            and _includes(g.privileges, privilege)
            for g in parsed
        )
        if not granted or revoked:
            missing.append(privilege)
    return missing
