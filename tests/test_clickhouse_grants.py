"""Reading `SHOW GRANTS` lines: what they give on a database, with ClickHouse's hierarchy."""

from __future__ import annotations

import pytest

from checks.clickhouse.grants import CREATE_DATABASE, TABLE_PRIVILEGES, missing_privileges

DB = "axion_sense"


@pytest.mark.parametrize(
    ("grants", "missing"),
    [
        ([], list(TABLE_PRIVILEGES)),
        (["GRANT ALL ON *.* TO u WITH GRANT OPTION"], []),
        (["GRANT ALL ON axion_sense.* TO u"], []),
        (["GRANT ALL ON other.* TO u"], list(TABLE_PRIVILEGES)),
        (["GRANT ALL ON axion_sense.events TO u"], list(TABLE_PRIVILEGES)),
        (["GRANT ALL ON `axion_sense`.* TO u"], []),
        (["GRANT ALL ON axion*.* TO u"], []),
        (
            ["GRANT SELECT ON axion_sense.* TO u"],
            ["CREATE TABLE", "INSERT", "ALTER TABLE", "DROP TABLE"],
        ),
        (["GRANT CREATE, INSERT, SELECT, ALTER, DROP ON axion_sense.* TO u"], []),
        (
            ["GRANT SELECT(id, name), INSERT ON axion_sense.* TO u"],
            ["CREATE TABLE", "SELECT", "ALTER TABLE", "DROP TABLE"],
        ),
        (
            ["GRANT ALL ON axion_sense.* TO u", "REVOKE DROP TABLE ON axion_sense.* FROM u"],
            ["DROP TABLE"],
        ),
        (
            ["GRANT ALL ON axion_sense.* TO u", "REVOKE INSERT ON axion_sense.sense_x* FROM u"],
            [],
        ),
        (
            ["GRANT sense_role TO u", "GRANT INSERT ON *.* TO u"],
            ["CREATE TABLE", "SELECT", "ALTER TABLE", "DROP TABLE"],
        ),
    ],
)
def test_missing_table_privileges(grants: list[str], missing: list[str]) -> None:
    assert missing_privileges(grants, DB) == missing


def test_create_database_comes_with_create_or_all() -> None:
    assert missing_privileges(["GRANT CREATE ON axion_sense.* TO u"], DB, [CREATE_DATABASE]) == []
    table_only = ["GRANT CREATE TABLE, INSERT, SELECT ON axion_sense.* TO u"]
    assert missing_privileges(table_only, DB, [CREATE_DATABASE]) == [CREATE_DATABASE]
