"""The HTML report in a real headless Chromium (Debian's chromium and chromium-driver, driven
by Selenium), loaded from a file URL with the network off: the matrix's rows, the failing
cell's colour, a row opened shows the remediation, and the page asks for nothing.

The screenshots are kept (SENSE_TEST_ARTIFACTS, else pytest's temporary folder) and their
paths printed in the log."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli import example_values, run_cli, write_values
from tests.servers._process import free_port
from tests.servers.postgres import PostgresServer
from tests.test_bundle import read_bundle
from tests.test_postgres import database_values

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
HOSTILE = "<script>window.injected = 1</script><img src=http://192.0.2.1/x.png>"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium with the network emulated offline and its requests logged."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("no chromium and chromium-driver: run .ci/setup/browser.sh")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1440,900",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("SENSE_TEST_ARTIFACTS") or tmp_path_factory.mktemp("artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def bundle_page(tmp_path_factory: pytest.TempPathFactory, postgres17: PostgresServer) -> Path:
    """The report.html of a real run's bundle: postgres.api passes against PostgreSQL 17,
    postgres.worker's password is wrong (auth), clickhouse's port is closed (tcp), kafka's
    host does not resolve (dns), kubernetes and gpu have no cluster (skip)."""
    folder = tmp_path_factory.mktemp("bundle-page")
    values = example_values()
    values["postgres"]["api"] = database_values(postgres17)
    values["postgres"]["worker"] = {**database_values(postgres17), "password": "Zq-wrong-4242"}
    values["clickhouse"].update(host="127.0.0.1", port=free_port())
    values["kafka"]["bootstrapServers"] = "kafka.invalid:9092"
    bundle = folder / "bundle.tar.gz"
    result = run_cli(
        write_values(folder, values, "custom-values.yaml"),
        "--only",
        "postgres,clickhouse,kafka,kubernetes,gpu",
        "--bundle",
        bundle,
        "--timeout",
        "5",
        env={"KUBECONFIG": str(folder / "no-kubeconfig")},
    )
    assert result.code == 3, result.stdout + result.stderr
    page = folder / "report.html"
    page.write_text(read_bundle(bundle)["report.html"])
    (folder / "report.json").write_text(read_bundle(bundle)["report.json"])
    return page


def load(driver: Any, page: Path) -> list[str]:
    """Open the page; return the URL of every request it made."""
    driver.get_log("performance")  # drop what came before
    driver.get(page.as_uri())
    requests = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
    return requests


def screenshot(driver: Any, folder: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = folder / name
    driver.save_screenshot(str(path))
    with capsys.disabled():
        print(f"\nscreenshot: {path}")


def row(driver: Any, check_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'details.check[data-check="{check_id}"]')


def cell_states(driver: Any, check_id: str) -> dict[str, str]:
    from selenium.webdriver.common.by import By

    return {
        cell.get_attribute("data-layer"): cell.get_attribute("class").split()[1]
        for cell in row(driver, check_id).find_elements(By.CSS_SELECTOR, ".cell[data-layer]")
    }


def test_a_bundle_page_shows_the_failing_layers_in_the_first_screen(
    browser: Any, bundle_page: Path, artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from selenium.webdriver.common.by import By

    requests = load(browser, bundle_page)
    assert requests == [bundle_page.as_uri()]
    ids = [
        r.get_attribute("data-check")
        for r in browser.find_elements(By.CSS_SELECTOR, "details.check")
    ]
    assert set(ids) == {
        "values",
        "postgres.api",
        "postgres.worker",
        "clickhouse",
        "kafka",
        "kubernetes",
        "gpu",
    }
    assert set(cell_states(browser, "postgres.api").values()) == {"pass"}
    failing = {"postgres.worker": "auth", "clickhouse": "tcp", "kafka": "dns"}
    viewport = browser.execute_script("return window.innerHeight")
    for check_id, layer in failing.items():
        states = cell_states(browser, check_id)
        assert [name for name, state in states.items() if state == "fail"] == [layer]
        cell = row(browser, check_id).find_element(By.CSS_SELECTOR, f'.cell[data-layer="{layer}"]')
        assert cell.text.startswith("FAIL")
        assert (
            cell.value_of_css_property("background-color") == "rgba(179, 38, 30, 1)"
        )  # the CSS ran
        box = browser.execute_script("return arguments[0].getBoundingClientRect().toJSON()", cell)
        assert box["bottom"] <= viewport and box["right"] <= browser.execute_script(
            "return window.innerWidth"
        )
    assert cell_states(browser, "clickhouse")["auth"] == "unreached"
    assert (
        row(browser, "gpu").find_element(By.CSS_SELECTOR, ".span-skip").text.startswith("skipped:")
    )
    screenshot(browser, artifacts, "report.png", capsys)

    # the script ran (under the page's Content-Security-Policy): expand all, collapse all
    expand = browser.find_element(By.CSS_SELECTOR, '#controls [data-open="true"]')
    assert expand.is_displayed()
    expand.click()
    assert all(
        r.get_attribute("open") is not None
        for r in browser.find_elements(By.CSS_SELECTOR, "details.check")
    )
    browser.find_element(By.CSS_SELECTOR, '#controls [data-open="false"]').click()

    worker = row(browser, "postgres.worker")
    fix = worker.find_element(By.CSS_SELECTOR, ".fix")
    assert not fix.is_displayed()
    worker.find_element(By.TAG_NAME, "summary").click()
    assert fix.is_displayed() and fix.text.startswith("What to do:")
    steps = [r.text for r in worker.find_elements(By.CSS_SELECTOR, ".steps tbody tr")]
    assert steps[-1].startswith("auth FAIL")
    assert "Zq-wrong-4242" not in browser.page_source
    facts = row(browser, "postgres.api")
    facts.find_element(By.TAG_NAME, "summary").click()
    assert "server_version" in facts.find_element(By.CSS_SELECTOR, ".facts").text
    browser.execute_script("arguments[0].scrollIntoView()", worker)
    screenshot(browser, artifacts, "report-open.png", capsys)


def test_without_script_rows_still_open(browser: Any, bundle_page: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        assert load(browser, bundle_page) == [bundle_page.as_uri()]
        assert not browser.find_element(By.ID, "controls").is_displayed()
        clickhouse = row(browser, "clickhouse")
        clickhouse.find_element(By.TAG_NAME, "summary").click()
        assert clickhouse.find_element(By.CSS_SELECTOR, ".fix").is_displayed()
    finally:
        browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})


def test_dark_and_print(
    browser: Any, bundle_page: Path, artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from selenium.webdriver.common.by import By

    load(browser, bundle_page)
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
    )
    try:
        assert (
            browser.find_element(By.TAG_NAME, "body").value_of_css_property("background-color")
            == "rgba(15, 20, 25, 1)"
        )
        screenshot(browser, artifacts, "report-dark.png", capsys)
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        body = browser.find_element(By.TAG_NAME, "body")
        assert body.value_of_css_property("background-color") == "rgba(255, 255, 255, 1)"
        assert not browser.find_element(By.ID, "controls").is_displayed()
        closed = row(browser, "clickhouse")
        assert closed.get_attribute("open") is None  # yet printed with its details:
        fix = closed.find_element(By.CSS_SELECTOR, ".fix")
        assert browser.execute_script("return arguments[0].checkVisibility()", fix)
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "", "features": []})


def test_a_hostile_message_shows_as_text(browser: Any, bundle_page: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    document = json.loads((bundle_page.parent / "report.json").read_text())
    clickhouse = next(c for c in document["checks"] if c["id"] == "clickhouse")
    clickhouse["message"] = clickhouse["steps"][-1]["detail"] = f"server said {HOSTILE}"
    saved = tmp_path / "hostile.json"
    saved.write_text(json.dumps(document))
    page = tmp_path / "hostile.html"
    assert run_cli("report", saved, "--format", "html", "-o", page).code == 0
    assert load(browser, page) == [page.as_uri()]
    assert browser.execute_script("return window.injected === undefined")
    assert browser.find_elements(By.CSS_SELECTOR, "img") == []
    summary = row(browser, "clickhouse").find_element(By.TAG_NAME, "summary")
    assert f"server said {HOSTILE}" in summary.text


def test_the_request_log_sees_a_page_that_loads_something(browser: Any, tmp_path: Path) -> None:
    """The check above can fail: an image from the network shows up in the log."""
    page = tmp_path / "loads.html"
    page.write_text('<!DOCTYPE html><img src="http://192.0.2.1/pixel.png">')
    assert "http://192.0.2.1/pixel.png" in load(browser, page)
