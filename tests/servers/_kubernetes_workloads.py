"""The FAKE apiserver's writes and workloads: what `sense-preflight in-cluster` talks to.

Part of the fake in tests/servers/kubernetes.py, kept apart so the read side stays as it was.
Written from the Kubernetes API reference (and checked with the real kubectl: `apply`, `get`,
`logs`, `wait`, in tests/test_kubernetes_workloads.py):

- create (POST) and delete (DELETE) of Secrets, ServiceAccounts, Roles, RoleBindings,
  ClusterRoles, ClusterRoleBindings, Jobs and Pods, with the apiserver's `Status` errors: 403
  for RBAC (`User "u" cannot create resource "secrets" in API group "" in the namespace "ns"`),
  404 for a missing namespace, 409 AlreadyExists, 400 for a body of the wrong kind. A Job's
  default deletion propagation is Orphan (batch/v1's legacy default): its pods are removed only
  with `propagationPolicy: Background` or `Foreground`;
- a job controller that creates the Job's pod (or, when admission rejects it, a `FailedCreate`
  Event, as Pod Security admission and ResourceQuota do), a scheduler (requests against each
  node's allocatable, nodeSelector, taints; `PodScheduled=False` with the scheduler's message),
  and a kubelet: image pulls (`ErrImagePull` then `ImagePullBackOff`, as containerd words them),
  then the container really runs — `sense-preflight` as a subprocess of the test process, with
  the Secret volume written to a folder, an emptyDir for /tmp, a service-account token whose
  user has exactly the RBAC of the stored Roles and bindings, and the downward-API env;
- pod logs (`/log`, `follow=true` streamed while the container runs), Events with
  `fieldSelector`, and `watch=true` on lists (what `kubectl wait` uses).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import random
import re
import shutil
import string
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.servers.kubernetes import FakeKubeApiServer, Resource

Obj = dict[str, Any]
Answer = tuple[int, Any]

SA_DIR_ENV = "SENSE_PREFLIGHT_SERVICEACCOUNT_DIR"
#: What the kubelet runs for the image's `sense-preflight` entry point.
PREFLIGHT = [sys.executable, "-m", "preflight"]
PULL_BACKOFF_S = 0.3
STOP_GRACE_S = 5.0
WATCH_POLL_S = 0.05
RBAC_GROUP = "rbac.authorization.k8s.io"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def status(code: int, reason: str, message: str, details: Obj | None = None) -> Obj:
    """A meta/v1 Status, the read side's (tests.servers.kubernetes)."""
    from tests.servers.kubernetes import _status

    body = _status(code, reason, message, details)
    if code < 400:
        body["status"] = "Success"
    return body


@dataclass
class WorkloadSettings:
    """How the fake's nodes answer a pod; tests change it (reset with the cluster state)."""

    #: Images the "registries" hold → the pull Secret they need (None: public).
    images: dict[str, str | None] = field(default_factory=dict)
    #: When set, admission rejects every pod with this message ({pod} is its name): Pod
    #: Security admission's or a ResourceQuota's words, as the job controller's Event shows.
    pod_rejection: str = ""
    #: A folder with the `pynvml` stand-in that the NVIDIA container runtime "mounts" into a pod
    #: given a GPU (None: no node has a working driver), and nodes whose driver is broken.
    gpu_driver: Path | None = None
    broken_driver_nodes: set[str] = field(default_factory=set)


@dataclass
class PodRun:
    """One container the fake kubelet runs: its process, its log, when it ended."""

    process: subprocess.Popen[bytes] | None = None
    log: bytearray = field(default_factory=bytearray)
    started: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    folder: Path | None = None


# --- quantities and selectors ----------------------------------------------------------------

_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}


def quantity(text: str | int | float) -> float:
    """A resource.Quantity as a number (`100m` → 0.1, `128Mi` → 134217728)."""
    text = str(text)
    if text.endswith("m"):
        return float(text[:-1]) / 1000
    for suffix, factor in _UNITS.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def field_value(obj: Obj, path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return "" if node is None else str(node)


def fields_match(selector: str, obj: Obj) -> bool:
    """A field selector (`involvedObject.name=x,metadata.name!=y`)."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        m = re.fullmatch(r"([\w.]+)\s*(==|!=|=)\s*(.*)", term)
        if not m:
            raise ValueError(f"invalid field selector: {term!r}")
        equal = field_value(obj, m[1]) == m[3]
        if equal != (m[2] != "!="):
            return False
    return True


# --- Pod Security admission (the restricted profile's checks our pods can meet or miss) ------


def pod_security_violations(pod_spec: Obj, level: str) -> list[str]:
    """What the `baseline`/`restricted` Pod Security Standard finds wrong with a pod spec."""
    problems: list[str] = []
    pod_ctx = pod_spec.get("securityContext") or {}
    containers = pod_spec.get("containers") or []
    for c in containers:
        ctx = c.get("securityContext") or {}
        if ctx.get("privileged"):
            problems.append(f'privileged (container "{c["name"]}" must not set privileged=true)')
    if pod_spec.get("hostNetwork") or pod_spec.get("hostPID"):
        problems.append("host namespaces (hostNetwork=true or hostPID=true)")
    if level != "restricted":
        return problems
    for c in containers:
        ctx = c.get("securityContext") or {}
        name = c["name"]
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append(
                f'allowPrivilegeEscalation != false (container "{name}" must set '
                "securityContext.allowPrivilegeEscalation=false)"
            )
        if "ALL" not in ((ctx.get("capabilities") or {}).get("drop") or []):
            problems.append(
                f'unrestricted capabilities (container "{name}" must set '
                'securityContext.capabilities.drop=["ALL"])'
            )
        if not (ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))):
            problems.append(
                f'runAsNonRoot != true (pod or container "{name}" must set '
                "securityContext.runAsNonRoot=true)"
            )
        seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(
                f'seccompProfile (pod or container "{name}" must set '
                'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
            )
    allowed = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim"}
    allowed |= {"projected", "secret"}
    for volume in pod_spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= allowed:
            problems.append(f'restricted volume types (volume "{volume["name"]}" uses {kinds})')
    return problems


# --- the store's writes, the controllers and the kubelet --------------------------------------


class Workloads:
    """Writes, the job controller, the scheduler and the kubelet of one fake apiserver."""

    def __init__(self, fake: FakeKubeApiServer) -> None:
        self.fake = fake
        self.settings = WorkloadSettings()
        self.lock = threading.RLock()
        self.runs: dict[tuple[str, str], PodRun] = {}
        #: Service-account users whose tokens the kubelet issued: RBAC from the stored objects.
        self.kubelet_users: set[str] = set()
        #: Every object created through the API, as stored (kept after its deletion).
        self.created: list[Obj] = []
        self._versions = itertools.count(100)

    def reset(self, images: Mapping[str, str | None] | None = None) -> None:
        """Stop every container and forget every run (between tests)."""
        for run in list(self.runs.values()):
            self._stop(run)
        self.runs.clear()
        self.kubelet_users.clear()
        self.created.clear()
        self.settings = WorkloadSettings(images=dict(images or {}))

    # The store.

    @property
    def objects(self) -> list[Obj]:
        return self.fake.state.objects

    def find(self, kind: str, name: str, ns: str | None) -> Obj | None:
        for obj in self.objects:
            meta = obj["metadata"]
            if obj.get("kind") == kind and meta["name"] == name and meta.get("namespace") == ns:
                return obj
        return None

    def touch(self, obj: Obj, **changes: Any) -> None:
        """Replace top-level parts of a stored object and give it a new resourceVersion."""
        for key, value in changes.items():
            obj[key] = value
        obj["metadata"] = {**obj["metadata"], "resourceVersion": str(next(self._versions))}

    def _remove(self, obj: Obj) -> None:
        self.fake.state.objects = [o for o in self.objects if o is not obj]

    def _store(self, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("labels", {})
        meta.update(
            uid=str(uuid.uuid4()),
            resourceVersion=str(next(self._versions)),
            creationTimestamp=now(),
        )
        self.fake.state.objects = [*self.objects, obj]
        return obj

    def event(self, about: Obj, reason: str, message: str, warning: bool = False) -> None:
        """A core/v1 Event about an object, as the controllers and the kubelet record them."""
        meta = about["metadata"]
        component = {"Pod": "kubelet", "Job": "job-controller"}.get(about["kind"], "")
        if reason in ("Scheduled", "FailedScheduling"):
            component = "default-scheduler"
        self._store(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                    "namespace": meta.get("namespace"),
                },
                "involvedObject": {
                    "apiVersion": about["apiVersion"],
                    "kind": about["kind"],
                    "name": meta["name"],
                    "namespace": meta.get("namespace"),
                    "uid": meta["uid"],
                },
                "reason": reason,
                "message": message,
                "type": "Warning" if warning else "Normal",
                "source": {"component": component},
                "reportingComponent": component,
                "firstTimestamp": now(),
                "lastTimestamp": now(),
                "count": 1,
            }
        )

    # The HTTP side: routing.

    def route(self, path: str) -> tuple[Resource, str | None, str | None, str] | None:
        """(resource, namespace, name, subresource) of an API path, None when none is served."""
        for resource in self.fake.discovery():
            prefix = (
                "/api/v1" if resource.group_version == "v1" else f"/apis/{resource.group_version}"
            )
            if not path.startswith(prefix + "/"):
                continue
            parts = path[len(prefix) + 1 :].split("/")
            ns = None
            if len(parts) >= 3 and parts[0] == "namespaces":
                ns, parts = parts[1], parts[2:]
            if parts[0] != resource.plural or len(parts) > 3:
                continue
            if ns is not None and not resource.namespaced:
                return None
            return resource, ns, (parts[1] if len(parts) > 1 else None), "/".join(parts[2:])
        return None

    def http_write(
        self, method: str, path: str, raw: bytes, query: Mapping[str, str], user: str | None
    ) -> Answer:
        """Any non-GET request."""
        if user is None:
            return 403, status(
                403,
                "Forbidden",
                f'forbidden: User "system:anonymous" cannot {method.lower()} path "{path}"',
            )
        routed = self.route(path)
        if routed is None or routed[3]:
            return 404, status(404, "NotFound", "the server could not find the requested resource")
        resource, ns, name, _ = routed
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return 400, status(400, "BadRequest", "the body is not JSON")
        if method == "DELETE" and "propagationPolicy" in query:
            body = {**(body or {}), "propagationPolicy": query["propagationPolicy"]}
        return self.write(method, resource, ns, name, body, user)

    def http_get(self, path: str, query: Mapping[str, str], user: str | None) -> Answer | None:
        """The GETs the read side does not answer: pod logs and watches (None: not one)."""
        routed = self.route(path) if user is not None else None
        if routed is None:
            return None
        resource, ns, name, sub = routed
        if sub == "log" and resource.plural == "pods" and ns and name:
            from tests.servers.kubernetes import Resource as Kind

            logs = Kind("", "v1", "pods/log", "Pod", True)
            if not self.fake._allowed(user, "get", logs, name, ns):  # type: ignore[arg-type]
                return 403, forbidden(user, "get", logs, name, ns)  # type: ignore[arg-type]
            return self.log(ns, name, query)
        if query.get("watch") in ("true", "1") and name is None and not sub:
            if not self.fake._allowed(user, "watch", resource, None, ns):  # type: ignore[arg-type]
                return 403, forbidden(user, "watch", resource, None, ns)  # type: ignore[arg-type]
            return 200, self.watch(resource.kind, ns, query)
        return None

    # The HTTP side: every write.

    def write(
        self,
        method: str,
        resource: Resource,
        ns: str | None,
        name: str | None,
        body: Any,
        user: str,
    ) -> Answer:
        """POST (create) or DELETE (by name) of one object, as the apiserver answers them."""
        verb = {"POST": "create", "DELETE": "delete"}.get(method)
        if verb is None or (verb == "create") == (name is not None):
            return 405, status(405, "MethodNotAllowed", f"{method} is not supported by the fake")
        if not self.fake._allowed(user, verb, resource, name, ns):
            return 403, forbidden(user, verb, resource, name, ns)
        if ns is not None and self.find("Namespace", ns, None) is None:
            return 404, status(
                404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"}
            )
        with self.lock:
            if verb == "create":
                return self.create(resource, ns, body)
            assert name is not None
            policy = (body or {}).get("propagationPolicy") if isinstance(body, dict) else None
            return self.delete(resource, ns, name, policy)

    def create(self, resource: Resource, ns: str | None, body: Any) -> Answer:
        if not isinstance(body, dict) or body.get("kind") != resource.kind:
            return 400, status(400, "BadRequest", f"the body is not a {resource.kind}")
        name = (body.get("metadata") or {}).get("name")
        if not name:
            return 422, status(
                422, "Invalid", f"{resource.kind} is invalid: metadata.name: Required value"
            )
        if self.find(resource.kind, name, ns) is not None:
            return 409, status(
                409,
                "AlreadyExists",
                f'{_qualified(resource)} "{name}" already exists',
                {"name": name, "group": resource.group, "kind": resource.plural},
            )
        obj = json.loads(json.dumps(body))
        if ns is not None:
            obj["metadata"]["namespace"] = ns
        if resource.kind == "Secret":
            data = dict(obj.get("data") or {})
            for key, value in (obj.pop("stringData", None) or {}).items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            obj["data"] = data
            obj.setdefault("type", "Opaque")
        if resource.kind == "Job":
            self._prepare_job(obj)
        if resource.kind == "Pod":
            rejection = self._admission(str(ns), name, obj.get("spec") or {})
            if rejection:
                return 403, status(403, "Forbidden", rejection, {"name": name, "kind": "pods"})
            obj["status"] = {"phase": "Pending", "qosClass": "Burstable", "conditions": []}
        self._store(obj)
        self.created.append(obj)
        if resource.kind in ("Job", "Pod"):
            run = self._run_job if resource.kind == "Job" else self._lifecycle
            threading.Thread(target=run, args=(obj,), daemon=True).start()
        return 201, obj

    def delete(self, resource: Resource, ns: str | None, name: str, policy: str | None) -> Answer:
        obj = self.find(resource.kind, name, ns)
        if obj is None:
            return 404, status(
                404,
                "NotFound",
                f'{_qualified(resource)} "{name}" not found',
                {"name": name, "group": resource.group, "kind": resource.plural},
            )
        self._remove(obj)
        uid = obj["metadata"]["uid"]
        if resource.kind == "Pod":
            self._stop_pod(obj)
        for pod in [o for o in self.objects if o.get("kind") == "Pod"]:
            owners = pod["metadata"].get("ownerReferences") or []
            if any(owner.get("uid") == uid for owner in owners):
                if (policy or "Orphan") in ("Background", "Foreground"):
                    self._remove(pod)
                    self._stop_pod(pod)
                else:  # batch/v1 Jobs orphan their pods unless told otherwise
                    pod["metadata"] = {**pod["metadata"], "ownerReferences": []}
        return 200, status(
            200,
            "Success",
            "",
            {"name": name, "group": resource.group, "kind": resource.plural, "uid": uid},
        )

    # RBAC of the service accounts the kubelet gave tokens to.

    def bound_rules(self, user: str) -> list[tuple[str | None, Obj]] | None:
        """(namespace or None, PolicyRule) the stored bindings give `user`; None when the fake
        does not enforce RBAC for this user."""
        if user not in self.kubelet_users:
            return None
        _, _, ns, sa = user.split(":", 3)
        rules: list[tuple[str | None, Obj]] = []
        for binding in self.objects:
            if binding.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
                continue
            subjects = binding.get("subjects") or []
            if not any(
                s.get("kind") == "ServiceAccount"
                and s.get("name") == sa
                and s.get("namespace") == ns
                for s in subjects
            ):
                continue
            ref = binding.get("roleRef") or {}
            where = binding["metadata"].get("namespace")
            role = self.find(
                ref.get("kind", ""),
                ref.get("name", ""),
                where if ref.get("kind") == "Role" else None,
            )
            for rule in (role or {}).get("rules") or []:
                rules.append((where, rule))
        return rules

    # The job controller, the scheduler and the kubelet.

    @staticmethod
    def _prepare_job(job: Obj) -> None:
        """What the apiserver defaults on a Job: its selector and its pods' labels."""
        uid = str(uuid.uuid4())
        job["metadata"]["uid"] = uid
        name = job["metadata"]["name"]
        labels = {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
        spec = job.setdefault("spec", {})
        spec.setdefault("backoffLimit", 6)
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        template = spec.setdefault("template", {})
        meta = template.setdefault("metadata", {})
        meta["labels"] = {**(meta.get("labels") or {}), **labels}
        job["status"] = {}

    def _run_job(self, job: Obj) -> None:
        try:
            self._job(job)
        except Exception as exc:  # a bug in the fake must show in the test, not vanish
            self.event(job, "FakeError", f"{type(exc).__name__}: {exc}", warning=True)
            raise

    def _job(self, job: Obj) -> None:
        meta = job["metadata"]
        ns = meta["namespace"]
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        pod_name = f"{meta['name']}-{suffix}"
        template = job["spec"]["template"]
        rejection = self._admission(ns, pod_name, template["spec"])
        if rejection:
            self.event(job, "FailedCreate", f"Error creating: {rejection}", warning=True)
            return
        pod = self._store(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod_name,
                    "namespace": ns,
                    "labels": dict(template["metadata"]["labels"]),
                    "ownerReferences": [
                        {
                            "apiVersion": "batch/v1",
                            "kind": "Job",
                            "name": meta["name"],
                            "uid": meta["uid"],
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "spec": json.loads(json.dumps(template["spec"])),
                "status": {"phase": "Pending", "qosClass": "Burstable", "conditions": []},
            }
        )
        self.event(job, "SuccessfulCreate", f"Created pod: {pod_name}")
        self.touch(job, status={"active": 1, "startTime": now(), "ready": 0})
        code = self._lifecycle(pod)
        if code is None:
            return
        succeeded = code == 0
        finished = now()
        condition = _condition("Complete" if succeeded else "Failed", "True")
        condition["lastProbeTime"] = finished
        if not succeeded:
            condition.update(
                reason="BackoffLimitExceeded", message="Job has reached the specified backoff limit"
            )
        done: Obj = {"startTime": job["status"].get("startTime"), "ready": 0}
        done.update({"succeeded": 1, "completionTime": finished} if succeeded else {"failed": 1})
        self.touch(job, status={**done, "conditions": [condition]})
        if not succeeded:
            self.event(
                job, "BackoffLimitExceeded", "Job has reached the specified backoff limit", True
            )

    def _lifecycle(self, pod: Obj) -> int | None:
        """Schedule, pull, run: the container's exit code (None when it never ended)."""
        meta = pod["metadata"]
        self.runs[(meta["namespace"], meta["name"])] = run = PodRun()
        node = self._schedule(pod)
        if node is None or not self._pull(pod, run):
            return None
        return self._start(pod, run, node)

    def _admission(self, ns: str, pod_name: str, spec: Obj) -> str:
        """Why admission rejects the pod ("" when it admits it)."""
        if self.settings.pod_rejection:
            return self.settings.pod_rejection.format(pod=pod_name)
        namespace = self.find("Namespace", ns, None) or {"metadata": {}}
        level = (namespace["metadata"].get("labels") or {}).get(
            "pod-security.kubernetes.io/enforce", "privileged"
        )
        problems = pod_security_violations(spec, level)
        if not problems:
            return ""
        return (
            f'pods "{pod_name}" is forbidden: violates PodSecurity "{level}:latest": '
            + ", ".join(problems)
        )

    def _schedule(self, pod: Obj) -> str | None:
        """Bind the pod to the first node that fits, or mark it unschedulable."""
        spec = pod["spec"]
        requests: dict[str, float] = {}
        for c in spec.get("containers") or []:
            res = c.get("resources") or {}
            for key, value in {**(res.get("limits") or {}), **(res.get("requests") or {})}.items():
                requests[key] = requests.get(key, 0.0) + quantity(value)
        nodes = [o for o in self.objects if o.get("kind") == "Node"]
        why: dict[str, int] = {}
        for node in nodes:
            reason = self._misfit(node, spec, requests)
            if reason is None:
                name = node["metadata"]["name"]
                self.touch(pod, spec={**spec, "nodeName": name})
                self._set_status(pod, conditions=[_condition("PodScheduled", "True")])
                self.event(pod, "Scheduled", f"Successfully assigned {_ref(pod)} to {name}")
                return name
            why[reason] = why.get(reason, 0) + 1
        message = f"0/{len(nodes)} nodes are available: " + ", ".join(
            f"{count} {reason}" for reason, count in sorted(why.items())
        )
        message += (
            f". preemption: 0/{len(nodes)} nodes are available: {len(nodes)} Preemption is not "
            "helpful for scheduling."
        )
        self._set_status(
            pod, conditions=[_condition("PodScheduled", "False", "Unschedulable", message)]
        )
        self.event(pod, "FailedScheduling", message, warning=True)
        return None

    @staticmethod
    def _misfit(node: Obj, spec: Obj, requests: Mapping[str, float]) -> str | None:
        labels = node["metadata"].get("labels") or {}
        selector = spec.get("nodeSelector") or {}
        if any(labels.get(k) != v for k, v in selector.items()):
            return "node(s) didn't match Pod's node affinity/selector"
        tolerations = spec.get("tolerations") or []
        for taint in (node.get("spec") or {}).get("taints") or []:
            if taint.get("effect") not in ("NoSchedule", "NoExecute"):
                continue
            if not any(_tolerates(t, taint) for t in tolerations):
                return f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"
        allocatable = node["status"].get("allocatable") or {}
        for key, wanted in requests.items():
            if wanted > quantity(allocatable.get(key, 0)):
                return f"Insufficient {key}"
        return None

    def _pull(self, pod: Obj, run: PodRun) -> bool:
        """Pull the container's image the way containerd answers; False when it cannot."""
        container = pod["spec"]["containers"][0]
        image = container["image"]
        self._waiting(pod, container["name"], "ContainerCreating", "")
        self.event(pod, "Pulling", f'Pulling image "{image}"')
        ns = pod["metadata"]["namespace"]
        given = {s.get("name") for s in pod["spec"].get("imagePullSecrets") or []}
        held = {name for name in given if self.find("Secret", name, ns) is not None}
        if image not in self.settings.images:
            cause = (
                f"rpc error: code = NotFound desc = failed to pull and unpack image "
                f'"{image}": failed to resolve reference "{image}": {image}: not found'
            )
        elif (needed := self.settings.images[image]) is not None and needed not in held:
            cause = (
                f"rpc error: code = Unknown desc = failed to pull and unpack image "
                f'"{image}": failed to resolve reference "{image}": pull access denied, '
                "repository does not exist or may require authorization: server message: "
                "insufficient_scope: authorization failed"
            )
        else:
            self.event(pod, "Pulled", f'Successfully pulled image "{image}" in 1.2s')
            return True
        message = f'Failed to pull image "{image}": {cause}'
        self._waiting(pod, container["name"], "ErrImagePull", message)
        self.event(pod, "Failed", message, warning=True)
        self.event(pod, "Failed", "Error: ErrImagePull", warning=True)
        if not run.done.wait(PULL_BACKOFF_S):
            self._waiting(
                pod, container["name"], "ImagePullBackOff", f'Back-off pulling image "{image}"'
            )
            self.event(pod, "BackOff", f'Back-off pulling image "{image}"', warning=True)
        return False

    def _start(self, pod: Obj, run: PodRun, node: str) -> int | None:
        """Run the container; its exit code (None when the pod was deleted meanwhile)."""
        container = pod["spec"]["containers"][0]
        run.folder = Path(tempfile.mkdtemp(prefix="fake-kubelet-"))
        try:
            command, env = self._container(pod, container, run.folder, node)
            with self.lock:
                if run.done.is_set():
                    return None
                run.process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=run.folder,
                )
            started = now()
            self.event(pod, "Created", f"Created container {container['name']}")
            self.event(pod, "Started", f"Started container {container['name']}")
            run.started = True
            self._set_status(
                pod,
                phase="Running",
                startTime=started,
                conditions=[
                    _condition(kind, "True")
                    for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
                ],
                containerStatuses=[
                    _container_status(container, {"running": {"startedAt": started}}, True)
                ],
            )
            assert run.process.stdout is not None
            for chunk in iter(lambda: run.process.stdout.read1(65536), b""):  # type: ignore[union-attr]
                run.log += chunk
            code = run.process.wait()
        finally:
            shutil.rmtree(run.folder, ignore_errors=True)
        if run.done.is_set():
            return None
        finished = now()
        self._set_status(
            pod,
            phase="Succeeded" if code == 0 else "Failed",
            conditions=[
                _condition("PodScheduled", "True"),
                _condition("Initialized", "True"),
                _condition("ContainersReady", "False", "PodCompleted"),
                _condition("Ready", "False", "PodCompleted"),
            ],
            containerStatuses=[
                _container_status(
                    container,
                    {
                        "terminated": {
                            "exitCode": code,
                            "reason": "Completed" if code == 0 else "Error",
                            "startedAt": pod["status"].get("startTime"),
                            "finishedAt": finished,
                        }
                    },
                    False,
                )
            ],
        )
        run.done.set()
        return code

    def _container(
        self, pod: Obj, container: Obj, folder: Path, node: str
    ) -> tuple[list[str], dict[str, str]]:
        """The command and environment of the container: volumes become folders, the
        service-account token a fresh one whose user has the stored RBAC."""
        spec, meta = pod["spec"], pod["metadata"]
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        mounts: dict[str, str] = {}
        for mount in container.get("volumeMounts") or []:
            target = folder / "volumes" / mount["name"]
            target.mkdir(parents=True, exist_ok=True)
            volume = volumes.get(mount["name"]) or {}
            if "secret" in volume:
                stored = self.find("Secret", volume["secret"]["secretName"], meta["namespace"])
                for key, value in ((stored or {}).get("data") or {}).items():
                    (target / key).write_bytes(base64.b64decode(value))
            mounts[mount["mountPath"]] = str(target)

        def host(text: str) -> str:
            for path, local in sorted(mounts.items(), key=lambda m: -len(m[0])):
                if text == path or text.startswith(path + "/"):
                    return local + text[len(path) :]
            return text

        account = spec.get("serviceAccountName") or "default"
        user = f"system:serviceaccount:{meta['namespace']}:{account}"
        token = f"fake-kubelet-{uuid.uuid4().hex}"
        self.fake.state.tokens[token] = user
        self.kubelet_users.add(user)
        sa = folder / "serviceaccount"
        sa.mkdir()
        (sa / "token").write_text(token)
        (sa / "ca.crt").write_bytes(self.fake.ca_path.read_bytes())
        (sa / "namespace").write_text(meta["namespace"])
        fields = {"spec.nodeName": node, "metadata.name": meta["name"]}
        fields["metadata.namespace"] = meta["namespace"]
        env = {
            key: value
            for key, value in os.environ.items()
            if key in ("PATH", "PYTHONPATH", "LANG", "SENSE_TEST_TOOLS")
        }
        for item in container.get("env") or []:
            ref = (item.get("valueFrom") or {}).get("fieldRef") or {}
            env[item["name"]] = (
                fields.get(ref.get("fieldPath", ""), "") if ref else host(item.get("value", ""))
            )
        if self._driver_mounted(container, node) and self.settings.gpu_driver is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(self.settings.gpu_driver), env.get("PYTHONPATH")])
            )
        env.update(
            KUBERNETES_SERVICE_HOST="127.0.0.1",
            KUBERNETES_SERVICE_PORT=str(self.fake.port),
            HOSTNAME=meta["name"],
            **{SA_DIR_ENV: str(sa)},
        )
        command = [
            host(part)
            for part in [
                *(container.get("command") or ["sense-preflight"]),
                *(container.get("args") or []),
            ]
        ]
        # The image's `sense-preflight` is this test process's own interpreter: a host path,
        # never one of the pod's mounts (the checkout itself may live under /tmp).
        if command[0] == "sense-preflight":
            command = [*PREFLIGHT, *command[1:]]
        return command, env

    def _driver_mounted(self, container: Obj, node: str) -> bool:
        """Whether the NVIDIA runtime gives this container the driver: it asks for a GPU on a
        node that has one and a working driver."""
        limits = (container.get("resources") or {}).get("limits") or {}
        found = self.find("Node", node, None) or {"status": {}}
        has = quantity((found["status"].get("allocatable") or {}).get("nvidia.com/gpu", 0))
        wanted = quantity(limits.get("nvidia.com/gpu", 0))
        return 0 < wanted <= has and node not in self.settings.broken_driver_nodes

    def _set_status(self, pod: Obj, **changes: Any) -> None:
        self.touch(pod, status={**pod["status"], **changes})

    def _waiting(self, pod: Obj, name: str, reason: str, message: str) -> None:
        state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        container = next(c for c in pod["spec"]["containers"] if c["name"] == name)
        self._set_status(pod, containerStatuses=[_container_status(container, state, False)])

    def _stop_pod(self, pod: Obj) -> None:
        run = self.runs.pop((pod["metadata"]["namespace"], pod["metadata"]["name"]), None)
        if run is not None:
            self._stop(run)

    def _stop(self, run: PodRun) -> None:
        """The kubelet stops a deleted pod's container: SIGTERM, then SIGKILL after the grace."""
        with self.lock:
            run.done.set()
            process = run.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    # Logs and watches: the streaming answers.

    def log(self, ns: str, name: str, query: Mapping[str, str]) -> Answer:
        """`GET .../pods/<name>/log[?follow=true]`: text, or a stream while it runs."""
        pod = self.find("Pod", name, ns)
        run = self.runs.get((ns, name))
        if pod is None:
            return 404, status(
                404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"}
            )
        container = query.get("container") or pod["spec"]["containers"][0]["name"]
        if run is None or not run.started:
            waiting = ((pod["status"].get("containerStatuses") or [{}])[0].get("state") or {}).get(
                "waiting"
            ) or {"reason": "ContainerCreating"}
            what = (
                "trying and failing to pull image"
                if waiting["reason"] in ("ErrImagePull", "ImagePullBackOff")
                else waiting["reason"]
            )
            return 400, status(
                400,
                "BadRequest",
                f'container "{container}" in pod "{name}" is waiting to start: {what}',
            )
        if query.get("follow") != "true":
            return 200, bytes(run.log).decode("utf-8", "replace")
        return 200, _follow(run)

    def watch(self, kind: str, ns: str | None, query: Mapping[str, str]) -> Iterator[bytes]:
        """`?watch=true`: ADDED/MODIFIED/DELETED events of the matching objects, as JSON lines."""
        from tests.servers.kubernetes import selector_matches

        labels, fields = query.get("labelSelector", ""), query.get("fieldSelector", "")
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 60)
        since = int(query.get("resourceVersion") or 0)
        seen: dict[str, str] = {}

        def matching() -> dict[str, Obj]:
            return {
                o["metadata"]["uid"]: o
                for o in self.objects
                if o.get("kind") == kind
                and (ns is None or o["metadata"].get("namespace") == ns)
                and selector_matches(labels, o["metadata"].get("labels") or {})
                and fields_match(fields, o)
            }

        while time.monotonic() < deadline:
            current = matching()
            for uid, obj in current.items():
                version = obj["metadata"]["resourceVersion"]
                if seen.get(uid) != version and int(version) > since:
                    kind_of = "MODIFIED" if uid in seen or int(version) > since > 0 else "ADDED"
                    yield (json.dumps({"type": kind_of, "object": obj}) + "\n").encode()
                seen[uid] = version
            for uid in [u for u in seen if u not in current]:
                del seen[uid]
            time.sleep(WATCH_POLL_S)


def _follow(run: PodRun) -> Iterator[bytes]:
    sent = 0
    while True:
        finished = run.done.is_set() or (run.process is not None and run.process.poll() is not None)
        if len(run.log) > sent:
            chunk = bytes(run.log[sent:])
            sent += len(chunk)
            yield chunk
        elif finished:
            time.sleep(0.05)  # the reader thread's last chunk
            if len(run.log) == sent:
                return
        else:
            time.sleep(0.02)


def forbidden(user: str, verb: str, resource: Resource, name: str | None, ns: str | None) -> Obj:
    """The 403 Status RBAC answers with."""
    scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
    what = f'{resource.plural} "{name}"' if name else resource.plural
    details: Obj = {"group": resource.group, "kind": resource.plural}
    if name:
        details["name"] = name
    return status(
        403,
        "Forbidden",
        f'{what} is forbidden: User "{user}" cannot {verb} resource "{resource.plural}" '
        f'in API group "{resource.group}" {scope}',
        details,
    )


def _qualified(resource: Resource) -> str:
    return f"{resource.plural}.{resource.group}" if resource.group else resource.plural


def _ref(obj: Obj) -> str:
    return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"


def _condition(kind: str, value: str, reason: str = "", message: str = "") -> Obj:
    cond: Obj = {"type": kind, "status": value, "lastProbeTime": None, "lastTransitionTime": now()}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def _container_status(container: Obj, state: Obj, ready: bool) -> Obj:
    return {
        "name": container["name"],
        "image": container["image"],
        "imageID": "",
        "ready": ready,
        "restartCount": 0,
        "started": "running" in state,
        "state": state,
        "lastState": {},
    }


def _tolerates(toleration: Obj, taint: Obj) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("operator") == "Exists":
        return not toleration.get("key") or toleration["key"] == taint.get("key")
    return toleration.get("key") == taint.get("key") and toleration.get("value", "") == taint.get(
        "value", ""
    )
