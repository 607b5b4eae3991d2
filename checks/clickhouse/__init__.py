"""ClickHouse: the HTTP interface, login, version, database, grants and a scratch table."""
