"""The certificate facts a check records: of several certificates, the one expiring first."""

from __future__ import annotations

import datetime as dt

from preflight.engine.certificates import record_certificate
from preflight.engine.check import Check, Probe
from preflight.engine.deadline import Deadline
from preflight.engine.options import RunOptions
from preflight.values.load import Values


def probe() -> Probe:
    check = Check(id="demo", title="demo", run=lambda probe: None)
    return Probe(check, Values({}), RunOptions(), Deadline.after(5))


def test_the_certificate_expiring_first_is_kept() -> None:
    now = dt.datetime.now(dt.UTC)
    seen = probe()
    record_certificate(seen, "a.example", now + dt.timedelta(days=90))
    record_certificate(seen, "b.example", now + dt.timedelta(days=10))
    record_certificate(seen, "c.example", now + dt.timedelta(days=30))
    record_certificate(seen, "d.example", None)  # no certificate seen
    assert seen.facts == {
        "cert_not_after": (now + dt.timedelta(days=10)).isoformat(),
        "cert_host": "b.example",
    }
