"""A FAKE kube-apiserver for the `kubernetes` and `gpu` checks, and the fixtures that serve it.

No kube-apiserver, k3s, kwok or envtest can be installed here (test-services.md), so this is a
fake, written from the Kubernetes API reference and checked with the real `kubectl`
(tests/test_kubernetes_server.py). It serves, over HTTPS with a certificate from the session CA:

- `/version`, `/healthz`, `/livez`, `/readyz` (anonymous allowed, as `system:public-info-viewer`);
- discovery: `/api`, `/api/v1`, `/apis`, `/apis/<group>/<version>` (legacy, non-aggregated);
  cert-manager's group appears only while its CRDs are in the state, as on a real server;
- GET of every resource below, as a list (cluster-wide, all namespaces, or one namespace, with
  `labelSelector`) or by name: Nodes, Namespaces, Secrets, ConfigMaps, ServiceAccounts,
  DaemonSets, Jobs, ClusterRoles, ClusterRoleBindings, Roles, RoleBindings, IngressClasses,
  CRDs, cert-manager Issuers/ClusterIssuers (Helm's release records are Secrets or ConfigMaps:
  tests/helm_records.py writes them);
- RBAC for the users given `grants` (PolicyRules of ClusterRoles and namespaced Roles, with
  resourceNames; a list never matches a rule limited by resourceNames, as in Kubernetes);
- bearer-token auth (the scheme read case-insensitively, as the apiserver does) and errors as
  `Status` objects: 401 for an unknown token, 403 for a resource the state forbids or for an
  anonymous caller, 404 for a missing object or resource, 400 for a bad label or field selector;
- writes, Jobs and their Pods (a job controller, a scheduler and a kubelet that runs the real
  `sense-preflight`), pod logs, Events and watches: tests/servers/_kubernetes_workloads.py.

The cluster's contents live in a `ClusterState` that each test may replace
(`kube.state = ClusterState(...)`); the builders below (`node`, `daemonset`, …) make its objects.
"""

from __future__ import annotations

import base64
import re
import ssl
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import trustme
import yaml

from tests.cli import CliResult, example_values, run_cli, write_values
from tests.servers._http_fake import FakeHandler, FakeHttpServer
from tests.servers._kubernetes_workloads import Workloads, fields_match, forbidden
from tests.servers._tls import issue_cert

Obj = dict[str, Any]

TOKEN = "sense-preflight-test-token-5f1c"
SA_TOKEN = "sense-preflight-sa-token-9b2e"
SA_USER = "system:serviceaccount:axion-sense:sense-preflight"
CERT_MANAGER_CRDS = ("certificates", "issuers", "clusterissuers")
TIMESTAMP = "2026-01-01T00:00:00Z"
STALL_S = 30.0


@dataclass(frozen=True)
class Resource:
    """One resource type the fake serves (what `/api/v1` or `/apis/<g>/<v>` lists)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()


RESOURCES = (
    Resource("", "v1", "nodes", "Node", False, ("no",)),
    Resource("", "v1", "namespaces", "Namespace", False, ("ns",)),
    Resource("", "v1", "secrets", "Secret", True),
    Resource("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    Resource("", "v1", "pods", "Pod", True, ("po",)),
    Resource("", "v1", "events", "Event", True, ("ev",)),
    Resource("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",)),
    Resource("batch", "v1", "jobs", "Job", True),
    Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    Resource("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False),
    Resource(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        ("crd", "crds"),
    ),
    Resource("cert-manager.io", "v1", "certificates", "Certificate", True, ("cert", "certs")),
    Resource("cert-manager.io", "v1", "issuers", "Issuer", True),
    Resource("cert-manager.io", "v1", "clusterissuers", "ClusterIssuer", False),
)


# --- the cluster's contents ----------------------------------------------------------------


def _meta(name: str, namespace: str | None = None, labels: Mapping[str, str] | None = None) -> Obj:
    meta: Obj = {
        "name": name,
        "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/{name}")),
        "resourceVersion": "1",
        "creationTimestamp": TIMESTAMP,
        "labels": dict(labels or {}),
    }
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def node(
    name: str,
    *,
    gpus: int = 0,
    labels: Mapping[str, str] | None = None,
    taints: Iterable[Mapping[str, str]] = (),
) -> Obj:
    """A Ready Node; `gpus` > 0 adds allocatable/capacity `nvidia.com/gpu`."""
    resources = {"cpu": "8", "memory": "32Gi", "pods": "110"}
    if gpus:
        resources["nvidia.com/gpu"] = str(gpus)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": _meta(name, labels={"kubernetes.io/hostname": name, **(labels or {})}),
        "spec": {"taints": [dict(t) for t in taints]} if taints else {},
        "status": {
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": "b0000000-0000-4000-8000-000000000000",
                "containerRuntimeVersion": "containerd://1.7.18",
                "kernelVersion": "5.15.0-113-generic",
                "kubeProxyVersion": "v1.30.2",
                "kubeletVersion": "v1.30.2",
                "machineID": "0" * 32,
                "operatingSystem": "linux",
                "osImage": "Ubuntu 22.04.4 LTS",
                "systemUUID": "00000000-0000-4000-8000-000000000000",
            },
        },
    }


GFD_LABELS = {
    "nvidia.com/gpu.present": "true",
    "nvidia.com/gpu.product": "NVIDIA-L4",
    "nvidia.com/gpu.memory": "23034",
    "nvidia.com/gpu.count": "1",
    "nvidia.com/cuda.driver.major": "550",
    "nvidia.com/cuda.driver.minor": "54",
    "nvidia.com/cuda.driver.rev": "15",
    "nvidia.com/cuda.runtime.major": "12",
    "nvidia.com/cuda.runtime.minor": "4",
}


def daemonset(
    name: str,
    namespace: str = "kube-system",
    *,
    desired: int = 1,
    ready: int | None = None,
    labels: Mapping[str, str] | None = None,
) -> Obj:
    """An apps/v1 DaemonSet with the given desired and ready pod counts."""
    ready = desired if ready is None else ready
    selector = {"name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": _meta(name, namespace, labels),
        "spec": {
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": selector}, "spec": {"containers": []}},
        },
        "status": {
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": desired,
            "numberReady": ready,
            "numberAvailable": ready,
            "updatedNumberScheduled": desired,
            "numberMisscheduled": 0,
            "observedGeneration": 1,
        },
    }


def namespace(name: str) -> Obj:
    """An Active Namespace."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": _meta(name, labels={"kubernetes.io/metadata.name": name}),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def ingress_class(name: str, controller: str = "k8s.io/ingress-nginx") -> Obj:
    """A networking.k8s.io/v1 IngressClass."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": _meta(name),
        "spec": {"controller": controller},
    }


def crd(
    plural: str, group: str = "cert-manager.io", kind: str = "", scope: str = "Namespaced"
) -> Obj:
    """An apiextensions.k8s.io/v1 CustomResourceDefinition named `<plural>.<group>`."""
    kind = kind or plural[:-1].capitalize()
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": _meta(f"{plural}.{group}"),
        "spec": {
            "group": group,
            "names": {"plural": plural, "kind": kind, "singular": plural[:-1]},
            "scope": scope,
            "versions": [{"name": "v1", "served": True, "storage": True}],
        },
        "status": {"conditions": [{"type": "Established", "status": "True"}]},
    }


def cert_manager_crds() -> list[Obj]:
    """The CRDs of cert-manager that the checks look for."""
    return [
        crd("certificates", kind="Certificate"),
        crd("issuers", kind="Issuer"),
        crd("clusterissuers", kind="ClusterIssuer", scope="Cluster"),
    ]


def issuer(name: str, namespace: str | None = "axion-sense", *, ready: bool = True) -> Obj:
    """A cert-manager Issuer (or a ClusterIssuer when `namespace` is None)."""
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Issuer" if namespace else "ClusterIssuer",
        "metadata": _meta(name, namespace),
        "spec": {"selfSigned": {}},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "IsReady" if ready else "ErrInitIssuer",
                    "message": "" if ready else "Error initializing issuer",
                }
            ]
        },
    }


def secret(
    name: str,
    namespace: str = "axion-sense",
    *,
    type_: str = "kubernetes.io/dockerconfigjson",
    data: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Obj:
    """A Secret; `data` values are given in clear and stored base64-encoded, as the API
    serves a Secret's data."""
    if data is None and type_ == "kubernetes.io/dockerconfigjson":
        data = {".dockerconfigjson": '{"auths":{}}'}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(name, namespace, labels),
        "type": type_,
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in (data or {}).items()},
    }


def config_map(
    name: str,
    namespace: str = "axion-sense",
    *,
    data: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Obj:
    """A ConfigMap; its `data` is served as given (strings, no encoding)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(name, namespace, labels),
        "data": dict(data or {}),
    }


@dataclass
class ClusterState:
    """What the fake cluster holds and how it answers; tests replace it whole or in part."""

    version: str = "1.30.2"
    objects: list[Obj] = field(default_factory=list)
    # Resource plurals (e.g. "nodes") that every caller is forbidden to read (403).
    forbidden: set[str] = field(default_factory=set)
    # Accepted bearer tokens and the user each one authenticates as.
    tokens: dict[str, str] = field(
        default_factory=lambda: {TOKEN: "kubernetes-admin", SA_TOKEN: SA_USER}
    )
    # RBAC: user → [(namespace of a Role, or None for a ClusterRole), PolicyRule]. A user
    # listed here may do only what those rules allow; everyone else may read everything.
    grants: dict[str, list[tuple[str | None, Obj]]] = field(default_factory=dict)
    # Paths the fake accepts but never answers (to prove a client's deadline).
    stall: set[str] = field(default_factory=set)


def default_state() -> ClusterState:
    """A healthy 1.30 cluster: one CPU node, one GPU node with GFD labels, the device plugin."""
    return ClusterState(
        objects=[
            *(namespace(n) for n in ("default", "kube-system", "axion-sense")),
            node("cpu-1"),
            node("gpu-1", gpus=1, labels=GFD_LABELS),
            daemonset("nvidia-device-plugin-daemonset", labels={"app": "nvidia-device-plugin"}),
            ingress_class("nginx"),
        ]
    )


# --- the HTTP side ---------------------------------------------------------------------------


def _status(code: int, reason: str, message: str, details: Obj | None = None) -> Obj:
    """A meta/v1 Status object, as the apiserver returns for every error."""
    body: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


_REQUIREMENT = re.compile(
    r"\s*(?P<neg>!)?(?P<key>[A-Za-z0-9./_-]+)\s*"
    r"(?:(?P<op>==|!=|=)\s*(?P<val>[A-Za-z0-9._-]*)"
    r"|\s(?P<setop>in|notin)\s*\((?P<vals>[^)]*)\))?\s*$"
)


def _split_selector(selector: str) -> list[str]:
    """Split a label selector on the commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current] if current.strip() else parts


def selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    """Whether labels satisfy a Kubernetes label selector; ValueError when it is malformed."""
    for requirement in _split_selector(selector):
        m = _REQUIREMENT.match(requirement)
        if not m or (m["neg"] and (m["op"] or m["setop"])):
            raise ValueError(f"unable to parse requirement: {requirement.strip()!r}")
        value = labels.get(m["key"])
        if m["setop"]:
            options = {v.strip() for v in m["vals"].split(",")}
            ok = (value in options) if m["setop"] == "in" else (value not in options)
        elif m["op"]:
            ok = (value == m["val"]) if m["op"] in ("=", "==") else (value != m["val"])
        else:
            ok = (value is None) if m["neg"] else (value is not None)
        if not ok:
            return False
    return True


class FakeKubeApiServer:
    """The fake apiserver: an HTTPS server in a thread of the test process."""

    def __init__(self, tls: ssl.SSLContext) -> None:
        self.state = default_state()
        self.requests: list[tuple[str, str, str]] = []  # (method, path, user)
        self.workloads = Workloads(self)  # writes, Jobs, Pods, logs (_kubernetes_workloads.py)
        self.ca_path: Path | None = None  # the CA, for the kubelet's service accounts
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._httpd = FakeHttpServer(Handler, tls)
        self.port = self._httpd.port

    def start(self) -> None:
        self._httpd.start()

    def stop(self) -> None:
        self._httpd.stop()

    # The routing: (status code, body) for one GET.

    def discovery(self) -> list[Resource]:
        """The resources served now: cert-manager's only while its CRDs exist."""
        crds = {o["metadata"]["name"] for o in self._objects("CustomResourceDefinition")}
        return [
            r for r in RESOURCES if r.group != "cert-manager.io" or f"{r.plural}.{r.group}" in crds
        ]

    def _objects(self, kind: str) -> Iterator[Obj]:
        return (o for o in self.state.objects if o.get("kind") == kind)

    def get(self, path: str, query: Mapping[str, str], user: str | None) -> tuple[int, Any]:
        """Answer one GET request as the apiserver would."""
        if path in ("/healthz", "/livez", "/readyz"):
            return 200, "ok"
        if path == "/version":
            return 200, self._version()
        if user is None:  # anonymous: only the public info above
            return 403, _status(
                403, "Forbidden", f'forbidden: User "system:anonymous" cannot get path "{path}"'
            )
        if path == "/api":
            return 200, {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}
                ],
            }
        if path == "/apis":
            return 200, self._group_list()
        served = self.discovery()
        for gv in {r.group_version for r in served}:
            prefix = "/api/v1" if gv == "v1" else f"/apis/{gv}"
            if path == prefix:
                return 200, self._resource_list(gv, served)
            if path.startswith(prefix + "/"):
                return self._resource(gv, path[len(prefix) + 1 :].split("/"), query, user)
        return 404, _status(404, "NotFound", "the server could not find the requested resource")

    def _allowed(
        self, user: str, verb: str, resource: Resource, name: str | None, ns: str | None
    ) -> bool:
        """Kubernetes RBAC: any rule of the user's grants (or, for the service accounts of the
        fake kubelet's pods, of the stored bindings) allows the request."""
        grants = self.state.grants.get(user)
        if grants is None:
            grants = self.workloads.bound_rules(user)
        if grants is None:
            return True
        return any(
            (role_ns is None or role_ns == ns)
            and {resource.group, "*"} & set(rule.get("apiGroups", []))
            and {resource.plural, "*"} & set(rule.get("resources", []))
            and {verb, "*"} & set(rule.get("verbs", []))
            and (not rule.get("resourceNames") or name in rule["resourceNames"])
            for role_ns, rule in grants
        )

    def _version(self) -> Obj:
        major, minor, _ = [*self.state.version.lstrip("v").split("."), "0"][:3]
        return {
            "major": major,
            "minor": minor,
            "gitVersion": f"v{self.state.version.lstrip('v')}",
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": TIMESTAMP,
            "goVersion": "go1.22.4",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    def _group_list(self) -> Obj:
        groups: dict[str, list[str]] = {}
        for r in self.discovery():
            if r.group:
                groups.setdefault(r.group, [])
                if r.group_version not in groups[r.group]:
                    groups[r.group].append(r.group_version)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": name,
                    "versions": [
                        {"groupVersion": gv, "version": gv.split("/")[1]} for gv in versions
                    ],
                    "preferredVersion": {
                        "groupVersion": versions[0],
                        "version": versions[0].split("/")[1],
                    },
                }
                for name, versions in groups.items()
            ],
        }

    @staticmethod
    def _resource_list(gv: str, served: list[Resource]) -> Obj:
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": [
                {
                    "name": r.plural,
                    "singularName": r.singular,
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                    **({"shortNames": list(r.short_names)} if r.short_names else {}),
                }
                for r in served
                if r.group_version == gv
            ],
        }

    def _resource(
        self, gv: str, parts: list[str], query: Mapping[str, str], user: str
    ) -> tuple[int, Any]:
        """`[namespaces/<ns>/]<plural>[/<name>]` under one group version."""
        ns: str | None = None
        if len(parts) >= 3 and parts[0] == "namespaces":
            ns, parts = parts[1], parts[2:]
        plural, name = parts[0], (parts[1] if len(parts) > 1 else None)
        resource = next(
            (r for r in self.discovery() if r.group_version == gv and r.plural == plural), None
        )
        if resource is None or len(parts) > 2 or (ns is not None and not resource.namespaced):
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        verb = "get" if name else "list"
        if plural in self.state.forbidden or not self._allowed(user, verb, resource, name, ns):
            return 403, forbidden(user, verb, resource, name, ns)
        items = [
            o
            for o in self._objects(resource.kind)
            if ns is None or o["metadata"].get("namespace") == ns
        ]
        if name is not None:
            for item in items:
                if item["metadata"]["name"] == name:
                    return 200, item
            return 404, _status(
                404,
                "NotFound",
                f'{resource.plural}{"." + resource.group if resource.group else ""} "{name}" '
                "not found",
                {"name": name, "group": resource.group, "kind": plural},
            )
        selector = query.get("labelSelector", "")
        try:
            items = [i for i in items if selector_matches(selector, i["metadata"]["labels"])]
            items = [i for i in items if fields_match(query.get("fieldSelector", ""), i)]
        except ValueError as exc:
            return 400, _status(400, "BadRequest", str(exc))
        return 200, {
            "kind": f"{resource.kind}List",
            "apiVersion": resource.group_version,
            "metadata": {"resourceVersion": "1"},
            "items": items,
        }


class _Handler(FakeHandler):
    """One connection to the fake; routing lives in FakeKubeApiServer."""

    server_fake: FakeKubeApiServer

    def _user(self) -> tuple[bool, str | None]:
        """(authenticated-or-anonymous, user); (False, None) for a token the fake rejects."""
        header = self.headers.get("Authorization")
        if header is None:
            return True, None
        scheme, _, token = header.partition(" ")
        user = self.server_fake.state.tokens.get(token.strip())
        return (scheme.lower() == "bearer" and user is not None), user

    def _send(self, code: int, body: Any) -> None:
        if isinstance(body, Iterator):
            self._stream(code, body)
            return
        audit = {"Audit-Id": "00000000-0000-4000-8000-000000000000"}
        if isinstance(body, str):
            self.send(code, body.encode(), "text/plain; charset=utf-8", audit)
        else:
            self.reply(code, body, audit)

    def _handle(self) -> None:
        fake = self.server_fake
        url = urlsplit(self.path)
        ok, user = self._user()
        fake.requests.append((self.command, url.path, user or ""))
        if url.path in fake.state.stall:
            time.sleep(STALL_S)
            return
        raw = self.read_body()
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path.rstrip("/") or "/"
        if not ok:
            self._send(401, _status(401, "Unauthorized", "Unauthorized"))
        elif self.command != "GET":
            self._send(*fake.workloads.http_write(self.command, path, raw, query, user))
        else:
            self._send(*(fake.workloads.http_get(path, query, user) or fake.get(path, query, user)))

    def _stream(self, code: int, chunks: Iterator[bytes]) -> None:
        """A chunked answer (a followed log, a watch), until it ends or the client leaves."""
        self.send_response(code)
        self.send_header("Content-Type", "application/json" if code != 200 else "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in chunks:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client went away
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


# --- fixtures --------------------------------------------------------------------------------


SA_DIR_ENV = "SENSE_PREFLIGHT_SERVICEACCOUNT_DIR"


@dataclass(frozen=True)
class KubeApiServer:
    """Where the fake apiserver listens and how to reach it."""

    host: str
    port: int
    url: str
    ca_path: Path
    token: str
    fake: FakeKubeApiServer


class KubeCluster:
    """A test's handle on the fake cluster: its `state` and helpers for client configuration."""

    def __init__(self, server: KubeApiServer) -> None:
        self.server = server

    @property
    def state(self) -> ClusterState:
        return self.server.fake.state

    @state.setter
    def state(self, value: ClusterState) -> None:
        self.server.fake.state = value

    @property
    def requests(self) -> list[tuple[str, str, str]]:
        """(method, path, user) of every request the fake received, oldest first."""
        return self.server.fake.requests

    def write_kubeconfig(
        self,
        path: Path,
        *,
        token: str = TOKEN,
        context: str = "fake",
        namespace: str | None = None,
        server: str | None = None,
        user: Obj | None = None,
    ) -> Path:
        """Write a kubeconfig (certificate-authority-data, token) whose current context is ours.

        `user` replaces the token with another AuthInfo (e.g. an `exec` credential plugin).
        """
        ctx: Obj = {"cluster": "fake-cluster", "user": "fake-user"}
        if namespace:
            ctx["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "fake-cluster",
                    "cluster": {
                        "server": server or self.server.url,
                        "certificate-authority-data": base64.b64encode(
                            self.server.ca_path.read_bytes()
                        ).decode(),
                    },
                }
            ],
            "users": [{"name": "fake-user", "user": user or {"token": token}}],
            "contexts": [{"name": context, "context": ctx}],
            "current-context": context,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def write_service_account(
        self, folder: Path, *, token: str = SA_TOKEN, namespace: str = "axion-sense"
    ) -> dict[str, str]:
        """Write a service-account folder (token, ca.crt, namespace) as the kubelet mounts it.

        Returns the environment a pod would have: KUBERNETES_SERVICE_HOST/PORT and the
        variable that points the tool at this folder instead of the standard mount.
        """
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "token").write_text(token)
        (folder / "ca.crt").write_bytes(self.server.ca_path.read_bytes())
        (folder / "namespace").write_text(namespace)
        return {
            "KUBERNETES_SERVICE_HOST": self.server.host,
            "KUBERNETES_SERVICE_PORT": str(self.server.port),
            SA_DIR_ENV: str(folder),
        }


@pytest.fixture(scope="session")
def kube_apiserver(test_ca: trustme.CA, session_dir: Path) -> Iterator[KubeApiServer]:
    """The fake kube-apiserver, started once per session in a thread of the test process."""
    certs = issue_cert(test_ca, session_dir / "kube-apiserver")
    fake = FakeKubeApiServer(certs.server_context())
    fake.ca_path = certs.ca
    fake.start()
    try:
        yield KubeApiServer(
            host="127.0.0.1",
            port=fake.port,
            url=f"https://127.0.0.1:{fake.port}",
            ca_path=certs.ca,
            token=TOKEN,
            fake=fake,
        )
    finally:
        fake.stop()


@pytest.fixture
def kube(kube_apiserver: KubeApiServer) -> Iterator[KubeCluster]:
    """The fake cluster, reset to `default_state()` for this test (its pods stopped after)."""
    kube_apiserver.fake.state = default_state()
    kube_apiserver.fake.requests.clear()
    kube_apiserver.fake.workloads.reset()
    yield KubeCluster(kube_apiserver)
    kube_apiserver.fake.workloads.reset()


def run_preflight(
    kube: KubeCluster,
    folder: Path,
    check: str,
    *args: str,
    values: Obj | None = None,
    env: Mapping[str, str] | None = None,
    kubeconfig: bool | Path = True,
) -> CliResult:
    """`sense-preflight --only CHECK --format json` against the fake, from a clean HOME.

    `kubeconfig=False` gives no --kubeconfig (in-cluster or laptop-without-cluster cases); a
    path uses that kubeconfig instead of the default one.
    """
    values_file = write_values(folder, values if values is not None else example_values())
    if kubeconfig is True:
        kubeconfig = kube.write_kubeconfig(folder / "kubeconfig")
    flags = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
    return run_cli(
        values_file,
        "--only",
        check,
        "--format",
        "json",
        "--timeout",
        "5",
        *flags,
        *args,
        env={"HOME": str(folder), "KUBECONFIG": "", **(env or {})},
    )
