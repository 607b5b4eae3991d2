"""Real forward proxies for the proxy tests: Debian's tinyproxy (1.11, `.ci/setup/proxy.sh`),
started as plain processes on loopback, once per test session.

- `forward_proxy`: an open proxy (CONNECT to any port);
- `auth_proxy`: the same with BasicAuth (407 without the right user and password);
- `strict_proxy`: CONNECT allowed to port 443 only (a "CONNECT denied" for any test server).

Each yields a `ForwardProxy`: its URL (with credentials for `auth_proxy`) and the lines it
logged since a mark, so a test proves which requests really went through it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers._process import ServerProcess, free_port, start_process, wait_for_port

PROXY_USER = "preflight"
PROXY_PASSWORD = "pr0xy-s3cret-Pa55"


@dataclass(frozen=True)
class ForwardProxy:
    """A running tinyproxy."""

    port: int
    log: Path
    username: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        """http://[user:password@]127.0.0.1:port, as a proxy variable holds it."""
        auth = f"{self.username}:{self.password}@" if self.username else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    def mark(self) -> int:
        """A position in the log; `requests_since` reads what came after it."""
        return self.log.stat().st_size if self.log.exists() else 0

    def requests_since(self, mark: int) -> list[str]:
        """The request lines (`CONNECT host:port HTTP/1.1`, `GET http://… HTTP/1.1`) the proxy
        logged after `mark`."""
        with self.log.open("rb") as log:
            log.seek(mark)
            text = log.read().decode(errors="replace")
        return [
            line.split("): ", 1)[1]
            for line in text.splitlines()
            if "]: Request (file descriptor" in line and "): " in line
        ]


def proxy_environment(url: str, no_proxy: str = "", *, https: bool = True) -> dict[str, str]:
    """The proxy variables of a corporate machine, every form set so that none inherited from
    the test's own environment (a CI proxy) wins: http:// (and https:// unless told otherwise)
    through `url`, `no_proxy` bypassed."""
    return {
        "HTTP_PROXY": url,
        "HTTPS_PROXY": url if https else "",
        "NO_PROXY": no_proxy,
        "http_proxy": "",  # the lower-case forms win when set: empty ones fall through
        "https_proxy": "",
        "all_proxy": "",
        "ALL_PROXY": "",
        "no_proxy": no_proxy,
    }


def start_tinyproxy(
    folder: Path, name: str, extra: list[str], port: int | None = None
) -> tuple[ForwardProxy, ServerProcess]:
    """Start a tinyproxy with these extra config lines (on `port`, else a free one); stop it
    with the returned process's `stop`."""
    binary = shutil.which("tinyproxy")
    if binary is None:
        pytest.skip("tinyproxy is not installed (run .ci/setup/proxy.sh)")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o777)  # tinyproxy may drop to nobody: it must write its log here
    port = port or free_port()
    log = folder / f"{name}.log"
    config = folder / f"{name}.conf"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "Listen 127.0.0.1",
                "Allow 127.0.0.1",
                f'LogFile "{log}"',
                f'PidFile "{folder / name}.pid"',
                "LogLevel Info",
                "MaxClients 100",
                "Timeout 30",
                *extra,
            ]
        )
        + "\n"
    )
    process = start_process(name, [binary, "-d", "-c", str(config)], folder)
    wait_for_port("127.0.0.1", port, timeout=10, proc=process.proc)
    return ForwardProxy(port, log), process


@pytest.fixture(scope="session")
def forward_proxy(session_dir: Path) -> Iterator[ForwardProxy]:
    proxy, process = start_tinyproxy(session_dir / "proxy", "tinyproxy-open", [])
    yield proxy
    process.stop()


@pytest.fixture(scope="session")
def auth_proxy(session_dir: Path) -> Iterator[ForwardProxy]:
    proxy, process = start_tinyproxy(
        session_dir / "proxy", "tinyproxy-auth", [f"BasicAuth {PROXY_USER} {PROXY_PASSWORD}"]
    )
    yield ForwardProxy(proxy.port, proxy.log, PROXY_USER, PROXY_PASSWORD)
    process.stop()


@pytest.fixture(scope="session")
def strict_proxy(session_dir: Path) -> Iterator[ForwardProxy]:
    proxy, process = start_tinyproxy(session_dir / "proxy", "tinyproxy-strict", ["ConnectPort 443"])
    yield proxy
    process.stop()
