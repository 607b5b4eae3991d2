"""The S3 test server behaves as the s3 check's tests need: SigV4 enforced, rights per identity."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from dataclasses import replace

import pytest
from botocore.exceptions import ClientError, SSLError

from tests.servers.s3 import S3Identity, S3Server

pytestmark = pytest.mark.server("s3")


@pytest.fixture(params=["s3_server", "s3_moto"])
def any_s3(request: pytest.FixtureRequest) -> S3Server:
    """Each S3 implementation in turn: SeaweedFS, then moto."""
    return request.getfixturevalue(request.param)


def _error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_admin_round_trip(s3_server: S3Server, tls: bool) -> None:
    """Put, get and delete over HTTP and HTTPS (the HTTPS port trusts the session CA)."""
    client = s3_server.client(tls=tls)
    key = "sense-preflight/server-test"
    client.put_object(Bucket=s3_server.bucket, Key=key, Body=b"frame bytes")
    assert client.get_object(Bucket=s3_server.bucket, Key=key)["Body"].read() == b"frame bytes"
    client.delete_object(Bucket=s3_server.bucket, Key=key)
    assert s3_server.scratch_keys() == []


def test_wrong_secret_is_signature_mismatch(any_s3: S3Server) -> None:
    client = any_s3.client(replace(any_s3.admin, secret_key="not-the-secret"))
    with pytest.raises(ClientError) as exc:
        client.list_objects_v2(Bucket=any_s3.bucket)
    assert _error_code(exc) == "SignatureDoesNotMatch"


def test_unknown_key_is_invalid_access_key(any_s3: S3Server) -> None:
    client = any_s3.client(S3Identity("AKSENSEUNKNOWN0000", "whatever"))
    with pytest.raises(ClientError) as exc:
        client.list_objects_v2(Bucket=any_s3.bucket)
    assert _error_code(exc) == "InvalidAccessKeyId"


def test_skewed_clock_is_refused(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.auth

    skewed = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=20)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: skewed)
    with pytest.raises(ClientError) as exc:
        s3_server.client().list_objects_v2(Bucket=s3_server.bucket)
    assert _error_code(exc) == "RequestTimeTooSkewed"


def test_missing_bucket_is_404(any_s3: S3Server) -> None:
    with pytest.raises(ClientError) as exc:
        any_s3.client().head_bucket(Bucket="sense-no-such-bucket")
    assert _error_code(exc) == "404"


def test_stranger_is_forbidden_on_the_bucket(s3_server: S3Server) -> None:
    if s3_server.stranger is None:
        pytest.skip("no identity without rights on the bucket (SENSE_TEST_S3_STRANGER_*)")
    with pytest.raises(ClientError) as exc:
        s3_server.client(s3_server.stranger).head_bucket(Bucket=s3_server.bucket)
    assert _error_code(exc) == "403"


def test_reader_can_read_but_not_write(any_s3: S3Server) -> None:
    if any_s3.reader is None:
        pytest.skip("no read-only identity (SENSE_TEST_S3_READONLY_*)")
    client = any_s3.client(any_s3.reader)
    client.head_bucket(Bucket=any_s3.bucket)
    client.list_objects_v2(Bucket=any_s3.bucket)
    for call in (
        lambda: client.put_object(Bucket=any_s3.bucket, Key="sense-preflight/ro", Body=b"x"),
        lambda: client.delete_object(Bucket=any_s3.bucket, Key="sense-preflight/ro"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert _error_code(exc) == "AccessDenied"
    assert any_s3.scratch_keys() == []


def test_https_needs_the_ca(s3_server: S3Server) -> None:
    client = s3_server.client(tls=True, trust_ca=False)
    with pytest.raises(SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        client.head_bucket(Bucket=s3_server.bucket)


def test_plain_http_port_does_not_speak_tls(s3_server: S3Server) -> None:
    context = ssl.create_default_context()
    with (
        socket.create_connection((s3_server.host, s3_server.http_port or 0), timeout=5) as sock,
        pytest.raises(ssl.SSLError),
    ):
        context.wrap_socket(sock, server_hostname=s3_server.host)


def test_moto_tells_the_bucket_region(s3_moto: S3Server) -> None:
    """A client configured for us-east-1 learns from HeadBucket that the bucket is in eu-west-1."""
    client = replace(s3_moto, region="us-east-1").client()
    headers = client.head_bucket(Bucket=s3_moto.bucket)["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amz-bucket-region"] == "eu-west-1"
