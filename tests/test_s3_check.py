"""The s3 check through the real CLI, against SeaweedFS and moto (tests/servers/s3.py)."""

from __future__ import annotations

import glob
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.cli import CliResult, example_values, run_cli, write_values
from tests.servers.hostile import HostileServers
from tests.servers.s3 import S3Identity, S3Server

pytestmark = pytest.mark.server("s3")

TIMEOUT = 5.0
STEPS = ["config", "dns", "tcp", "auth", "bucket", "addressing", "roundtrip"]


@pytest.fixture(scope="module", autouse=True)
def nothing_left_behind(s3_server: S3Server) -> Iterator[None]:
    """When this module's tests are done, no scratch object remains under sense-preflight/."""
    yield
    assert s3_server.scratch_keys() == []


def s3_values(
    server: S3Server,
    identity: S3Identity | None = None,
    *,
    tls: bool = False,
    host: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The guide's values with an s3 block for `server` (path style unless told otherwise)."""
    identity = identity or server.admin
    port = server.https_port if tls else server.http_port
    if port is None:
        pytest.skip(f"the S3 server under test has no {'HTTPS' if tls else 'plain-HTTP'} port")
    values = example_values(filled=True)
    values["s3"] = {
        "host": host or f"{server.host}:{port}",
        "secured": tls,
        "framesBucketName": server.bucket,
        "accessKey": identity.access_key,
        "secretKey": identity.secret_key,
        "forcePathStyle": True,
        **extra,
    }
    return values


def run_s3(tmp_path: Path, values: dict[str, Any], *args: str, **kwargs: Any) -> CliResult:
    """`sense-preflight VALUES --only s3 --timeout 5 ARGS` (JSON unless ARGS says otherwise)."""
    fmt = () if "--format" in args else ("--format", "json")
    return run_cli(
        write_values(tmp_path, values),
        "--only",
        "s3",
        "--timeout",
        str(TIMEOUT),
        *fmt,
        *args,
        **kwargs,
    )


def assert_fails_at(result: CliResult, step: str, *phrases: str) -> dict[str, Any]:
    """Exit 3, the s3 check failed at `step` (a pattern: `tcp|auth`), its detail holds every
    phrase, and no client library wrote to the terminal."""
    assert result.code == 3, result.stdout + result.stderr
    assert result.stderr == ""
    assert result.check("s3")["status"] == "fail"
    failed = result.failed_step("s3")
    assert re.fullmatch(step, failed["name"]), failed
    for phrase in phrases:
        assert phrase in failed["detail"], failed
    assert failed["remediation"]
    return failed


def assert_no_secret(result: CliResult, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.stdout + result.stderr


# --- healthy ------------------------------------------------------------------------------


def test_healthy_passes_with_facts(tmp_path: Path, s3_server: S3Server) -> None:
    result = run_s3(tmp_path, s3_values(s3_server))
    assert result.code == 0, result.stdout + result.stderr
    check = result.check("s3")
    assert check["status"] == "pass"
    assert [step["name"] for step in check["steps"]] == STEPS
    assert "put, read back and deleted" in check["message"]
    facts = check["facts"]
    assert facts["endpoint"] == s3_server.http_endpoint
    assert facts["addressing_style"] == "path"
    assert facts["server"].startswith("SeaweedFS")
    assert facts["versioning"] == "Disabled"
    assert facts["bucket_region"] == "us-east-1"
    assert check["duration_s"] < 3.0
    print(f"\ns3 check against healthy SeaweedFS: {check['duration_s']:.2f}s")
    assert_no_secret(result, s3_server.admin.secret_key, s3_server.admin.access_key)


def test_healthy_text_output(tmp_path: Path, s3_server: S3Server) -> None:
    result = run_s3(tmp_path, s3_values(s3_server), "--format", "text")
    assert result.code == 0, result.stdout + result.stderr
    assert "PASS  s3" in result.stdout
    assert "put, read back and deleted" in result.stdout
    assert result.stderr == ""


def test_https_with_the_ca_passes(tmp_path: Path, s3_server: S3Server) -> None:
    assert s3_server.ca is not None
    result = run_s3(tmp_path, s3_values(s3_server, tls=True), "--ca-bundle", str(s3_server.ca))
    assert result.code == 0, result.stdout + result.stderr
    check = result.check("s3")
    assert [step["name"] for step in check["steps"]] == [*STEPS[:3], "tls", *STEPS[3:]]
    assert check["facts"]["endpoint"] == s3_server.https_endpoint
    assert check["facts"]["tls_version"].startswith("TLS")


def test_read_only_skips_the_round_trip(tmp_path: Path, s3_server: S3Server) -> None:
    reader = identity(s3_server, "reader")
    result = run_s3(tmp_path, s3_values(s3_server, reader), "--read-only")
    assert result.code == 0, result.stdout + result.stderr
    steps = {step["name"]: step for step in result.check("s3")["steps"]}
    assert steps["roundtrip"]["status"] == "skip"
    assert "--read-only" in steps["roundtrip"]["detail"]


# --- config -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "secured", "fix"),
    [("https", False, "s3.secured: true"), ("http", True, "s3.secured: false")],
)
def test_scheme_contradicting_secured_fails_at_config(
    tmp_path: Path, s3_server: S3Server, scheme: str, secured: bool, fix: str
) -> None:
    host = f"{scheme}://{s3_server.host}:{s3_server.http_port}"
    result = run_s3(tmp_path, s3_values(s3_server, host=host, secured=secured))
    failed = assert_fails_at(result, "config", f"starts with {scheme}://")
    assert fix in failed["remediation"]


@pytest.mark.parametrize("suffix", ["/sense-frames", "/a/b/"])
def test_host_with_a_path_fails_at_config(tmp_path: Path, s3_server: S3Server, suffix: str) -> None:
    host = f"{s3_server.host}:{s3_server.http_port}{suffix}"
    assert_fails_at(run_s3(tmp_path, s3_values(s3_server, host=host)), "config", "has a path")


def test_matching_scheme_is_accepted(tmp_path: Path, s3_server: S3Server) -> None:
    host = f"http://{s3_server.host}:{s3_server.http_port}"
    result = run_s3(tmp_path, s3_values(s3_server, host=host))
    assert result.code == 0, result.stdout + result.stderr


# --- auth ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_wrong_secret(tmp_path: Path, s3_server: S3Server, fmt: str) -> None:
    wrong = replace(s3_server.admin, secret_key="wrong-secret-5521")
    result = run_s3(tmp_path, s3_values(s3_server, wrong), "--format", fmt)
    if fmt == "json":
        assert_fails_at(result, "auth", "secret key is wrong", "SignatureDoesNotMatch")
    else:
        assert result.code == 3
        assert "FAIL  s3" in result.stdout
        assert "auth: the secret key is wrong" in result.stdout
        assert "s3.secretKey" in result.stdout
    assert_no_secret(result, "wrong-secret-5521", wrong.access_key)


def test_unknown_access_key(tmp_path: Path, s3_server: S3Server) -> None:
    unknown = S3Identity("AKSENSEUNKNOWN77", "unknown-secret-8812")
    result = run_s3(tmp_path, s3_values(s3_server, unknown))
    assert_fails_at(result, "auth", "access key is unknown", "InvalidAccessKeyId")
    assert_no_secret(result, "unknown-secret-8812", "AKSENSEUNKNOWN77")


def _libfaketime() -> str:
    found = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    if not found:
        pytest.skip("libfaketime is not installed (.ci/setup/s3.sh installs it)")
    return found[0]


def test_clock_skew_says_by_how_much(tmp_path: Path, s3_server: S3Server) -> None:
    """The CLI runs under libfaketime with its clock 20 minutes slow; the server's is right."""
    env = {
        "LD_PRELOAD": _libfaketime(),
        "FAKETIME": "-20m",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    result = run_s3(tmp_path, s3_values(s3_server), env=env)
    failed = assert_fails_at(result, "auth", "RequestTimeTooSkewed", "behind the server's")
    assert "clock is 20m" in failed["detail"] or "clock is 19m" in failed["detail"]
    assert -1210 < result.check("s3")["facts"]["clock_offset_s"] < -1190


# --- rights -------------------------------------------------------------------------------


def identity(server: S3Server, name: str) -> S3Identity:
    """One of the server's test identities, or skip when it has none by that name."""
    found = getattr(server, name)
    if found is None:
        pytest.skip(f"the S3 server under test has no {name} identity")
    return found


@pytest.mark.parametrize(
    ("who", "step", "detail", "fix"),
    [
        ("stranger", "bucket", "denied (403)", "s3:ListBucket"),
        ("reader", "roundtrip", "s3:PutObject and s3:DeleteObject denied", "s3:PutObject, s3:Del"),
    ],
    ids=["no-rights-on-bucket", "read-only-key"],
)
def test_missing_rights_are_named(
    tmp_path: Path, s3_server: S3Server, who: str, step: str, detail: str, fix: str
) -> None:
    result = run_s3(tmp_path, s3_values(s3_server, identity(s3_server, who)))
    failed = assert_fails_at(result, step, detail)
    assert fix in failed["remediation"]
    # the put was refused: no cleanup to run, so no cleanup warning either
    assert [s["name"] for s in result.check("s3")["steps"]].count("cleanup") == 0


# --- bucket -------------------------------------------------------------------------------


def test_missing_bucket(tmp_path: Path, s3_server: S3Server) -> None:
    values = s3_values(s3_server)
    values["s3"]["framesBucketName"] = "sense-no-such-bucket"
    failed = assert_fails_at(
        run_s3(tmp_path, values), "bucket", "sense-no-such-bucket does not exist"
    )
    assert "create the bucket" in failed["remediation"]


def test_bucket_in_another_region_warns_when_region_unset(
    tmp_path: Path, s3_moto: S3Server
) -> None:
    """moto sends x-amz-bucket-region: the eu-west-1 bucket is seen from us-east-1."""
    result = run_s3(tmp_path, s3_values(s3_moto))
    assert result.code == 0, result.stdout
    check = result.check("s3")
    assert check["status"] == "warn"
    assert check["facts"]["bucket_region"] == "eu-west-1"
    bucket = next(step for step in check["steps"] if step["name"] == "bucket")
    assert bucket["status"] == "warn"
    assert "set s3.region: eu-west-1" in bucket["remediation"]
    assert run_s3(tmp_path, s3_values(s3_moto), "--strict").code == 4


def test_bucket_in_another_region_fails_when_region_set(tmp_path: Path, s3_moto: S3Server) -> None:
    result = run_s3(tmp_path, s3_values(s3_moto, region="us-east-1"))
    failed = assert_fails_at(result, "bucket", "is in region eu-west-1", "s3.region us-east-1")
    assert failed["remediation"] == "set s3.region: eu-west-1"


def test_bucket_in_its_region_passes_on_moto(tmp_path: Path, s3_moto: S3Server) -> None:
    result = run_s3(tmp_path, s3_values(s3_moto, region="eu-west-1"))
    assert result.code == 0, result.stdout
    assert result.check("s3")["status"] == "pass"
    assert s3_moto.scratch_keys() == []


def test_bucket_redirected_to_another_region(
    tmp_path: Path, s3_server: S3Server, s3_region_redirect: str
) -> None:
    result = run_s3(tmp_path, s3_values(s3_server, host=s3_region_redirect))
    failed = assert_fails_at(result, "bucket", "is in region eu-west-1, not us-east-1", "301")
    assert failed["remediation"].startswith("set s3.region: eu-west-1")
    assert result.check("s3")["facts"]["bucket_region"] == "eu-west-1"


# --- addressing ---------------------------------------------------------------------------


def test_virtual_host_unresolvable_warns_path_style_works(
    tmp_path: Path, s3_server: S3Server
) -> None:
    """`<bucket>.localhost` does not resolve here: the MinIO-style case."""
    values = s3_values(s3_server, host=f"localhost:{s3_server.http_port}")
    del values["s3"]["forcePathStyle"]
    result = run_s3(tmp_path, values)
    assert result.code == 0, result.stdout
    check = result.check("s3")
    assert check["status"] == "warn"
    step = next(step for step in check["steps"] if step["name"] == "addressing")
    assert step["status"] == "warn"
    assert f"{s3_server.bucket}.localhost" in step["detail"]
    assert "path style works" in step["detail"]
    assert "s3.forcePathStyle: true" in step["remediation"]
    assert check["facts"]["addressing_style"] == "path"
    assert "put, read back and deleted" in check["steps"][-1]["detail"]


def test_virtual_host_style_works_when_bucket_names_resolve(
    tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No wildcard DNS here, so this one runs the CLI in-process with a fake resolver that
    maps `<bucket>.localhost` to 127.0.0.1; SeaweedFS (-s3.domainName=localhost) does the rest."""
    from click.testing import CliRunner

    from preflight.cli import main

    virtual_host = f"{s3_server.bucket}.localhost"
    real_getaddrinfo = socket.getaddrinfo

    def fake_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real_getaddrinfo("127.0.0.1" if host == virtual_host else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    values = s3_values(s3_server, host=f"localhost:{s3_server.http_port}")
    del values["s3"]["forcePathStyle"]
    args = [str(write_values(tmp_path, values)), "--only", "s3", "--format", "json"]
    outcome = CliRunner().invoke(main, args)
    result = CliResult(outcome.exit_code, outcome.stdout, "", 0.0)
    assert result.code == 0, outcome.output
    check = result.check("s3")
    assert check["status"] == "pass"
    assert check["facts"]["addressing_style"] == "virtual"
    step = next(step for step in check["steps"] if step["name"] == "addressing")
    assert step["detail"] == f"virtual-host style works ({virtual_host})"
    assert "put, read back and deleted" in check["message"]


# --- roundtrip ----------------------------------------------------------------------------


def test_failure_after_the_put_still_deletes(tmp_path: Path, s3_moto: S3Server) -> None:
    """A key that may put and delete but not get: the round trip fails at GetObject and the
    cleanup still deletes the object it wrote."""
    writer = identity(s3_moto, "writer")
    result = run_s3(tmp_path, s3_values(s3_moto, writer, region="eu-west-1"))
    assert_fails_at(result, "roundtrip", "could not read it back", "AccessDenied")
    assert s3_moto.scratch_keys() == []


# --- tls and the network ------------------------------------------------------------------


def test_https_against_the_plain_port_fails_at_tls(tmp_path: Path, s3_server: S3Server) -> None:
    values = s3_values(s3_server, host=f"{s3_server.host}:{s3_server.http_port}", secured=True)
    failed = assert_fails_at(run_s3(tmp_path, values), "tls", "did not answer with TLS")
    assert "set s3.secured: false" in failed["remediation"]


def test_https_without_the_ca_fails_at_tls(tmp_path: Path, s3_server: S3Server) -> None:
    result = run_s3(tmp_path, s3_values(s3_server, tls=True))
    assert_fails_at(result, "tls", "unknown authority")


def test_https_skipping_verification_passes_with_a_warning(
    tmp_path: Path, s3_server: S3Server
) -> None:
    result = run_s3(tmp_path, s3_values(s3_server, tls=True), "--insecure-skip-tls-verify")
    assert result.code == 0, result.stdout + result.stderr
    assert result.stderr == ""  # no InsecureRequestWarning from urllib3
    check = result.check("s3")
    assert check["status"] == "warn"
    tls = next(step for step in check["steps"] if step["name"] == "tls")
    assert tls["status"] == "warn"
    assert "NOT verified" in tls["detail"]
    assert "put, read back and deleted" in check["steps"][-1]["detail"]


def test_nothing_listening_fails_at_tcp(
    tmp_path: Path, s3_server: S3Server, hostile: HostileServers
) -> None:
    values = s3_values(s3_server, host=f"127.0.0.1:{hostile.closed}")
    assert_fails_at(run_s3(tmp_path, values), "tcp", "connection refused")


@pytest.mark.parametrize(("secured", "step"), [(False, "auth"), (True, "tls")])
def test_accept_and_hang_fails_within_the_timeout(
    tmp_path: Path, s3_server: S3Server, hostile: HostileServers, secured: bool, step: str
) -> None:
    values = s3_values(s3_server, host=f"127.0.0.1:{hostile.hang}", secured=secured)
    result = run_s3(tmp_path, values)
    failed = assert_fails_at(result, step)
    assert "never" in failed["detail"] or "timed out" in failed["detail"]
    duration = result.check("s3")["duration_s"]
    assert TIMEOUT - 1 < duration < TIMEOUT + 0.5
    print(f"\ns3 check, accept-and-hang ({step}): {duration:.2f}s, CLI {result.duration_s:.2f}s")


@pytest.mark.parametrize(
    ("server", "secured", "step", "phrase"),
    [
        ("reset", False, "auth", "reset|closed the connection"),
        ("hangup", False, "auth", "closed the connection without answering"),
        ("garbage", False, "auth", "did not answer like S3"),
        ("http", False, "auth", "did not answer like S3"),
        ("tls_untrusted", True, "tls", "unknown authority"),
        ("tls_expired", True, "tls", "expired"),
        ("tls_stall", True, "tls", "timed out"),
    ],
)
def test_hostile_servers_fail_cleanly(
    tmp_path: Path,
    s3_server: S3Server,
    hostile: HostileServers,
    server: str,
    secured: bool,
    step: str,
    phrase: str,
) -> None:
    values = s3_values(s3_server, host=f"127.0.0.1:{getattr(hostile, server)}", secured=secured)
    result = run_s3(tmp_path, values, "--ca-bundle", str(s3_server.ca))
    failed = assert_fails_at(result, step)
    assert re.search(phrase, failed["detail"]), failed
    assert result.check("s3")["duration_s"] < TIMEOUT + 0.5


# --- a stall after the put: the cleanup still deletes -------------------------------------


class StallingProxy:
    """A test proxy to the S3 server that forwards everything but never forwards a GET of a
    scratch object: the round trip stalls after its put, like a server that hangs mid-way."""

    def __init__(self, server: S3Server) -> None:
        self.upstream = (server.host, server.http_port)
        self.stall = f"GET /{server.bucket}/sense-preflight/".encode()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)  # type: ignore[arg-type]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, inspect: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if inspect and chunk.startswith(self.stall):
                    return  # swallow the request: the client waits for an answer forever
                target.sendall(chunk)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def stalling_proxy(s3_server: S3Server) -> Iterator[StallingProxy]:
    proxy = StallingProxy(s3_server)
    yield proxy
    proxy.close()


def test_stall_after_the_put_fails_in_time_and_deletes(
    tmp_path: Path, s3_server: S3Server, stalling_proxy: StallingProxy
) -> None:
    values = s3_values(s3_server, host=f"127.0.0.1:{stalling_proxy.port}")
    result = run_s3(tmp_path, values)
    failed = assert_fails_at(result, "roundtrip", "GetObject", "never replied")
    assert result.check("s3")["duration_s"] < TIMEOUT + 0.5
    assert s3_server.scratch_keys() == []
    assert failed["detail"].startswith("GetObject")


def test_interrupted_run_deletes_the_object(
    tmp_path: Path, s3_server: S3Server, stalling_proxy: StallingProxy
) -> None:
    """Ctrl-C while the round trip waits: the cleanup deletes the object before the exit."""
    values = write_values(tmp_path, s3_values(s3_server, host=f"127.0.0.1:{stalling_proxy.port}"))
    argv = [sys.executable, "-m", "preflight", values, "--only", "s3", "--timeout", "30"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not s3_server.scratch_keys():
            assert time.monotonic() < deadline, "the check never wrote its object"
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert s3_server.scratch_keys() == []
