"""The parts of the official `kubernetes` client the cluster checks use, without the rest.

`import kubernetes` runs the package's `__init__`, which imports every API class and the ~800
models: 0.25 s of CPU and 34 MB, the heaviest import of a run. The checks need only the
kubeconfig and in-cluster loading (`kubernetes.config`: contexts, exec credential plugins,
client certificates, tokens), `Configuration` and `ApiClient.call_api` for raw JSON
(`_preload_content=False`: no model is ever built). So, unless the full client is already
imported (then it is used as it is), the packages `kubernetes` and `kubernetes.client` are
registered without running their `__init__`, `kubernetes.client.models` as an empty package,
and the library's own modules for those parts are imported from its files, unchanged.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def _package(name: str) -> types.ModuleType:
    """`name` as an importable package whose `__init__` has not run."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError(f"{name} is not installed")
    module = types.ModuleType(name)
    module.__spec__ = spec
    module.__path__ = list(spec.submodule_search_locations)
    sys.modules[name] = module
    return module


if "kubernetes" not in sys.modules:
    _root, _client = _package("kubernetes"), _package("kubernetes.client")
    _package("kubernetes.client.models")
    from kubernetes.client.api_client import ApiClient as _ApiClient
    from kubernetes.client.configuration import Configuration as _Configuration

    # what `kubernetes.config` imports from `kubernetes.client`
    setattr(_client, "ApiClient", _ApiClient)  # noqa: B010  (types.ModuleType has no such field)
    setattr(_client, "Configuration", _Configuration)  # noqa: B010

# After the packages are registered above: that is the point of this module.
from kubernetes import config  # noqa: E402
from kubernetes.client.api_client import ApiClient  # noqa: E402
from kubernetes.client.configuration import Configuration  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402

__all__ = ["ApiClient", "ApiException", "Configuration", "config"]
