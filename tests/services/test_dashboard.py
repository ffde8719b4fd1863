"""The dashboard in a real headless Chromium (Debian's, driven by Selenium)."""

from __future__ import annotations

import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.inventory import ops
from corral.store.status import record_state
from tests.conftest import need
from tests.services.conftest import LiveServer

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    need(shutil.which("chromium") is not None and shutil.which("chromedriver") is not None,
         "chromium and chromium-driver are not installed")  # fmt: skip
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--window-size=1280,800", f"--user-data-dir={tmp_path / 'chromium'}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def cluster(live_server: LiveServer) -> LiveServer:
    def build(inv: ops.Inventory) -> None:
        ops.add_network(inv, {"name": "prov", "cidr": "10.7.0.0/24"})
        ops.add_nodes(inv, ["n1", "n2", "n3"], {"networks": ["prov"], "image": "tiny"})

    live_server.corral.change(build)
    return live_server


def log_in(driver: object, live: LiveServer) -> None:
    """Log in, and wait until the browser has landed on the node table: a `get` issued
    while the login's redirect is still under way is overtaken by it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{live.url}/ui/")  # type: ignore[attr-defined]
    driver.find_element(By.ID, "token").send_keys(live.token)  # type: ignore[attr-defined]
    driver.find_element(By.ID, "login").click()  # type: ignore[attr-defined]
    landed = expected_conditions.url_to_be(f"{live.url}/ui/")
    WebDriverWait(driver, 30).until(landed)  # type: ignore[arg-type]


def state_cell(driver: object, node: str) -> str:
    from selenium.webdriver.common.by import By

    row = driver.find_element(By.ID, f"node-{node}")  # type: ignore[attr-defined]
    return str(row.find_element(By.CSS_SELECTOR, ".state span").text)


def wait_until(check: object, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what


@pytest.mark.slow
def test_the_node_table_follows_boots_live_without_a_reload(
    browser: object, cluster: LiveServer
) -> None:
    log_in(browser, cluster)
    wait_until(lambda: state_cell(browser, "n1") == "new", "the table did not load")
    browser.execute_script("window.notReloaded = true")  # type: ignore[attr-defined]
    wait_until(
        lambda: browser.find_element("id", "live").text == "live",  # type: ignore[attr-defined]
        "the events stream did not open",
    )
    now = time.time()
    for state in ("pxe", "downloading", "unpacking", "booted"):
        with cluster.corral.store.transaction() as conn:
            for node in ("n1", "n2", "n3"):
                record_state(conn, node, state, now, bytes=5, total=10)
    for node in ("n1", "n2", "n3"):
        wait_until(lambda n=node: state_cell(browser, n) == "booted", f"{node} never showed booted")
    assert browser.execute_script("return window.notReloaded === true")  # type: ignore[attr-defined]
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "dashboard-nodes.png"))  # type: ignore[attr-defined]


@pytest.mark.slow
def test_a_node_page_shows_settings_with_origins_events_and_console(
    browser: object, cluster: LiveServer, tmp_path: Path
) -> None:
    console = tmp_path / "n1.serial.log"
    console.write_text("corral: hello from the console\n")
    cluster.corral.change(
        lambda inv: ops.set_nodes(
            inv, ["n1"], {"power": {"options": {"console_log": str(console)}}}
        )
    )
    with cluster.corral.store.transaction() as conn:
        record_state(conn, "n1", "pxe", time.time())
    log_in(browser, cluster)
    browser.get(f"{cluster.url}/ui/nodes/n1")  # type: ignore[attr-defined]
    body = browser.find_element("tag name", "body").text  # type: ignore[attr-defined]
    assert "image" in body and "tiny" in body and "node" in body  # value and its origin
    assert "pxe" in browser.find_element("id", "events").text  # type: ignore[attr-defined]
    assert "hello from the console" in browser.find_element("id", "console").text  # type: ignore[attr-defined]


def test_pages_and_the_stream_need_a_login(cluster: LiveServer) -> None:
    opener = urllib.request.build_opener(NoRedirect)
    for path in ("/ui/", "/ui/nodes/n1", "/ui/swarm"):
        with pytest.raises(urllib.error.HTTPError) as sent:
            opener.open(f"{cluster.url}{path}", timeout=10)
        assert sent.value.code == 303 and sent.value.headers["Location"] == "/ui/login"
    with pytest.raises(urllib.error.HTTPError) as refused:
        opener.open(f"{cluster.url}/ui/events", timeout=10)
    assert refused.value.code == 401


def test_a_wrong_token_is_refused_and_sets_no_cookie(cluster: LiveServer) -> None:
    body = urllib.parse.urlencode({"token": "not-the-token"}).encode()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{cluster.url}/ui/login", body, timeout=10)
    assert refused.value.code == 401
    assert "Set-Cookie" not in refused.value.headers


def test_the_session_cookie_is_httponly_strict_and_not_the_token(cluster: LiveServer) -> None:
    body = urllib.parse.urlencode({"token": cluster.token}).encode()
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as sent:
        opener.open(f"{cluster.url}/ui/login", body, timeout=10)
    cookie = sent.value.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui/" in cookie
    assert cluster.token not in cookie


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None
