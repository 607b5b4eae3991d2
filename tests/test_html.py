"""The HTML report, as a pure function of the report: the verdict, one matrix row per check
with a cell per layer, the details of each row, and every text escaped."""

from __future__ import annotations

import base64
import hashlib
import re

from preflight.report.renderers.html import LAYERS, layer_columns, render_html
from preflight.report.result import CheckResult, Report, Status, StepResult
from preflight.values.check import result_for
from preflight.values.rules import Problem

PASSING_POSTGRES = tuple(
    StepResult(name, Status.PASS, f"{name} ok", duration_s=0.002)
    for name in (*LAYERS[:6], "database", "permissions", "capacity", "roundtrip")
)
VALUES_PASS = CheckResult(
    "values", "Values", Status.PASS, "all present", steps=(StepResult("rules", Status.PASS, "ok"),)
)

POSTGRES_API = CheckResult(
    "postgres.api",
    "PostgreSQL (API)",
    Status.PASS,
    "PostgreSQL 17.2",
    steps=PASSING_POSTGRES,
    facts={"server_version": "17.2", "owns_database": True},
)


def report_of(*checks: CheckResult) -> Report:
    return Report(
        checks=checks,
        duration_s=2.345,
        version="1.2.3",
        started="2026-12-02T15:35:35Z",
        in_cluster=False,
        values_files=("custom-values.yaml", "secrets.yaml"),
    )


def pass_only() -> Report:
    return report_of(
        VALUES_PASS,
        POSTGRES_API,
        CheckResult("gpu", "GPU nodes", Status.SKIP, "Vision is disabled"),
    )


def mixed() -> Report:
    return report_of(
        VALUES_PASS,
        POSTGRES_API,
        CheckResult(
            "postgres.worker",
            "PostgreSQL (worker)",
            Status.FAIL,
            "tcp: connection refused",
            "start PostgreSQL or fix postgres.worker.port",
            steps=(
                StepResult("config", Status.PASS, "db:5432"),
                StepResult("dns", Status.PASS, "10.0.0.5", duration_s=0.004),
                StepResult(
                    "tcp",
                    Status.FAIL,
                    "connection refused",
                    "start PostgreSQL or fix postgres.worker.port",
                    0.012,
                ),
            ),
        ),
        CheckResult(
            "s3",
            "S3",
            Status.WARN,
            "addressing: path-style only",
            "set s3.forcePathStyle",
            steps=(
                StepResult("config", Status.PASS, "https://s3"),
                StepResult("auth", Status.PASS, "signed"),
                StepResult("bucket", Status.PASS, "exists"),
                StepResult("addressing", Status.WARN, "path-style only", "set s3.forcePathStyle"),
                StepResult("roundtrip", Status.SKIP, "--read-only"),
            ),
        ),
        CheckResult("gpu", "GPU nodes", Status.SKIP, "Vision is disabled"),
    )


def values_error() -> Report:
    values = result_for(
        [Problem("postgres.api.password", "required"), Problem("s3.bucket", "must be a string")]
    )
    return report_of(values)


def row(page: str, check_id: str) -> str:
    """The <details> of one check."""
    match = re.search(
        rf'<details class="check \w+" id="[^"]*" data-check="{re.escape(check_id)}"( open)?>.*?</details>',
        page,
        re.S,
    )
    assert match, f"no row for {check_id}"
    return match.group(0)


def cells(page: str, check_id: str) -> dict[str, str]:
    """layer → the cell's class (pass, warn, fail, skip, unreached, none)."""
    return dict(
        (layer, state)
        for state, layer in re.findall(
            r'<span class="cell (\w+)" data-layer="([^"]+)"', row(page, check_id)
        )
    )


def test_pass_only_report() -> None:
    page = render_html(pass_only())
    assert "<title>sense-preflight: PASS, every check that applies passed</title>" in page
    assert re.findall(r'data-check="([^"]+)"', page) == ["values", "postgres.api", "gpu"]
    postgres = cells(page, "postgres.api")
    assert set(postgres.values()) == {"pass"}
    assert list(postgres) == [*LAYERS[:6], "database", "permissions", "capacity", "roundtrip"]
    assert "skipped: Vision is disabled" in row(page, "gpu")
    assert 'class="cell fail" data-layer' not in page
    assert "<i>&lt;1 ms</i>" in row(page, "values") and "<1" not in page
    assert "<dd>2026-12-02 15:35:35 UTC</dd>" in page
    assert "<dd>outside the cluster (a laptop or CI)</dd>" in page
    assert "<dd>custom-values.yaml, secrets.yaml</dd>" in page
    assert "<dt>owns_database</dt><dd>true</dd>" in row(page, "postgres.api")


def test_mixed_report_marks_the_failing_layer_and_what_was_not_reached() -> None:
    page = render_html(mixed())
    assert "<title>sense-preflight: FAIL, 1 of 5 checks failed</title>" in page
    worker = cells(page, "postgres.worker")
    assert (worker["config"], worker["dns"], worker["tcp"]) == ("pass", "pass", "fail")
    # walked by postgres.api, so not reached by the worker; s3's own steps are not the worker's
    assert worker["tls"] == worker["database"] == worker["roundtrip"] == "unreached"
    assert worker["bucket"] == "none"
    s3 = cells(page, "s3")
    assert (s3["addressing"], s3["roundtrip"], s3["dns"]) == ("warn", "skip", "none")
    worker_row = row(page, "postgres.worker")
    assert "<strong>What to do:</strong> start PostgreSQL or fix postgres.worker.port" in worker_row
    assert "12 ms" in worker_row


def test_columns_keep_the_design_order_and_place_own_steps_after_their_layer() -> None:
    assert layer_columns(mixed().checks) == [
        "config", "dns", "tcp", "tls", "auth", "bucket", "addressing", "version", "database",
        "permissions", "capacity", "roundtrip",
    ]  # fmt: skip


def test_values_error_report() -> None:
    page = render_html(values_error())
    assert "BAD VALUES" in page and "2 problem(s) in the values, no dependency was checked" in page
    values = cells(page, "values")
    assert values["config"] == "fail" and "<b>FAIL &times;2</b>" in row(page, "values")
    assert set(values.values()) == {"fail", "none"}
    body = row(page, "values")
    assert body.startswith(
        '<details class="check fail" id="check-values" data-check="values" open>'
    )
    assert "<code>postgres.api.password</code>" in body and "must be a string" in body


def test_every_text_is_escaped() -> None:
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>\" ' &"
    report = report_of(
        CheckResult(
            'demo."x"',
            hostile,
            Status.FAIL,
            f"auth: server said {hostile}",
            hostile,
            steps=(StepResult("auth", Status.FAIL, hostile, hostile),),
            facts={hostile: [hostile]},
        )
    )
    page = render_html(report)
    assert page.count("<script") == 1  # the page's own, at the end
    assert "<img" not in page and "alert(1)</script>" not in page
    assert (
        "server said &lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&quot; &#x27; &amp;"
        in page
    )
    assert 'data-check="demo.&quot;x&quot;"' in page


def test_nothing_loads_and_only_the_pages_own_style_and_script_run() -> None:
    page = render_html(mixed())
    assert not re.search(r"\b(?:src|href|action)=|url\(|@import", page)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert "default-src 'none'" in csp
    for tag, source in (("style", "style-src"), ("script", "script-src")):
        body = re.search(rf"<{tag}>(.*?)</{tag}>", page, re.S).group(1)
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"{source} 'sha256-{digest}'" in csp


def test_rendering_is_a_pure_function_of_the_report() -> None:
    assert render_html(mixed()) == render_html(mixed())
