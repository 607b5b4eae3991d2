"""ClickHouse 26+ over its HTTP interface, as the API and the Worker use it (check `clickhouse`).

config → dns → tcp → tls → http (`GET /ping` answers `Ok.`) → auth → version (26 or newer) →
database → permissions → roundtrip (a scratch MergeTree table; skipped under `--read-only`).
The client is clickhouse-connect, the API's own kind of client; a server too old for it to
connect to is still named by its version, read with a plain HTTP `SELECT version()`.

Requests that do not depend on each other overlap (over a 20 ms link every round trip
counts): `/ping` is sent while the tcp step connects, and the facts the later steps judge
(the user and its settings, the grants) are read over plain HTTP while clickhouse-connect
runs its own start-up queries. Each is still judged in its own step.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from checks.clickhouse.grants import CREATE_DATABASE, TABLE_PRIVILEGES, missing_privileges
from preflight.engine.check import Check, Probe, StepFailed
from preflight.engine.deadline import timeout_message
from preflight.net import (
    Ahead,
    Endpoint,
    ProxyEnv,
    TlsSettings,
    cleanup_client,
    http_client,
    http_request,
    parse_endpoint,
    proxy_env,
    reach,
    tls_settings,
)
from preflight.values.chart import setting
from preflight.values.load import Values

if TYPE_CHECKING:
    import httpx
    from clickhouse_connect.driver.httpclient import HttpClient as Client

MIN_MAJOR = 26
HTTP_PORT, HTTPS_PORT = 8123, 8443
SCRATCH_PREFIX = "sense_preflight_"
#: The client libraries this module's checks import (preflight.engine.preload).
CLIENTS = ("clickhouse_connect", "httpx")
#: Its checks' CPU seconds in a run, clients included (bench/; engine.forked balances by it).
CPU_S = 0.3

T = TypeVar("T")


def checks(values: Values) -> list[Check]:
    """The one ClickHouse check."""
    return [
        Check(
            id="clickhouse",
            title="ClickHouse 26+ over HTTP",
            run=run,
            reads=(
                "clickhouse.host",
                "clickhouse.port",
                "clickhouse.username",
                "clickhouse.password",
                "clickhouse.database",
                "clickhouse.secure",
                "clickhouse.secured",
                "clickhouse.caBundle",
            ),
        )
    ]


@dataclass(frozen=True)
class Target:
    """Where and as whom to connect, from the values."""

    endpoint: Endpoint
    tls: TlsSettings | None
    username: str
    password: str
    database: str
    proxies: ProxyEnv = field(default_factory=ProxyEnv)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.endpoint.netloc}"


@dataclass(frozen=True)
class Session:
    """What logging in showed: the client (None when it could not start) and the server."""

    client: Client | None
    version: str
    grants: Ahead[list[str]]
    """`SHOW GRANTS FINAL`, sent at login, judged in the database step."""
    client_error: str = ""
    readonly: int = 0
    allow_ddl: int = 1
    database_listed: bool = False
    """The target database is in system.databases for this user (so it exists)."""


def run(probe: Probe) -> None:
    """Walk the layers; the first one that fails ends the check."""
    with probe.step("config") as step:
        target = _target(probe)
        step.detail = f"{target.url}, database {target.database}, user {target.username}"
    plain_fix = "turn off clickhouse.secure and use the HTTP port (8123)"
    with http_client(probe, target.tls) as http:
        ping = Ahead(lambda: _ping(probe, http, target), probe.deadline)
        with reach(probe, target.endpoint, target.tls, plain_fix=plain_fix) as connection:
            client_address = connection.sock.getsockname()[0]
        with probe.step("http") as step:
            ping.result()
            step.detail = f"GET {target.url}/ping answered Ok."
        with probe.step("auth") as step:
            session = _log_in(probe, target, http, client_address)
            step.detail = f"logged in as {target.username}"
        with probe.step("version") as step:
            client = _judge_version(probe, session)
            step.detail = f"ClickHouse {session.version}"
        with closing(client):
            _use(probe, client, target, session)


def _use(probe: Probe, client: Client, target: Target, session: Session) -> None:
    """The layers that need a working client: database, permissions, roundtrip."""
    with probe.step("database") as step:
        exists, grants = _database(probe, client, target, session)
        step.detail = _database_detail(target, exists)
    with probe.step("permissions") as step:
        _permissions(probe, session, target, grants)
        step.detail = f"{target.username} may {', '.join(TABLE_PRIVILEGES)} on {target.database}"
        if not exists:
            step.detail += " (the API migration will create the database)"
    if probe.options.read_only:
        probe.skip("roundtrip", "--read-only: no scratch table written")
        return
    if not exists:
        probe.skip("roundtrip", f"database {target.database} does not exist yet: nothing to write")
        return
    with probe.step("roundtrip") as step:
        step.detail = _roundtrip(probe, client, target)


# --- config -----------------------------------------------------------------------------------


def _target(probe: Probe) -> Target:
    """Endpoint, TLS and credentials. A secure flag, an https:// host, or port 8443 on a host
    without a scheme mean HTTPS (default port 8443); else HTTP on 8123."""
    values = probe.values
    host = str(values.get("clickhouse.host", ""))
    port = values.get("clickhouse.port")
    flagged = values.enabled("clickhouse.secure") or values.enabled("clickhouse.secured")
    https_url = host.strip().lower().startswith("https://")
    default_port = int(port) if port else HTTPS_PORT if flagged or https_url else HTTP_PORT
    endpoint = parse_endpoint(host, default_port=default_port)
    secure = (
        flagged
        or endpoint.scheme == "https"
        or (endpoint.scheme == "" and endpoint.port == HTTPS_PORT)
    )
    if endpoint.scheme not in ("", "http", "https"):
        raise StepFailed(
            f"clickhouse.host has scheme {endpoint.scheme}://; the API speaks HTTP(S) to it",
            "give a host name (or an http:// or https:// URL) of ClickHouse's HTTP interface",
        )
    ca_file = values.get("clickhouse.caBundle")
    return Target(
        endpoint=Endpoint(endpoint.host, endpoint.port, "https" if secure else "http"),
        tls=tls_settings(probe, ca_file) if secure else None,
        username=str(values.get("clickhouse.username", "default")),
        password=str(values.get("clickhouse.password", "")),
        database=str(setting(values, "clickhouse.database")),
        proxies=proxy_env(probe),
    )


# --- http -------------------------------------------------------------------------------------


def _ping(probe: Probe, client: httpx.Client, target: Target) -> None:
    """ClickHouse's HTTP interface answers `GET /ping` with `Ok.`; anything else is not it."""
    response = http_request(probe, client, "GET", f"{target.url}/ping")
    if response.status_code == 200 and response.text.strip() == "Ok.":
        return
    body = response.text[:4000]
    if "is for clickhouse-client program" in body:
        http_port = re.search(r"use port (\d+) for HTTP", body)
        raise StepFailed(
            f"{target.endpoint.netloc} is ClickHouse's native-protocol port, not the HTTP one",
            f"set clickhouse.port to the HTTP port ({http_port[1] if http_port else HTTP_PORT})",
        )
    raise StepFailed(
        f"GET /ping answered {_describe(response)}: not ClickHouse's HTTP interface "
        "(it answers 'Ok.')",
        "point clickhouse.host / clickhouse.port at ClickHouse's HTTP port (8123, 8443 for "
        "HTTPS), not at a proxy page or another service",
    )


def _describe(response: httpx.Response) -> str:
    """`HTTP 200 text/html from nginx: "Welcome"`: what answered, in a few words."""
    words = [f"HTTP {response.status_code}"]
    if response.headers.get("content-type"):
        words.append(response.headers["content-type"].split(";")[0])
    if response.headers.get("server"):
        words.append(f"from {response.headers['server']}")
    if response.is_redirect:
        words.append(f"redirecting to {response.headers.get('location', '?')}")
    title = re.search(r"<title[^>]*>(.*?)</title>", response.text, re.IGNORECASE | re.DOTALL)
    text = title[1] if title else re.sub(r"<[^>]+>", " ", response.text[:4000])
    text = " ".join(text.split())
    return " ".join(words) + (f': "{text[:80]}"' if text else "")


# --- auth and version -------------------------------------------------------------------------


def _log_in(probe: Probe, target: Target, http: httpx.Client, client_address: str) -> Session:
    """Start clickhouse-connect; when it cannot start but the server answers a plain
    `SELECT version()` with these credentials, log in succeeded on an older server.

    Meanwhile, over the plain HTTP interface: the user, the settings the permissions step
    judges and whether the database is listed (one query), and the grants."""
    from clickhouse_connect import common, get_client
    from clickhouse_connect.driver.exceptions import Error

    facts_sql = (
        "SELECT currentUser(), timezone(), getSetting('readonly'), getSetting('allow_ddl'),"
        " (SELECT count() FROM system.databases WHERE name = {database:String})"
    )
    facts = Ahead(
        lambda: _ask(probe, http, target, "read the current user", facts_sql, target.database),
        probe.deadline,
    )
    grants = Ahead(
        lambda: [
            row[0] for row in _ask(probe, http, target, "read the grants", "SHOW GRANTS FINAL")
        ],
        probe.deadline,
    )
    # The client's third start-up query only probes a Native-format option this check never
    # reads (LowCardinality columns): one round trip less.
    common.set_setting("use_protocol_version", False)
    seconds = max(1, int(probe.deadline.timeout()))
    try:
        client = cast(
            "Client",
            get_client(
                host=target.endpoint.host,
                port=target.endpoint.port,
                username=target.username,
                password=target.password,
                secure=target.tls is not None,
                verify=target.tls.verify if target.tls else True,
                ca_cert=str(target.tls.ca_file) if target.tls and target.tls.ca_file else None,
                connect_timeout=seconds,
                send_receive_timeout=seconds,
                query_retries=0,
                autogenerate_session_id=False,
                pool_mgr=_pool(target),
            ),
        )
    except Error as exc:
        _raise_if_auth(exc.code, _server_message(exc), target, client_address)
        if exc.code is None and "timed out" in str(exc).lower():
            raise _timed_out(probe, "log in") from None
        version = _plain_version(probe, http, target, client_address)
        return Session(None, version, grants, _server_message(exc))
    user, timezone, readonly, allow_ddl, listed = facts.result()[0]
    probe.facts.update(current_user=user, timezone=timezone)
    version = client.server_version or "unknown"
    return Session(client, version, grants, "", int(readonly), int(allow_ddl), bool(int(listed)))


def _ask(
    probe: Probe, http: httpx.Client, target: Target, what: str, sql: str, database: str = ""
) -> list[list[Any]]:
    """One query over ClickHouse's plain HTTP interface (to do `what`): its rows, in
    JSONCompact (64-bit numbers come quoted). `database` is the query's {database:String}."""
    params = {"param_database": database} if database else None
    response = _post(probe, http, target, f"{sql} FORMAT JSONCompact", params)
    if response.status_code != 200:
        raise ServerError(what, _exception_code(response), _first_line(response.text))
    return cast("list[list[Any]]", response.json()["data"])


def _post(
    probe: Probe,
    http: httpx.Client,
    target: Target,
    sql: str,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    """`sql` POSTed to the plain HTTP interface as the configured user."""
    auth = (target.username, target.password)
    return http_request(
        probe, http, "POST", f"{target.url}/", content=sql, params=params, auth=auth
    )


def _exception_code(response: httpx.Response) -> int | None:
    """ClickHouse's error code: its header, or the `Code: N` of an older server's body."""
    code = response.headers.get("x-clickhouse-exception-code") or _code_in(response.text)
    return int(code) if code else None


def _plain_version(probe: Probe, http: httpx.Client, target: Target, client_address: str) -> str:
    """`SELECT version()` over plain HTTP: old servers answer it too."""
    response = _post(probe, http, target, "SELECT version()")
    if response.status_code == 200:
        return response.text.strip()
    message = _first_line(response.text)
    _raise_if_auth(_exception_code(response), message, target, client_address)
    if response.status_code in (401, 403):
        raise StepFailed(
            f"authentication refused with HTTP {response.status_code} and no ClickHouse error "
            "(a proxy in front of ClickHouse?)",
            "check clickhouse.username / clickhouse.password and any proxy in between",
        )
    raise StepFailed(f"SELECT version() failed: {message}")


def _raise_if_auth(code: int | None, message: str, target: Target, client_address: str) -> None:
    """The login errors of ClickHouse, each with its own message."""
    user = target.username
    networks = (
        f"allow this client ({client_address} as seen from here; NAT may change it) in the "
        f"user's HOST clause (ALTER USER {user} HOST IP '...') or <networks> in users.xml"
    )
    if code == 516:  # 22.x and newer: one answer for all of them, on purpose
        raise StepFailed(
            f"authentication failed for user {user} (code 516): wrong user or password, or the "
            "user may not log in from this address (ClickHouse does not say which)",
            f"check clickhouse.username and clickhouse.password; if they are right, {networks}",
        )
    if code == 192:
        raise StepFailed(f"unknown user {user} (code 192)", "check clickhouse.username")
    if code == 193:
        raise StepFailed(f"wrong password for user {user} (code 193)", "check clickhouse.password")
    if code == 194:
        raise StepFailed(f"user {user} requires a password (code 194)", "set clickhouse.password")
    if code == 195:
        raise StepFailed(
            f"user {user} may not log in from this address (code 195): {message}", networks
        )


def _judge_version(probe: Probe, session: Session) -> Client:
    """26 or newer, with a client that could start."""
    probe.facts["server_version"] = session.version
    match = re.match(r"(\d+)\.", session.version)
    if match is None:
        raise StepFailed(f"cannot read the server version {session.version!r}")
    if int(match[1]) < MIN_MAJOR:
        raise StepFailed(
            f"ClickHouse {session.version} found, {MIN_MAJOR} or newer required",
            f"upgrade ClickHouse to {MIN_MAJOR}.x, or point clickhouse.host at a newer server",
        )
    if session.client is None:
        raise StepFailed(
            f"ClickHouse {session.version}, but clickhouse-connect cannot start: "
            f"{session.client_error}",
            "check what sits between here and ClickHouse (a proxy rewriting requests?)",
        )
    return session.client


# --- database and permissions -----------------------------------------------------------------


def _database(
    probe: Probe, client: Client, target: Target, session: Session
) -> tuple[bool, list[str]]:
    """Whether the database exists (visible or not to this user: the login's facts say
    whether it is listed) and the user's grants.

    A missing database passes only when the user may create it: the migration will."""
    exists = session.database_listed or _exists(probe, client, target)
    grants = [str(grant) for grant in session.grants.result()]
    probe.facts.update(database_exists=exists, grants=grants)
    if not exists and missing_privileges(grants, target.database, [CREATE_DATABASE]):
        raise StepFailed(
            f"database {target.database} does not exist and {target.username} may not create it",
            f"CREATE DATABASE {_quote(target.database)}; or GRANT CREATE DATABASE ON "
            f"{_quote(target.database)}.* TO {_quote(target.username)}",
        )
    return exists, grants


def _exists(probe: Probe, client: Client, target: Target) -> bool:
    """A database this user cannot list may still exist: only UNKNOWN_DATABASE (81) to
    SHOW TABLES says it does not."""
    try:
        sql = f"SHOW TABLES FROM {_quote(target.database)} LIMIT 1"
        _call(probe, "look up the database", client, client.command, sql)
    except ServerError as exc:
        if exc.code != 81:  # UNKNOWN_DATABASE
            raise
        return False
    return True


def _database_detail(target: Target, exists: bool) -> str:
    if exists:
        return f"database {target.database} exists"
    return (
        f"database {target.database} does not exist yet; {target.username} may create it, "
        "so the API migration will"
    )


def _permissions(probe: Probe, session: Session, target: Target, grants: list[str]) -> None:
    """Not readonly, DDL allowed (the settings read at login), and every table privilege the
    migration and Worker use."""
    readonly, allow_ddl = session.readonly, session.allow_ddl
    probe.facts["readonly"] = readonly
    user = _quote(target.username)
    if readonly:
        raise StepFailed(
            f"{target.username} runs with readonly={readonly} (a readonly settings profile): "
            "the migration cannot create tables, the Worker cannot insert",
            f"give {target.username} a settings profile with readonly = 0 "
            f"(ALTER USER {user} SETTINGS readonly = 0, or <profile> in users.xml)",
        )
    if not allow_ddl:
        raise StepFailed(
            f"{target.username} runs with allow_ddl=0: the migration cannot create tables",
            f"ALTER USER {user} SETTINGS allow_ddl = 1 (or fix its settings profile)",
        )
    missing = missing_privileges(grants, target.database)
    if missing:
        raise StepFailed(
            f"{target.username} lacks {', '.join(missing)} on {target.database} "
            f"(has: {', '.join(p for p in TABLE_PRIVILEGES if p not in missing) or 'none'})",
            f"GRANT {', '.join(missing)} ON {_quote(target.database)}.* TO {user}",
        )


# --- roundtrip --------------------------------------------------------------------------------


def _roundtrip(probe: Probe, client: Client, target: Target) -> str:
    """Create a scratch MergeTree table, write a row, read it back, drop it. Once the table
    exists its drop is also a cleanup: it runs when a step fails or the run is interrupted."""
    name = f"{SCRATCH_PREFIX}{secrets.token_hex(6)}"
    table = f"{_quote(target.database)}.{_quote(name)}"
    create = f"CREATE TABLE {table} (id UInt32, token String) ENGINE = MergeTree ORDER BY id"
    _call(probe, "create a scratch table", client, client.command, create)
    scratch = _ScratchTable(target, table)
    probe.cleanup(f"drop scratch table {target.database}.{name}", scratch.drop)
    token = secrets.token_hex(8)
    row = [[1, token]]
    columns = {"column_names": ["id", "token"], "column_type_names": ["UInt32", "String"]}
    _call(probe, "insert a row", client, client.insert, table, row, **columns)
    select = f"SELECT id, token FROM {table}"
    rows = _call(probe, "read the row back", client, client.query, select).result_rows
    if [tuple(row) for row in rows] != [(1, token)]:
        raise StepFailed(f"read back {len(rows)} row(s) that differ from the one just written")
    _call(probe, "drop the scratch table", client, client.command, f"DROP TABLE {table}")
    scratch.gone = True
    return f"created, wrote, read back and dropped {target.database}.{name}"


@dataclass
class _ScratchTable:
    """The scratch table, dropped once: by the round trip, or by this cleanup when a step
    failed or the run was interrupted (its own short timeout: it may run after the deadline)."""

    target: Target
    table: str
    gone: bool = False

    def drop(self) -> None:
        if self.gone:
            return
        target = self.target
        with cleanup_client(target.proxies, target.tls) as client:
            response = client.post(
                f"{target.url}/",
                content=f"DROP TABLE IF EXISTS {self.table}",
                auth=(target.username, target.password),
            )
        if response.status_code != 200:
            raise RuntimeError(_first_line(response.text))
        self.gone = True


# --- clickhouse-connect calls -----------------------------------------------------------------


def _pool(target: Target) -> Any:
    """clickhouse-connect's connection pool, routed as the product's client would be (direct,
    or through its proxy with the proxy's credentials), never by the library's own reading
    of the environment."""
    import urllib3
    from clickhouse_connect.driver.httputil import get_pool_manager_options

    tls = target.tls
    options = get_pool_manager_options(
        verify=tls.verify if tls else True,
        ca_cert=str(tls.ca_file) if tls and tls.ca_file else None,
    )
    scheme = "https" if tls else "http"
    proxy = target.proxies.route(scheme, target.endpoint.host)
    if proxy is None:
        return urllib3.PoolManager(**options)
    headers = {"Proxy-Authorization": proxy.authorization} if proxy.authorization else None
    return urllib3.ProxyManager(f"http://{proxy.netloc}", proxy_headers=headers, **options)


class ServerError(StepFailed):
    """An error ClickHouse answered to a query, with its code (497 = missing privilege)."""

    def __init__(self, what: str, code: int | None, message: str) -> None:
        hint = "GRANT the privilege the message names" if code == 497 else ""
        super().__init__(f"cannot {what}: {message}", hint)
        self.code = code


def _call(
    probe: Probe, what: str, client: Client, method: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """One client call (to do `what`) bounded by the check's deadline; errors become one line."""
    from clickhouse_connect.driver.exceptions import Error
    from urllib3 import Timeout

    left = probe.deadline.timeout()
    client.timeout = Timeout(connect=left, read=left)
    try:
        return method(*args, **kwargs)
    except Error as exc:
        code = exc.code
        if code is None and "timed out" in str(exc).lower():
            raise _timed_out(probe, what) from None
        raise ServerError(what, code, _server_message(exc)) from None


def _timed_out(probe: Probe, what: str) -> StepFailed:
    return StepFailed(
        timeout_message(
            f"trying to {what}: ClickHouse answered /ping, then nothing", probe.options.timeout_s
        ),
        "check the server's load and what sits in between, or raise --timeout",
    )


def _server_message(exc: Exception) -> str:
    """The server's own words from a clickhouse-connect error, on one line."""
    text = str(exc)
    text = text.split("server response: ", 1)[-1]
    text = re.sub(r"\s*\(for url [^)]*\)\s*$", "", text)
    return _first_line(text)


def _first_line(text: str) -> str:
    """A ClickHouse error body, old or new, as one short line without the boilerplate."""
    line = text.strip().splitlines()[0] if text.strip() else "(empty answer)"
    line = re.sub(r"^Code: \d+[.,]\s*", "", line)
    line = re.sub(r"(e\.displayText\(\) = )?DB::Exception: ", "", line)
    line = re.sub(r", e\.what\(\) = DB::Exception$|\s*\(version [\d.]+[^)]*\)", "", line)
    return line[:300]


def _code_in(text: str) -> str | None:
    match = re.search(r"Code: (\d+)", text)
    return match[1] if match else None


def _quote(identifier: str) -> str:
    """A ClickHouse identifier, in backquotes unless it is a plain word."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", identifier):
        return identifier
    escaped = identifier.replace("\\", "\\\\").replace("`", "\\`")
    return f"`{escaped}`"
