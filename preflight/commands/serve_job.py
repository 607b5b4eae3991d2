"""`sense-preflight job --serve`: the exporter (`sense-preflight serve`) as a Deployment in the
cluster, with the Job's service account, RBAC and pod security, and a Service that Prometheus
scrapes: `prometheus.io/*` annotations for annotation-based discovery, and a ServiceMonitor for
the Prometheus Operator (commented: its CRD may not be installed)."""

from __future__ import annotations

import yaml

from preflight import __version__
from preflight.commands.job import (
    JobSpec,
    Manifest,
    access,
    cleanup_line,
    labels,
    meta,
    pod_spec,
    run_args,
    secret_steps,
)

PORT = 9115
PORT_NAME = "metrics"


def serve_args(
    timeout: float | None,
    only: list[str],
    skip: list[str],
    interval: str,
    write_probes: bool,
    oidc_scope: str | None = None,
) -> tuple[str, ...]:
    """The `sense-preflight serve` flags the Deployment passes on."""
    return (
        *run_args(timeout, only, skip, strict=False, read_only=False, oidc_scope=oidc_scope),
        "--listen",
        f"0.0.0.0:{PORT}",
        "--interval",
        interval,
        *(["--write-probes"] if write_probes else []),
    )


def deployment(spec: JobSpec) -> Manifest:
    """One exporter (Recreate: never two running the checks at once), probed on its health
    and readiness endpoints."""
    pod = pod_spec(spec, "serve", "Always")
    container = pod["containers"][0]
    container["ports"] = [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}]
    container["livenessProbe"] = {"httpGet": {"path": "/-/healthy", "port": PORT_NAME}}
    container["readinessProbe"] = {"httpGet": {"path": "/-/ready", "port": PORT_NAME}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(spec, spec.name),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels(spec)},
            "template": {"metadata": {"labels": labels(spec)}, "spec": pod},
        },
    }


def service(spec: JobSpec) -> Manifest:
    """The Service Prometheus scrapes; its annotations serve annotation-based discovery."""
    metadata = meta(spec, spec.name)
    metadata["annotations"] = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(PORT),
        "prometheus.io/path": "/metrics",
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "selector": labels(spec),
            "ports": [{"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME}],
        },
    }


def service_monitor(spec: JobSpec) -> Manifest:
    """The Prometheus Operator's scrape configuration for the Service."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": meta(spec, spec.name),
        "spec": {
            "selector": {"matchLabels": labels(spec)},
            "endpoints": [{"port": PORT_NAME, "path": "/metrics"}],
        },
    }


def instructions(spec: JobSpec) -> list[str]:
    """The steps around the manifests, as the lines of a comment block."""
    ns, name = spec.namespace, spec.name
    return [
        f"sense-preflight {__version__}: the checks as a Prometheus exporter in namespace {ns}.",
        *secret_steps(spec),
        "2. Apply this file: kubectl apply -f THIS_FILE",
        f"3. Look: kubectl -n {ns} port-forward svc/{name} {PORT}, then "
        f"http://localhost:{PORT}/metrics (/report, /probe?check=ID)",
        "4. After changing the Secret (the pod sees it within a minute or two), read it again:",
        f"   kubectl -n {ns} exec deploy/{name} -- sh -c 'kill -HUP 1'",
        "Prometheus finds the Service by its prometheus.io/* annotations; with the Prometheus",
        "Operator, apply the ServiceMonitor at the end of this file instead.",
        cleanup_line(spec),
    ]


def render(spec: JobSpec) -> str:
    """Instructions, the manifests, then the ServiceMonitor as a comment."""
    header = "".join(f"# {line}\n" for line in instructions(spec))
    body = yaml.safe_dump_all([*access(spec), deployment(spec), service(spec)], sort_keys=False)
    monitor = yaml.safe_dump(service_monitor(spec), sort_keys=False)
    commented = "".join(f"# {line}\n" for line in ["---", *monitor.splitlines()])
    return (
        header
        + "---\n"
        + body
        + "# The Prometheus Operator's ServiceMonitor (uncomment):\n"
        + commented
    )
