"""PostgreSQL: the API database and the Worker / Hangfire database (`postgres.api`,
`postgres.worker`).

The chart's migration Jobs create tables in both on the first install, so "it connects" is not
enough. Steps, in order; the first failure ends the check:

config → dns → tcp → tls → auth → version → database → permissions → capacity → roundtrip

Every step is a plain function over `PgParams`, so other checks that meet a PostgreSQL server
(the custom-layers source database) run the very same steps.
"""

from __future__ import annotations

import re
import secrets
import select
import socket
import struct
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from preflight.engine.check import Check, Probe, Step, StepFailed
from preflight.engine.deadline import Deadline, DeadlineExceeded
from preflight.net import Endpoint, TlsSettings, judge_tls, parse_endpoint, reach, tls_handshake
from preflight.values.chart import setting
from preflight.values.load import Values

if TYPE_CHECKING:
    import psycopg

DEFAULT_PORT = 5432
MIN_VERSION_NUM = 170000
MIN_VERSION = "17"
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
#: What the chart opens by default, per replica (the install guide's defaults).
#: The message of the PostgreSQL protocol that asks the server for TLS (protocol 3, code 80877103).
SSL_REQUEST = struct.pack("!II", 8, 80877103)
#: The client libraries this module's checks import (preflight.engine.preload).
CLIENTS = ("psycopg",)
#: Its checks' CPU seconds in a run, clients included (bench/; engine.forked balances by it).
CPU_S = 0.24


@dataclass(frozen=True)
class PgParams:
    """Where and as whom to connect. `origin` names the values the parameters came from;
    `settings` says how the user sets a parameter where that is not `<origin>.<name>`."""

    host: str
    port: int
    database: str
    user: str
    password: str = field(repr=False)
    ssl_mode: str = "prefer"
    ca_file: str | None = None
    origin: str = "postgres"
    settings: Mapping[str, str] = field(default_factory=dict)

    def setting(self, name: str) -> str:
        """Where the user sets `name` (username, password, database, host, sslMode, …)."""
        return self.settings.get(name, f"{self.origin}.{name}")

    @property
    def verifies_chain(self) -> bool:
        """libpq's rule: verify-* always, weaker modes only when a root CA is given."""
        return self.ssl_mode.startswith("verify") or self.ca_file is not None

    def describe(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.database} (sslMode={self.ssl_mode})"


# --- config ------------------------------------------------------------------------------------


def normalize_ssl_mode(text: Any, setting: str) -> str:
    """`verify-full`, `VerifyFull`, `verify_full` → `verify-full`; StepFailed for anything else."""
    squashed = str(text).strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    for mode in SSL_MODES:
        if mode.replace("-", "") == squashed:
            return mode
    raise StepFailed(
        f"{setting} {text!r} is not one of {', '.join(SSL_MODES)}",
        f"set {setting} to one of {', '.join(SSL_MODES)}",
    )


def params_from_values(values: Values, prefix: str) -> PgParams:
    """The connection parameters of `postgres.api` / `postgres.worker`."""
    missing = [
        key
        for key in ("host", "database", "username", "password")
        if not values.has(f"{prefix}.{key}")
    ]
    if missing:
        raise StepFailed(
            f"missing {', '.join(f'{prefix}.{key}' for key in missing)}",
            "set them in your values file (or the password with --set)",
        )
    port = parse_port(setting(values, f"{prefix}.port") or DEFAULT_PORT, f"{prefix}.port")
    endpoint = parse_endpoint(str(values.get(f"{prefix}.host")), default_port=port)
    ca = values.get(f"{prefix}.sslRootCert")
    return PgParams(
        host=endpoint.host,
        port=endpoint.port,
        database=str(values.get(f"{prefix}.database")),
        user=str(values.get(f"{prefix}.username")),
        password=str(values.get(f"{prefix}.password")),
        ssl_mode=normalize_ssl_mode(values.get(f"{prefix}.sslMode", "prefer"), f"{prefix}.sslMode"),
        ca_file=str(ca) if ca else None,
        origin=prefix,
    )


def parse_port(value: Any, setting: str) -> int:
    """A port number; StepFailed names the setting, never a neighbouring secret."""
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise StepFailed(f"{setting} is not a port number", f"set {setting} to 1-65535") from None
    if not 0 < port < 65536:
        raise StepFailed(f"{setting} {port} is out of range", f"set {setting} to 1-65535")
    return port


def describe_config(probe: Probe, step: Step, params: PgParams) -> None:
    """The config step's detail; a CA file that cannot be read fails here, not at tls."""
    if params.ca_file and not Path(params.ca_file).is_file():
        raise StepFailed(
            f"{params.setting('sslRootCert')}: CA file {params.ca_file} does not exist",
            f"point {params.setting('sslRootCert')} at the PEM file of the CA that signed the "
            "server certificate",
        )
    step.detail = params.describe()


# --- dns, tcp, tls -----------------------------------------------------------------------------


def reach_server(probe: Probe, params: PgParams) -> str:
    """dns and tcp through the engine, then the tls step: PostgreSQL's own TLS negotiation
    (an SSLRequest, then the handshake verified like libpq would for this sslMode). Returns
    the address the tcp step dialled, for the login to use."""
    with reach(probe, Endpoint(params.host, params.port)) as connection:
        address = connection.address
        with probe.step("tls") as step:
            negotiate_tls(probe, step, connection.sock, params)
    return address


def negotiate_tls(probe: Probe, step: Step, sock: socket.socket, params: PgParams) -> None:
    """Ask for TLS as a PostgreSQL client does; judge the answer against the sslMode."""
    sock.settimeout(probe.deadline.timeout())
    try:
        sock.sendall(SSL_REQUEST)
        answer = sock.recv(1)
    except TimeoutError:
        raise DeadlineExceeded("no answer to the SSLRequest") from None
    except OSError as exc:
        raise StepFailed(
            "the server closed the connection at the first PostgreSQL message "
            f"({exc.strerror or exc})",
            _NOT_POSTGRES_FIX,
        ) from None
    if answer not in (b"S", b"N"):
        seen = "closed the connection" if not answer else f"answered {answer!r}"
        raise StepFailed(
            f"{params.host}:{params.port} does not speak the PostgreSQL protocol (it {seen})",
            _NOT_POSTGRES_FIX,
        )
    probe.facts["tls_offered"] = answer == b"S"
    if answer == b"N":
        if params.ssl_mode in ("require", "verify-ca", "verify-full"):
            raise StepFailed(
                f"the server does not offer TLS, but sslMode={params.ssl_mode} requires it",
                f"enable ssl on the server, or set {params.setting('sslMode')} to prefer or "
                "disable if an unencrypted session is acceptable",
            )
        probe.facts["tls_version"] = None
        step.detail = "the server offers no TLS: the session is unencrypted"
        return
    if params.ssl_mode == "disable":
        probe.facts["tls_version"] = None
        step.detail = "the server offers TLS, but sslMode=disable: the session is unencrypted"
        return
    settings = tls_for(probe, params)
    tls, info = tls_handshake(sock, params.host, settings, probe.deadline)
    tls.close()
    if settings.verify:
        scope = "and host name " if params.ssl_mode == "verify-full" else ""
        detail = f"{info.version}, certificate {scope}verified (sslMode={params.ssl_mode})"
    else:
        detail = f"{info.version}, certificate not verified (sslMode={params.ssl_mode})"
    judge_tls(probe, step, info, params.host, detail)


_NOT_POSTGRES_FIX = "check the host and port: they should be those of the PostgreSQL server"


def tls_for(probe: Probe, params: PgParams) -> TlsSettings:
    """The TLS verification this sslMode asks for, with the CA of the values or --ca-bundle."""
    ca = Path(params.ca_file) if params.ca_file else probe.options.ca_bundle
    skipped = params.verifies_chain and probe.options.insecure_skip_tls_verify
    # verify-full checks the host name; verify-ca (and require/prefer with a CA) the chain only
    return TlsSettings(
        ca_file=ca,
        verify=params.verifies_chain and not skipped,
        check_hostname=params.ssl_mode == "verify-full",
        skipped=skipped,
    )


# --- auth --------------------------------------------------------------------------------------


@dataclass
class Session:
    """An open session. `database_problem` is why the target database could not be opened; the
    session is then on the maintenance database `postgres` (None if that is closed too)."""

    conn: psycopg.Connection[Any] | None
    database_problem: StepFailed | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


#: (fragment of the server's message, what it means, what to do). psycopg gives no SQLSTATE for
#: errors raised while connecting, so the message is all there is to classify by.
_AUTH_ERRORS: tuple[tuple[str, str, str], ...] = (
    (
        "password authentication failed",
        "password authentication failed for user {user} (wrong password, or no such role)",
        "check {username} and {password}; PostgreSQL answers an unknown role "
        "the same way, so also check that the role exists "
        "(CREATE ROLE {user_ident} LOGIN PASSWORD '…')",
    ),
    (
        "no pg_hba.conf entry",
        "the server's pg_hba.conf has no entry for this client: {server}",
        "ask the DBA to add a pg_hba.conf line for this user, database and the cluster's address "
        "range (hostssl … scram-sha-256); if it only admits TLS sessions, set {sslMode} "
        "to require or verify-full",
    ),
    (
        "pg_hba.conf rejects connection",
        "the server's pg_hba.conf rejects this client: {server}",
        "ask the DBA to allow this user, database and the cluster's address range in pg_hba.conf",
    ),
    (
        "does not exist",  # role "x" does not exist (trust/peer/cert authentication)
        "role {user} does not exist",
        "create it: CREATE ROLE {user_ident} LOGIN PASSWORD '…'; or fix {username}",
    ),
    (
        "too many connections",
        "the server has no free connection slot: {server}",
        "raise max_connections (or the role's CONNECTION LIMIT), or close idle sessions; "
        "the chart opens maxPoolSize connections per replica",
    ),
    (
        "the database system is",
        "the server is not accepting sessions: {server}",
        "wait until the server has started (or finished recovery) and run the preflight again",
    ),
)
#: Refusals that come after a successful login: the database is missing or closed to the user.
_DATABASE_ERRORS = re.compile(r'^(database ".*" does not exist|permission denied for database)')


def open_session(probe: Probe, params: PgParams, address: str) -> Session:
    """The auth step: log in with psycopg over the address the tcp step dialled."""
    with probe.step("auth") as step:
        try:
            session = Session(connect(probe, params, address, params.database))
        except _ConnectError as exc:
            if not _DATABASE_ERRORS.match(exc.server_message):
                raise _classify(exc, params) from None
            # The server checks the password before the database: the login itself worked.
            session = Session(_maintenance(probe, params, address), _database_problem(exc, params))
        if session.conn is not None:
            probe.facts["auth_method"] = "password" if session.conn.pgconn.used_password else "none"
        step.detail = f"logged in as {params.user}"
    return session


def _maintenance(probe: Probe, params: PgParams, address: str) -> psycopg.Connection[Any] | None:
    """A session on the maintenance database, to read the version when the target is closed."""
    try:
        return connect(probe, params, address, "postgres")
    except _ConnectError:
        return None


class _ConnectError(Exception):
    def __init__(self, server_message: str) -> None:
        super().__init__(server_message)
        self.server_message = server_message


def connect(probe: Probe, params: PgParams, address: str, database: str) -> psycopg.Connection[Any]:
    """A psycopg connection under the check's deadline (libpq's connect_timeout has a 2 s floor:
    the connection is polled here instead)."""
    import psycopg
    from psycopg import pq

    deadline = probe.deadline
    milliseconds = max(1, int(deadline.timeout() * 1000))
    conninfo = psycopg.conninfo.make_conninfo(
        host=params.host,
        hostaddr=address,
        port=str(params.port),
        dbname=database,
        user=params.user,
        password=params.password,
        application_name="sense-preflight",
        options=f"-c statement_timeout={milliseconds} -c lock_timeout={milliseconds}",
        **libpq_tls(probe, params),
    )
    pgconn = pq.PGconn.connect_start(conninfo.encode())
    try:
        _poll(pgconn, deadline)
    except BaseException:
        pgconn.finish()
        raise
    conn = psycopg.Connection(pgconn)
    conn.autocommit = True
    return conn


def libpq_tls(probe: Probe, params: PgParams) -> dict[str, str]:
    """libpq's sslmode/sslrootcert, the same verification as the tls step."""
    from psycopg import pq

    settings = tls_for(probe, params)
    if params.verifies_chain and not settings.verify:  # --insecure-skip-tls-verify
        return {"sslmode": "require" if params.ssl_mode != "disable" else "disable"}
    options = {"sslmode": params.ssl_mode}
    if settings.verify:
        if settings.ca_file:
            options["sslrootcert"] = str(settings.ca_file)
        elif pq.version() >= 160000:
            options["sslrootcert"] = "system"
    return options


def _poll(pgconn: Any, deadline: Deadline) -> None:
    """Drive libpq's non-blocking connect until it is done, failed, or the deadline passes."""
    from psycopg import pq

    while True:
        status = pgconn.connect_poll()
        if status == pq.PollingStatus.OK:
            return
        if status == pq.PollingStatus.FAILED:
            raise _ConnectError(_server_message(pgconn.get_error_message()))
        fd = pgconn.socket
        readers, writers = ([fd], []) if status == pq.PollingStatus.READING else ([], [fd])
        ready = select.select(readers, writers, [], deadline.timeout())
        if not (ready[0] or ready[1]):
            raise DeadlineExceeded("the server did not complete the login in time")


def _server_message(text: str) -> str:
    """The server's (or libpq's) reason, without libpq's `connection to server at … failed:`."""
    text = text.strip()
    if "FATAL:" in text:
        text = text.split("FATAL:", 1)[1]
    elif " failed: " in text:
        text = text.rsplit(" failed: ", 1)[1]
    return " ".join(text.split())


def _classify(exc: _ConnectError, params: PgParams) -> StepFailed:
    message = exc.server_message
    for fragment, detail, fix in _AUTH_ERRORS:
        if fragment in message:
            fields = {
                "user": params.user,
                "user_ident": quote_ident(params.user),
                **{name: params.setting(name) for name in ("username", "password", "sslMode")},
                "server": message,
            }
            return StepFailed(detail.format(**fields), fix.format(**fields))
    if "certificate" in message or "SSL" in message:
        return StepFailed(f"TLS: {message}", "check sslMode and the CA (sslRootCert)")
    return StepFailed(f"login failed: {message}", "check the host, port and credentials")


def _database_problem(exc: _ConnectError, params: PgParams) -> StepFailed:
    database, user = quote_ident(params.database), quote_ident(params.user)
    if "permission denied" in exc.server_message:
        return StepFailed(
            f"user {params.user} may not CONNECT to database {params.database}",
            "as the database owner or a superuser: "
            f"GRANT CONNECT ON DATABASE {database} TO {user};",
        )
    return StepFailed(
        f"database {params.database} does not exist",
        f"create it as a superuser: CREATE DATABASE {database} OWNER {user}; "
        f"or fix {params.setting('database')}",
    )


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier, quoted for a remediation the user can paste."""
    return '"' + name.replace('"', '""') + '"'


# --- version and database ----------------------------------------------------------------------

#: Every fact the database, permissions and capacity steps judge, in one query (one round
#: trip): the owner; standby or primary; CREATE on the database; membership in the owner role;
#: schema public (NULL privileges when it does not exist); max_connections, the slots reserved
#: for superusers (and, since 16, for pg_use_reserved_connections) and the client sessions open.
_FACTS = (
    "SELECT pg_get_userbyid(d.datdba), pg_is_in_recovery(),"
    " has_database_privilege(current_database(), 'CREATE'), pg_has_role(d.datdba, 'USAGE'),"
    " n.oid IS NOT NULL, has_schema_privilege(n.oid, 'USAGE'), has_schema_privilege(n.oid, 'CREATE'),"
    " current_setting('max_connections')::int,"
    " current_setting('superuser_reserved_connections')::int"
    " + coalesce(nullif(current_setting('reserved_connections', true), ''), '0')::int,"
    " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
    " FROM pg_database d LEFT JOIN pg_namespace n ON n.nspname = 'public'"
    " WHERE d.datname = current_database()"
)


@dataclass(frozen=True)
class DatabaseFacts:
    """What `_FACTS` read, for the steps that judge it."""

    owner: str
    standby: bool
    create_on_database: bool
    owns: bool
    has_public: bool
    public_usage: bool
    public_create: bool
    max_connections: int
    reserved: int
    current: int


@dataclass(frozen=True)
class Database:
    """The session on the target database and its facts."""

    conn: psycopg.Connection[Any]
    facts: DatabaseFacts


def one_row(conn: psycopg.Connection[Any], query: str) -> tuple[Any, ...]:
    """The one row a catalog query returns."""
    row = conn.execute(query).fetchone()
    if row is None:
        raise StepFailed(f"the server returned no row for: {query[:60]}…")
    return tuple(row)


def check_version(probe: Probe, session: Session) -> None:
    """The server is PostgreSQL 17 or newer."""
    if session.conn is None:
        probe.skip("version", "no database could be opened to read it: see the database step")
        return
    with probe.step("version") as step:
        number = session.conn.info.server_version
        shown = session.conn.info.parameter_status("server_version") or str(number)
        probe.facts["server_version"] = shown
        if number < MIN_VERSION_NUM:
            raise StepFailed(
                f"PostgreSQL {shown} is too old: the chart needs PostgreSQL {MIN_VERSION} or newer",
                f"upgrade the server to PostgreSQL {MIN_VERSION}+, "
                f"or point at a PostgreSQL {MIN_VERSION}+ server",
            )
        step.detail = f"PostgreSQL {shown}"


def check_database(probe: Probe, session: Session, params: PgParams) -> Database:
    """The database exists and the user may CONNECT to it (the auth step found out); reads
    every fact the later steps judge, in one query, and returns them with the session."""
    with probe.step("database") as step:
        if session.database_problem is not None or session.conn is None:
            raise session.database_problem or StepFailed("no session")
        conn = session.conn
        facts = DatabaseFacts(*one_row(conn, _FACTS))
        probe.facts["database_owner"] = facts.owner
        step.detail = f"database {params.database}, owner {facts.owner}"
    return Database(conn, facts)


# --- permissions, capacity, roundtrip ----------------------------------------------------------


def check_permissions(probe: Probe, facts: DatabaseFacts, params: PgParams) -> None:
    """The migrations create tables in `public` (and Hangfire its own schema)."""
    with probe.step("permissions") as step:
        owns = facts.owns
        probe.facts["owns_database"] = owns
        database, user = quote_ident(params.database), quote_ident(params.user)
        if facts.standby:
            raise StepFailed(
                "the server is a read-only standby: migrations cannot write here",
                f"point {params.setting('host')} at the primary server",
            )
        if not facts.has_public:
            raise StepFailed(
                f"database {params.database} has no schema public",
                f"as the database owner: CREATE SCHEMA public AUTHORIZATION {user};",
            )
        usage, create = facts.public_usage, facts.public_create
        if not (usage and create):
            missing = " and ".join(
                name for name, ok in (("USAGE", usage), ("CREATE", create)) if not ok
            )
            raise StepFailed(
                f"user {params.user} lacks {missing} on schema public: the migrations cannot "
                "create their tables",
                "since PostgreSQL 15, public is no longer writable by everyone; as the database "
                f"owner run: GRANT USAGE, CREATE ON SCHEMA public TO {user}; "
                f"(or make the user the owner: ALTER DATABASE {database} OWNER TO {user};)",
            )
        ownership = "owns the database" if owns else "does not own the database"
        if not facts.create_on_database:
            step.warn(
                f"CREATE on schema public, but not on database {params.database}: a migration "
                f"that creates a schema (e.g. Hangfire's) fails unless it exists; {ownership}",
                f"as the database owner: GRANT CREATE ON DATABASE {database} TO {user};",
            )
            return
        step.detail = f"CREATE on database and on schema public; {ownership}"


def pool_demand(values: Values, which: str) -> int:
    """Connections the chart's pods may open to this database: maxPoolSize times replicaCount, plus
    the other database's when both sit on the same server."""

    def pods(name: str) -> int:
        pool = int(setting(values, f"postgres.{name}.maxPoolSize"))
        return pool * int(setting(values, f"{name}.replicaCount"))

    def server(name: str) -> tuple[str, int]:
        host = str(values.get(f"postgres.{name}.host", "")).strip().lower()
        return host, int(setting(values, f"postgres.{name}.port"))

    other = "worker" if which == "api" else "api"
    same = server(which) == server(other)
    return pods(which) + (pods(other) if same else 0)


def check_capacity(probe: Probe, facts: DatabaseFacts, demand: int) -> None:
    """max_connections less the reserved slots against the pools the chart will open."""
    with probe.step("capacity") as step:
        maximum, reserved, current = facts.max_connections, facts.reserved, facts.current
        usable = maximum - reserved
        probe.facts |= {
            "max_connections": maximum,
            "current_connections": current,
            "pool_demand": demand,
        }
        fix = "raise max_connections on the server, or lower maxPoolSize / replicaCount"
        if demand > usable:
            step.warn(
                f"the chart may open {demand} connections, the server allows {usable} "
                f"(max_connections {maximum} - {reserved} reserved)",
                fix,
            )
        elif demand > usable - (current - 1):
            step.warn(
                f"the chart may open {demand} connections; {usable - current + 1} of {usable} "
                f"are free now ({current - 1} in use by others)",
                fix,
            )
        else:
            step.detail = f"{demand} pool connections of {usable} usable ({current} in use now)"


def roundtrip(probe: Probe, conn: psycopg.Connection[Any]) -> None:
    """CREATE TABLE, INSERT, SELECT in one transaction, sent as one query, that closing the
    session rolls back: DDL is transactional in PostgreSQL, so nothing remains even if the
    process dies. Skipped under --read-only."""
    if probe.options.read_only:
        probe.skip("roundtrip", "--read-only: no scratch table")
        return
    from psycopg import sql

    with probe.step("roundtrip") as step:
        name = f"sense_preflight_{secrets.token_hex(6)}"
        table = sql.Identifier("public", name)
        # One message, one round trip: the simple query protocol runs the statements in
        # order and stops at the first error.
        script = sql.SQL(
            "BEGIN; CREATE TABLE {t} (id int); INSERT INTO {t} VALUES (1); SELECT id FROM {t}"
        ).format(t=table)
        cursor = conn.execute(script)
        # Closing the session rolls the transaction back (now, on Ctrl-C, or at the deadline).
        probe.cleanup(f"roll back scratch table {name}", conn.close)
        row = _select_row(cursor)
        version, database = conn.info.parameter_status("server_version"), conn.info.dbname
        conn.close()
        if row != (1,):
            raise StepFailed(f"scratch table {name} returned {row!r} instead of (1,)")
        step.detail = (
            f"PostgreSQL {version}, database {database}: created, wrote and read "
            f"scratch table {name} (rolled back)"
        )


def _select_row(cursor: psycopg.Cursor[Any]) -> tuple[Any, ...] | None:
    """The first row of the SELECT among the results of a multi-statement query."""
    while True:
        if cursor.description is not None:
            return cursor.fetchone()
        if not cursor.nextset():
            return None


# --- the checks --------------------------------------------------------------------------------


@contextmanager
def session_for(probe: Probe, params: PgParams) -> Iterator[Database]:
    """dns → tcp → tls → auth → version → database, shared by every PostgreSQL check; yields
    the session on the database with its facts."""
    address = reach_server(probe, params)
    session = open_session(probe, params, address)
    try:
        check_version(probe, session)
        yield check_database(probe, session, params)
    finally:
        session.close()


def run_database(which: str, probe: Probe) -> None:
    """The postgres.api / postgres.worker check, top to bottom."""
    with probe.step("config") as step:
        params = params_from_values(probe.values, f"postgres.{which}")
        describe_config(probe, step, params)
    with session_for(probe, params) as database:
        check_permissions(probe, database.facts, params)
        check_capacity(probe, database.facts, pool_demand(probe.values, which))
        roundtrip(probe, database.conn)


def _reads(which: str) -> tuple[str, ...]:
    keys = (
        "host",
        "port",
        "database",
        "username",
        "password",
        "sslMode",
        "sslRootCert",
        "maxPoolSize",
    )
    other = "worker" if which == "api" else "api"
    # the capacity step adds the other database's pods when both share a server
    shared = (f"postgres.{other}.{key}" for key in ("host", "port", "maxPoolSize"))
    return (
        *(f"postgres.{which}.{key}" for key in keys),
        f"{which}.replicaCount",
        *shared,
        f"{other}.replicaCount",
    )


def checks(values: Values) -> list[Check]:
    """The two database checks of the chart."""
    return [
        Check(
            id=f"postgres.{which}",
            title=f"PostgreSQL {title} database",
            run=partial(run_database, which),
            reads=_reads(which),
        )
        for which, title in (("api", "API"), ("worker", "Worker / Hangfire"))
    ]
