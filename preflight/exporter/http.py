"""The exporter's HTTP endpoints, like Prometheus' own exporters: /metrics, /probe?check=ID,
/report, /-/healthy, /-/ready."""

from __future__ import annotations

import socket
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from preflight.exporter.exporter import Exporter
from preflight.exporter.metrics import ExporterCollector, ResultsCollector
from preflight.report.renderers.json_report import render_json

#: A client that sends nothing for this long is dropped (no handler thread waits forever).
CLIENT_TIMEOUT_S = 30.0

INDEX = """sense-preflight exporter
/metrics        the last run's checks, in the Prometheus format
/probe?check=ID run one check now and return its metrics
/report         the last run as the JSON report
/-/healthy      the process is up
/-/ready        the first run is done
"""

Reply = tuple[int, str, bytes]


class ExporterServer(ThreadingHTTPServer):
    """One thread per request; closing the server waits for the requests in progress."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], exporter: Exporter) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.exporter = exporter
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(ExporterCollector(exporter))
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: ExporterServer
    timeout = CLIENT_TIMEOUT_S
    server_version = "sense-preflight"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        route = _ROUTES.get(url.path)
        if route is None:
            status, kind, body = 404, "text/plain", b"not found: see / for the endpoints\n"
        else:
            status, kind, body = route(self, parse_qs(url.query))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """No access log: the exporter logs runs and status changes only."""

    def _encode(self, registry: CollectorRegistry) -> Reply:
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        return 200, content_type, encoder(registry)

    def metrics(self, query: dict[str, list[str]]) -> Reply:
        return self._encode(self.server.registry)

    def probe(self, query: dict[str, list[str]]) -> Reply:
        exporter = self.server.exporter
        names = query.get("check", [])
        if len(names) != 1:
            return _text(400, "give one check: /probe?check=ID (see `sense-preflight checks`)")
        try:
            result = exporter.probe(names[0])
        except KeyError:
            known = ", ".join(check.id for check in exporter.config.checks)
            return _text(400, f"unknown check id (known: {known})")
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ResultsCollector([result], exporter.config.redact))
        return self._encode(registry)

    def report(self, query: dict[str, list[str]]) -> Reply:
        exporter = self.server.exporter
        last = exporter.last
        if last is None:
            return _text(503, "no run yet")
        text = exporter.config.redact(render_json(last.report))
        return 200, "application/json", text.encode()

    def healthy(self, query: dict[str, list[str]]) -> Reply:
        return _text(200, "sense-preflight is healthy")

    def ready(self, query: dict[str, list[str]]) -> Reply:
        if self.server.exporter.ready:
            return _text(200, "sense-preflight is ready")
        return _text(503, "not ready: the first run has not finished")

    def index(self, query: dict[str, list[str]]) -> Reply:
        return 200, "text/plain; charset=utf-8", INDEX.encode()


def _text(status: int, line: str) -> Reply:
    return status, "text/plain; charset=utf-8", f"{line}\n".encode()


_ROUTES: dict[str, Callable[[_Handler, dict[str, list[str]]], Reply]] = {
    "/": _Handler.index,
    "/metrics": _Handler.metrics,
    "/probe": _Handler.probe,
    "/report": _Handler.report,
    "/-/healthy": _Handler.healthy,
    "/-/ready": _Handler.ready,
}
