"""The cluster checks load only the parts of the `kubernetes` client they use."""

from __future__ import annotations

import json
import subprocess
import sys


def _modules_after(code: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


def test_no_model_and_no_api_class_is_imported() -> None:
    seen = _modules_after(
        "import json, sys; import checks.kubernetes.kubeclient as k;"
        "print(json.dumps({'models': [m for m in sys.modules if m.startswith('kubernetes.client.m')],"
        " 'apis': [m for m in sys.modules if m.startswith('kubernetes.client.api.')],"
        " 'loads': callable(k.config.load_kube_config)}))"
    )
    assert seen == {"models": ["kubernetes.client.models"], "apis": [], "loads": True}


def test_an_already_imported_full_client_is_used_as_it_is() -> None:
    seen = _modules_after(
        "import json, kubernetes; import checks.kubernetes.kubeclient as k;"
        "print(json.dumps({'same': k.ApiClient is kubernetes.client.ApiClient,"
        " 'models': hasattr(kubernetes.client.models, 'V1Pod')}))"
    )
    assert seen == {"same": True, "models": True}
