"""The support bundle: everything support asks for first, in one redacted .tar.gz.

report.json, report.md, values.yaml (every secret replaced by `<redacted>`, keys kept),
environment.json (tool, Python, platform, in-cluster and namespace, the proxy variables set
with their credentials redacted and whether --no-proxy ignored them), and logs/<check>.log
with the client libraries' log lines each check captured.
"""

from __future__ import annotations

import io
import json
import os
import platform
import sys
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from preflight import __version__
from preflight.engine.options import RunOptions
from preflight.report.redact import Redactor, proxy_variables
from preflight.report.renderers.json_report import render_json
from preflight.report.renderers.markdown import render_markdown
from preflight.report.result import Report


def environment(options: RunOptions) -> dict[str, Any]:
    """Where the run happened."""
    in_cluster = options.in_cluster or "KUBERNETES_SERVICE_HOST" in os.environ
    return {
        "tool": "sense-preflight",
        "version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "in_cluster": in_cluster,
        "namespace": options.namespace,
        "timeout_s": options.timeout_s,
        "read_only": options.read_only,
        "proxy_variables": proxy_variables(options.proxy_env),
        "proxy_used": options.use_proxy and bool(options.proxy_env),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_bundle(
    path: Path, report: Report, values: Mapping[str, Any], options: RunOptions, redact: Redactor
) -> int:
    """Write the bundle; return its size in bytes. Every member passes through `redact`."""
    clean = redact.report(report)
    members: dict[str, str] = {
        "report.json": render_json(clean),
        "report.md": render_markdown(clean),
        "values.yaml": yaml.safe_dump(redact.values(dict(values)), sort_keys=False),
        "environment.json": json.dumps(environment(options), indent=2) + "\n",
    }
    for check in clean.checks:
        if check.logs:
            members[f"logs/{check.id}.log"] = "\n".join(check.logs) + "\n"
    with tarfile.open(path, "w:gz") as archive:
        for name, text in members.items():
            data = redact(text).encode("utf-8")
            info = tarfile.TarInfo(f"sense-preflight-bundle/{name}")
            info.size = len(data)
            info.mtime = int(time.time())
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return path.stat().st_size
