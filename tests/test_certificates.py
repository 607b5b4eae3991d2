"""The certificate facts the TLS judge records: of several certificates a check sees, the one
expiring first, with the host it was verified for."""

from __future__ import annotations

import datetime as dt

from preflight.engine.check import Check, Probe, Step
from preflight.engine.deadline import Deadline
from preflight.engine.options import RunOptions
from preflight.net import TlsInfo, judge_tls
from preflight.values.load import Values


def probe() -> Probe:
    check = Check(id="demo", title="demo", run=lambda probe: None)
    return Probe(check, Values({}), RunOptions(), Deadline.after(5))


def test_the_certificate_expiring_first_is_kept() -> None:
    now = dt.datetime.now(dt.UTC)
    seen = probe()
    for host, days in (("a.example", 90), ("b.example", 10), ("c.example", 30), ("d", None)):
        not_after = now + dt.timedelta(days=days) if days is not None else None
        judge_tls(seen, Step("tls"), TlsInfo("TLSv1.3", not_after, True), host)
    assert seen.facts == {
        "tls_version": "TLSv1.3",
        "cert_not_after": (now + dt.timedelta(days=10)).isoformat(),
        "cert_host": "b.example",
    }


def test_a_certificate_expiring_soon_warns_and_skipped_verification_warns() -> None:
    step = Step("tls")
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=3, hours=1)
    judge_tls(probe(), step, TlsInfo("TLSv1.3", soon, True), "a.example")
    assert (step.status, step.detail) == (
        "warn",
        "TLSv1.3; the server certificate expires in 3 days",
    )
    step = Step("tls")
    judge_tls(probe(), step, TlsInfo("TLSv1.3", None, False, skipped=True), "a.example")
    assert "NOT verified (--insecure-skip-tls-verify)" in step.detail
