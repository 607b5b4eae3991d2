"""The http layer: an httpx client bounded by the check's deadline, failures as precise
one-line causes, and JSON answers and URL values read without surprises."""

from __future__ import annotations

import errno
import ssl
from collections.abc import Iterator
from contextlib import suppress
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from preflight.engine.check import Probe, StepFailed
from preflight.engine.deadline import CLEANUP_TIMEOUT_S
from preflight.net.endpoint import Endpoint, parse_endpoint
from preflight.net.proxy import Proxy, ProxyEnv, proxy_env
from preflight.net.tcp import TCP_FIX, tcp_reason
from preflight.net.tls import TlsSettings, ssl_reason, tls_settings, verify_reason
from preflight.net.tunnel import ProxyAnswer, judge_answer, status_answer

if TYPE_CHECKING:
    import httpx


def http_client(probe: Probe, tls: TlsSettings | None = None, **kwargs: Any) -> httpx.Client:
    """An httpx client whose every request is bounded by the check's deadline and goes
    through the proxy the product would use for its URL (`preflight.net.proxy`)."""
    import httpx

    settings = tls or tls_settings(probe)
    transport = routed_transport(proxy_env(probe), _shared_context(settings))
    return httpx.Client(
        transport=transport,
        trust_env=False,
        timeout=probe.deadline.timeout(),
        follow_redirects=False,
        **kwargs,
    )


def cleanup_client(env: ProxyEnv, tls: TlsSettings | None, **kwargs: Any) -> httpx.Client:
    """An httpx client for a cleanup (it may run past the check's deadline): routed like the
    check's own, bounded by CLEANUP_TIMEOUT_S."""
    import httpx

    verify: ssl.SSLContext | bool = tls.context() if tls else True
    return httpx.Client(
        transport=routed_transport(env, verify),
        trust_env=False,
        timeout=CLEANUP_TIMEOUT_S,
        **kwargs,
    )


def routed_transport(env: ProxyEnv, verify: ssl.SSLContext | bool) -> httpx.BaseTransport:
    """An httpx transport that sends each request direct or through its proxy, as `env`
    routes its URL (one connection pool per route). Through a proxy every request has a
    connection of its own: a proxy may close a kept-alive one just as the next request goes
    out (tinyproxy closes each after one answer), which .NET's client retries and httpx
    does not."""
    import httpx

    one_each = httpx.Limits(max_keepalive_connections=0)

    class Routed(httpx.BaseTransport):
        def __init__(self) -> None:
            self.pools: dict[Proxy | None, httpx.HTTPTransport] = {}

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            proxy = env.route(request.url.scheme, request.url.host)
            if proxy not in self.pools:
                self.pools[proxy] = (
                    httpx.HTTPTransport(
                        verify=verify, trust_env=False, proxy=proxy.url, limits=one_each
                    )
                    if proxy
                    else httpx.HTTPTransport(verify=verify, trust_env=False)
                )
            return self.pools[proxy].handle_request(request)

        def close(self) -> None:
            for pool in self.pools.values():
                pool.close()

    return Routed()


def _shared_context(settings: TlsSettings) -> ssl.SSLContext:
    """One SSL context per TLS settings (and CA file version) for every HTTP client of the
    run: loading the system CA store costs 20-45 ms of CPU, and a full run makes a dozen
    clients. HTTP clients only: httpcore sets its ALPN (http/1.1) on the context."""
    stamp = None
    if settings.ca_file is not None:
        with suppress(OSError):  # an unreadable file fails in context(), with its reason
            info = settings.ca_file.stat()
            stamp = (info.st_mtime_ns, info.st_size)
    return _context(settings, stamp)


@lru_cache(maxsize=32)
def _context(settings: TlsSettings, ca_stamp: tuple[int, int] | None) -> ssl.SSLContext:
    return settings.context()


def http_request(
    probe: Probe, client: httpx.Client, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """One request under the deadline; connection-level errors become precise StepFailed,
    and so does a refusal by the proxy in between (407, cannot reach…)."""
    import httpx

    left = probe.deadline.timeout()
    endpoint = _endpoint(url)
    proxy = proxy_env(probe).route(endpoint.scheme, endpoint.host) if endpoint else None
    try:
        response = client.request(method, url, timeout=httpx.Timeout(left), **kwargs)
    except httpx.TimeoutException as exc:
        raise StepFailed(
            f"HTTP: {_timeout_phase(exc)} timed out for {_where(url, proxy)}", TCP_FIX
        ) from None
    except httpx.ProxyError as exc:
        answer = status_answer(str(exc))
        if answer is not None and proxy is not None and endpoint is not None:
            judge_answer(answer, proxy, endpoint, tunnel=True)  # raises: the proxy refused
        raise _http_failure(url, exc, proxy) from None
    except httpx.HTTPError as exc:
        raise _http_failure(url, exc, proxy) from None
    if proxy is not None and endpoint is not None and endpoint.scheme == "http":
        judge_answer(
            ProxyAnswer(
                response.status_code, response.reason_phrase, response.headers.get("via", "")
            ),
            proxy,
            endpoint,
            tunnel=False,
        )
    return response


def _endpoint(url: str) -> Endpoint | None:
    """Where a request goes, or None for a URL httpx will refuse with its own words."""
    try:
        return parse_endpoint(url)
    except StepFailed:
        return None


def _where(url: str, proxy: Proxy | None) -> str:
    """`http://host:port/path`, and the proxy it went through."""
    return safe_url(url) + (f" through {proxy}" if proxy else "")


def _http_failure(url: str, exc: Exception, proxy: Proxy | None = None) -> StepFailed:
    """What a failed request means, as a StepFailed (timeouts are handled before)."""
    import httpx

    where = _where(url, proxy)
    if how := hang_up(exc):
        return StepFailed(
            f"HTTP: {where} accepted the connection, then closed it without answering ({how})",
            "check that this port serves HTTP(S), and that the service (or the proxy or load "
            "balancer in front of it) has a healthy backend",
        )
    if isinstance(exc, httpx.ConnectError):
        return StepFailed(f"HTTP: cannot connect to {where}: {_connect_reason(exc)}", TCP_FIX)
    if isinstance(exc, httpx.RemoteProtocolError):
        return StepFailed(
            f"HTTP: {where} did not answer with valid HTTP: {exc}",
            "check that this port serves HTTP",
        )
    return StepFailed(f"HTTP: request to {where} failed: {exc}")


def hang_up(exc: BaseException) -> str:
    """'connection reset' or 'disconnected' when the server hung up before answering; else ''.
    Which of the two a client sees for one server is a race, so both get one message.
    httpx and http.client (urllib3, botocore) say it their own ways."""
    import http.client

    import httpx

    if isinstance(exc, httpx.RemoteProtocolError) and "without sending a response" in str(exc):
        return "disconnected"
    if any(isinstance(cause, http.client.RemoteDisconnected) for cause in causes(exc)):
        return "disconnected"
    if any(
        isinstance(cause, OSError) and cause.errno in (errno.ECONNRESET, errno.EPIPE)
        for cause in causes(exc)
    ):
        return "connection reset"
    return ""


def _timeout_phase(exc: Exception) -> str:
    import httpx

    if isinstance(exc, httpx.ConnectTimeout):
        return "connect"
    if isinstance(exc, httpx.ReadTimeout):
        return "waiting for the answer"
    return "request"


def _connect_reason(exc: Exception) -> str:
    for cause in causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return verify_reason(cause, "the host")
        if isinstance(cause, ssl.SSLError):
            return ssl_reason(cause)
        if isinstance(cause, OSError) and cause.errno:
            return tcp_reason(cause)
    return str(exc)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what caused it (`__cause__`, else `__context__`), down to the innermost:
    client libraries wrap the socket error that says what happened."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        yield cause
        cause = cause.__cause__ or cause.__context__


def safe_url(url: str) -> str:
    """The URL without user info or query (which may carry credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{parts.scheme}://{netloc}{parts.path}"


MAX_ERROR_TEXT = 200


def http_url(value: Any, path: str) -> Endpoint:
    """The endpoint of an absolute http(s) URL value; StepFailed names the value otherwise."""
    text = str(value or "").strip()
    if not text:
        raise StepFailed(f"{path} is not set", f"set {path} to the service's URL")
    if not text.lower().startswith(("http://", "https://")):
        raise StepFailed(
            f"{path} must be an absolute http:// or https:// URL, got {text!r}",
            f"set {path} to the full URL, e.g. https://host:port/…",
        )
    return parse_endpoint(text)


def json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    """The response's JSON object, or StepFailed saying what came instead."""
    try:
        body = response.json()
    except ValueError:
        kind = response.headers.get("content-type", "no content type")
        raise StepFailed(
            f"{what} answered HTTP {response.status_code} with {kind}, not JSON",
            "check that the URL points at the service itself, not a proxy or login page",
        ) from None
    if not isinstance(body, dict):
        raise StepFailed(f"{what} answered JSON that is not an object")
    return body


def short(text: Any) -> str:
    """A server-provided text, on one line and not too long for a report."""
    line = " ".join(str(text).split())
    return line if len(line) <= MAX_ERROR_TEXT else line[: MAX_ERROR_TEXT - 1] + "…"
