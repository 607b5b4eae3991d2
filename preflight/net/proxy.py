"""The proxy layer: which HTTP(S) proxy a request goes through, decided exactly as the
product's .NET HttpClient decides it on Linux (System.Net.Http's HttpEnvironmentProxy):

- `http_proxy`, else `HTTP_PROXY` (not under CGI), else `all_proxy`/`ALL_PROXY` for http://;
  `https_proxy`, else `HTTPS_PROXY`, else `all_proxy`/`ALL_PROXY` for https://; the lower-case
  form wins; a value it cannot read (another scheme than http://) counts as unset.
- `no_proxy`, else `NO_PROXY`: comma-separated; `.example.com` matches example.com and every
  name under it, any other entry only that exact host. No `*`, no CIDR ranges, no ports.

The run captures these variables once (`RunOptions.proxy_env`; none under --no-proxy); every
HTTP client of a check routes through `route`, so preflight goes where the product would.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

from preflight.engine.check import Probe
from preflight.net.endpoint import Endpoint

#: The variables .NET reads (GATEWAY_INTERFACE: under CGI, HTTP_PROXY is ignored).
PROXY_VARIABLES = (
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "GATEWAY_INTERFACE",
)


@dataclass(frozen=True)
class Proxy:
    """A forward proxy, and the variable that named it."""

    host: str
    port: int
    variable: str
    username: str | None = None
    password: str | None = None

    @property
    def netloc(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The proxy's URL with its credentials, for the clients only (never shown)."""
        if self.username is None:
            return f"http://{self.netloc}"
        auth = quote(self.username, safe="")
        if self.password is not None:
            auth += ":" + quote(self.password, safe="")
        return f"http://{auth}@{self.netloc}"

    @property
    def authorization(self) -> str | None:
        """The `Proxy-Authorization` header value (Basic), when the URL carries a user."""
        if self.username is None:
            return None
        pair = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def __str__(self) -> str:
        return f"proxy http://{self.netloc} ({self.variable})"


@dataclass(frozen=True)
class ProxyEnv:
    """The proxies and the bypass list the environment gives, as .NET reads them."""

    http: Proxy | None = None
    https: Proxy | None = None
    bypass: tuple[str, ...] = ()
    bypass_variable: str = "NO_PROXY"

    @classmethod
    def read(cls, environ: Mapping[str, str]) -> ProxyEnv:
        def first(*names: str) -> Proxy | None:
            for name in names:
                proxy = parse_proxy(environ.get(name), name)
                if proxy is not None:
                    return proxy
            return None

        cgi = "GATEWAY_INTERFACE" in environ
        http = first("http_proxy", *(() if cgi else ("HTTP_PROXY",)), "all_proxy", "ALL_PROXY")
        https = first("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
        variable = "no_proxy" if "no_proxy" in environ else "NO_PROXY"
        entries = (entry.strip() for entry in environ.get(variable, "").split(","))
        return cls(http, https, tuple(entry for entry in entries if entry), variable)

    def route(self, scheme: str, host: str) -> Proxy | None:
        """The proxy a request to scheme://host goes through, or None for a direct one."""
        proxy = self.http if scheme.lower() in ("http", "ws") else self.https
        if proxy is None or self.bypassed_by(host):
            return None
        return proxy

    def bypassed_by(self, host: str) -> str | None:
        """The NO_PROXY entry that sends `host` direct, or None."""
        name = f"[{host}]" if ":" in host else host
        for entry in self.bypass:
            if entry.startswith("."):
                if name.lower() == entry[1:].lower() or name.lower().endswith(entry.lower()):
                    return entry
            elif name.lower() == entry.lower():
                return entry
        return None

    @property
    def active(self) -> bool:
        return self.http is not None or self.https is not None


def parse_proxy(value: str | None, variable: str) -> Proxy | None:
    """A proxy variable's value (`http://user:pass@host:port`, `host:port`…) as .NET reads
    it: user info up to the last `@`, percent-decoded; port 80 by default; None when unset
    or unreadable."""
    if not value:
        return None
    text = value[7:] if value.lower().startswith("http://") else value
    if "://" in text:
        return None
    username = password = None
    if "@" in text:
        auth, _, text = text.rpartition("@")
        auth = unquote(auth)
        username, separator, rest = auth.partition(":")
        password = rest if separator else None
    text = text.split("/", 1)[0]
    host, port = text, 80
    bracket = text.find("]")
    colon = text.rfind(":")
    if colon != -1 and colon > bracket:
        host, digits = text[:colon], text[colon + 1 :]
        if not digits.isdigit() or not 0 < int(digits) < 65536:
            return None
        port = int(digits)
    host = host.strip("[]")
    if not host:
        return None
    return Proxy(host, port, variable, username, password)


def proxy_env(probe: Probe) -> ProxyEnv:
    """The proxy settings of this run (none under --no-proxy)."""
    if not probe.options.use_proxy:
        return ProxyEnv()
    return ProxyEnv.read(dict(probe.options.proxy_env))


def route(probe: Probe, endpoint: Endpoint) -> Proxy | None:
    """The proxy the product's clients would use for this endpoint, or None."""
    return proxy_env(probe).route(endpoint.scheme or "https", endpoint.host)


def captured(environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The proxy variables set in `environ`, for RunOptions.proxy_env."""
    return tuple((name, environ[name]) for name in PROXY_VARIABLES if name in environ)


def internal_reason(host: str, addresses: list[str], namespace: str) -> str | None:
    """Why `host` is a private or cluster-internal address (None when it is not)."""
    name = host.lower().rstrip(".")
    for address in [host, *addresses]:
        if _is_ip(address) and not ipaddress.ip_address(address).is_global:
            return f"a private address ({address})"
    for suffix in (".svc", ".cluster.local"):
        if name.endswith(suffix) or f"{suffix}." in f"{name}.":
            return f"a cluster service name (*{suffix})"
    if "." not in name and not _is_ip(name):
        return "a short name, resolved through the pod's search domains (a namespace service)"
    if name.endswith(f".{namespace.lower()}"):
        return f"a service of namespace {namespace}"
    return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
