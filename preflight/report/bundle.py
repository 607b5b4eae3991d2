"""The support bundle: everything support asks for first, in one redacted .tar.gz.

report.json, report.md, report.html, values.yaml (every secret replaced by `<redacted>`, keys kept),
environment.json (tool, Python, platform, in-cluster and namespace, the proxy variables set
with their credentials redacted and whether --no-proxy ignored them), and logs/<check>.log
with the client libraries' log lines each check captured.
"""

from __future__ import annotations

import io
import json
import platform
import sys
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from preflight import __version__
from preflight.engine.options import RunOptions, in_cluster
from preflight.report.redact import Redactor, blank, proxy_variables
from preflight.report.renderers import rendered
from preflight.report.result import Report, utc_now


def environment(options: RunOptions) -> dict[str, Any]:
    """Where the run happened."""
    return {
        "tool": "sense-preflight",
        "version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "in_cluster": in_cluster(options),
        "namespace": options.namespace,
        "timeout_s": options.timeout_s,
        "read_only": options.read_only,
        "proxy_variables": proxy_variables(options.proxy_env),
        "proxy_used": options.use_proxy and bool(options.proxy_env),
        "created": utc_now(),
    }


def write_bundle(
    path: Path,
    report: Report,
    values: Mapping[str, Any],
    options: RunOptions,
    redact: Redactor,
    where: Mapping[str, Any] | None = None,
) -> int:
    """Write the bundle; return its size in bytes. Every member passes through `redact`.
    `where` replaces parts of environment.json (an in-cluster run: the cluster, the node)."""
    clean_values = redact.values(dict(values))
    env = {**environment(options), **(where or {})}
    members: dict[str, str] = {  # each through the safety net, none of it touching structure
        "report.json": rendered(report, "json", redact),
        "report.md": rendered(report, "markdown", redact),
        "report.html": rendered(report, "html", redact),
        "values.yaml": redact.net(_yaml(clean_values), _yaml(blank(clean_values))),
        "environment.json": redact.net(_json(env), _json(blank(env))),
    }
    for check in redact.report(report).checks:
        if check.logs:
            members[f"logs/{check.id}.log"] = redact.net("\n".join(check.logs) + "\n")
    with tarfile.open(path, "w:gz") as archive:
        for name, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"sense-preflight-bundle/{name}")
            info.size = len(data)
            info.mtime = int(time.time())
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return path.stat().st_size


def _yaml(node: Any) -> str:
    return yaml.safe_dump(node, sort_keys=False)


def _json(node: Any) -> str:
    return json.dumps(node, indent=2) + "\n"
