"""Vision endpoints the cluster must reach: one `detector.<name>` check per detector backend, and
`map-matching` (the external API, or the bundled Valhalla).

Both HTTP endpoints go through one probe: dns → tcp → tls (https only) → http, where `http` is a
request that uploads nothing (HEAD), sending the credential when one is set, and judges the
answer: 401/403 → the credential is refused (or one is needed), 5xx → warn, anything else →
the endpoint answers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

from preflight.engine.check import Check, Probe, StepFailed
from preflight.net import Endpoint, http_client, http_request, parse_endpoint, reach_url
from preflight.values.chart import vision_applies
from preflight.values.load import Values

DETECTORS = "vision.config.detectors"
MAP_MATCHING = "vision.config.mapMatching"
DEFAULT_DETECTOR_TIMEOUT_S = 30.0  # the install guide's example value


# --- the shared HTTP probe ---------------------------------------------------------------------


@dataclass(frozen=True)
class HttpTarget:
    """An HTTP endpoint to probe, its credential, and where both are set in the values."""

    url: str
    endpoint: Endpoint
    credential: str  # what the credential is called in messages ("token", "API key")
    secret_value: str  # the values path of the credential, for remediations
    headers: dict[str, str]  # the credential as the service expects it; empty when none is set
    slow_after_s: float | None = None  # warn when connect + first byte takes longer

    @classmethod
    def parse(
        cls,
        url: str,
        credential: tuple[str, str],
        headers: dict[str, str],
        slow_after_s: float | None = None,
    ) -> HttpTarget:
        """The target for `url` (the values rules made sure it is an http(s) URL);
        `credential` is (its name in messages, its values path)."""
        return cls(url, parse_endpoint(url), *credential, headers, slow_after_s)


def probe_http(probe: Probe, target: HttpTarget) -> None:
    """dns, tcp, tls (https) and one HEAD request that uploads nothing; judge its answer."""
    tls = reach_url(probe, target.endpoint)
    with probe.step("http") as step, http_client(probe, tls) as client:
        started = time.monotonic()
        response = http_request(probe, client, "HEAD", target.url, headers=target.headers)
        first_byte_s = time.monotonic() - started
        answer = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
        probe.facts["http_status"] = response.status_code
        probe.facts["first_byte_s"] = round(first_byte_s, 3)
        if response.status_code == 401 and target.headers:
            raise StepFailed(
                f"{target.credential} rejected: {answer}",
                f"check {target.secret_value}: the service refused it",
            )
        if response.status_code == 403 and target.headers:  # RFC 9110 15.5.4: not "invalid"
            step.warn(
                f"{target.credential} not verified: the service answered {answer} to a HEAD "
                "request; a 403 refuses this request, not necessarily the credential (an upload "
                "endpoint or a gateway may forbid HEAD and still take the POSTs it receives)",
                f"if uploads are refused too, check {target.secret_value} and the rights the "
                "service gives it",
            )
            return
        if response.status_code in (401, 403):
            step.warn(
                f"endpoint requires auth ({answer}) but {target.secret_value} is not set",
                f"set {target.secret_value} to the credential the service expects",
            )
        elif response.status_code >= 500:
            step.warn(
                f"server error: {answer}",
                "the service answers but reports an error: check its logs and health",
            )
        elif target.slow_after_s is not None and first_byte_s > target.slow_after_s:
            step.warn(
                f"answers ({answer}) but slowly: connect + first byte took {first_byte_s:.2f}s, "
                f"more than half of its {2 * target.slow_after_s:g}s timeout",
                "check the service's load and the network path, or raise timeoutSeconds",
            )
        else:
            step.detail = f"answers ({answer}) in {first_byte_s:.2f}s"


# --- detector.<name> ---------------------------------------------------------------------------


def run_detector(probe: Probe, index: int) -> None:
    """Probe the detector at `vision.config.detectors[index]`."""
    path = f"{DETECTORS}[{index}]"
    with probe.step("config") as step:
        timeout_s = probe.values.get(f"{path}.timeoutSeconds") or DEFAULT_DETECTOR_TIMEOUT_S
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or timeout_s < 0:
            raise StepFailed(
                f"{path}.timeoutSeconds must be a number of seconds",
                f"set {path}.timeoutSeconds to e.g. 30.0",
            )
        token = probe.values.get(f"{path}.authToken")
        target = HttpTarget.parse(
            str(probe.values.get(f"{path}.apiUrl", "")),
            ("token", f"{path}.authToken"),
            {"Authorization": f"Bearer {token}"} if token else {},
            slow_after_s=timeout_s / 2,
        )
        step.detail = f"{target.url} (timeout {timeout_s:g}s, {'with' if token else 'no'} token)"
    probe_http(probe, target)


def _no_detector(values: Values) -> str | None:
    return vision_applies(values) or f"no detector is set ({DETECTORS})"


def detector_checks(values: Values) -> list[Check]:
    """One `detector.<name>` per detector; a placeholder when none is set."""
    detectors = values.get(DETECTORS)
    if not isinstance(detectors, list) or not detectors:
        return [
            Check(
                "detector.<name>",
                "Detector backend",
                partial(run_detector, index=0),
                (DETECTORS,),
                _no_detector,
            )
        ]
    return [
        Check(
            id=f"detector.{detector.get('name') or index}",
            title=f"Detector backend {detector.get('name') or index}",
            run=partial(run_detector, index=index),
            reads=tuple(f"{DETECTORS}[{index}].{key}" for key in _DETECTOR_KEYS),
            applies=vision_applies,
        )
        for index, detector in enumerate(detectors)
        if isinstance(detector, dict)
    ]


_DETECTOR_KEYS = ("name", "apiUrl", "authToken", "timeoutSeconds")


# --- map-matching ------------------------------------------------------------------------------


def run_map_matching(probe: Probe) -> None:
    """The external API answers, or the bundled Valhalla is switched on.

    The guide does not say how the API takes its key: it goes both ways common APIs take one
    (a bearer token and an `X-API-Key` header)."""
    with probe.step("config") as step:
        backend = probe.values.get(f"{MAP_MATCHING}.backend", "map_matching_api")
        probe.facts["backend"] = backend
        if backend == "valhalla":  # the values rules make sure vision.valhalla.enabled is true
            step.detail = "bundled Valhalla (vision.valhalla.enabled: true): nothing to reach"
            return
        api = f"{MAP_MATCHING}.mapMatchingApi"
        if not probe.values.has(f"{api}.baseUrl"):
            raise StepFailed(
                f"{api}.baseUrl is not set",
                f"set {api}.baseUrl, or use backend valhalla with vision.valhalla.enabled: true",
            )
        key = probe.values.get(f"{api}.apiKey")
        target = HttpTarget.parse(
            str(probe.values.get(f"{api}.baseUrl", "")),
            ("API key", f"{api}.apiKey"),
            {"Authorization": f"Bearer {key}", "X-API-Key": str(key)} if key else {},
        )
        step.detail = f"{target.url} ({'with' if key else 'no'} API key)"
    probe_http(probe, target)


def checks(values: Values) -> list[Check]:
    """The Vision endpoint checks for these values."""
    map_matching = Check(
        id="map-matching",
        title="Map-matching API (or bundled Valhalla)",
        run=run_map_matching,
        reads=(
            f"{MAP_MATCHING}.backend",
            f"{MAP_MATCHING}.mapMatchingApi.baseUrl",
            f"{MAP_MATCHING}.mapMatchingApi.apiKey",
            "vision.valhalla.enabled",
        ),
        applies=vision_applies,
    )
    return [*detector_checks(values), map_matching]
