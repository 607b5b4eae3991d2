"""The cluster connection shared by the `kubernetes` and `gpu` checks.

Configuration comes from the official `kubernetes` client (kubeconfig contexts, exec plugins for
EKS/GKE/AKS, in-cluster service account; only its parts we use, see kubeclient.py); the API server's address is then walked through the
engine's dns → tcp → tls layers, and every request is bounded by the check's deadline.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checks.kubernetes.inline_files import INLINE_FILES
from preflight.engine.check import Probe, Step, StepFailed
from preflight.engine.deadline import timeout_message
from preflight.net import TlsSettings, hang_up, parse_endpoint, reach

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, Configuration

#: Where the kubelet mounts the pod's service account; the variable overrides it (tests).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
SERVICE_ACCOUNT_DIR_ENV = "SENSE_PREFLIGHT_SERVICEACCOUNT_DIR"
#: The client libraries the cluster checks import (preflight.engine.preload).
CLIENTS = ("checks.kubernetes.kubeclient", "psutil")

_CREDENTIALS_FIX = (
    "refresh the kubeconfig's credentials (e.g. `aws eks update-kubeconfig`, "
    "`gcloud container clusters get-credentials`, `az aks get-credentials`) or, in a pod, "
    "check the service account token"
)
_REACH_FIX = "check that the API server is up and reachable from here, or raise --timeout"


class Forbidden(Exception):
    """RBAC denied a read: the check cannot verify this item (a warning, not a failure)."""

    def __init__(self, verb: str, resource: str, where: str = "") -> None:
        self.verb, self.resource, self.where = verb, resource, where
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        where = f" in namespace {self.where}" if self.where else ""
        return f"cannot verify: the service account lacks {self.verb} on {self.resource}{where}"

    @property
    def remediation(self) -> str:
        return (
            f"grant {self.verb} on {self.resource} (the ClusterRole printed by "
            "`sense-preflight job` has every read right the checks need)"
        )


@dataclass
class Cluster:
    """An authenticated connection to the API server; `get` reads one path as JSON."""

    probe: Probe
    api: ApiClient
    server: str

    def get(self, path: str, **query: str) -> dict[str, Any] | None:
        """GET an API path under the deadline: the object, or None on 404.

        401 and transport errors end the check (StepFailed); 403 raises Forbidden.
        """
        import urllib3

        from checks.kubernetes.kubeclient import ApiException

        try:
            response = self.api.call_api(
                path,
                "GET",
                query_params=list(query.items()),
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
                response_types_map={},
                _preload_content=False,
                _request_timeout=self.probe.deadline.client_timeout(),
            )
        except ApiException as exc:
            _raise_unless_not_found(exc, path)
            return None
        except urllib3.exceptions.TimeoutError:
            raise StepFailed(
                "the API server "
                + timeout_message(f"before answering {path}", self.probe.options.timeout_s),
                _REACH_FIX,
            ) from None
        except urllib3.exceptions.HTTPError as exc:
            if how := hang_up(exc):
                raise StepFailed(
                    f"the API server accepted the connection, then closed it without answering "
                    f"{path} ({how})",
                    _REACH_FIX,
                ) from None
            raise StepFailed(f"cannot read {path} from the API server: {exc}", _REACH_FIX) from None
        return dict(json.loads(response.data))

    def items(self, path: str, **query: str) -> list[dict[str, Any]]:
        """The items of a list path (a missing API group lists nothing)."""
        found = self.get(path, **query)
        return list(found.get("items") or []) if found else []


def _raise_unless_not_found(exc: Any, path: str) -> None:
    """Return for 404; raise Forbidden for 403 and StepFailed for the rest."""
    if exc.status == 404:
        return None
    status = _status_body(exc.body)
    if exc.status == 401:
        raise StepFailed(
            "the API server rejected the credentials (401 Unauthorized)", _CREDENTIALS_FIX
        )
    if exc.status == 403:
        details = status.get("details") or {}
        resource = str(details.get("kind") or path)
        group = details.get("group")
        verb = "get" if details.get("name") else "list"
        namespace = path.split("/namespaces/")[1].split("/")[0] if "/namespaces/" in path else ""
        raise Forbidden(verb, f"{resource}.{group}" if group else resource, namespace)
    message = status.get("message") or exc.reason or "no reason given"
    raise StepFailed(f"the API server answered {exc.status} for {path}: {message}", _REACH_FIX)


def _status_body(body: Any) -> dict[str, Any]:
    """The `Status` object of an error answer, or {} when the body is something else."""
    try:
        parsed = json.loads(body or "{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


@contextmanager
def connect(probe: Probe) -> Iterator[Cluster | None]:
    """Steps config → dns → tcp → tls → auth; yields None (the check skipped) without a cluster."""
    if not _cluster_configured(probe):
        probe.skip(
            "config",
            "no cluster access: no in-cluster service account, no kubeconfig (give "
            "--kubeconfig/--context, set KUBECONFIG, or run it as the Job of "
            "`sense-preflight job`)",
        )
        yield None
        return
    with probe.step("config") as step:
        configuration, source = _configuration(probe)
        step.detail = f"{source} → {configuration.host}"
        probe.facts["cluster_source"] = source
        probe.facts["cluster_server"] = configuration.host
    _reach_server(probe, configuration)
    from checks.kubernetes.kubeclient import ApiClient

    with ApiClient(configuration) as api:
        cluster = Cluster(probe, api, configuration.host)
        with probe.step("auth") as step:
            try:
                cluster.get("/api")
            except Forbidden:
                raise StepFailed(
                    "the API server sees no credentials (anonymous): the kubeconfig gave no "
                    "token or certificate (did its exec plugin fail?)",
                    _CREDENTIALS_FIX,
                ) from None
            step.detail = "credentials accepted"
        yield cluster


@contextmanager
def _plugins_stopped_if_abandoned(probe: Probe) -> Iterator[None]:
    """Loading a kubeconfig runs its exec credential plugin (`aws eks get-token`, `kubelogin`,
    `gke-gcloud-auth-plugin`), and the client waits for it without a timeout. If the check is
    abandoned at its deadline meanwhile, its cleanup stops the processes started since, with
    their children: no plugin is left running after the run (a kubelogin waiting for a browser
    login would otherwise hold its port)."""
    import psutil

    me = psutil.Process()
    before = {child.pid for child in me.children()}
    loading = threading.Event()
    loading.set()

    def stop_plugins() -> None:
        if not loading.is_set():
            return
        started = [child for child in me.children() if child.pid not in before]
        family = started + [grandchild for child in started for grandchild in _children(child)]
        for process in family:
            with suppress(psutil.Error):
                process.terminate()
        _, alive = psutil.wait_procs(family, timeout=1.0)
        for process in alive:
            with suppress(psutil.Error):
                process.kill()

    probe.cleanup("stop an exec credential plugin still running", stop_plugins)
    try:
        yield
    finally:
        loading.clear()


def _children(process: Any) -> list[Any]:
    """All descendants of a psutil process ([] once it is gone)."""
    import psutil

    try:
        return list(process.children(recursive=True))
    except psutil.Error:
        return []


def _reach_server(probe: Probe, configuration: Configuration) -> None:
    """dns, tcp and tls steps against the API server, unless a proxy stands in between."""
    if configuration.proxy or getattr(configuration, "tls_server_name", None):
        return
    endpoint = parse_endpoint(configuration.host, default_scheme="https")
    tls = None
    if endpoint.scheme == "https":
        ca = configuration.ssl_ca_cert or probe.options.ca_bundle
        tls = TlsSettings(Path(ca) if ca else None, verify=bool(configuration.verify_ssl))
    with reach(probe, endpoint, tls, routed=False):  # the client routes itself, as kubectl does
        pass


def _service_account() -> Path | None:
    """The mounted service-account folder when running in a pod, else None."""
    folder = Path(os.environ.get(SERVICE_ACCOUNT_DIR_ENV) or SERVICE_ACCOUNT_DIR)
    in_pod = (folder / "token").is_file() and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    return folder if in_pod else None


def _kubeconfig_files(probe: Probe) -> str:
    return kubeconfig_files(probe.options.kubeconfig)


def kubeconfig_files(kubeconfig: Path | None) -> str:
    """--kubeconfig, else KUBECONFIG (a path list the client merges), else ~/.kube/config."""
    return str(kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config")


def context_namespace(kubeconfig: Path | None, context: str | None) -> str | None:
    """The namespace the kubeconfig's context (the given one, else the current one) names, as
    Helm uses it without -n; None when there is no such kubeconfig, context or namespace."""
    from kubernetes import config

    try:
        contexts, active = config.list_kube_config_contexts(
            config_file=kubeconfig_files(kubeconfig)
        )
    except Exception:  # no kubeconfig, or one the client refuses: the check will say why
        return None
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
    namespace = ((chosen or {}).get("context") or {}).get("namespace")
    return str(namespace) if namespace else None


def _cluster_configured(probe: Probe) -> bool:
    """Whether there is any cluster to talk to (False: a laptop without a kubeconfig)."""
    options = probe.options
    if options.in_cluster or options.kubeconfig or options.context or _service_account():
        return True
    files = _kubeconfig_files(probe).split(os.pathsep)
    return any(Path(f).expanduser().is_file() for f in files if f)


def _configuration(probe: Probe) -> tuple[Configuration, str]:
    """The client configuration and a line saying where it came from.

    Explicit --kubeconfig/--context win; then a mounted service account; then KUBECONFIG or
    ~/.kube/config. Under --in-cluster the service account is required.
    """
    from checks.kubernetes.kubeclient import Configuration, config

    options = probe.options
    configuration = Configuration()
    configuration.retries = False  # one attempt per request: the deadline bounds it
    if not options.use_proxy:  # --no-proxy: not the client's own reading of HTTPS_PROXY
        configuration.proxy = configuration.no_proxy = None
    account = _service_account()
    explicit = options.kubeconfig is not None or options.context is not None
    if account is not None and (options.in_cluster or not explicit):
        try:
            config.incluster_config.InClusterConfigLoader(
                token_filename=str(account / "token"), cert_filename=str(account / "ca.crt")
            ).load_and_set(configuration)
        except config.ConfigException as exc:
            raise StepFailed(f"in-cluster configuration: {exc}", _CREDENTIALS_FIX) from None
        return configuration, "in-cluster service account"
    if options.in_cluster:
        raise StepFailed(
            "--in-cluster, but no service account is mounted "
            f"({os.environ.get(SERVICE_ACCOUNT_DIR_ENV) or SERVICE_ACCOUNT_DIR}/token) or "
            "KUBERNETES_SERVICE_HOST is unset",
            "run it as the Job printed by `sense-preflight job`, or drop --in-cluster",
        )
    files = _kubeconfig_files(probe)
    if options.kubeconfig is not None and not options.kubeconfig.is_file():
        raise StepFailed(f"kubeconfig {files} not found", "give an existing --kubeconfig")
    try:
        _, active = config.list_kube_config_contexts(config_file=files)
        # the folder is given back after the plugin is stopped: entered first, cleaned last
        with INLINE_FILES.loading(probe) as folder, _plugins_stopped_if_abandoned(probe):
            config.load_kube_config(
                config_file=files,
                context=options.context,
                client_configuration=configuration,
                persist_config=False,
                temp_file_path=folder,
            )
    except config.ConfigException as exc:
        raise StepFailed(f"kubeconfig {files}: {exc}", _context_fix(files)) from None
    _refresh_as_loaded(probe, configuration)
    context = options.context or (active or {}).get("name", "")
    return configuration, f"kubeconfig {files}, context {context}"


def _refresh_as_loaded(probe: Probe, configuration: Configuration) -> None:
    """Before each request the client refreshes a token it calls expired (under 5 minutes
    left): it runs the exec plugin again and writes what it returns to the folder. That
    refresh takes the turn, and has its plugin stopped if the check is abandoned, as the
    first load did."""
    refresh = configuration.refresh_api_key_hook
    if refresh is None:  # no token: nothing to refresh
        return

    def refresh_in_turn(client_configuration: Configuration) -> None:
        with INLINE_FILES.writing(), _plugins_stopped_if_abandoned(probe):
            refresh(client_configuration)

    configuration.refresh_api_key_hook = refresh_in_turn


def _context_fix(files: str) -> str:
    """The remediation for a kubeconfig the client refused: the contexts it does have."""
    from checks.kubernetes.kubeclient import config

    try:
        contexts, _ = config.list_kube_config_contexts(config_file=files)
    except config.ConfigException:
        return "fix the kubeconfig (kubectl config view)"
    names = ", ".join(str(c.get("name")) for c in contexts)
    return f"use --context with one of: {names}"


@contextmanager
def rbac_step(probe: Probe, name: str) -> Iterator[Step]:
    """`probe.step(name)` in which an RBAC denial passes the step with a warning."""
    with probe.step(name) as step:
        try:
            yield step
        except Forbidden as exc:
            step.warn(exc.detail, exc.remediation)
