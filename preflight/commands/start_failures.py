"""Why the preflight's pod does not start, from what the cluster shows: the Job's
`FailedCreate` Events (Pod Security admission, ResourceQuota, policy webhooks), the pod's
`PodScheduled=False` condition (the scheduler's message), and its container's waiting reason
(image pulls). Each becomes one ClusterError: the cause and the fix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from preflight.commands.cluster_client import ClusterError, admission_rejection

Obj = dict[str, Any]

PULL_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
CONFIG_REASONS = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")
_DENIED = ("denied", "unauthorized", "authorization failed", "401", "403", "forbidden")


def job_rejection(events: Sequence[Obj], namespace: str) -> ClusterError | None:
    """The job controller could not create the pod: admission said why."""
    for event in events:
        if event.get("reason") != "FailedCreate":
            continue
        message = str(event.get("message") or "")
        return admission_rejection(message, namespace) or ClusterError(
            f"the pod could not be created: {_after(message, 'Error creating: ')}",
            "an admission policy of the cluster rejects it: ask its admins to admit it",
        )
    return None


def pod_problem(
    pod: Obj, events: Sequence[Obj], image: str, pull_secrets: Sequence[str], namespace: str
) -> ClusterError | None:
    """What keeps a Pending pod from starting, or None while it is on its way."""
    status = pod.get("status") or {}
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
            and not any(e.get("reason") == "TriggeredScaleUp" for e in events)
        ):
            return ClusterError(
                f"the pod cannot be scheduled: {condition.get('message') or 'no reason given'}",
                f"free or add node capacity (the pod requests {_requests(pod)}), check the "
                f"LimitRange of namespace {namespace}, node selectors and taints",
            )
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = str(waiting.get("reason") or "")
        if reason in PULL_REASONS:
            return _pull_failure(waiting, events, image, pull_secrets, namespace)
        if reason in CONFIG_REASONS:
            return ClusterError(
                f"the container cannot start ({reason}): {waiting.get('message') or ''}".rstrip(
                    ": "
                ),
                f"see kubectl -n {namespace} describe pod {pod['metadata']['name']}",
            )
    return None


def _pull_failure(
    waiting: Obj, events: Sequence[Obj], image: str, pull_secrets: Sequence[str], namespace: str
) -> ClusterError:
    """Not found or denied: the registry's words are in ErrImagePull's message or the Event."""
    words = [str(waiting.get("message") or "")]
    words += [str(e.get("message") or "") for e in events if e.get("reason") == "Failed"]
    said = " ".join(words).lower()
    secrets = ", ".join(pull_secrets) or "none"
    if any(word in said for word in _DENIED):
        return ClusterError(
            f"the registry denied pulling image {image} (pull secrets: {secrets})",
            f"give --image-pull-secret NAME of a docker-registry Secret in namespace {namespace} "
            "that may pull it (or list it in global.imagePullSecrets)",
        )
    if "not found" in said or "manifest unknown" in said:
        return ClusterError(
            f"image {image} was not found in its registry",
            "push it there (README: The image) or point --image at where it is",
        )
    return ClusterError(
        f"cannot pull image {image}: {waiting.get('message') or waiting.get('reason')}",
        "check the image name, the registry's reachability from the nodes and --image-pull-secret",
    )


def _requests(pod: Obj) -> str:
    """`cpu 100m, memory 128Mi`: what the pod's containers request."""
    wanted = [
        f"{key} {value}"
        for container in (pod.get("spec") or {}).get("containers") or []
        for key, value in ((container.get("resources") or {}).get("requests") or {}).items()
    ]
    return ", ".join(wanted) or "nothing"


def _after(message: str, marker: str) -> str:
    return message.split(marker, 1)[1] if marker in message else message
