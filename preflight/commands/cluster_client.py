"""The few API calls `sense-preflight in-cluster` makes, each under a deadline, with every error
of the API server turned into one line that says what was denied and how to fix it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

Manifest = dict[str, Any]

REQUEST_TIMEOUT_S = 15.0
_FORBIDDEN = re.compile(r'User "(?P<user>[^"]*)" cannot (?P<verb>\w+) resource "(?P<res>[^"]+)"')
_RUN_OBJECTS = (
    "a Secret, a ServiceAccount, a Job and, for the cluster checks, a Role, a ClusterRole and "
    "their bindings"
)


class ClusterError(Exception):
    """Why the in-cluster run cannot go on, in one line, with the fix."""

    def __init__(self, cause: str, fix: str) -> None:
        super().__init__(f"{cause} — {fix}")
        self.cause, self.fix = cause, fix


@dataclass(frozen=True)
class Kind:
    """Where a kind lives in the API."""

    prefix: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        return self.prefix.split("/")[2] if self.prefix.startswith("/apis/") else ""


KINDS = {
    "Secret": Kind("/api/v1", "secrets"),
    "ServiceAccount": Kind("/api/v1", "serviceaccounts"),
    "Pod": Kind("/api/v1", "pods"),
    "Event": Kind("/api/v1", "events"),
    "Job": Kind("/apis/batch/v1", "jobs"),
    "Role": Kind("/apis/rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": Kind("/apis/rbac.authorization.k8s.io/v1", "rolebindings"),
    "ClusterRole": Kind("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": Kind("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
}


class Cluster:
    """One API server, as the kubeconfig's current (or the given) context reaches it."""

    def __init__(self, api: ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace

    @classmethod
    def connect(cls, kubeconfig: Path | None, context: str | None, namespace: str) -> Cluster:
        """The client of the kubeconfig (--kubeconfig, else KUBECONFIG, else ~/.kube/config)."""
        from kubernetes import config
        from kubernetes.client import ApiClient, Configuration

        configuration = Configuration()
        configuration.retries = False  # one try per request: the deadlines bound each one
        try:
            config.load_kube_config(
                config_file=str(kubeconfig) if kubeconfig else None,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except (config.ConfigException, OSError) as exc:
            raise ClusterError(
                f"no cluster to run in: {exc}",
                "give --kubeconfig/--context (or set KUBECONFIG) for the cluster to check",
            ) from None
        return cls(ApiClient(configuration), namespace)

    @property
    def server(self) -> str:
        return str(self.api.configuration.host)

    def path(self, kind: str, name: str | None = None, sub: str = "") -> str:
        info = KINDS[kind]
        path = info.prefix + (f"/namespaces/{self.namespace}" if info.namespaced else "")
        path += f"/{info.plural}" + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")
        return path

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        timeout: float | tuple[float, float] = REQUEST_TIMEOUT_S,
        stream: bool = False,
        query: dict[str, str] | None = None,
    ) -> Any:
        """One request; the urllib3 response (stream) or the parsed JSON answer."""
        import urllib3

        try:
            response = self.api.call_api(
                path,
                method,
                query_params=list((query or {}).items()),
                header_params={"Accept": "application/json", "Content-Type": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
                response_types_map={},
                _preload_content=False,
                _request_timeout=timeout,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise ClusterError(
                f"the API server {self.server} did not answer {method} {path}: {exc}",
                "check that the cluster is up and reachable from here (kubectl get ns)",
            ) from None
        if stream:
            return response
        return json.loads(response.data or b"{}")

    def create(self, manifest: Manifest) -> Manifest:
        """Create one object; a denial becomes a ClusterError naming the verb and resource."""
        from kubernetes.client.exceptions import ApiException

        kind = manifest["kind"]
        try:
            return dict(self.call("POST", self.path(kind), body=manifest))
        except ApiException as exc:
            raise api_error(exc, "create", KINDS[kind], self.namespace) from None

    def delete(self, kind: str, name: str) -> None:
        """Delete one object (a Job with its pods); gone already is fine."""
        from kubernetes.client.exceptions import ApiException

        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        try:
            self.call("DELETE", self.path(kind, name), body=body)
        except ApiException as exc:
            if exc.status != 404:
                raise api_error(exc, "delete", KINDS[kind], self.namespace) from None

    def list(self, kind: str, **query: str) -> list[Manifest]:
        from kubernetes.client.exceptions import ApiException

        try:
            return list(self.call("GET", self.path(kind), query=query).get("items") or [])
        except ApiException as exc:
            raise api_error(exc, "list", KINDS[kind], self.namespace) from None

    def log(self, pod: str, container: str, follow: bool, read_timeout: float) -> Iterator[str]:
        """The pod's log, line by line (following it while the container runs)."""
        from kubernetes.client.exceptions import ApiException

        try:
            response = self.call(
                "GET",
                self.path("Pod", pod, "log"),
                timeout=(REQUEST_TIMEOUT_S, read_timeout),
                stream=True,
                query={"container": container, **({"follow": "true"} if follow else {})},
            )
        except ApiException as exc:
            raise api_error(exc, "get", Kind("/api/v1", "pods/log"), self.namespace) from None
        import urllib3

        pending = b""
        try:
            for chunk in response.stream(65536, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", "replace")
        except urllib3.exceptions.HTTPError as exc:
            raise ClusterError(
                f"the pod's log stopped: {exc}", "raise --timeout, or read it with kubectl logs"
            ) from None
        finally:
            response.release_conn()
        if pending:
            yield pending.decode("utf-8", "replace")


def admission_rejection(message: str, namespace: str) -> ClusterError | None:
    """Admission's words (Pod Security, ResourceQuota, a policy webhook) as a cause and fix;
    None when the message is not an admission rejection."""
    what = message.split("forbidden: ", 1)[-1]
    if "violates PodSecurity" in message:
        return ClusterError(
            f"Pod Security admission of namespace {namespace} rejected the pod: {what}",
            "the pod meets the `restricted` standard as printed by `sense-preflight job`; "
            "check the namespace's pod-security.kubernetes.io labels, or ask for an exemption",
        )
    if "exceeded quota" in message:
        return ClusterError(
            f"the ResourceQuota of namespace {namespace} has no room for the pod: {what}",
            "free quota in the namespace (the Job's pod template has the pod's requests and "
            "limits: sense-preflight job prints it), or run in another --namespace",
        )
    if "admission webhook" in message:
        return ClusterError(
            f"an admission webhook rejected the preflight: {what}",
            "ask the cluster's admins to admit its objects, or apply `sense-preflight job`'s "
            "manifests through your own pipeline",
        )
    return None


def api_error(exc: Any, verb: str, kind: Kind, namespace: str) -> ClusterError:
    """One line for an API error: RBAC (which verb on which resource), a missing namespace,
    an admission rejection, credentials, or the server's own message."""
    try:
        status = json.loads(exc.body or "{}")
    except ValueError:
        status = {}
    message = str(status.get("message") or exc.reason or "no reason given")
    details = status.get("details") or {}
    where = f"in namespace {namespace}" if kind.namespaced else "at the cluster scope"
    resource = f"{kind.plural}.{kind.group}" if kind.group else kind.plural
    if exc.status == 401:
        return ClusterError(
            "the API server rejected your credentials (401 Unauthorized)",
            "refresh the kubeconfig's credentials (kubectl get ns must work)",
        )
    if exc.status == 404 and details.get("kind") == "namespaces":
        return ClusterError(
            f"namespace {namespace} does not exist",
            f"create it (kubectl create namespace {namespace}) or give --namespace",
        )
    rejected = admission_rejection(message, namespace)
    if rejected is not None:
        return rejected
    if exc.status == 403:
        denied = _FORBIDDEN.search(message)
        user = f'User "{denied["user"]}"' if denied else "you"
        verb = denied["verb"] if denied else verb
        return ClusterError(
            f"RBAC denies {user} {verb} on {resource} {where}",
            f"ask for {verb} on {resource} {where} (the in-cluster run creates {_RUN_OBJECTS}), "
            "or apply `sense-preflight job`'s manifests through your own pipeline",
        )
    return ClusterError(
        f"the API server answered {exc.status} to {verb} {resource} {where}: {message}",
        "see the message; `sense-preflight job` prints the same objects to apply by hand",
    )
