"""Test certificates: one CA for the whole session, server certificates issued from it."""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class CertFiles:
    """PEM files of a server certificate and the CA that signed it."""

    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """A server-side TLS context that presents this certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def issue_cert(
    ca: trustme.CA,
    folder: Path,
    *names: str,
    expired: bool = False,
    valid_days: int | None = None,
) -> CertFiles:
    """Write a server certificate for `names` (default 127.0.0.1 and localhost) into folder:
    expired, or valid for `valid_days` more days, or for trustme's default (years)."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    not_after = None
    if expired:
        not_after = now - dt.timedelta(days=1)
    elif valid_days is not None:
        not_after = now + dt.timedelta(days=valid_days, hours=12)
    server = ca.issue_cert(
        *(names or ("127.0.0.1", "localhost")),
        not_before=now - dt.timedelta(days=30) if expired else None,
        not_after=not_after,
    )
    files = CertFiles(ca=folder / "ca.crt", cert=folder / "server.crt", key=folder / "server.key")
    ca.cert_pem.write_to_path(str(files.ca))
    server.cert_chain_pems[0].write_to_path(str(files.cert))
    server.private_key_pem.write_to_path(str(files.key))
    files.key.chmod(0o600)
    return files
