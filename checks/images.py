"""Are the chart's images really in the partner's registry (install guide, step 2.4)?

One `images.<component>` check per image the chart pulls: `api.image`, `worker.image`, and with
Vision `vision.image` and `vision.triton.image`. Each walks the OCI distribution API as a
container runtime does before a pull: dns → tcp → tls → auth (`GET /v2/`, then the Basic or
Bearer token flow its challenge asks for) → manifest (`HEAD /v2/<name>/manifests/<tag>`).
Credentials come from `--registry-config` (a Docker `config.json`, which is also what an
imagePullSecret holds).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from preflight.engine.check import Check, Probe, Step, StepFailed
from preflight.net import Endpoint, http_client, http_request, parse_endpoint, reach, tls_settings
from preflight.values.chart import vision_applies
from preflight.values.load import Values

#: The client libraries this module's checks import (preflight.engine.preload).
CLIENTS = ("httpx",)
#: Its checks' CPU seconds in a run, clients included (bench/; engine.forked balances by it).
CPU_S = 0.15

if TYPE_CHECKING:
    import httpx

IMAGES = {  # check id suffix → (values path of the image, its name in Axion's registry)
    "api": ("api.image", "sense-api"),
    "worker": ("worker.image", "sense-worker"),
    "vision": ("vision.image", "sense-vision"),
    "triton": ("vision.triton.image", "sense-vision-triton"),
}
AXION_REGISTRY = "europe-west1-docker.pkg.dev/axionx-infra/axion"  # install guide, step 2.2
VISION_IMAGES = ("vision", "triton")

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_ALIASES = {DOCKER_HUB, "index.docker.io", DOCKER_HUB_API}

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)

_NAME = re.compile(
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")

STEP_2_4 = "install guide, step 2.4"
_NEED_CREDENTIALS = (
    "give the registry credentials with --registry-config (a Docker config.json), and create an "
    "imagePullSecret listed in global.imagePullSecrets so the cluster can pull too"
)


# --- config: the image reference and its credentials -------------------------------------------


@dataclass(frozen=True)
class ImageRef:
    """An image as the chart names it, split the way a container runtime reads it."""

    registry: str  # host[:port] as written, `docker.io` for Docker Hub
    name: str  # the repository inside the registry
    reference: str  # a tag, or a digest

    def __str__(self) -> str:
        return f"{self.registry}/{self.name}{self.suffix}"

    @property
    def suffix(self) -> str:
        """`:tag` or `@sha256:…`."""
        return ("@" if _DIGEST.fullmatch(self.reference) else ":") + self.reference

    @property
    def api(self) -> Endpoint:
        """Where the registry's API answers (always HTTPS, as a runtime pulls by default)."""
        host = DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry
        return parse_endpoint(f"https://{host}")


def parse_image(repository: str, tag: str, value: str) -> ImageRef:
    """`registry.example.com/axion/sense-api` + `1.0.0` → an ImageRef; StepFailed when invalid."""
    repository, _, digest = repository.strip().partition("@")
    first, slash, rest = repository.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, name = first, rest
    else:
        registry, name = DOCKER_HUB, repository if slash else f"library/{repository}"
    reference = digest or str(tag).strip() or "latest"
    if not _NAME.fullmatch(name):
        raise StepFailed(
            f"{value}.repository: {name!r} is not a valid repository name",
            "use lowercase letters, digits and . _ - / (e.g. registry.example.com/axion/sense-api)",
        )
    if not (_TAG.fullmatch(reference) or _DIGEST.fullmatch(reference)):
        raise StepFailed(
            f"{value}.tag: {reference!r} is not a valid tag",
            "a tag is up to 128 letters, digits, _ . - (e.g. a release or commit sha)",
        )
    return ImageRef(registry, name, reference)


def _auth_key(key: str) -> str:
    """A config.json `auths` key (`https://host/v1/`, `host:port`…) → `host[:port]`."""
    host = key.split("://", 1)[-1].split("/", 1)[0].lower()
    return DOCKER_HUB if host in DOCKER_HUB_ALIASES else host


def registry_credentials(config: Path | None, registry: str) -> tuple[str, str] | None:
    """(user, password) for `registry` from a Docker config.json, or None when none is there."""
    if config is None:
        return None
    try:
        data = json.loads(config.read_text())
    except OSError as exc:
        raise StepFailed(
            f"--registry-config {config}: cannot read it ({exc.strerror or exc})",
            "point --registry-config at a readable Docker config.json",
        ) from None
    except ValueError:
        raise StepFailed(
            f"--registry-config {config}: not valid JSON",
            'give a Docker config.json ({"auths": {"host": {"auth": "…"}}})',
        ) from None
    auths = data.get("auths", data) if isinstance(data, dict) else {}  # old .dockercfg: no "auths"
    for key, entry in auths.items() if isinstance(auths, dict) else ():
        if _auth_key(key) != registry.lower() or not isinstance(entry, dict):
            continue
        if entry.get("username"):
            return str(entry["username"]), str(entry.get("password", ""))
        try:
            user, colon, password = base64.b64decode(entry.get("auth", "")).decode().partition(":")
        except ValueError:
            user, colon, password = "", "", ""
        if not colon:
            raise StepFailed(
                f"--registry-config: the entry for {registry} has no usable credentials",
                'its "auth" must be base64 of user:password (what `docker login` writes)',
            )
        return user, password
    return None


# --- auth: the /v2/ challenge, then Basic or a Bearer token --------------------------------------


def _challenge(response: httpx.Response) -> tuple[str, dict[str, str]]:
    """`Bearer realm="…",service="…"` → ("bearer", {"realm": …, "service": …})."""
    scheme, _, params = response.headers.get("WWW-Authenticate", "").partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', params))


def authorize(
    probe: Probe,
    client: httpx.Client,
    image: ImageRef,
    credentials: tuple[str, str] | None,
) -> dict[str, str]:
    """The Authorization header for pulling `image`; StepFailed when the registry refuses."""
    base = str(image.api)
    answer = http_request(probe, client, "GET", f"{base}/v2/")
    if answer.status_code == 200:
        probe.facts["registry_auth"] = "none"
        return {}
    if answer.status_code != 401:
        raise StepFailed(
            f"GET /v2/ answered HTTP {answer.status_code}: not an OCI distribution registry",
            f"check the registry host in {image.registry}",
        )
    scheme, params = _challenge(answer)
    probe.facts["registry_auth"] = scheme
    if scheme == "basic":
        return _basic(probe, client, image, credentials)
    if scheme == "bearer" and params.get("realm"):
        return _bearer(probe, client, image, credentials, params)
    raise StepFailed(
        f"unsupported registry auth challenge {scheme or '(none)'!r}",
        "the registry must offer Basic or Bearer token auth, as the OCI distribution spec says",
    )


def _basic(
    probe: Probe, client: httpx.Client, image: ImageRef, credentials: tuple[str, str] | None
) -> dict[str, str]:
    """Basic auth: the credentials themselves, once `GET /v2/` accepts them."""
    if credentials is None:
        raise _no_credentials(image)
    encoded = base64.b64encode(":".join(credentials).encode()).decode()
    header = {"Authorization": f"Basic {encoded}"}
    if http_request(probe, client, "GET", f"{image.api}/v2/", headers=header).status_code == 401:
        raise _rejected(image)
    return header


def _bearer(
    probe: Probe,
    client: httpx.Client,
    image: ImageRef,
    credentials: tuple[str, str] | None,
    challenge: dict[str, str],
) -> dict[str, str]:
    """Docker's token flow: ask the realm for a pull token (Basic credentials, or anonymous)."""
    query = {"service": challenge.get("service", ""), "scope": f"repository:{image.name}:pull"}
    answer = http_request(probe, client, "GET", challenge["realm"], params=query, auth=credentials)
    if answer.status_code in (401, 403):
        raise _rejected(image) if credentials else _no_credentials(image)
    if answer.status_code != 200:
        raise StepFailed(
            f"the token service answered HTTP {answer.status_code}",
            "check the registry's token service (the realm of its /v2/ challenge)",
        )
    try:
        body = answer.json()
        return {"Authorization": f"Bearer {body.get('token') or body['access_token']}"}
    except (ValueError, KeyError, AttributeError):
        raise StepFailed(
            "the token service answered without a token", "check the registry's token service"
        ) from None


class NeedsCredentials(StepFailed):
    """The registry refused an anonymous request: it proves the pull fails only where the
    cluster has no credentials either (`_anonymous_refusal`). `refusal` says what it answered."""

    def __init__(self, detail: str, refusal: str) -> None:
        super().__init__(detail, _NEED_CREDENTIALS)
        self.refusal = refusal


def _no_credentials(image: ImageRef) -> StepFailed:
    return NeedsCredentials(
        f"{image.registry} requires credentials; none given",
        f"{image.registry} requires credentials",
    )


def _anonymous_refusal(probe: Probe, step: Step, refused: NeedsCredentials) -> None:
    """Fail with `refused`, unless global.imagePullSecrets names secrets: the cluster then pulls
    with credentials this check has not got, so the refusal proves nothing; warn instead."""
    entries = probe.values.get("global.imagePullSecrets") or []
    names = [str(n) for e in entries if (n := e.get("name") if isinstance(e, dict) else e)]
    if not names:
        raise refused
    step.warn(
        f"pull not verified: {refused.refusal} and this check has none for it "
        f"(--registry-config), but the cluster pulls with global.imagePullSecrets "
        f"({', '.join(names)}), which this check cannot read",
        "give this check the same credentials with --registry-config to prove the pull",
    )


def _rejected(image: ImageRef) -> StepFailed:
    return StepFailed(
        f"credentials rejected by {image.registry}",
        "fix the user/password for this registry in --registry-config (and the imagePullSecret "
        "listed in global.imagePullSecrets, which must hold the same)",
    )


# --- the check -----------------------------------------------------------------------------------


def run_image(probe: Probe, component: str) -> None:
    """Prove the image of `component` (`api` → `api.image`…) is in its registry."""
    value, source = IMAGES[component]
    with probe.step("config") as step:
        image = parse_image(
            str(probe.values.get(f"{value}.repository", "")),
            str(probe.values.get(f"{value}.tag", "")),
            value,
        )
        endpoint = image.api
        credentials = registry_credentials(probe.options.registry_config, image.registry)
        probe.facts["image"] = str(image)
        probe.facts["registry"] = image.registry
        step.detail = (
            f"{image} ({'credentials from --registry-config' if credentials else 'no credentials'})"
        )
    tls = tls_settings(probe)
    with reach(probe, endpoint, tls):
        pass
    with http_client(probe, tls) as client:
        with probe.step("auth") as step:
            try:
                headers = authorize(probe, client, image, credentials)
            except NeedsCredentials as refused:
                _anonymous_refusal(probe, step, refused)
                headers = None
            else:
                step.detail = f"{probe.facts['registry_auth']} auth accepted"
            if credentials and not probe.values.has("global.imagePullSecrets"):
                step.warn(
                    f"pulled with credentials from --registry-config, but global.imagePullSecrets "
                    f"is empty: the cluster has no credentials for {image.registry}",
                    "create a docker-registry secret (install guide, step 2.4) and list it in "
                    "global.imagePullSecrets, unless the nodes have their own registry access",
                )
        if headers is None:
            probe.skip("manifest", "no credentials here for this registry")
            return
        with probe.step("manifest") as step:
            url = f"{image.api}/v2/{image.name}/manifests/{image.reference}"
            answer = http_request(
                probe, client, "HEAD", url, headers={**headers, "Accept": MANIFEST_TYPES}
            )
            axion = f"{AXION_REGISTRY}/{source}{image.suffix}"
            try:
                _judge_manifest(probe, step, image, answer, credentials is not None, axion)
            except NeedsCredentials as refused:
                _anonymous_refusal(probe, step, refused)


def _judge_manifest(
    probe: Probe,
    step: Step,
    image: ImageRef,
    answer: httpx.Response,
    with_credentials: bool,
    axion: str,
) -> None:
    """Pass (the digest as a fact), warn on :latest, fail when missing or refused."""
    status = answer.status_code
    if status == 404:
        raise StepFailed(
            f"{image} is not pushed: see {STEP_2_4}",
            f"docker pull {axion} && docker tag {axion} {image} && docker push {image}",
        )
    if status in (401, 403) and with_credentials:
        raise StepFailed(
            f"credentials rejected for {image} (HTTP {status}: no pull access)",
            f"grant the user in --registry-config pull access to {image.name}",
        )
    if status in (401, 403):
        raise NeedsCredentials(
            f"{image} needs credentials (HTTP {status}): imagePullSecret needed",
            f"{image} answered HTTP {status} to an anonymous request, so it needs credentials,",
        )
    if status != 200:
        raise StepFailed(
            f"HEAD manifest of {image} answered HTTP {status}", "check the registry's health"
        )
    digest = answer.headers.get("Docker-Content-Digest", "")
    probe.facts["digest"] = digest
    probe.facts["media_type"] = answer.headers.get("Content-Type", "").split(";")[0]
    step.detail = f"{image} is pushed ({digest or 'no digest given'})"
    if image.reference == "latest":
        step.warn(
            f"{image} is pushed ({digest}) but uses the moving tag :latest",
            "pin a release or commit-sha tag for production (install guide, step 2.2)",
        )


def _image_applies(component: str, values: Values) -> str | None:
    return vision_applies(values) if component in VISION_IMAGES else None


def checks(values: Values) -> list[Check]:
    """One `images.<component>` check per image the chart pulls."""
    return [
        Check(
            id=f"images.{component}",
            title=f"Image {value} is in its registry",
            run=partial(run_image, component=component),
            reads=(f"{value}.repository", f"{value}.tag", "global.imagePullSecrets"),
            applies=partial(_image_applies, component),
        )
        for component, (value, _source) in IMAGES.items()
    ]
