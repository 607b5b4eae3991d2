"""Client libraries' log lines (psycopg, botocore, librdkafka via its `logger`…) are kept with
the check whose thread emitted them — never printed — for the support bundle. A helper thread
working for a check's thread (a request sent ahead) logs for that check."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from preflight.engine.check import Probe

CAPTURE_LEVEL = logging.INFO
#: Helper threads, each with the thread it works for.
_owners: dict[int, int] = {}


@contextmanager
def working_for(owner: int) -> Iterator[None]:
    """Within this block, the current thread's records belong to the probe of thread `owner`."""
    ident = threading.get_ident()
    _owners[ident] = owner
    try:
        yield
    finally:
        _owners.pop(ident, None)


class CheckLogHandler(logging.Handler):
    """Routes each record to the probe registered for the thread that logged it."""

    def __init__(self) -> None:
        super().__init__(level=CAPTURE_LEVEL)
        self._probes: dict[int, Probe] = {}
        self._lock = threading.Lock()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    @contextmanager
    def capturing(self, probe: Probe) -> Iterator[None]:
        """Within this block, records from the current thread belong to `probe`."""
        ident = threading.get_ident()
        with self._lock:
            self._probes[ident] = probe
        try:
            yield
        finally:
            with self._lock:
                self._probes.pop(ident, None)

    def emit(self, record: logging.LogRecord) -> None:
        thread = record.thread or 0
        with self._lock:
            probe = self._probes.get(thread) or self._probes.get(_owners.get(thread, 0))
        if probe is not None:
            probe.log(self.format(record))


@contextmanager
def installed() -> Iterator[CheckLogHandler]:
    """Attach a handler to the root logger for the duration of a run; nothing reaches stderr."""
    root = logging.getLogger()
    handler = CheckLogHandler()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(min(previous, CAPTURE_LEVEL) if previous else CAPTURE_LEVEL)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
