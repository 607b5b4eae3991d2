"""Run-wide settings from the command line that checks may read."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from preflight import __version__

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_NAMESPACE = "axion-sense"
DEFAULT_IMAGE = f"europe-west1-docker.pkg.dev/axionx-infra/axion/sense-preflight:{__version__}"


def in_cluster(options: RunOptions) -> bool:
    """Whether this run is in the cluster: asked for, or inside a pod."""
    return options.in_cluster or "KUBERNETES_SERVICE_HOST" in os.environ


@dataclass(frozen=True)
class RunOptions:
    """What the user asked of this run, beside the values."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    read_only: bool = False
    ca_bundle: Path | None = None
    insecure_skip_tls_verify: bool = False
    namespace: str = DEFAULT_NAMESPACE
    #: Helm's --create-namespace: a namespace that does not exist yet is a note, not a failure.
    create_namespace: bool = False
    kubeconfig: Path | None = None
    context: str | None = None
    in_cluster: bool = False
    registry_config: Path | None = None
    oidc_scope: str | None = None  # the scope the oidc check asks a client_credentials token for
    #: The GPU probe pod's answer, given to the in-cluster Job (commands/gpu_probe_pod.py).
    gpu_probe: Path | None = None
    proxy_env: tuple[tuple[str, str], ...] = ()  # the proxy variables set (preflight.net.proxy)
    use_proxy: bool = True  # False under --no-proxy: every request goes direct
