"""The TLS certificate a check saw, as facts: `cert_not_after` (ISO 8601, UTC) and `cert_host`
(the name it was verified for). Of several (Kafka's bootstrap brokers), the one that expires
first: the one an alert must name."""

from __future__ import annotations

import datetime as dt
import threading

from preflight.engine.check import Probe

_lock = threading.Lock()  # a check may handshake with several hosts in parallel threads


def record_certificate(probe: Probe, host: str, not_after: dt.datetime | None) -> None:
    """Keep this certificate's expiry unless the check already saw one that expires sooner."""
    if not_after is None:
        return
    with _lock:
        seen = probe.facts.get("cert_not_after")
        if seen is None or not_after < dt.datetime.fromisoformat(seen):
            probe.facts["cert_not_after"] = not_after.isoformat()
            probe.facts["cert_host"] = host
