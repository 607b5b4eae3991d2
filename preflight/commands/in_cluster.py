"""`sense-preflight in-cluster`: the whole Job flow in one command.

The values are merged here exactly as `run` merges them (so `--set` secrets never touch a
file) and go into a Secret; a ServiceAccount, the read-only RBAC of the selected cluster checks
(`sense-preflight job`'s manifests) and the Job follow, all named `sense-preflight-<random>`
and labelled with that name; with the `gpu` check, a GPU probe pod runs first
(gpu_probe_pod.py). The pod's log is shown as it comes; the report framed at its end
(preflight.report.frame) is rendered here like `run`'s, and the exit code is the preflight's.
Whatever happens — a failure, the deadline, Ctrl-C — everything created is deleted again,
unless `--keep`.
"""

from __future__ import annotations

import base64
import json
import secrets
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import click
import yaml

from preflight.commands import gpu_probe_pod
from preflight.commands import job as job_manifests
from preflight.commands.cluster_client import Cluster, ClusterError, Manifest
from preflight.commands.run import Invocation, _selected
from preflight.commands.run import execute as run_locally
from preflight.commands.start_failures import job_rejection, pod_problem
from preflight.engine.check import Access
from preflight.report import frame
from preflight.report.exit_codes import EXIT_INTERNAL, EXIT_INTERRUPTED, exit_code
from preflight.report.redact import Redactor
from preflight.report.renderers import rendered
from preflight.report.result import Report, Status
from preflight.values.chart import pull_secret_names
from preflight.values.check import load_checked
from preflight.values.load import Values

CONTAINER = "preflight"
CA_KEY = "ca-bundle.crt"
POLL_S = 0.5
#: How long the pod may run past the per-check --timeout (start-up, the report's writing).
RUN_GRACE_S = 60.0


@dataclass(frozen=True)
class Target:
    """The cluster side of the command line."""

    image: str
    image_pull_secrets: tuple[str, ...] = ()
    keep: bool = False
    start_timeout_s: float = 300.0


@dataclass(frozen=True)
class Wants:
    """What the selected checks need beside the Job: the GPU probe."""

    gpu_probe: bool


@dataclass
class Created:
    """What this run created, in order (deleted in reverse)."""

    objects: list[tuple[str, str]] = field(default_factory=list)

    def add(self, manifest: Manifest) -> None:
        self.objects.append((manifest["kind"], manifest["metadata"]["name"]))


def execute(call: Invocation, target: Target) -> int:
    """Run the preflight as a Job and bring its report back; the exit code."""
    given = call.inputs
    values, values_check = load_checked(given.source, given.chart, given.facts)
    if values is None or values_check.status is Status.FAIL:
        return run_locally(call)  # the values report, exit 2: the cluster is not touched
    checks = _selected(values, values_check, call.only, call.skip)  # unknown ids: exit 2
    redact = Redactor.for_values(values.data)
    say = _say(redact)
    access = job_manifests.declared_access(checks)
    wants = Wants(
        gpu_probe=any(
            check.id == "gpu" and (check.applies is None or check.applies(values) is None)
            for check in checks
        ),
    )
    spec, data = plan(call, target, values, access)
    try:
        cluster = Cluster.connect(call.options.kubeconfig, call.options.context, spec.namespace)
    except ClusterError as exc:
        return _failed(exc, redact)
    say(f"run {spec.name} in namespace {spec.namespace} of {cluster.server}, image {spec.image}")
    created = Created()
    try:
        report, node, pod = _run(cluster, spec, data, values, wants, created, call, target, say)
        code = exit_code(report, call.strict)
        _render(report, call, values, redact, where={"in_cluster": True, "node": node, "pod": pod})
    except ClusterError as exc:
        code = _failed(exc, redact)
    except OSError as exc:
        code = _failed(
            ClusterError(f"cannot write {exc.filename}: {exc.strerror}", "fix the path"), redact
        )
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        code = EXIT_INTERRUPTED
    except Exception as exc:  # never a traceback, never a secret
        code = _failed(
            ClusterError(f"internal error: {type(exc).__name__}: {exc}", "report it"), redact
        )
    finally:
        with _uninterrupted():
            _clean_up(cluster, spec, created, target.keep, say)
    return code


def plan(
    call: Invocation, target: Target, values: Values, access: tuple[Access, ...]
) -> tuple[job_manifests.JobSpec, dict[str, str]]:
    """The run's Job (one unique name for everything) and what its Secret holds: the merged
    values (and the --ca-bundle)."""
    name = f"sense-preflight-{secrets.token_hex(4)}"
    options = call.options
    args = [
        *job_manifests.run_args(
            options.timeout_s, call.only, call.skip, call.strict, options.read_only
        ),
        "--report-frame",
    ]
    data = {job_manifests.VALUES_KEY: yaml.safe_dump(dict(values.data), sort_keys=False)}
    if options.ca_bundle is not None:
        data[CA_KEY] = options.ca_bundle.read_text()
        args += ["--ca-bundle", f"{job_manifests.VALUES_DIR}/{CA_KEY}"]
    if options.insecure_skip_tls_verify:
        args.append("--insecure-skip-tls-verify")
    spec = job_manifests.JobSpec(
        namespace=options.namespace,
        name=name,
        image=target.image,
        values_secret=f"{name}-values",
        pull_secrets=pull_secret_names(values),
        access=access,
        image_pull_secrets=target.image_pull_secrets,
        run_args=tuple(args),
        active_deadline_seconds=int(target.start_timeout_s + options.timeout_s + RUN_GRACE_S),
    )
    return spec, data


def secret(spec: job_manifests.JobSpec, data: dict[str, str]) -> Manifest:
    """The Secret the Job mounts (immutable; never printed)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": spec.values_secret,
            "namespace": spec.namespace,
            "labels": job_manifests.labels(spec),
        },
        "type": "Opaque",
        "immutable": True,
        "data": {key: base64.b64encode(text.encode()).decode() for key, text in data.items()},
    }


def _run(
    cluster: Cluster,
    spec: job_manifests.JobSpec,
    data: dict[str, str],
    values: Values,
    wants: Wants,
    created: Created,
    call: Invocation,
    target: Target,
    say: Callable[[str], None],
) -> tuple[Report, str, str]:
    """Create, (probe the GPU,) wait for the pod, follow its log; the report, node and pod."""
    start_by = time.monotonic() + target.start_timeout_s
    needed = {
        "ClusterRole": bool(job_manifests.cluster_rules(spec)),
        "Role": bool(job_manifests.namespace_rules(spec)),
    }
    for manifest in job_manifests.access(spec):  # no Role or ClusterRole without rules
        if needed.get(manifest["kind"].removesuffix("Binding"), True):
            _create(cluster, manifest, created)
    if wants.gpu_probe:
        answer = _probe_gpu(cluster, spec, values, created, start_by, say)
        data = {**data, gpu_probe_pod.PROBE_KEY: json.dumps(answer)}
        spec = replace(
            spec, run_args=(*spec.run_args, "--gpu-probe-result", gpu_probe_pod.PROBE_FILE)
        )
    for manifest in (secret(spec, data), job_manifests.job(spec)):
        _create(cluster, manifest, created)
    say("created " + ", ".join(f"{kind}/{name}" for kind, name in created.objects))
    start_by = time.monotonic() + target.start_timeout_s
    pod = _started(cluster, spec, f"job-name={spec.name}", spec.name, start_by, say)
    name, node = pod["metadata"]["name"], pod["spec"].get("nodeName", "")
    say(f"pod {name} runs on node {node}")
    stream = sys.stdout if call.format == "text" or call.output is not None else sys.stderr
    budget = call.options.timeout_s + RUN_GRACE_S

    def show(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    framed = frame.split(cluster.log(name, CONTAINER, True, budget), show)
    ended = _ended(cluster, f"job-name={spec.name}", name, time.monotonic() + budget)
    if framed.report is None:  # the stream broke off: read the whole log once more
        framed = frame.split(cluster.log(name, CONTAINER, False, budget), lambda _: None)
    if framed.report is None:
        raise ClusterError(
            f"the pod ended (exit code {ended}) without a report",
            f"read its log: kubectl -n {spec.namespace} logs {name} (run with --keep)",
        )
    return framed.report, framed.node or node, name


def _create(cluster: Cluster, manifest: Manifest, created: Created) -> None:
    """Create one object, recorded first: a Ctrl-C while the request is under way may leave
    it created, and then it is deleted too (a 404 then is fine)."""
    created.add(manifest)
    try:
        cluster.create(manifest)
    except ClusterError:  # the API server refused it: nothing to delete
        created.objects.pop()
        raise


def _probe_gpu(
    cluster: Cluster,
    spec: job_manifests.JobSpec,
    values: Values,
    created: Created,
    deadline: float,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Run the GPU probe pod to its end (then remove it); its answer for the `gpu` check."""
    pod = gpu_probe_pod.manifest(spec, values.get("vision.triton") or {})
    name = pod["metadata"]["name"]
    selector = f"{gpu_probe_pod.ROLE_LABEL}=gpu-probe,app.kubernetes.io/instance={spec.name}"
    _create(cluster, pod, created)
    say(f"GPU probe pod {name}: 1 {gpu_probe_pod.GPU}, Triton's tolerations and selectors")
    try:
        try:
            found = _started(cluster, spec, selector, None, deadline, say)
        except ClusterError as exc:
            return gpu_probe_pod.not_run(name, "", exc.cause)
        node = found["spec"].get("nodeName", "")
        code = _ended(cluster, selector, name, deadline)
        log = "\n".join(cluster.log(name, CONTAINER, False, RUN_GRACE_S))
        answer = gpu_probe_pod.ran(name, node, log, code)
        gpu = answer["gpu"]
        seen = (
            f"{len(gpu['gpus'])} GPU(s), driver {gpu.get('driver')}"
            if gpu["gpus"]
            else gpu["error"]
        )
        say(f"GPU probe pod on node {node}: {seen}")
        return answer
    finally:
        cluster.delete("Pod", name)  # the GPU is free again before the Job starts


def _started(
    cluster: Cluster,
    spec: job_manifests.JobSpec,
    selector: str,
    job: str | None,
    deadline: float,
    say: Callable[[str], None],
) -> Manifest:
    """Wait for the pod (of the Job) to run or to have run; a start failure raises its cause."""
    shown = ""
    while True:
        pods = cluster.list("Pod", labelSelector=selector)
        pod = pods[0] if pods else None
        about = pod["metadata"]["name"] if pod else (job or "")
        events = _events(cluster, about)
        if pod is None:
            problem = job_rejection(events, spec.namespace) if job else None
        else:
            phase = (pod.get("status") or {}).get("phase", "Pending")
            if phase in ("Running", "Succeeded", "Failed"):
                return pod
            problem = pod_problem(
                pod,
                events,
                spec.image,
                (*spec.pull_secrets, *spec.image_pull_secrets),
                spec.namespace,
            )
            state = _state(pod)
            if state != shown:
                say(f"pod {about}: {state}")
                shown = state
        if problem is not None:
            raise problem
        if time.monotonic() > deadline:
            raise ClusterError(
                f"the pod did not start in time: {shown or 'no pod was created'}",
                f"raise --start-timeout, or see kubectl -n {spec.namespace} describe job "
                f"{spec.name} (run with --keep)",
            )
        time.sleep(POLL_S)


def _ended(cluster: Cluster, selector: str, pod: str, deadline: float) -> int:
    """The container's exit code once it has ended."""
    while True:
        for found in cluster.list("Pod", labelSelector=selector):
            if found["metadata"]["name"] != pod:
                continue
            for container in (found.get("status") or {}).get("containerStatuses") or []:
                ended = (container.get("state") or {}).get("terminated")
                if ended:
                    return int(ended.get("exitCode", EXIT_INTERNAL))
        if time.monotonic() > deadline:
            raise ClusterError(
                f"the pod {pod} did not end in time", "raise --timeout (seconds per check)"
            )
        time.sleep(POLL_S)


def _events(cluster: Cluster, about: str) -> list[Manifest]:
    """The Events about one object (none when the caller may not list Events)."""
    try:
        return cluster.list("Event", fieldSelector=f"involvedObject.name={about}")
    except ClusterError:
        return []


def _state(pod: Manifest) -> str:
    """A pod's state in a few words: phase, node, waiting reason."""
    status = pod.get("status") or {}
    words = [status.get("phase", "Pending")]
    if pod["spec"].get("nodeName"):
        words.append(f"on node {pod['spec']['nodeName']}")
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            words.append(f"({waiting['reason']})")
    return " ".join(words)


def _render(
    report: Report, call: Invocation, values: Values, redact: Redactor, where: dict[str, Any]
) -> None:
    """The report as `run` writes it: the pod's text was shown already; other formats to
    stdout, -o to its file, --bundle (saying where it ran)."""
    from preflight.report.bundle import write_bundle

    if call.output is not None:
        call.output.write_text(rendered(report, call.format, redact), encoding="utf-8")
    elif call.format != "text":
        sys.stdout.write(rendered(report, call.format, redact))
    if call.bundle is not None:
        size = write_bundle(call.bundle, report, values.data, call.options, redact, where)
        click.echo(f"support bundle: {call.bundle} ({size / 1024:.1f} KiB)", err=True)


def _clean_up(
    cluster: Cluster,
    spec: job_manifests.JobSpec,
    created: Created,
    keep: bool,
    say: Callable[[str], None],
) -> None:
    """Delete what was created, newest first; or, with --keep, say how to."""
    if not created.objects:
        return
    selector = f"app.kubernetes.io/instance={spec.name}"
    if keep:
        say("kept everything (--keep); remove it with:")
        say(
            f"  kubectl -n {spec.namespace} delete job,secret,serviceaccount,role,rolebinding "
            f"-l {selector}"
        )
        say(f"  kubectl delete clusterrole,clusterrolebinding -l {selector}")
        return
    left = []
    for kind, name in reversed(created.objects):
        try:
            cluster.delete(kind, name)
        except ClusterError as exc:
            left.append(f"{kind}/{name} ({exc.cause})")
    if left:
        say("could not remove " + "; ".join(left) + f"; remove them by label {selector}")
    else:
        say(f"removed {len(created.objects)} objects")


@contextmanager
def _uninterrupted() -> Iterator[None]:
    """A second Ctrl-C while cleaning up would leave objects behind: it waits until done."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _say(redact: Redactor) -> Callable[[str], None]:
    def say(line: str) -> None:
        click.echo(redact(f"in-cluster: {line}"), err=True)

    return say


def _failed(exc: ClusterError, redact: Redactor) -> int:
    click.echo(redact(f"error: {exc.cause} — {exc.fix}"), err=True)
    return EXIT_INTERNAL
