"""Fixtures of the web console's browser tests: groved processes (started with the Python
client's test harness, clients/python/tests/harness.py), one headless Debian Chromium driven by
Selenium for the whole session (a fresh tab, so fresh sessionStorage, per test), and `Console`,
a page object naming what the tests look at.

The binary is $GROVED (default target/debug/groved). With CONSOLE_DEV=1 the servers read the
page's files from server/src/admin/console/assets at each request (GROVE_CONSOLE_DEV_DIR), so
edits to the page show without rebuilding groved; by default the embedded files are tested.
Screenshots go to target/console-screenshots/ (and failed-<test>.png for a failed test)."""

from __future__ import annotations

import os

# Before grpc is imported (as the Python client's tests do): its fork handlers can hang the
# groved child between fork and exec.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import base64  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Iterator, List, Optional, Tuple  # noqa: E402

import pytest  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "clients" / "python" / "tests"))
from harness import TEST_SERVER, Groved  # noqa: E402

from grove import Client  # noqa: E402

SHOTS = REPO / "target" / "console-screenshots"
ASSETS = REPO / "server" / "src" / "admin" / "console" / "assets"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")

if os.environ.get("CONSOLE_DEV") == "1":
    os.environ["GROVE_CONSOLE_DEV_DIR"] = str(ASSETS)  # inherited by the groved processes


class ConsoleGroved(Groved):
    """A standalone groved; the harness records its admin address (where /ui is)."""

    @property
    def console_url(self) -> str:
        return f"http://{self.admin}/ui/"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleGroved]:
    """The standalone server most tests share (each test uses paths of its own)."""
    s = ConsoleGroved(tmp_path_factory.mktemp("groved"), list(TEST_SERVER))
    try:
        yield s
    finally:
        s.kill9()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., ConsoleGroved]]:
    """Servers of a test's own, with extra flags; stopped (by PID) when it ends."""
    made: List[ConsoleGroved] = []

    def make(*extra: str) -> ConsoleGroved:
        s = ConsoleGroved(tmp_path / f"groved{len(made)}", [*TEST_SERVER, *extra])
        made.append(s)
        return s

    try:
        yield make
    finally:
        for s in made:
            s.kill9()


@pytest.fixture(scope="session")
def zk(server: ConsoleGroved) -> Iterator[Client]:
    """"Another client": the project's Python client, making changes the page must show."""
    with Client(server.client, timeout=10.0) as c:
        yield c


@pytest.fixture(scope="session")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not Path(binary).exists():
            pytest.fail(f"{binary} not found: install Debian's chromium and chromium-driver (scripts/setup-debian.sh)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield d
    finally:
        d.quit()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def page(driver: webdriver.Chrome, server: ConsoleGroved, request: pytest.FixtureRequest) -> Iterator["Console"]:
    """The console of `server` in a new tab (so with sessionStorage of its own: logged out)."""
    driver.switch_to.new_window("tab")
    driver.set_window_size(1280, 900)
    console = Console(driver, server.console_url)
    try:
        yield console
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            console.shot(f"failed-{request.node.name}")
            for entry in driver.get_log("browser"):
                print("browser:", entry.get("level"), entry.get("message"))
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        driver.close()
        driver.switch_to.window(driver.window_handles[0])


def css_text(el: WebElement) -> str:
    return (el.text or "").strip()


class Console:
    """The page, as the tests see it: waits are explicit and bounded, never sleeps."""

    def __init__(self, driver: webdriver.Chrome, base: str) -> None:
        self.driver = driver
        self.base = base

    # ---- navigation

    def use(self, server: ConsoleGroved) -> "Console":
        """Points at another server's console."""
        self.base = server.console_url
        return self

    def open(self, fragment: str = "") -> None:
        self.driver.get(self.base + fragment)
        self.wait_started()

    def wait_started(self) -> None:
        """The page's script ran its start (it marks <body data-ready>)."""
        started = "return document.body.dataset.ready === 'true'"
        self.wait(lambda: self.driver.execute_script(started), "the page to start")

    def tab(self, name: str) -> None:
        tab = self.find(f"#tab-{name}")
        tab.click()
        self.wait(lambda: tab.get_attribute("aria-selected") == "true", f"tab {name}")

    # ---- finding and waiting

    def wait(self, cond: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
        def check(_: Any) -> Any:
            try:
                return cond()
            except (NoSuchElementException, StaleElementReferenceException):
                return False

        return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(check, message=f"waiting for {what}")

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> List[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def visible(self, css: str, timeout: float = 10.0) -> WebElement:
        return self.wait(lambda: (lambda e: e if e.is_displayed() else None)(self.find(css)), f"{css} to show", timeout)

    def gone(self, css: str, timeout: float = 10.0) -> None:
        self.wait(lambda: not any(e.is_displayed() for e in self.find_all(css)), f"{css} to go", timeout)

    def testid(self, name: str) -> WebElement:
        return self.find(f'[data-testid="{name}"]')

    def text(self, name: str) -> str:
        return css_text(self.testid(name))

    def wait_text(self, name: str, expected: str, timeout: float = 10.0) -> None:
        seen: List[str] = []

        def check() -> bool:
            seen.append(self.text(name))
            return seen[-1] == expected

        try:
            self.wait(check, f"{name} to read {expected!r}", timeout)
        except Exception as e:
            raise AssertionError(f"{name} reads {seen[-1] if seen else None!r}, not {expected!r}") from e

    def click(self, name: str) -> None:
        self.visible(f'[data-testid="{name}"]').click()

    # ---- the tree and the node view

    def item(self, path: str, timeout: float = 10.0) -> WebElement:
        return self.visible(f'[role="treeitem"][data-path="{path}"]', timeout)

    def expand(self, path: str) -> None:
        li = self.item(path)
        if li.get_attribute("aria-expanded") != "true":
            li.find_element(By.CSS_SELECTOR, ":scope > .row .twisty").click()
        self.wait(lambda: self.item(path).get_attribute("aria-expanded") == "true"
                  and self.item(path).get_attribute("aria-busy") is None, f"{path} to expand")

    def select(self, path: str, state: str = "loaded") -> None:
        self.item(path).find_element(By.CSS_SELECTOR, ":scope > .row .name").click()
        self.wait_node(path, state)

    def wait_node(self, path: str, state: str = "loaded", timeout: float = 10.0) -> None:
        self.visible(f'#node[data-path="{path}"][data-state="{state}"]', timeout)

    def stat(self, name: str) -> str:
        return self.text(f"stat-{name}")

    def wait_live(self) -> None:
        self.visible('#live[data-state="live"]')

    def active_path(self) -> Optional[str]:
        return self.driver.switch_to.active_element.get_attribute("data-path")

    def login(self, user: str, password: str) -> None:
        self.click("login")
        self.visible("#login-user").send_keys(user)
        self.find("#login-password").send_keys(password)
        self.find("#login-submit").click()
        self.wait(lambda: self.text("identity") == user, f"the identity to read {user}")

    # ---- the server, through the page's own origin

    def fetch(self, method: str, path: str, body: Optional[dict] = None) -> Tuple[int, Any]:
        """A request from the page (same origin), as its script would send it."""
        status, text = self.driver.execute_async_script(
            """const [method, path, body, done] = arguments;
            const init = {method, headers: {'Content-Type': 'application/json'}};
            if (body !== null) init.body = JSON.stringify(body);
            fetch(path, init).then(async (r) => done([r.status, await r.text()]), (e) => done([0, String(e)]));""",
            method, path, body)
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
