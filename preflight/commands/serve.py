"""`sense-preflight serve`: run the checks on a schedule and export them to Prometheus.

Values are read once at start (invalid values exit 2 before anything listens) and again on
SIGHUP; SIGTERM or Ctrl-C lets the run in progress finish (its cleanups run), then exits 0.
"""

from __future__ import annotations

import errno
import logging
import queue
import signal
import threading
from dataclasses import dataclass
from typing import Any

from preflight import __version__
from preflight.commands.common import csv, error, fail, run_options, source
from preflight.engine.options import RunOptions
from preflight.engine.runner import CLEANUP_WAIT_S, GRACE_S
from preflight.exporter.durations import parse_duration, parse_listen
from preflight.exporter.exporter import Config, EventLog, Exporter, load_config
from preflight.exporter.http import ExporterServer
from preflight.exporter.schedule import Schedule
from preflight.report.exit_codes import EXIT_BAD_INPUT, EXIT_OK
from preflight.values.load import ValuesError, ValuesSource

#: How often the main thread looks for a signal delivered to another thread.
SIGNAL_POLL_S = 0.2


@dataclass(frozen=True)
class ServeCall:
    """The exporter as the user asked for it."""

    source: ValuesSource
    options: RunOptions
    only: list[str]
    skip: list[str]
    host: str
    port: int
    interval_s: float

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> ServeCall:
        """Parse the command line; a bad duration or address exits 2 with one line."""
        try:
            host, port = parse_listen(params["listen"])
        except ValueError as exc:
            fail(EXIT_BAD_INPUT, str(exc))
        interval_s = duration_option("interval", params["interval"])
        timeout_s = duration_option("timeout", params["timeout"])
        return cls(
            source=source(params),
            options=run_options(params, timeout_s, read_only=not params["write_probes"]),
            only=csv(params["only"]),
            skip=csv(params["skip"]),
            host=host,
            port=port,
            interval_s=interval_s,
        )

    def load(self) -> Config:
        return load_config(self.source, self.only, self.skip)


def serve(call: ServeCall) -> int:
    """Values → listen → schedule; then wait for SIGHUP (reload) or SIGTERM/SIGINT (stop)."""
    try:
        config = call.load()
    except ValuesError as exc:
        for problem in exc.problems:
            error(problem)
        return EXIT_BAD_INPUT
    log = EventLog()
    logging.getLogger().addHandler(logging.NullHandler())  # client libraries never print
    exporter = Exporter(config, call.options, log)
    server = _listen(call, exporter)
    events: queue.SimpleQueue[str] = queue.SimpleQueue()
    for number, event in (
        (signal.SIGHUP, "reload"),
        (signal.SIGTERM, "stop"),
        (signal.SIGINT, "stop"),
    ):
        signal.signal(number, lambda *_, event=event: events.put(event))

    http = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    schedule = Schedule(
        exporter.run_scheduled,
        call.interval_s,
        lambda exc: log(
            f"run failed: internal error: {type(exc).__name__}: {exc}", exporter.config.redact
        ),
    )
    http.start()
    schedule.start()
    mode = "read-only" if call.options.read_only else "with write probes"
    log(
        f"sense-preflight {__version__} listening on {_address(call)}: "
        f"{len(config.selected)} check(s) every {call.interval_s:g}s, {mode}",
        config.redact,
    )
    while (event := _next_event(events)) != "stop":
        if event == "reload":
            exporter.reload(call.load)
    _stop(call, exporter, schedule, server, http)
    return EXIT_OK


def _next_event(events: queue.SimpleQueue[str]) -> str:
    """The next signal's event. A signal that another thread (librdkafka's, say) received runs
    its handler only when the main thread next runs Python code: so wait in short steps."""
    while True:
        try:
            return events.get(timeout=SIGNAL_POLL_S)
        except queue.Empty:
            continue


def _listen(call: ServeCall, exporter: Exporter) -> ExporterServer:
    """Bind the address before the first run; a bad one exits 2 with one line."""
    try:
        return ExporterServer((call.host, call.port), exporter)
    except OSError as exc:
        reason = (
            "the address is already in use"
            if exc.errno == errno.EADDRINUSE
            else exc.strerror or str(exc)
        )
        fail(EXIT_BAD_INPUT, f"cannot listen on {_address(call)}: {reason}")


def _stop(
    call: ServeCall,
    exporter: Exporter,
    schedule: Schedule,
    server: ExporterServer,
    http: threading.Thread,
) -> None:
    """Let the run in progress finish (its cleanups run), close the server, say what is left."""
    redact = exporter.config.redact
    exporter.log("stopping: waiting for the run in progress", redact)
    schedule.stop(call.options.timeout_s + GRACE_S + CLEANUP_WAIT_S + 5)
    server.shutdown()
    server.server_close()  # waits for the requests in progress
    http.join()
    left = sorted(t.name for t in threading.enumerate() if t is not threading.current_thread())
    exporter.log(
        f"stopped after {exporter.runs} run(s); "
        + (f"threads still running: {', '.join(left)}" if left else "no thread left"),
        redact,
    )


def duration_option(option: str, text: str) -> float:
    """The seconds of the duration given to --OPTION, or exit 2 with one line saying why not."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        fail(EXIT_BAD_INPUT, f"--{option} {exc}")


def _address(call: ServeCall) -> str:
    return f"[{call.host}]:{call.port}" if ":" in call.host else f"{call.host}:{call.port}"
