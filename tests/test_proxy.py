"""Proxies through the real CLI: the HTTP checks go through a real forward proxy (tinyproxy)
exactly when the product's .NET clients would, against the suite's real servers, and a proxy
that refuses gets its own cause and fix. The log of the proxy proves where requests went."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.cli import CliResult, example_values, run_cli, write_values
from tests.servers.clickhouse import ClickHouseServer
from tests.servers.detectors import DetectorServers
from tests.servers.hostile import HostileServers
from tests.servers.kafka import KafkaBroker
from tests.servers.oidc import OidcProvider
from tests.servers.openfga import OpenFgaServer
from tests.servers.proxy import PROXY_PASSWORD, ForwardProxy, proxy_environment
from tests.servers.registry import Registry, docker_config
from tests.servers.s3 import S3Server
from tests.test_clickhouse import clickhouse_values
from tests.test_s3_check import s3_values

TIMEOUT = ("--timeout", "8")


def proxied(proxy: ForwardProxy | str, no_proxy: str = "") -> dict[str, str]:
    """The proxy variables of a corporate machine: both schemes through `proxy`."""
    return proxy_environment(proxy if isinstance(proxy, str) else proxy.url, no_proxy)


def run(
    tmp_path: Path, values: dict[str, Any], only: str, env: dict[str, str], *args: str
) -> CliResult:
    result = run_cli(
        write_values(tmp_path, values), "--only", only, "--format", "json", *TIMEOUT, *args, env=env
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert PROXY_PASSWORD not in result.stdout + result.stderr
    return result


def steps(result: CliResult, check_id: str) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in result.check(check_id)["steps"]}


def oidc_values(provider: OidcProvider) -> dict[str, Any]:
    values = example_values()
    values["oidc"] = {
        "authority": provider.issuer,
        "clientId": provider.service.client_id,
        "clientSecret": provider.service.client_secret,
        "requireHttpsMetadata": False,
    }
    return values


# --- through the proxy ------------------------------------------------------------------------


@pytest.mark.server("s3")
def test_s3_goes_through_the_proxy_and_warns_it_is_internal(
    tmp_path: Path, s3_server: S3Server, forward_proxy: ForwardProxy
) -> None:
    mark = forward_proxy.mark()
    result = run(tmp_path, s3_values(s3_server), "s3", proxied(forward_proxy))
    check = result.check("s3")
    by_name = steps(result, "s3")
    assert list(by_name)[:4] == ["config", "dns", "tcp", "proxy"], by_name
    assert f"proxy http://127.0.0.1:{forward_proxy.port} (HTTP_PROXY)" in by_name["tcp"]["detail"]
    assert by_name["proxy"]["status"] == "warn"
    assert "a private address (127.0.0.1)" in by_name["proxy"]["detail"]
    assert (
        "not in no_proxy: the product would send this internal traffic to proxy"
        in (by_name["proxy"]["detail"])
    )
    assert by_name["roundtrip"]["status"] == "pass", by_name
    assert check["status"] == "warn" and result.code == 0
    assert check["facts"]["proxy"] == f"proxy http://127.0.0.1:{forward_proxy.port} (HTTP_PROXY)"
    logged = forward_proxy.requests_since(mark)
    target = f"http://{s3_server.host}:{s3_server.http_port}/"
    assert any(line.startswith(f"PUT {target}{s3_server.bucket}/") for line in logged), logged
    assert any(line.startswith(f"DELETE {target}{s3_server.bucket}/") for line in logged)
    assert s3_server.scratch_keys() == []


@pytest.mark.server("s3")
def test_no_proxy_entry_sends_s3_direct(
    tmp_path: Path, s3_server: S3Server, forward_proxy: ForwardProxy
) -> None:
    mark = forward_proxy.mark()
    result = run(
        tmp_path, s3_values(s3_server), "s3", proxied(forward_proxy, "example.com, 127.0.0.1")
    )
    by_name = steps(result, "s3")
    assert result.check("s3")["status"] == "pass", by_name
    assert "proxy" not in by_name
    assert "(direct: no_proxy has 127.0.0.1)" in by_name["dns"]["detail"]
    assert forward_proxy.requests_since(mark) == []


@pytest.mark.server("s3")
def test_s3_over_https_goes_through_a_connect_tunnel(
    tmp_path: Path, s3_server: S3Server, forward_proxy: ForwardProxy
) -> None:
    assert s3_server.ca is not None
    mark = forward_proxy.mark()
    values = s3_values(s3_server, tls=True)
    result = run(tmp_path, values, "s3", proxied(forward_proxy), "--ca-bundle", str(s3_server.ca))
    by_name = steps(result, "s3")
    netloc = f"{s3_server.host}:{s3_server.https_port}"
    assert list(by_name)[:5] == ["config", "dns", "tcp", "proxy", "tls"], by_name
    assert by_name["tls"]["status"] == "pass" and by_name["roundtrip"]["status"] == "pass"
    assert f"(HTTPS_PROXY) (CONNECT {netloc} → HTTP 200" in by_name["proxy"]["detail"]
    logged = forward_proxy.requests_since(mark)
    tunnels = [line for line in logged if line.startswith(f"CONNECT {netloc} HTTP/")]
    assert len(tunnels) >= 2, logged  # reach's, then boto3's
    assert s3_server.scratch_keys() == []


@pytest.mark.server("openfga")
def test_openfga_round_trip_and_cleanup_go_through_the_proxy(
    tmp_path: Path, openfga: OpenFgaServer, forward_proxy: ForwardProxy
) -> None:
    mark = forward_proxy.mark()
    values = example_values()
    values["openfga"] = {"apiUrl": openfga.url, "apiKey": openfga.api_key}
    result = run(tmp_path, values, "openfga", proxied(forward_proxy))
    by_name = steps(result, "openfga")
    assert by_name["roundtrip"]["status"] == "pass", by_name
    logged = forward_proxy.requests_since(mark)
    assert any(line.startswith(f"POST {openfga.url}/stores HTTP") for line in logged), logged
    assert any(line.startswith(f"DELETE {openfga.url}/stores/") for line in logged), logged
    assert openfga.api_key not in result.stdout


def test_map_matching_goes_through_the_proxy_with_its_key(
    tmp_path: Path, detector_servers: DetectorServers, forward_proxy: ForwardProxy
) -> None:
    mark = forward_proxy.mark()
    url = detector_servers.url("auth", "mm-proxied")
    values = example_values()
    values["vision"]["config"]["mapMatching"] = {
        "backend": "map_matching_api",
        "mapMatchingApi": {"baseUrl": url, "apiKey": detector_servers.token},
    }
    result = run(tmp_path, values, "map-matching", proxied(forward_proxy))
    assert steps(result, "map-matching")["http"]["status"] == "pass", result.stdout
    assert f"HEAD {url} HTTP/1.1" in forward_proxy.requests_since(mark)
    [seen] = detector_servers.log.to("/mm-proxied")
    assert seen.headers["X-API-Key"] == detector_servers.token  # the proxy passed it on


@pytest.mark.server("registry")
def test_registry_goes_through_a_connect_tunnel(
    tmp_path: Path, registry: Registry, forward_proxy: ForwardProxy
) -> None:
    mark = forward_proxy.mark()
    values = example_values()
    values["api"]["image"] = {
        "repository": f"{registry.host}/{registry.repository}",
        "tag": registry.tag,
    }
    config = docker_config(tmp_path / "config.json", registry)
    ca = ("--ca-bundle", str(registry.ca)) if registry.ca else ()
    result = run(
        tmp_path,
        values,
        "images.api",
        proxied(forward_proxy),
        "--registry-config",
        str(config),
        *ca,
    )
    by_name = steps(result, "images.api")
    assert by_name["manifest"]["status"] == "pass", result.stdout
    assert f"CONNECT {registry.host} → HTTP 200" in by_name["proxy"]["detail"]
    tunnels = [line for line in forward_proxy.requests_since(mark) if line.startswith("CONNECT ")]
    assert len(tunnels) >= 2 and all(registry.host in line for line in tunnels), tunnels


@pytest.mark.server("clickhouse")
def test_clickhouse_http_goes_through_the_proxy(
    tmp_path: Path, clickhouse26: ClickHouseServer, forward_proxy: ForwardProxy
) -> None:
    mark = forward_proxy.mark()
    # --read-only: tinyproxy 1.11 now and then forwards a chunked request body (the inserts
    # of the round trip) empty; the queries before it are plain POSTs.
    values = clickhouse_values(clickhouse26)
    result = run(tmp_path, values, "clickhouse", proxied(forward_proxy), "--read-only")
    by_name = steps(result, "clickhouse")
    assert by_name["permissions"]["status"] == "pass", result.stdout
    assert by_name["proxy"]["status"] == "warn"
    assert (
        f"forwarded HEAD http://{clickhouse26.host}:{clickhouse26.port}/"
        in by_name["proxy"]["detail"]
    )
    logged = forward_proxy.requests_since(mark)
    assert f"GET {clickhouse26.url}/ping HTTP/1.1" in logged, logged
    assert sum(line.startswith(f"POST {clickhouse26.url}/") for line in logged) >= 3, logged


@pytest.mark.server("oidc")
def test_oidc_goes_through_the_proxy(
    tmp_path: Path, oidc_provider: OidcProvider, forward_proxy: ForwardProxy
) -> None:
    mark = forward_proxy.mark()
    result = run(tmp_path, oidc_values(oidc_provider), "oidc", proxied(forward_proxy))
    by_name = steps(result, "oidc")
    assert all(s["status"] == "pass" for n, s in by_name.items() if n != "proxy"), by_name
    logged = forward_proxy.requests_since(mark)
    assert f"GET {oidc_provider.issuer}/.well-known/openid-configuration HTTP/1.1" in logged
    assert any(line.startswith("POST ") and "/token" in line for line in logged), logged


@pytest.mark.server("oidc")
def test_https_goes_through_a_connect_tunnel(
    tmp_path: Path, oidc_provider_tls: OidcProvider, forward_proxy: ForwardProxy
) -> None:
    assert oidc_provider_tls.ca is not None
    mark = forward_proxy.mark()
    values = oidc_values(oidc_provider_tls)
    result = run(
        tmp_path, values, "oidc", proxied(forward_proxy), "--ca-bundle", str(oidc_provider_tls.ca)
    )
    by_name = steps(result, "oidc")
    netloc = f"{oidc_provider_tls.host}:{oidc_provider_tls.port}"
    assert f"CONNECT {netloc} → HTTP 200" in by_name["proxy"]["detail"], by_name
    assert by_name["tls"]["status"] == "pass", by_name
    assert result.check("oidc")["status"] == "warn", by_name  # only the internal warning
    assert f"CONNECT {netloc} HTTP/1.1" in forward_proxy.requests_since(mark)


@pytest.mark.server("oidc")
def test_unknown_ca_through_the_proxy_names_interception(
    tmp_path: Path, oidc_provider_tls: OidcProvider, forward_proxy: ForwardProxy
) -> None:
    result = run(tmp_path, oidc_values(oidc_provider_tls), "oidc", proxied(forward_proxy))
    step = result.failed_step("oidc")
    assert step["name"] == "tls"
    assert "certificate signed by unknown authority, seen through proxy" in step["detail"]
    assert "intercepts TLS" in step["detail"]
    assert "give the proxy's CA" in step["remediation"]
    assert result.code == 3


# --- a proxy that refuses ---------------------------------------------------------------------


@pytest.mark.server("s3")
@pytest.mark.parametrize(
    ("user_info", "cause", "fix"),
    [
        ("", "requires authentication (HTTP 407 Proxy Authentication Required)", "USER:PASSWORD@"),
        (  # tinyproxy answers wrong credentials with 401
            "preflight:not-the-password@",
            "rejected the credentials in HTTP_PROXY (HTTP 401 Unauthorized)",
            "check the user and password in HTTP_PROXY",
        ),
    ],
)
def test_proxy_authentication_refused(
    tmp_path: Path,
    s3_server: S3Server,
    auth_proxy: ForwardProxy,
    user_info: str,
    cause: str,
    fix: str,
) -> None:
    result = run(
        tmp_path,
        s3_values(s3_server),
        "s3",
        proxied(f"http://{user_info}127.0.0.1:{auth_proxy.port}"),
    )
    step = result.failed_step("s3")
    assert step["name"] == "proxy"
    assert step["detail"].startswith(
        f"proxy http://127.0.0.1:{auth_proxy.port} (HTTP_PROXY) {cause}"
    )
    assert fix in step["remediation"]
    assert "not-the-password" not in result.stdout
    assert result.code == 3


@pytest.mark.server("s3")
def test_proxy_with_credentials_passes_and_never_shows_them(
    tmp_path: Path, s3_server: S3Server, auth_proxy: ForwardProxy
) -> None:
    mark = auth_proxy.mark()
    bundle = tmp_path / "bundle.tar.gz"
    result = run(tmp_path, s3_values(s3_server), "s3", proxied(auth_proxy), "--bundle", str(bundle))
    assert steps(result, "s3")["roundtrip"]["status"] == "pass", result.stdout
    assert auth_proxy.requests_since(mark)
    with tarfile.open(bundle) as archive:
        members = {
            m.name.split("/", 1)[1]: archive.extractfile(m).read().decode()  # type: ignore[union-attr]
            for m in archive.getmembers()
        }
    assert all(PROXY_PASSWORD not in text for text in members.values())
    environment = members["environment.json"]
    assert f'"HTTPS_PROXY": "http://<redacted>@127.0.0.1:{auth_proxy.port}"' in environment
    assert '"proxy_used": true' in environment


@pytest.mark.server("oidc")
def test_connect_denied_is_its_own_cause(
    tmp_path: Path, oidc_provider_tls: OidcProvider, strict_proxy: ForwardProxy
) -> None:
    assert oidc_provider_tls.ca is not None
    values = oidc_values(oidc_provider_tls)
    result = run(
        tmp_path, values, "oidc", proxied(strict_proxy), "--ca-bundle", str(oidc_provider_tls.ca)
    )
    step = result.failed_step("oidc")
    netloc = f"{oidc_provider_tls.host}:{oidc_provider_tls.port}"
    assert step["name"] == "proxy"
    assert f"denied CONNECT to {netloc} (HTTP 403 Access violation)" in step["detail"]
    assert "port 443 only" in step["remediation"]


@pytest.mark.server("s3")
def test_proxy_that_cannot_reach_the_target(
    tmp_path: Path, s3_server: S3Server, forward_proxy: ForwardProxy, hostile: HostileServers
) -> None:
    values = s3_values(s3_server, host=f"127.0.0.1:{hostile.closed}")
    result = run(tmp_path, values, "s3", proxied(forward_proxy))
    step = result.failed_step("s3")
    assert step["name"] == "proxy"
    assert (
        f"could not reach 127.0.0.1:{hostile.closed} (HTTP 500 Unable to connect)" in step["detail"]
    )
    assert step["remediation"].startswith(
        "add 127.0.0.1 to no_proxy: the product should reach it directly (else: check that the "
        f"proxy can resolve and reach 127.0.0.1:{hostile.closed}"
    )


def test_dead_proxy_fails_at_tcp_naming_it(tmp_path: Path, hostile: HostileServers) -> None:
    values = example_values()
    values["oidc"] = {
        "authority": "http://idp.example.com/realms/sense",
        "clientId": "a",
        "clientSecret": "b",
        "requireHttpsMetadata": False,
    }
    result = run(tmp_path, values, "oidc", proxied(f"http://127.0.0.1:{hostile.closed}"))
    step = result.failed_step("oidc")
    assert step["name"] == "tcp"
    assert f"127.0.0.1:{hostile.closed}: connection refused" in step["detail"]
    assert (
        f"proxy http://127.0.0.1:{hostile.closed} (HTTP_PROXY): 127.0.0.1"
        in steps(result, "oidc")["dns"]["detail"]
    )


# --- what stays direct ------------------------------------------------------------------------


@pytest.mark.server("s3")
def test_no_proxy_flag_runs_direct_and_the_bundle_says_so(
    tmp_path: Path, s3_server: S3Server, hostile: HostileServers
) -> None:
    bundle = tmp_path / "bundle.tar.gz"
    dead = f"http://user:{PROXY_PASSWORD}@127.0.0.1:{hostile.closed}"
    result = run(
        tmp_path, s3_values(s3_server), "s3", proxied(dead), "--no-proxy", "--bundle", str(bundle)
    )
    assert result.check("s3")["status"] == "pass", result.stdout
    with tarfile.open(bundle) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("environment.json"))
        environment = archive.extractfile(member).read().decode()  # type: ignore[union-attr]
    assert f'"HTTP_PROXY": "http://<redacted>@127.0.0.1:{hostile.closed}"' in environment
    assert '"proxy_used": false' in environment
    assert PROXY_PASSWORD not in environment


@pytest.mark.server("kafka")
def test_kafka_is_not_affected_by_proxy_variables(
    tmp_path: Path, kafka_tansu: KafkaBroker, hostile: HostileServers
) -> None:
    values = example_values()
    values["kafka"] = {"bootstrapServers": kafka_tansu.bootstrap}
    result = run(
        tmp_path, values, "kafka", proxied(f"http://127.0.0.1:{hostile.closed}"), "--read-only"
    )
    check = result.check("kafka")
    assert check["status"] != "fail", check
    assert all("proxy" not in step["detail"].lower() for step in check["steps"]), check
