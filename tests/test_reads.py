"""Every value a check reads is one it declares in `reads` (what `sense-preflight checks` shows
and support relies on): each check runs in-process on values that make its reads happen, with
the values recording every path asked for."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from preflight.engine import registry
from preflight.engine.check import Check, Probe, StepFailed
from preflight.engine.deadline import Deadline
from preflight.engine.options import RunOptions
from preflight.values.load import Values
from tests.servers.kubernetes import KubeCluster
from tests.servers.postgres import PostgresServer
from tests.test_job import full_values


@dataclass(frozen=True)
class RecordingValues(Values):
    """Values that remember every path a check asked for."""

    asked: list[str] = field(default_factory=list)

    def get(self, path: str, default: Any = None) -> Any:
        self.asked.append(path)
        return super().get(path, default)


def covered(path: str, declared: tuple[str, ...]) -> bool:
    """A read is declared when it is a declared path or lies inside one."""
    return any(path == d or path.startswith((f"{d}.", f"{d}[")) for d in declared)


def undeclared_reads(check: Check, data: dict[str, Any], options: RunOptions) -> list[str]:
    values = RecordingValues(data)
    probe = Probe(check, values, options, Deadline.after(options.timeout_s))
    try:
        check.run(probe)
    except StepFailed:
        pass
    finally:
        probe.cleanups.run_all()
    return sorted({path for path in values.asked if not covered(path, check.reads)})


def every_read_values(postgres: PostgresServer) -> dict[str, Any]:
    """Every optional block on, both databases on the real PostgreSQL (so the capacity step,
    which reads the other database's pool, runs), Kafka over SASL, one detector."""
    data = full_values()
    for which in ("api", "worker"):
        data["postgres"][which].update(
            host=postgres.host,
            port=postgres.port,
            database=postgres.database,
            username=postgres.owner.name,
            password=postgres.owner.password,
        )
    data["api"]["ingressGrpc"] = {"enabled": True, "className": "nginx", "hosts": [{"host": "g"}]}
    data["worker"]["ingress"] = {"enabled": True, "className": "nginx", "hosts": [{"host": "w"}]}
    data["worker"]["customLayersSync"] = {
        "enabled": True,
        "connectionString": f"Host={postgres.host};Port={postgres.port};Database=x;Username=u",
        "password": "layers-pw-8812",
    }
    data["kafka"].update(
        securityProtocol="SASL_SSL", saslUsername="u", saslPassword="kafka-pw-5523"
    )
    return data


@pytest.mark.server("postgres17")
def test_no_check_reads_a_value_it_does_not_declare(
    postgres17: PostgresServer, kube: KubeCluster, tmp_path: Path
) -> None:
    data = every_read_values(postgres17)
    options = RunOptions(
        timeout_s=3, read_only=True, kubeconfig=kube.write_kubeconfig(tmp_path / "kubeconfig")
    )
    checks = [c for c in registry.all_checks(Values(data)) if c.applies(Values(data)) is None]
    assert {"postgres.api", "kubernetes", "gpu", "custom-layers", "kafka"} <= {c.id for c in checks}
    found = {check.id: undeclared_reads(check, data, options) for check in checks}
    assert {check_id: paths for check_id, paths in found.items() if paths} == {}
