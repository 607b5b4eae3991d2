"""S3 storage for frame images: endpoint, TLS, SigV4 credentials, bucket, addressing, round trip.

Steps: config → dns → tcp → tls → auth → bucket → addressing → roundtrip. Every request goes
through botocore, boto3's own client layer (boto3's session adds only what this check never
uses: s3transfer's upload methods, 40-50 ms more per client), with connect/read timeouts
taken from the check's deadline and no retries, so a server that accepts and never answers
fails within `--timeout`. (botocore's log lines are kept with the check by the engine's log
capture, never printed.)
"""

from __future__ import annotations

import datetime as dt
import email.utils
import http.client
import re
import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from preflight.engine.check import Check, Probe, StepFailed
from preflight.engine.deadline import CLEANUP_TIMEOUT_S, timeout_message
from preflight.net import (
    Ahead,
    Endpoint,
    ProxyEnv,
    TlsSettings,
    causes,
    hang_up,
    parse_endpoint,
    proxy_env,
    reach,
    resolve,
    tls_settings,
)
from preflight.values.chart import GUIDE_DEFAULTS
from preflight.values.load import Values

T = TypeVar("T")

DEFAULT_REGION = "us-east-1"
SCRATCH_PREFIX = "sense-preflight/"
#: The client libraries this module's checks import (preflight.engine.preload).
CLIENTS = ("botocore.session",)
#: Its checks' CPU seconds in a run, clients included (bench/; engine.forked balances by it).
CPU_S = 0.45
# The round trip's requests end this much earlier, so its delete runs within the deadline.
CLEANUP_RESERVE_S = 0.5
_AWS_REGIONAL_HOST = re.compile(r"(?:^|\.)s3[.-](?:dualstack\.)?([a-z]{2}(?:-[a-z]+)+-\d)\.")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_FIX_KEYS = "check s3.accessKey / s3.secretKey: both must come from the same key pair"
_FIX_RIGHTS = (
    "grant the key s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on the bucket "
    "(arn:aws:s3:::BUCKET and arn:aws:s3:::BUCKET/*)"
)
_FIX_PATH_STYLE = "set s3.forcePathStyle: true (MinIO-style endpoints need path style)"
_FIX_CLOCK = "synchronise this machine's clock (NTP/chrony); S3 refuses requests >15 min off"
_FIX_UNREACHABLE = (
    "check that the S3 endpoint is up and that no firewall or proxy stalls traffic from here, "
    "or raise --timeout"
)
_FIX_NOT_S3 = "check that s3.host points at the S3 endpoint, not a web page or another service"
_FIX_TLS = "check s3.secured and the endpoint's certificate (--ca-bundle for a private CA)"


def checks(values: Values) -> list[Check]:
    """The one S3 check."""
    return [
        Check(
            id="s3",
            title="S3 storage for frame images",
            run=run,
            reads=(
                "s3.host",
                "s3.secured",
                "s3.region",
                "s3.forcePathStyle",
                "s3.framesBucketName",
                "s3.accessKey",
                "s3.secretKey",
            ),
        )
    ]


@dataclass(frozen=True)
class S3Settings:
    """What the values say about the S3 endpoint, bucket and key."""

    endpoint: Endpoint
    bucket: str
    access_key: str
    secret_key: str
    region: str
    region_given: bool
    force_path_style: bool
    tls: TlsSettings | None
    session: Any = field(repr=False, compare=False)  # one botocore Session: models load once
    proxies: ProxyEnv = field(default_factory=ProxyEnv)
    clients: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The check's client per addressing style (see _client)."""
    reserves: dict[str, float] = field(default_factory=dict, repr=False, compare=False)

    @property
    def url(self) -> str:
        return f"{self.endpoint.scheme}://{self.endpoint.netloc}"


def run(probe: Probe) -> None:
    """Walk the layers in order; the first failing one ends the check."""
    settings = _config(probe)
    asked = _ask_ahead(probe, settings)
    with reach(probe, settings.endpoint, settings.tls, plain_fix="set s3.secured: false"):
        pass
    _auth(probe, settings, asked.listing)
    _bucket(probe, settings, asked)
    style = _addressing(probe, settings)
    if probe.options.read_only:
        probe.skip("roundtrip", "--read-only: no test object written")
        return
    _roundtrip(probe, settings, style)


# --- config -------------------------------------------------------------------------------


def _config(probe: Probe) -> S3Settings:
    """Endpoint URL from s3.host + s3.secured; region and addressing style from the values."""
    values = probe.values
    with probe.step("config") as step:
        secured = values.enabled("s3.secured", GUIDE_DEFAULTS["s3.secured"])
        scheme = "https" if secured else "http"
        host = str(values.get("s3.host", "")).strip()
        given = host.split("://", 1)[0].lower() if "://" in host else ""
        if given and given != scheme:
            raise StepFailed(
                f"s3.host starts with {given}:// but s3.secured is {str(secured).lower()} "
                f"({scheme})",
                f"write s3.host without a scheme, and set s3.secured: "
                f"{str(given == 'https').lower()} if the endpoint speaks {given}",
            )
        endpoint = parse_endpoint(host, default_scheme=scheme)
        path = host.split("://", 1)[-1].partition("/")[2].strip("/")
        if path:
            raise StepFailed(
                f"s3.host has a path (/{path}); the chart expects host[:port]",
                "put only host[:port] in s3.host; the bucket goes in s3.framesBucketName",
            )
        bucket = str(values.get("s3.framesBucketName", ""))
        if not _BUCKET_NAME.fullmatch(bucket):
            raise StepFailed(
                f"s3.framesBucketName {bucket!r} is not a valid S3 bucket name",
                "use 3-63 lowercase letters, digits, dots and hyphens",
            )
        force_path_style = values.get("s3.forcePathStyle", False)
        if not isinstance(force_path_style, bool):
            raise StepFailed(
                f"s3.forcePathStyle must be true or false, not {force_path_style!r}",
                "set s3.forcePathStyle: true or false (without quotes)",
            )
        aws_region = _AWS_REGIONAL_HOST.search(endpoint.host)
        region = str(values.get("s3.region", "") or (aws_region and aws_region[1]) or "")
        settings = S3Settings(
            endpoint=Endpoint(endpoint.host, endpoint.port, scheme),
            bucket=bucket,
            access_key=str(values.get("s3.accessKey", "")),
            secret_key=str(values.get("s3.secretKey", "")),
            region=region or DEFAULT_REGION,
            region_given=values.has("s3.region"),
            force_path_style=force_path_style,
            tls=tls_settings(probe) if secured else None,
            session=_botocore_session(),
            proxies=proxy_env(probe),
        )
        probe.facts["endpoint"] = settings.url
        probe.facts["region"] = settings.region
        step.detail = f"{settings.url}, bucket {bucket}, region {settings.region}"
    return settings


@dataclass(frozen=True)
class _Asked:
    """The read-only requests of the auth and bucket steps, sent together before the tcp step
    (over a 20 ms link every round trip counts), each judged later in its own step."""

    listing: Ahead[dict[str, Any]]
    head: Ahead[dict[str, Any]]
    location: Ahead[dict[str, Any] | None]
    versioning: Ahead[dict[str, Any] | None]


def _ask_ahead(probe: Probe, settings: S3Settings) -> _Asked:
    """ListBuckets, HeadBucket, GetBucketLocation and GetBucketVersioning, at once on the
    path-style client (GetBucketLocation is read only for a server that names no region)."""
    client, bucket = _client(probe, settings, "path"), settings.bucket

    def send(operation: str, request: Callable[[], Any], optional: bool = False) -> Ahead[Any]:
        ask = _optional if optional else _call
        return Ahead(lambda: ask(probe, operation, request), probe.deadline)

    return _Asked(
        listing=send("ListBuckets", client.list_buckets),
        head=send("HeadBucket", lambda: client.head_bucket(Bucket=bucket)),
        location=send(
            "GetBucketLocation", lambda: client.get_bucket_location(Bucket=bucket), optional=True
        ),
        versioning=send(
            "GetBucketVersioning",
            lambda: client.get_bucket_versioning(Bucket=bucket),
            optional=True,
        ),
    )


# --- auth ---------------------------------------------------------------------------------


def _auth(probe: Probe, settings: S3Settings, listing: Ahead[dict[str, Any]]) -> None:
    """One signed request (ListBuckets): the key pair, the clock and the signing region."""
    from botocore.exceptions import ClientError

    with probe.step("auth") as step:
        try:
            response = listing.result()
            _require_xml(response, "ListBuckets")
            step.detail = "signed request (SigV4) accepted"
        except ClientError as exc:
            response = exc.response
            code = _code(exc)
            if code == "SignatureDoesNotMatch":
                raise StepFailed(
                    "the secret key is wrong: the server computed another signature "
                    "(SignatureDoesNotMatch)",
                    _FIX_KEYS,
                ) from None
            if code == "InvalidAccessKeyId":
                raise StepFailed(
                    "the access key is unknown to this S3 endpoint (InvalidAccessKeyId)",
                    "check s3.accessKey: the key must exist on this endpoint (keys are per "
                    "provider and account)",
                ) from None
            if code == "RequestTimeTooSkewed":
                raise StepFailed(_skew_message(probe, exc.response), _FIX_CLOCK) from None
            if code == "AuthorizationHeaderMalformed" and "Region" in exc.response["Error"]:
                expected = exc.response["Error"]["Region"]
                raise StepFailed(
                    f"requests are signed for region {settings.region} but the endpoint "
                    f"expects {expected}",
                    f"set s3.region: {expected}",
                ) from None
            if code not in ("AccessDenied", "AllAccessDisabled"):
                raise StepFailed(
                    f"the signed request was refused: {_error_text(exc)}", _FIX_KEYS
                ) from None
            step.detail = "signed request (SigV4) accepted; the key may not list buckets"
        server = response["ResponseMetadata"].get("HTTPHeaders", {}).get("server")
        if server:
            probe.facts["server"] = server


def _require_xml(response: dict[str, Any], operation: str) -> None:
    """S3 answers in XML; a web page answering 200 to anything is not S3."""
    content_type = response["ResponseMetadata"].get("HTTPHeaders", {}).get("content-type", "")
    if "xml" not in content_type:
        raise StepFailed(
            f"{operation}: the server did not answer like S3 (HTTP 200 with "
            f"{content_type or 'no content type'}, not XML)",
            _FIX_NOT_S3,
        )


def _skew_message(probe: Probe, response: dict[str, Any]) -> str:
    """How far this machine's clock is from the server's (from its Date header)."""
    now = dt.datetime.now(dt.UTC)
    date = response["ResponseMetadata"].get("HTTPHeaders", {}).get("date")
    server_time = response["Error"].get("ServerTime")
    try:
        theirs = (
            email.utils.parsedate_to_datetime(date)
            if date
            else dt.datetime.fromisoformat(str(server_time).replace("Z", "+00:00"))
        )
        offset = (now - theirs).total_seconds()
    except (TypeError, ValueError):  # no usable server time (or one without a time zone)
        return "this machine's clock is too far from the server's (RequestTimeTooSkewed)"
    probe.facts["clock_offset_s"] = round(offset, 1)
    direction = "ahead of" if offset > 0 else "behind"
    return (
        f"this machine's clock is {_duration(abs(offset))} {direction} the server's "
        "(RequestTimeTooSkewed)"
    )


def _duration(seconds: float) -> str:
    """`1h 2m 3s`, `20m 5s`, `42s`."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h"] if hours else []
    parts += [f"{minutes}m"] if minutes or hours else []
    return " ".join([*parts, f"{secs}s"])


# --- bucket -------------------------------------------------------------------------------


def _bucket(probe: Probe, settings: S3Settings, asked: _Asked) -> None:
    """HeadBucket: exists, the key has rights on it, and it lives in the configured region."""
    from botocore.exceptions import ClientError

    with probe.step("bucket") as step:
        name = settings.bucket
        try:
            headers = asked.head.result()["ResponseMetadata"]["HTTPHeaders"]
        except ClientError as exc:
            headers = exc.response["ResponseMetadata"].get("HTTPHeaders", {})
            status = exc.response["ResponseMetadata"].get("HTTPStatusCode")
            region = headers.get("x-amz-bucket-region")
            if region and region != settings.region:
                probe.facts["bucket_region"] = region
                raise StepFailed(
                    f"bucket {name} is in region {region}, not {settings.region} "
                    f"(the server redirected, HTTP {status})",
                    f"set s3.region: {region} (and s3.host to that region's endpoint)",
                ) from None
            if status == 404:
                raise StepFailed(
                    f"bucket {name} does not exist at {settings.url}",
                    f"create the bucket {name} (e.g. aws s3 mb s3://{name} --endpoint-url "
                    f"{settings.url}) or fix s3.framesBucketName",
                ) from None
            if status == 403:
                raise StepFailed(
                    f"access to bucket {name} is denied (403): the key lacks rights on it, "
                    "or the bucket belongs to another account",
                    _FIX_RIGHTS.replace("BUCKET", name),
                ) from None
            raise StepFailed(f"HeadBucket {name} failed: {_error_text(exc)}") from None
        step.detail = f"bucket {name} exists and the key may use it"
        region = headers.get("x-amz-bucket-region")
        if region:
            probe.facts["bucket_region"] = region
            if region != settings.region:
                message = f"bucket {name} is in region {region}, but requests are signed for "
                if settings.region_given:
                    raise StepFailed(message + f"s3.region {settings.region}", _region_fix(region))
                step.warn(
                    message + f"{settings.region} (s3.region is not set)", _region_fix(region)
                )
        else:
            location = asked.location.result()
            if location is not None:  # no constraint means the classic region, us-east-1
                probe.facts["bucket_region"] = location.get("LocationConstraint") or DEFAULT_REGION
        versioning = asked.versioning.result()
        if versioning is not None:
            probe.facts["versioning"] = versioning.get("Status") or "Disabled"


def _region_fix(region: str) -> str:
    return f"set s3.region: {region}"


def _optional(probe: Probe, operation: str, request: Callable[[], T]) -> T | None:
    """A request for a fact only: None when the server refuses it (no right, not supported)."""
    from botocore.exceptions import ClientError

    try:
        return _call(probe, operation, request)
    except ClientError:
        return None


# --- addressing ---------------------------------------------------------------------------


def _addressing(probe: Probe, settings: S3Settings) -> str:
    """Which addressing style works: path (`host/bucket`) or virtual-host (`bucket.host`)."""
    from botocore.exceptions import ClientError

    with probe.step("addressing") as step:
        if settings.force_path_style:
            step.detail = "path style (s3.forcePathStyle: true) works"
            probe.facts["addressing_style"] = "path"
            return "path"
        host = settings.endpoint.host
        virtual_host = f"{settings.bucket}.{host}"
        try:
            if _is_ip(host):
                raise StepFailed(f"an IP address ({host}) has no bucket sub-domains")
            resolve(virtual_host, settings.endpoint.port, probe.deadline)
            client = _client(probe, settings, "virtual")
            _call(probe, "HeadBucket", lambda: client.head_bucket(Bucket=settings.bucket))
        except (StepFailed, ClientError) as exc:
            reason = exc.detail if isinstance(exc, StepFailed) else _error_text(exc)
            fix = _FIX_PATH_STYLE
            if not _is_ip(host):
                fix += f", or give the endpoint a wildcard DNS name *.{host}"
            step.warn(f"virtual-host style fails ({reason}); path style works", fix)
            probe.facts["addressing_style"] = "path"
            return "path"
        step.detail = f"virtual-host style works ({virtual_host})"
        probe.facts["addressing_style"] = "virtual"
        return "virtual"


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# --- roundtrip ----------------------------------------------------------------------------


def _roundtrip(probe: Probe, settings: S3Settings, style: str) -> None:
    """Put a scratch object, read it back, delete it; the delete also runs as a cleanup."""
    from botocore.exceptions import ClientError

    with probe.step("roundtrip") as step:
        client = _client(probe, settings, style, reserve=CLEANUP_RESERVE_S)
        bucket, key = settings.bucket, f"{SCRATCH_PREFIX}{secrets.token_hex(8)}"
        body = b"sense-preflight round trip " + secrets.token_hex(16).encode()
        scratch = _Scratch(settings, style, key)
        probe.cleanup(f"delete s3://{bucket}/{key}", scratch.delete)
        try:
            put = _call(
                probe, "PutObject", lambda: client.put_object(Bucket=bucket, Key=key, Body=body)
            )
        except ClientError as exc:
            if _code(exc) != "AccessDenied":
                raise StepFailed(f"PutObject {key} failed: {_error_text(exc)}") from None
            scratch.gone = True  # refused: nothing was written, nothing to clean up
            missing = ["s3:PutObject"]
            if _delete_denied(probe, client, bucket, key):
                missing.append("s3:DeleteObject")
            raise StepFailed(
                f"the key may not write to bucket {bucket}: {' and '.join(missing)} denied",
                f"grant the key {', '.join(missing)} on arn:aws:s3:::{bucket}/* (the API "
                "stores frame images there)",
            ) from None
        scratch.version_id = put.get("VersionId")
        try:
            read_back = _call(
                probe, "GetObject", lambda: client.get_object(Bucket=bucket, Key=key)["Body"].read()
            )
        except ClientError as exc:
            raise StepFailed(
                f"wrote {key} but could not read it back: {_error_text(exc)}",
                _FIX_RIGHTS.replace("BUCKET", bucket),
            ) from None
        if read_back != body:
            raise StepFailed(
                f"read back {len(read_back)} bytes that differ from the {len(body)} written",
                "check the storage backend and any proxy in front of it",
            )
        try:
            _call(probe, "DeleteObject", lambda: client.delete_object(**scratch.target()))
        except ClientError as exc:
            action = "s3:DeleteObjectVersion" if scratch.version_id else "s3:DeleteObject"
            raise StepFailed(
                f"wrote and read back {key} but could not delete it ({action}: "
                f"{_error_text(exc)}); remove it by hand",
                f"grant the key {action} on arn:aws:s3:::{bucket}/*",
            ) from None
        scratch.gone = True
        step.detail = f"put, read back and deleted {len(body)} bytes at s3://{bucket}/{key}"


def _delete_denied(probe: Probe, client: Any, bucket: str, key: str) -> bool:
    """Whether deleting is denied too (deleting a key that does not exist is a no-op)."""
    from botocore.exceptions import ClientError

    try:
        _call(probe, "DeleteObject", lambda: client.delete_object(Bucket=bucket, Key=key))
    except ClientError as exc:
        return _code(exc) == "AccessDenied"
    return False


class _Scratch:
    """The scratch object, deleted once: by the round trip, or by the cleanup if that failed.

    The cleanup's client is made up front (no model loading when time is short), with its
    own timeouts, as the check's deadline may have passed when it runs.
    """

    def __init__(self, settings: S3Settings, style: str, key: str) -> None:
        self.client = _new_client(settings, style, CLEANUP_TIMEOUT_S, settings.session)
        self.bucket = settings.bucket
        self.key = key
        self.version_id: str | None = None
        self.gone = False

    def target(self) -> dict[str, str]:
        target = {"Bucket": self.bucket, "Key": self.key}
        return target | ({"VersionId": self.version_id} if self.version_id else {})

    def delete(self) -> None:
        """The cleanup action."""
        if not self.gone:
            self.client.delete_object(**self.target())
            self.gone = True


# --- botocore plumbing --------------------------------------------------------------------


def _client(probe: Probe, settings: S3Settings, style: str, reserve: float = 0.0) -> Any:
    """The check's S3 client for this addressing style, made once: its keep-alive
    connection serves every step. Each request's read timeout is what the check's deadline
    leaves when it starts (`reserve` seconds less still, to leave the cleanup its time)."""
    bounds = settings.reserves
    bounds[style] = reserve
    if style not in settings.clients:
        client = _new_client(settings, style, probe.deadline.client_timeout(), settings.session)

        def bound(context: dict[str, Any], **_: Any) -> None:
            context["read_timeout"] = probe.deadline.client_timeout(reserve=bounds[style])

        client.meta.events.register("before-parameter-build.s3", bound)
        client.meta.events.register("before-send.s3.PutObject", _without_expect)
        settings.clients[style] = client
    return settings.clients[style]


def _without_expect(request: Any, **_: Any) -> None:
    """The scratch object is a few bytes: send it at once rather than ask first
    (`Expect: 100-continue` waits a round trip for the server's go-ahead; it is not signed)."""
    request.headers.pop("Expect", None)


def _botocore_session() -> Any:
    """A botocore Session with the S3 model loaded: later clients take milliseconds, so a
    timeout computed just before making one still holds when its request starts."""
    import botocore.session

    session = botocore.session.Session()
    session.create_client(  # no request: this only loads the model
        "s3", region_name=DEFAULT_REGION, aws_access_key_id="-", aws_secret_access_key="-"
    )
    return session


def _new_client(settings: S3Settings, style: str, timeout: float, session: Any) -> Any:
    """An S3 client: no retries (but the one a proxy's dropped connection earns, see
    `_retry_dropped`), connect and read bounded by `timeout` seconds."""
    from botocore.config import Config

    verify: bool | str = False
    if settings.tls is not None and settings.tls.verify:
        verify = str(settings.tls.ca_file) if settings.tls.ca_file else True
    elif settings.tls is not None:  # --insecure-skip-tls-verify: the tls step already warned
        from urllib3.exceptions import InsecureRequestWarning

        warnings.filterwarnings("ignore", category=InsecureRequestWarning)
    proxies = _proxies(settings, style)
    client = session.create_client(
        "s3",
        endpoint_url=settings.url,
        region_name=settings.region,
        aws_access_key_id=settings.access_key,
        aws_secret_access_key=settings.secret_key,
        verify=verify,
        config=Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"total_max_attempts": 1},
            s3={"addressing_style": style},
            signature_version="s3v4",
            proxies=proxies,
        ),
    )
    if proxies:
        client.meta.events.register("needs-retry.s3", _retry_dropped)
    return client


def _retry_dropped(attempts: int, caught_exception: Exception | None, **_: Any) -> float | None:
    """Retry, once and at once, a request that a proxy answered by closing the kept-alive
    connection it came on (tinyproxy closes each after one answer), as .NET's client retries
    a request on a dropped pooled connection; nothing else is retried."""
    dropped = caught_exception is not None and hang_up(caught_exception) == "disconnected"
    return 0.0 if dropped and attempts == 1 else None


def _proxies(settings: S3Settings, style: str) -> dict[str, str]:
    """botocore's proxies: the one the product would use for the host requests go to (the
    bucket's own name under virtual-host addressing); {} keeps botocore off the environment."""
    host = settings.endpoint.host
    if style == "virtual":
        host = f"{settings.bucket}.{host}"
    proxy = settings.proxies.route(settings.endpoint.scheme, host)
    return {settings.endpoint.scheme: proxy.url} if proxy else {}


def _call(probe: Probe, operation: str, request: Callable[[], T]) -> T:
    """One S3 request; transport failures become one-line StepFailed messages.

    ClientError (the server answered with an S3 error) is left to the caller to classify.
    """
    from botocore import exceptions as bx
    from botocore.parsers import ResponseParserError

    try:
        return request()
    except bx.ReadTimeoutError:
        raise StepFailed(
            f"{operation}: "
            + timeout_message(
                "waiting for an answer (the server accepted the connection but never replied)",
                probe.options.timeout_s,
            ),
            _FIX_UNREACHABLE,
        ) from None
    except bx.ProxyConnectionError as exc:
        raise StepFailed(
            f"{operation}: through the proxy: {_root_cause(exc)}",
            "check the proxy variables (HTTPS_PROXY/HTTP_PROXY, NO_PROXY) and the proxy",
        ) from None
    except bx.ConnectTimeoutError:
        raise StepFailed(f"{operation}: connecting timed out", _FIX_UNREACHABLE) from None
    except bx.SSLError as exc:
        raise StepFailed(f"{operation}: TLS failed: {_root_cause(exc)}", _FIX_TLS) from None
    except bx.EndpointConnectionError as exc:
        raise StepFailed(
            f"{operation}: cannot connect: {_root_cause(exc)}", _FIX_UNREACHABLE
        ) from None
    except bx.ConnectionClosedError as exc:
        # a hang-up is a BadStatusLine too (RemoteDisconnected); any other one is not HTTP
        garbled = isinstance(_innermost(exc), http.client.BadStatusLine) and not hang_up(exc)
        what = (
            "did not answer like S3 (not even HTTP)"
            if garbled
            else "closed the connection without answering"
        )
        raise StepFailed(f"{operation}: the server {what}", _FIX_NOT_S3) from None
    except (ResponseParserError, bx.HTTPClientError) as exc:
        raise StepFailed(
            f"{operation}: the server did not answer like S3 ({_root_cause(exc)})",
            _FIX_NOT_S3,
        ) from None


def _innermost(exc: BaseException) -> BaseException:
    """The exception at the bottom of the cause/context chain."""
    return list(causes(exc))[-1]


def _root_cause(exc: BaseException) -> str:
    """The innermost exception's text, on one line."""
    inner = _innermost(exc)
    return " ".join(str(inner).split())[:200] or type(inner).__name__


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _error_text(exc: Any) -> str:
    """`Code (HTTP 403): Message` from a botocore ClientError."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    message = error.get("Message") or ""
    return f"{error.get('Code', 'error')} (HTTP {status})" + (f": {message}" if message else "")
