"""HTTP clients share one SSL context per TLS settings and CA file version."""

from __future__ import annotations

import os
from pathlib import Path

import trustme

from preflight.net.http import _shared_context
from preflight.net.tls import TlsSettings


def test_equal_settings_share_a_context_a_rewritten_ca_file_does_not(
    tmp_path: Path, test_ca: trustme.CA
) -> None:
    ca = tmp_path / "ca.pem"
    test_ca.cert_pem.write_to_path(str(ca))
    first = _shared_context(TlsSettings(ca_file=ca))
    assert _shared_context(TlsSettings(ca_file=ca)) is first
    assert _shared_context(TlsSettings(ca_file=ca, check_hostname=False)) is not first
    trustme.CA().cert_pem.write_to_path(str(ca))
    os.utime(ca, ns=(1, 1))  # another version of the file, whatever the clock's resolution
    assert _shared_context(TlsSettings(ca_file=ca)) is not first
