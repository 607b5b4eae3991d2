"""Real ClickHouse servers for the tests: 26.9 (supported) and 18.16 (too old).

Sources, in order (see docs/test-services.md):
1. an endpoint in the environment: `SENSE_TEST_CLICKHOUSE26_URL` / `SENSE_TEST_CLICKHOUSE18_URL`
   (`http[s]://[user:password@]host:port`; user:password replace the admin's). That server must
   declare the users of `USERS_26` (resp. `USERS_18`) with their passwords, grants and profiles,
   as `users_xml()` writes them;
2. a local process, what CI uses (`.ci/setup/clickhouse.sh` installs both):
   - 26.9: the real engine inside the PyPI wheel `chdb-core==26.9.0`. A separate Python process
     runs one blocking chdb query that starts the HTTP and native listeners and then reads a FIFO;
     a line written to the FIFO ends the query and the process;
   - 18.16: Debian's `/usr/sbin/clickhouse-server` with a config of our own in a temp dir;
3. testcontainers, when it is installed and a Docker engine answers.

Users are declared in users.xml (chdb has no writable access storage: `CREATE USER` and `GRANT`
fail there). `default` stays passwordless because the in-process chdb session logs in as it; it
gets only the grants that session needs, and only from loopback.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.metadata
import importlib.util
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from types import MappingProxyType
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

import pytest

from tests.servers._process import (
    ServerProcess,
    free_port,
    start_process,
    tools_dir,
    wait_for_port,
)

CHDB_VERSION = "26.9.0"
CLICKHOUSE18_BINARY = Path("/usr/sbin/clickhouse-server")
DATABASE = "axion_sense"
MISSING_DATABASE = "sense_fresh"
SETUP_HINT = "run .ci/setup/clickhouse.sh"


@dataclass(frozen=True)
class ClickHouseUser:
    """A user declared in users.xml: credentials, grants and settings profile."""

    name: str
    password: str
    grants: tuple[str, ...] = ()
    profile: str = "default"
    networks: tuple[str, ...] = ("::/0",)


@dataclass(frozen=True)
class ClickHouseServer:
    """A running ClickHouse HTTP endpoint and the users declared on it, keyed by role."""

    host: str
    port: int
    version: str
    users: Mapping[str, ClickHouseUser]
    secure: bool = False
    native_port: int | None = None
    database: str = DATABASE
    missing_database: str = MISSING_DATABASE

    @property
    def url(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def admin(self) -> ClickHouseUser:
        return self.users["admin"]


#: A started server and how to stop it.
Started = tuple[ClickHouseServer, Callable[[], None]]

_DATA = f"{DATABASE}.*"
_FRESH = f"{MISSING_DATABASE}.*"

#: Roles the ClickHouse check's tests need on 26.9, each one user.
USERS_26: Mapping[str, ClickHouseUser] = MappingProxyType(
    {
        "admin": ClickHouseUser("sense_admin", "sense-Admin-pw-5e1c", (f"GRANT ALL ON {_DATA}",)),
        "select_only": ClickHouseUser(
            "sense_reader", "sense-Reader-pw-93ad", (f"GRANT SELECT ON {_DATA}",)
        ),
        "readonly": ClickHouseUser(
            "sense_readonly", "sense-Readonly-pw-0b7f", (f"GRANT ALL ON {_DATA}",), "readonly"
        ),
        "no_grants": ClickHouseUser("sense_nogrants", "sense-Nogrants-pw-6d24"),
        # `MISSING_DATABASE` does not exist: this user may create it, the next one may not.
        "creator": ClickHouseUser(
            "sense_creator", "sense-Creator-pw-c3e8", (f"GRANT ALL ON {_FRESH}",)
        ),
        "no_create": ClickHouseUser(
            "sense_nocreate",
            "sense-Nocreate-pw-71fa",
            (f"GRANT SELECT, INSERT, ALTER, CREATE TABLE, DROP TABLE ON {_FRESH}",),
        ),
        # Everything, except INSERT into the check's scratch tables: its roundtrip fails midway.
        "no_scratch_insert": ClickHouseUser(
            "sense_noscratch",
            "sense-Noscratch-pw-d81b",
            (f"GRANT ALL ON {_DATA}", f"REVOKE INSERT ON {DATABASE}.sense_preflight_*"),
        ),
        # Right password, but only allowed to log in from an address the tests never have.
        "elsewhere": ClickHouseUser(
            "sense_elsewhere",
            "sense-Elsewhere-pw-48b2",
            (f"GRANT ALL ON {_DATA}",),
            networks=("10.255.255.1",),
        ),
    }
)

#: 18.16 predates SQL grants: users have full rights; one may not log in from loopback.
USERS_18: Mapping[str, ClickHouseUser] = MappingProxyType(
    {
        "admin": ClickHouseUser("sense_admin", "sense-Admin18-pw-2a9d"),
        "elsewhere": ClickHouseUser(
            "sense_elsewhere", "sense-Elsewhere18-pw-e5a0", networks=("10.255.255.1",)
        ),
    }
)

_CHDB_DEFAULT_USER = ClickHouseUser(
    "default",
    "",
    ("GRANT SYSTEM LISTEN ON *.*", "GRANT FILE ON *.*", "GRANT CREATE TEMPORARY TABLE ON *.*"),
    networks=("127.0.0.1", "::1"),
)


def users_xml(users: Iterable[ClickHouseUser], root: str) -> str:
    """users.xml declaring `users` (grants only where the server knows SQL grants)."""
    entries = []
    for user in users:
        networks = "".join(f"<ip>{escape(ip)}</ip>" for ip in user.networks)
        grants = ""
        if root == "clickhouse":
            # An empty <grants/> means no grants; without it a users.xml user may do anything.
            grants = "<grants>" + "".join(f"<query>{escape(q)}</query>" for q in user.grants)
            grants += "</grants>"
        entries.append(
            f"<{user.name}><password>{escape(user.password)}</password>"
            f"<networks>{networks}</networks><profile>{user.profile}</profile>"
            f"<quota>default</quota>{grants}</{user.name}>"
        )
    return (
        f"<?xml version='1.0'?>\n<{root}>\n"
        "<profiles><default/><readonly><readonly>1</readonly></readonly></profiles>\n"
        "<quotas><default/></quotas>\n"
        f"<users>\n{chr(10).join(entries)}\n</users>\n</{root}>\n"
    )


def http_query(
    server: ClickHouseServer, sql: str, user: ClickHouseUser | None = None, timeout: float = 10
) -> str:
    """Run `sql` over plain HTTP as `user` (default: the admin); the body, or raise HTTPError."""
    user = user or server.admin
    token = base64.b64encode(f"{user.name}:{user.password}".encode()).decode()
    request = urllib.request.Request(
        server.url + "/", data=sql.encode(), headers={"Authorization": f"Basic {token}"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return str(response.read().decode())


# --- environment ------------------------------------------------------------------------------


def _from_env(var: str, users: Mapping[str, ClickHouseUser]) -> ClickHouseServer | None:
    """The server named by `$var`, its admin's credentials taken from the URL when given."""
    value = os.environ.get(var)
    if not value:
        return None
    url = urlsplit(value)
    if url.username:
        admin = replace(
            users["admin"], name=unquote(url.username), password=unquote(url.password or "")
        )
        users = MappingProxyType({**users, "admin": admin})
    secure = url.scheme == "https"
    server = ClickHouseServer(
        host=url.hostname or "127.0.0.1",
        port=url.port or (8443 if secure else 8123),
        secure=secure,
        version="",
        users=users,
    )
    return _ready(server)


def _ready(server: ClickHouseServer) -> ClickHouseServer:
    """Create the test database and learn the version; the server is then fit for the tests."""
    http_query(server, f"CREATE DATABASE IF NOT EXISTS {server.database}")
    return replace(server, version=http_query(server, "SELECT version()").strip())


def _wait_for_ping(server: ClickHouseServer, timeout: float) -> None:
    """Block until `GET /ping` answers `Ok.` (the port opens a little before the handler)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(server.url + "/ping", timeout=2) as response:
                if response.read() == b"Ok.\n":
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{server.url}/ping never answered Ok.")
        time.sleep(0.05)


def _wait_ready(server: ClickHouseServer, process: ServerProcess, timeout: float = 60) -> None:
    """Wait until the local server answers `GET /ping`, or stop it and raise with its log."""
    try:
        wait_for_port(server.host, server.port, timeout, process.proc)
        _wait_for_ping(server, timeout)
    except (RuntimeError, TimeoutError) as exc:
        process.stop()
        raise RuntimeError(f"{process.name} did not start: {exc}\n{process.log_tail()}") from exc


# --- 26.9 from chdb-core ----------------------------------------------------------------------

# Runs in its own Python process, cwd = the run dir holding config.xml and users.xml. The query
# blocks reading the FIFO at ~0 % CPU; the listeners live as long as it does.
_CHDB_SERVE = """
import sys
import chdb._chdb as chdb
fifo, data = sys.argv[1:3]
chdb.query(
    "SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP; "
    f"INSERT INTO FUNCTION null('line String') SELECT * FROM file('{fifo}', 'LineAsString')",
    "TSV",
    path=data,
)
"""


def _chdb_config(http_port: int, tcp_port: int) -> str:
    return f"""<?xml version='1.0'?>
<clickhouse>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <users_config>users.xml</users_config>
  <access_control_improvements>
    <table_engines_require_grant>false</table_engines_require_grant>
  </access_control_improvements>
</clickhouse>
"""


@dataclass
class _ChdbProcess:
    """The chdb server process and the FIFO whose next line ends its blocking query."""

    process: ServerProcess
    fifo: Path

    def stop(self) -> None:
        """A line to the FIFO, then SIGTERM by PID if it is still there after a second.

        The query ends at once, but with keep-alive clients the listeners take 5 s to close;
        the data dir is thrown away, so a second of grace is enough.
        """
        try:
            fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no reader: the query is gone already
            pass
        else:
            os.write(fd, b"stop\n")
            os.close(fd)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.proc.wait(1.0)
        self.process.stop()


# chdb-core lives in a virtualenv of its own (.ci/setup/clickhouse.sh), so that the pyarrow,
# pandas and numpy it brings stay out of the project's environment, as in production.
CHDB_PYTHON = tools_dir() / "chdb" / "bin" / "python"


def _chdb_version() -> str | None:
    """chdb-core's version in its virtualenv, or None when that is not installed."""
    if not CHDB_PYTHON.exists():
        return None
    probe = "import importlib.metadata as m; print(m.version('chdb-core'))"
    done = subprocess.run([str(CHDB_PYTHON), "-c", probe], capture_output=True, text=True)
    return done.stdout.strip() or None


def _start_chdb(run_dir: Path, log_dir: Path) -> Started:
    """ClickHouse 26.9 from chdb in its own process; the server and how to stop it."""
    run_dir.mkdir(parents=True)
    http_port, tcp_port = free_port(), free_port()
    (run_dir / "config.xml").write_text(_chdb_config(http_port, tcp_port))
    (run_dir / "users.xml").write_text(
        users_xml([_CHDB_DEFAULT_USER, *USERS_26.values()], "clickhouse")
    )
    fifo = run_dir / "shutdown.fifo"
    os.mkfifo(fifo)
    argv = [str(CHDB_PYTHON), "-c", _CHDB_SERVE, str(fifo), str(run_dir / "data")]
    process = start_process("clickhouse26", argv, log_dir, cwd=run_dir)
    server = ClickHouseServer(
        host="127.0.0.1", port=http_port, native_port=tcp_port, version="", users=USERS_26
    )
    _wait_ready(server, process)
    return server, _ChdbProcess(process, fifo).stop


# --- 18.16 from Debian ------------------------------------------------------------------------


def _clickhouse18_config(run_dir: Path, http_port: int, tcp_port: int) -> str:
    return f"""<?xml version='1.0'?>
<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <!-- SIGTERM waits for idle keep-alive connections: 10 s by default -->
  <keep_alive_timeout>1</keep_alive_timeout>
  <path>{run_dir}/data/</path>
  <tmp_path>{run_dir}/tmp/</tmp_path>
  <user_files_path>{run_dir}/user_files/</user_files_path>
  <format_schema_path>{run_dir}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <mlock_executable>false</mlock_executable>
</yandex>
"""


def _start_clickhouse18(run_dir: Path, log_dir: Path) -> Started:
    """Debian's ClickHouse 18.16 with our config; the server and how to stop it."""
    run_dir.mkdir(parents=True)
    http_port, tcp_port = free_port(), free_port()
    config = run_dir / "config.xml"
    config.write_text(_clickhouse18_config(run_dir, http_port, tcp_port))
    (run_dir / "users.xml").write_text(users_xml(USERS_18.values(), "yandex"))
    argv = [str(CLICKHOUSE18_BINARY), f"--config-file={config}"]
    process = start_process("clickhouse18", argv, log_dir, cwd=run_dir)
    server = ClickHouseServer(
        host="127.0.0.1", port=http_port, native_port=tcp_port, version="", users=USERS_18
    )
    _wait_ready(server, process)
    process.extra_cleanup.append(run_dir / "data")
    return server, process.stop


# --- testcontainers (only where a Docker engine answers) --------------------------------------


def _from_container(
    image: str, users: Mapping[str, ClickHouseUser], root: str, folder: Path
) -> Started | None:
    """A ClickHouse container with our users mounted, or None without Docker/testcontainers."""
    if importlib.util.find_spec("testcontainers") is None:
        return None
    from testcontainers.core.container import DockerContainer

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sense.xml").write_text(users_xml(users.values(), root))
    container = DockerContainer(image).with_exposed_ports(8123)
    container.with_volume_mapping(
        str(folder / "sense.xml"), "/etc/clickhouse-server/users.d/sense.xml"
    )
    try:
        container.start()
    except Exception:  # no engine, or no image: the caller skips
        return None
    host, port = container.get_container_host_ip(), int(container.get_exposed_port(8123))
    server = ClickHouseServer(host=host, port=port, version="", users=users)
    _wait_for_ping(server, 60)
    return server, container.stop


# --- fixtures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """Where one ClickHouse of the tests comes from, in test-services.md's order."""

    env_var: str
    users: Mapping[str, ClickHouseUser]
    image: str
    xml_root: str
    missing: str

    def serve(
        self, local: Callable[[], Started] | None, folder: Path
    ) -> Iterator[ClickHouseServer]:
        """The environment's server, else the local process, else a container, else skip."""
        server = _from_env(self.env_var, self.users)
        if server is not None:
            yield server
            return
        started = (
            local() if local else _from_container(self.image, self.users, self.xml_root, folder)
        )
        if started is None:
            pytest.skip(self.missing)
        server, stop = started
        try:
            yield _ready(server)
        finally:
            stop()


_SOURCE_26 = _Source(
    "SENSE_TEST_CLICKHOUSE26_URL",
    USERS_26,
    "clickhouse/clickhouse-server:26.9",
    "clickhouse",
    f"no ClickHouse 26: chdb-core is not installed ({SETUP_HINT}) and no Docker engine",
)
_SOURCE_18 = _Source(
    "SENSE_TEST_CLICKHOUSE18_URL",
    USERS_18,
    "yandex/clickhouse-server:18.16",
    "yandex",
    f"no ClickHouse 18.16: no {CLICKHOUSE18_BINARY} ({SETUP_HINT}) and no Docker engine",
)


@pytest.fixture(scope="session")
def clickhouse26(session_dir: Path) -> Iterator[ClickHouseServer]:
    """ClickHouse 26.9 with the users of `USERS_26` and the database `axion_sense`."""
    local = None
    installed = _chdb_version()
    if installed is not None:
        if installed != CHDB_VERSION:
            pytest.skip(
                f"chdb-core {installed} found, the recipe needs {CHDB_VERSION}: {SETUP_HINT}"
            )
        local = partial(_start_chdb, session_dir / "clickhouse26", session_dir)
    yield from _SOURCE_26.serve(local, session_dir / "clickhouse26-docker")


@pytest.fixture(scope="session")
def clickhouse18(session_dir: Path) -> Iterator[ClickHouseServer]:
    """ClickHouse 18.16.1, too old for clickhouse-connect; its users have every right."""
    local = None
    if CLICKHOUSE18_BINARY.exists():
        local = partial(_start_clickhouse18, session_dir / "clickhouse18", session_dir)
    yield from _SOURCE_18.serve(local, session_dir / "clickhouse18-docker")
