"""HTTP plumbing shared by the `oidc` and `openfga` checks: a URL value and JSON answers read
without surprises."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from preflight.engine.check import StepFailed
from preflight.net import Endpoint, parse_endpoint

if TYPE_CHECKING:
    import httpx

MAX_ERROR_TEXT = 200


def http_url(value: Any, path: str) -> Endpoint:
    """The endpoint of an absolute http(s) URL value; StepFailed names the value otherwise."""
    text = str(value or "").strip()
    if not text:
        raise StepFailed(f"{path} is not set", f"set {path} to the service's URL")
    if not text.lower().startswith(("http://", "https://")):
        raise StepFailed(
            f"{path} must be an absolute http:// or https:// URL, got {text!r}",
            f"set {path} to the full URL, e.g. https://host:port/…",
        )
    return parse_endpoint(text)


def json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    """The response's JSON object, or StepFailed saying what came instead."""
    try:
        body = response.json()
    except ValueError:
        kind = response.headers.get("content-type", "no content type")
        raise StepFailed(
            f"{what} answered HTTP {response.status_code} with {kind}, not JSON",
            "check that the URL points at the service itself, not a proxy or login page",
        ) from None
    if not isinstance(body, dict):
        raise StepFailed(f"{what} answered JSON that is not an object")
    return body


def short(text: Any) -> str:
    """A server-provided text, on one line and not too long for a report."""
    line = " ".join(str(text).split())
    return line if len(line) <= MAX_ERROR_TEXT else line[: MAX_ERROR_TEXT - 1] + "…"
