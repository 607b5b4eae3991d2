"""The proxy step: what a forward proxy does with a request to the dependency, on the socket
`reach` opened to the proxy. For https:// it is asked to `CONNECT host:port` (the tunnel the
TLS handshake then runs through); for http:// it is sent `HEAD http://host:port/`, the
absolute-form request it forwards. Its own refusals (407, CONNECT denied, cannot reach) are
told apart from the dependency's answers: a proxy adds `Via` to what it forwards."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from preflight.engine.check import StepFailed
from preflight.engine.deadline import Deadline
from preflight.net.endpoint import Endpoint
from preflight.net.proxy import Proxy
from preflight.net.tcp import tcp_reason

MAX_HEAD_BYTES = 65536


@dataclass(frozen=True)
class ProxyAnswer:
    """The status line and the `Via` header of what the proxy sent back."""

    status: int
    reason: str
    via: str = ""

    def __str__(self) -> str:
        return f"HTTP {self.status} {self.reason}".rstrip()


def ask_proxy(sock: socket.socket, proxy: Proxy, endpoint: Endpoint, deadline: Deadline) -> str:
    """Send the CONNECT (https) or the forwarded HEAD (http) and judge the answer; return what
    it did (`CONNECT host:port → HTTP 200 …`), or raise StepFailed with the proxy's own cause
    and fix."""
    tunnel = endpoint.scheme != "http"
    target = endpoint.netloc if tunnel else f"http://{endpoint.netloc}/"
    lines = [f"{'CONNECT' if tunnel else 'HEAD'} {target} HTTP/1.1", f"Host: {endpoint.netloc}"]
    if proxy.authorization:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    if not tunnel:
        lines.append("Connection: close")
    request = "\r\n".join(lines) + "\r\n\r\n"
    answer = _exchange(sock, request.encode(), proxy, deadline)
    judge_answer(answer, proxy, endpoint, tunnel)
    if tunnel:
        return f"CONNECT {endpoint.netloc} → {answer}"
    if answer.via:
        return f"forwarded HEAD {target}: {answer} from the server (Via: {answer.via})"
    return f"answered HEAD {target} with {answer}"


def judge_answer(answer: ProxyAnswer, proxy: Proxy, endpoint: Endpoint, tunnel: bool) -> None:
    """StepFailed for a refusal by the proxy itself (an answer without `Via`, or any answer
    to CONNECT that is not 2xx); nothing for a tunnel opened or an answer forwarded."""
    if tunnel and 200 <= answer.status < 300:
        return
    if not tunnel and (answer.via or answer.status < 400):
        return
    bypass = f"add {endpoint.host} to NO_PROXY if it is reachable directly"
    if answer.status in (401, 407) and proxy.username is not None:  # tinyproxy answers 401
        raise StepFailed(
            f"{proxy} rejected the credentials in {proxy.variable} ({answer})",
            f"check the user and password in {proxy.variable} "
            "(http://USER:PASSWORD@host:port, special characters percent-encoded)",
        )
    if answer.status == 407:
        raise StepFailed(
            f"{proxy} requires authentication ({answer})",
            f"put the proxy's user and password in {proxy.variable} as "
            f"http://USER:PASSWORD@{proxy.netloc}, or {bypass}",
        )
    if answer.status >= 500:
        raise StepFailed(
            f"{proxy} could not reach {endpoint.netloc} ({answer})",
            f"check that the proxy can resolve and reach {endpoint.netloc}; a service inside "
            f"the cluster or the network belongs in NO_PROXY",
        )
    what = (
        f"CONNECT to {endpoint.netloc}" if tunnel else f"the request to http://{endpoint.netloc}/"
    )
    raise StepFailed(
        f"{proxy} denied {what} ({answer})",
        f"ask the proxy's administrators to allow {endpoint.netloc} (many proxies tunnel to "
        f"port 443 only), or {bypass}",
    )


def status_answer(text: str) -> ProxyAnswer | None:
    """`407 Proxy Authentication Required` (a client library's CONNECT error) as an answer."""
    code, _, reason = text.strip().partition(" ")
    return ProxyAnswer(int(code), reason) if code.isdigit() else None


def _exchange(sock: socket.socket, request: bytes, proxy: Proxy, deadline: Deadline) -> ProxyAnswer:
    """Send the request and read the answer's head, under the deadline."""
    data = b""
    try:
        sock.settimeout(deadline.timeout())
        sock.sendall(request)
        while b"\r\n\r\n" not in data and len(data) < MAX_HEAD_BYTES:
            sock.settimeout(deadline.timeout())
            chunk = sock.recv(4096)  # after a CONNECT, the server waits for the TLS hello
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        raise StepFailed(
            f"{proxy} accepted the connection but did not answer in time",
            "check the proxy, or raise --timeout",
        ) from None
    except OSError as exc:
        raise StepFailed(f"{proxy}: {tcp_reason(exc)}", _not_proxy_fix(proxy)) from None
    head = data.split(b"\r\n\r\n", 1)[0].decode("iso-8859-1")
    status_line, *header_lines = head.split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        if not data:
            raise StepFailed(
                f"{proxy} closed the connection without answering", _not_proxy_fix(proxy)
            )
        raise StepFailed(f"{proxy} did not answer like an HTTP proxy", _not_proxy_fix(proxy))
    via = next(
        (line.split(":", 1)[1].strip() for line in header_lines if line.lower().startswith("via:")),
        "",
    )
    return ProxyAnswer(int(parts[1]), parts[2] if len(parts) > 2 else "", via)


def _not_proxy_fix(proxy: Proxy) -> str:
    return f"check the proxy's host and port in {proxy.variable}"
