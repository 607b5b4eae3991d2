"""The network layers every check shares, one module each, in the order a check walks them:
endpoint (parse a value) → dns → tcp → tls (settings, handshake, and the one judge of a
certificate) → reach (the three as timed steps) → http (a deadline-bound client) → fanout (one
step over several addresses), ahead (a request sent now, judged later). proxy (which proxy the product would use, read as .NET reads
it) and tunnel (what the proxy does with a request) serve reach and http. The names below are
the layers' public API."""

from preflight.net.ahead import Ahead
from preflight.net.dns import resolve
from preflight.net.endpoint import Endpoint, endpoint_text, parse_endpoint
from preflight.net.http import (
    causes,
    cleanup_client,
    hang_up,
    http_client,
    http_request,
    http_url,
    json_object,
    safe_url,
    short,
)
from preflight.net.proxy import Proxy, ProxyEnv, proxy_env, route
from preflight.net.reach import Connection, reach, reach_url
from preflight.net.tcp import connect_tcp
from preflight.net.tls import (
    CERT_EXPIRY_WARNING_DAYS,
    TlsInfo,
    TlsSettings,
    judge_tls,
    tls_handshake,
    tls_settings,
)

__all__ = [
    "CERT_EXPIRY_WARNING_DAYS",
    "Ahead",
    "Connection",
    "Endpoint",
    "Proxy",
    "ProxyEnv",
    "TlsInfo",
    "TlsSettings",
    "causes",
    "cleanup_client",
    "connect_tcp",
    "endpoint_text",
    "hang_up",
    "http_client",
    "http_request",
    "http_url",
    "json_object",
    "judge_tls",
    "parse_endpoint",
    "proxy_env",
    "reach",
    "reach_url",
    "resolve",
    "route",
    "safe_url",
    "short",
    "tls_handshake",
    "tls_settings",
]
