"""Test-session wiring: every module in tests/servers/ is a pytest plugin with its fixtures."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

pytest_plugins = sorted(
    f"tests.servers.{path.stem}"
    for path in (Path(__file__).parent / "servers").glob("*.py")
    if not path.name.startswith("_")
)

# A shell without job control starts `cmd &` with SIGINT ignored, and children inherit that:
# the Ctrl-C tests would then test nothing. Handled here, a signal is reset in each child.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def test_ca() -> trustme.CA:
    """One certificate authority for every TLS server of the test session."""
    return trustme.CA()


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder for the servers' data and logs, shared by the whole session."""
    path = tmp_path_factory.mktemp("servers")
    path.chmod(0o755)
    yield path
