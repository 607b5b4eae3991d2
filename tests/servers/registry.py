"""Container registries for the image checks: the CNCF distribution registry (Debian's
`docker-registry`, v2.8) run as a plain process, with a tiny OCI image pushed by plain HTTP calls.

Two registries, one per auth flow the OCI distribution API knows, both over HTTPS with a
certificate from the session `test_ca`:
- `registry`: htpasswd (Basic) auth, on 127.0.0.1;
- `registry_token`: Bearer token auth, on localhost, with a token server in the test process
  that signs JWTs the registry really verifies.

`SENSE_TEST_REGISTRY_URL` (+ `SENSE_TEST_REGISTRY_USER`, `SENSE_TEST_REGISTRY_PASSWORD`, and
`SENSE_TEST_REGISTRY_CA` for a private CA) points `registry` at an htpasswd-protected registry
of your own instead; the fixture pushes the test image there.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.servers._http_fake import FakeHandler, FakeHttpServer
from tests.servers._jwt import sign_rs256
from tests.servers._process import ServerProcess, free_port, start_process, wait_for_port
from tests.servers._tls import CertFiles, issue_cert

REPOSITORY = "axion/sense-api"
PINNED_TAG = "1.0.0"
INDEX_TAG = "1.0.0-multiarch"
TOKEN_SERVICE = "sense-test-registry"
TOKEN_ISSUER = "sense-test-token-issuer"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class Registry:
    """A registry holding `repository` under `tag` (an OCI manifest), `latest` (the same
    manifest) and `index_tag` (an OCI image index pointing at it)."""

    url: str  # https://host:port, no trailing slash
    host: str  # host:port as written in an image reference
    auth: str  # "basic" or "bearer"
    username: str
    password: str
    repository: str = REPOSITORY
    tag: str = PINNED_TAG
    digest: str = ""  # of the manifest behind `tag` and `latest`
    index_tag: str = INDEX_TAG
    index_digest: str = ""
    ca: Path | None = None  # CA of the registry's certificate, when not a public one

    def pushed(self, client_auth: Mapping[str, Any]) -> Registry:
        """Push the test image with a client given `client_auth` (httpx `auth` or `headers`);
        this registry with the digests filled in."""
        with httpx.Client(base_url=self.url, verify=self.verify(), timeout=10, **client_auth) as c:
            pushed = push_test_image(c, self.repository, self.tag, self.index_tag)
        return dataclasses.replace(self, digest=pushed.digest, index_digest=pushed.index_digest)

    def verify(self) -> ssl.SSLContext | bool:
        """What an httpx client needs to trust this registry."""
        return ssl.create_default_context(cafile=str(self.ca)) if self.ca else True

    def image(self, tag: str | None = None, repository: str | None = None) -> str:
        """`host:port/repository:tag`, as in the chart's `*.image` values."""
        return f"{self.host}/{repository or self.repository}:{tag or self.tag}"


def docker_config(path: Path, *registries: Registry, password: str | None = None) -> Path:
    """Write a Docker `config.json` with each registry's credentials (or `password` for all),
    as `docker login` does; it is also what an imagePullSecret holds."""
    auths = {}
    for registry in registries:
        secret = f"{registry.username}:{registry.password if password is None else password}"
        auths[registry.host] = {"auth": base64.b64encode(secret.encode()).decode()}
    path.write_text(json.dumps({"auths": auths}))
    return path


# --- pushing a tiny image with plain HTTP calls -----------------------------------------------


@dataclass(frozen=True)
class _Pushed:
    digest: str
    index_digest: str


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _push_blob(client: httpx.Client, repository: str, data: bytes) -> dict[str, object]:
    """Monolithic upload: POST opens an upload session, PUT with ?digest= closes it."""
    started = client.post(f"/v2/{repository}/blobs/uploads/")
    started.raise_for_status()
    location = httpx.URL(started.headers["Location"])  # carries the upload's _state query
    done = client.put(
        location.copy_add_param("digest", _digest(data)),
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    done.raise_for_status()
    return {"digest": _digest(data), "size": len(data)}


def _push_manifest(
    client: httpx.Client, repository: str, tag: str, media_type: str, body: bytes
) -> str:
    response = client.put(
        f"/v2/{repository}/manifests/{tag}", content=body, headers={"Content-Type": media_type}
    )
    response.raise_for_status()
    return response.headers["Docker-Content-Digest"]


def push_test_image(client: httpx.Client, repository: str, tag: str, index_tag: str) -> _Pushed:
    """Push one layer, a config and a manifest under `tag` and `latest`, and an index."""
    layer = _push_blob(client, repository, b"sense-preflight test layer " + uuid.uuid4().bytes)
    config_json = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
    }
    config = _push_blob(client, repository, json.dumps(config_json).encode())
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **config},
            "layers": [{"mediaType": OCI_LAYER, **layer}],
        }
    ).encode()
    digest = _push_manifest(client, repository, tag, OCI_MANIFEST, manifest)
    _push_manifest(client, repository, "latest", OCI_MANIFEST, manifest)
    platform = {"architecture": "amd64", "os": "linux"}
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": digest,
                    "size": len(manifest),
                    "platform": platform,
                }
            ],
        }
    ).encode()
    index_digest = _push_manifest(client, repository, index_tag, OCI_INDEX, index)
    return _Pushed(digest=digest, index_digest=index_digest)


# --- the registry process ----------------------------------------------------------------------


def _registry_binary() -> str | None:
    return shutil.which("docker-registry") or shutil.which("registry")


def _htpasswd_line(username: str, password: str) -> str:
    result = subprocess.run(
        ["htpasswd", "-Bbn", username, password], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def _start_registry(
    name: str, folder: Path, auth: Mapping[str, object], tls: CertFiles
) -> tuple[ServerProcess, int]:
    """Start the registry with its own config on a free loopback port; wait until it listens."""
    binary = _registry_binary()
    if binary is None:
        pytest.skip("no docker-registry binary: run .ci/setup/registry.sh")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    http = {
        "addr": f"127.0.0.1:{port}",
        "secret": uuid.uuid4().hex,
        "tls": {"certificate": str(tls.cert), "key": str(tls.key)},
    }
    config = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(folder / "data")},
            "delete": {"enabled": True},
        },
        "http": http,
        "auth": auth,
    }
    (folder / "config.yml").write_text(json.dumps(config))  # JSON is YAML
    server = start_process(name, [binary, "serve", str(folder / "config.yml")], folder, cwd=folder)
    try:
        wait_for_port("127.0.0.1", port, timeout=20, proc=server.proc)
    except (RuntimeError, TimeoutError) as exc:
        server.stop()
        raise RuntimeError(f"{name} did not start: {exc}\n{server.log_tail()}") from exc
    return server, port


@pytest.fixture(scope="session")
def registry(test_ca: trustme.CA, session_dir: Path) -> Iterator[Registry]:
    """A registry with htpasswd (Basic) auth over HTTPS on 127.0.0.1, the test image pushed."""
    username, password = "sense", "registry-pw-" + uuid.uuid4().hex[:8]
    server = None
    if url := os.environ.get("SENSE_TEST_REGISTRY_URL"):
        url = url.rstrip("/")
        username = os.environ.get("SENSE_TEST_REGISTRY_USER", "")
        password = os.environ.get("SENSE_TEST_REGISTRY_PASSWORD", "")
        ca = (
            Path(os.environ["SENSE_TEST_REGISTRY_CA"])
            if "SENSE_TEST_REGISTRY_CA" in os.environ
            else None
        )
    else:
        folder = session_dir / "registry"
        tls = issue_cert(test_ca, folder / "tls")
        (folder / "htpasswd").write_text(_htpasswd_line(username, password) + "\n")
        auth = {"htpasswd": {"realm": "sense-test", "path": str(folder / "htpasswd")}}
        server, port = _start_registry("registry", folder, auth, tls)
        url, ca = f"https://127.0.0.1:{port}", tls.ca
    try:
        described = Registry(url, urlsplit(url).netloc, "basic", username, password, ca=ca)
        yield described.pushed({"auth": (username, password)})
    finally:
        if server is not None:
            server.stop()


# --- the token server (Docker's token authentication spec) -------------------------------------


@dataclass(frozen=True)
class _TokenSigner:
    """Signs registry tokens (RS256 JWTs) with a key whose certificate the test CA issued."""

    key: rsa.RSAPrivateKey
    cert_der: bytes

    @classmethod
    def issued_by(cls, ca: trustme.CA) -> _TokenSigner:
        leaf = ca.issue_cert("token-signer.sense-test", key_type=trustme.KeyType.RSA)
        key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
        der = cert.public_bytes(serialization.Encoding.DER)
        return cls(key=key, cert_der=der)

    def token(self, subject: str, access: Sequence[Mapping[str, object]]) -> str:
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "x5c": [base64.b64encode(self.cert_der).decode()]}
        claims = {
            "iss": TOKEN_ISSUER,
            "sub": subject,
            "aud": TOKEN_SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        return sign_rs256(self.key, header, claims)


def _token_handler(signer: _TokenSigner, username: str, password: str) -> type[FakeHandler]:
    """GET /token?service=&scope=: Basic credentials → a token granting pull on the scopes asked;
    no credentials → an anonymous token granting nothing (as Docker Hub and Harbor do for a
    private repository); wrong credentials → 401."""
    expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    class TokenHandler(FakeHandler):
        def do_GET(self) -> None:
            header = self.headers.get("Authorization", "")
            if header and header != expected:
                self.reply(
                    401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}
                )
                return
            access = []
            for scope in parse_qs(urlsplit(self.path).query).get("scope", []) if header else []:
                kind, _, rest = scope.partition(":")
                name = rest.rpartition(":")[0]
                access.append({"type": kind, "name": name, "actions": ["pull"]})
            token = signer.token(username if header else "", access)
            self.reply(200, {"token": token, "access_token": token, "expires_in": 300})

    return TokenHandler


@pytest.fixture(scope="session")
def registry_token(test_ca: trustme.CA, session_dir: Path) -> Iterator[Registry]:
    """A registry with Bearer token auth over HTTPS, its token server, the test image pushed."""
    username, password = "sense", "token-pw-" + uuid.uuid4().hex[:8]
    folder = session_dir / "registry-token"
    tls = issue_cert(test_ca, folder / "tls")
    signer = _TokenSigner.issued_by(test_ca)

    handler = _token_handler(signer, username, password)
    with FakeHttpServer(handler, tls.server_context()) as token_server:
        auth = {
            "token": {
                "realm": f"{token_server.url}/token",
                "service": TOKEN_SERVICE,
                "issuer": TOKEN_ISSUER,
                "rootcertbundle": str(tls.ca),
            }
        }
        server, port = _start_registry("registry-token", folder, auth, tls=tls)
        try:
            push_scope = [{"type": "repository", "name": REPOSITORY, "actions": ["pull", "push"]}]
            headers = {"Authorization": f"Bearer {signer.token('fixture', push_scope)}"}
            host = f"localhost:{port}"
            described = Registry(f"https://{host}", host, "bearer", username, password, ca=tls.ca)
            yield described.pushed({"headers": headers})
        finally:
            server.stop()
