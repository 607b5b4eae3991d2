"""Which proxy a request goes through, read from the environment as .NET's HttpClient reads
it on Linux (System.Net.Http HttpEnvironmentProxy), and the credentials it carries redacted."""

from __future__ import annotations

import base64

import pytest

from preflight.net.proxy import Proxy, ProxyEnv, captured, internal_reason, parse_proxy
from preflight.report.redact import Redactor, proxy_secrets, proxy_variables

P = "http://proxy.corp:3128"


def test_lower_case_wins_and_all_proxy_fills_in() -> None:
    env = ProxyEnv.read(
        {"http_proxy": "http://low:1", "HTTP_PROXY": "http://up:2", "ALL_PROXY": "http://all:3"}
    )
    assert env.route("http", "a.example") == Proxy("low", 1, "http_proxy")
    assert env.route("https", "a.example") == Proxy("all", 3, "ALL_PROXY")


def test_upper_case_http_proxy_is_ignored_under_cgi() -> None:
    env = ProxyEnv.read({"HTTP_PROXY": P, "GATEWAY_INTERFACE": "CGI/1.1"})
    assert env.route("http", "a.example") is None


def test_unreadable_value_counts_as_unset() -> None:
    env = ProxyEnv.read({"https_proxy": "socks5://s:1080", "HTTPS_PROXY": P})
    assert env.route("https", "a.example") == Proxy("proxy.corp", 3128, "HTTPS_PROXY")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("proxy.corp", Proxy("proxy.corp", 80, "V")),
        ("http://proxy.corp:3128/", Proxy("proxy.corp", 3128, "V")),
        ("http://u%40corp:p%3Aw@proxy.corp:8080", Proxy("proxy.corp", 8080, "V", "u@corp", "p:w")),
        ("http://user@[::1]:3128", Proxy("::1", 3128, "V", "user", None)),
        ("http://proxy.corp:99999", None),
        ("https://proxy.corp:443", None),
        ("", None),
    ],
)
def test_values_are_parsed_as_dotnet_parses_them(value: str, expected: Proxy | None) -> None:
    assert parse_proxy(value, "V") == expected


@pytest.mark.parametrize(
    ("no_proxy", "host", "direct"),
    [
        (".svc.cluster.local", "minio.storage.svc.cluster.local", True),
        (".example.com", "example.com", True),
        ("example.com", "s3.example.com", False),  # no leading dot: that host only
        ("EXAMPLE.com", "example.COM", True),
        ("10.0.0.0/8", "10.1.2.3", False),  # .NET reads no CIDR ranges
        ("*", "anything.example", False),  # nor a wildcard
        (" a.example , ,127.0.0.1 ", "127.0.0.1", True),
        ("[::1]", "::1", True),
    ],
)
def test_no_proxy_matches_as_dotnet_does(no_proxy: str, host: str, direct: bool) -> None:
    env = ProxyEnv.read({"HTTPS_PROXY": P, "NO_PROXY": no_proxy})
    assert (env.route("https", host) is None) is direct


def test_lower_case_no_proxy_wins_even_when_empty() -> None:
    env = ProxyEnv.read({"HTTPS_PROXY": P, "no_proxy": "", "NO_PROXY": "a.example"})
    assert env.route("https", "a.example") is not None


def test_captured_keeps_only_the_proxy_variables() -> None:
    assert captured({"HOME": "/root", "NO_PROXY": "x", "https_proxy": P}) == (
        ("https_proxy", P),
        ("NO_PROXY", "x"),
    )


@pytest.mark.parametrize(
    ("host", "addresses", "reason"),
    [
        ("minio.storage.svc", [], "a cluster service name (*.svc)"),
        ("ch.db.svc.cluster.local", [], "a cluster service name (*.svc)"),
        ("openfga", [], "a short name"),
        ("openfga.axion-sense", [], "a service of namespace axion-sense"),
        ("10.2.3.4", [], "a private address (10.2.3.4)"),
        ("s3.partner.internal", ["192.168.1.5"], "a private address (192.168.1.5)"),
        ("s3.amazonaws.com", ["52.216.1.1"], None),
    ],
)
def test_internal_addresses(host: str, addresses: list[str], reason: str | None) -> None:
    found = internal_reason(host, addresses, "axion-sense")
    assert (found is None) if reason is None else (found or "").startswith(reason)


def test_proxy_credentials_are_redacted_by_value() -> None:
    variables = (("HTTPS_PROXY", "http://alice:s%40cret-pw@proxy.corp:3128"), ("NO_PROXY", ".svc"))
    secrets = proxy_secrets(variables)
    assert {"s%40cret-pw", "s@cret-pw", "alice:s@cret-pw"} <= secrets
    assert base64.b64encode(b"alice:s@cret-pw").decode() in secrets  # Proxy-Authorization
    assert "alice" not in secrets  # a user name beside a password is not taken for a secret
    redact = Redactor(secrets)
    assert redact("407 for s@cret-pw and s%40cret-pw") == "407 for <redacted> and <redacted>"
    assert proxy_variables(variables) == {
        "HTTPS_PROXY": "http://<redacted>@proxy.corp:3128",
        "NO_PROXY": ".svc",
    }


def test_a_lone_user_name_is_taken_for_a_token() -> None:
    assert "tok3n-abcdef" in proxy_secrets((("https_proxy", "http://tok3n-abcdef@proxy:1"),))
