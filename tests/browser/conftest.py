"""A real server and a real Chromium for the browser tests.

The server is the app as a user gets it: ``flask run`` in its own process on a migrated,
seeded SQLite file. Chromium is Debian's (Playwright cannot download browsers here).
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """``flask run`` in a child process; can be killed and started again on the same data."""

    def __init__(self, instance: Path, env_extra: dict | None = None):
        self.instance = instance
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "FIELDAPP_INSTANCE": str(instance),
            "DATABASE_URL": f"sqlite:///{instance / 'live.sqlite3'}",
            "FLASK_APP": "wsgi",
            "FIELDAPP_EXTRA_MODULES": "tests.sync_types",
            **(env_extra or {}),
        }
        self.env.pop("TEST_POSTGRES_URL", None)
        self.process = None
        self.log = instance / "server.log"

    def flask(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "flask", *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        log = (self.instance / "server.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flask", "run", "--port", str(self.port), "--no-reload"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("the live server did not start; see server.log")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _serve():
    instance = Path(tempfile.mkdtemp(prefix="fieldapp-live-"))
    server = LiveServer(instance)
    server.flask("db", "upgrade", "heads")
    server.flask("seed-demo")
    server.start()
    return server


@pytest.fixture(scope="session")
def live_server():
    """One server for the tests that only read or add what no other test counts."""
    server = _serve()
    yield server
    server.stop()
    shutil.rmtree(server.instance, ignore_errors=True)


@pytest.fixture
def fresh_server():
    """A server of the test's own, for tests that count rows or kill the server."""
    server = _serve()
    yield server
    server.kill()
    shutil.rmtree(server.instance, ignore_errors=True)


def query(server, sql: str, *params):
    """Read the live server's SQLite database directly, as an auditor would."""
    import sqlite3

    with sqlite3.connect(server.instance / "live.sqlite3") as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="session")
def playwright_instance():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian's chromium is missing: ./test.sh installs it (apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance):
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM, args=ARGS, headless=True
    )
    yield browser
    browser.close()


def new_phone(browser, playwright_instance, server):
    """A fresh Pixel 7 browser context (its own storage), Chinese first like our users."""
    device = dict(playwright_instance.devices["Pixel 7"])
    device.pop("default_browser_type", None)
    context = browser.new_context(**device, locale="zh-CN", base_url=server.url)
    context.set_default_timeout(20_000)
    return context


@pytest.fixture
def phone(browser, playwright_instance, live_server):
    context = new_phone(browser, playwright_instance, live_server)
    yield context
    context.close()


@pytest.fixture
def fresh_phone(browser, playwright_instance, fresh_server):
    context = new_phone(browser, playwright_instance, fresh_server)
    yield context
    context.close()


def log_in(page, username: str, password: str = "demo-2026") -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def wait_for_service_worker(page) -> None:
    """Until the page is controlled by an activated service worker."""
    # Arrow functions, not bare expressions: the page's CSP forbids eval of strings.
    page.wait_for_function(
        "() => navigator.serviceWorker.controller !== null"
        " && navigator.serviceWorker.controller.state === 'activated'",
        timeout=45_000,  # the first install precaches the whole shell: slow on a busy CI core
    )


def wait_until(page, expression: str, timeout: float = 20.0, arg=None) -> None:
    """Poll ``expression`` (an arrow function, may return a Promise) until it is truthy.

    ``page.evaluate`` awaits the Promise; a Promise returned to ``wait_for_function`` would
    count as truthy at once.
    """
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression, arg):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        time.sleep(0.1)


def open_with_day_pack(page, url: str, kept: tuple[str, ...] | list[str]) -> None:
    """Open ``url`` on a logged-in phone once the service worker controls it, and wait until
    the day pack is on the phone with the pages ``kept`` in the worker's page cache."""
    wait_for_service_worker(page)
    page.goto(url)
    wait_until(page, "() => document.documentElement.dataset.offlineReady")
    wait_until(
        page,
        "urls => caches.open('fieldapp-pages')"
        ".then(c => Promise.all(urls.map(u => c.match(u))))"
        ".then(found => found.every(Boolean))",
        arg=list(kept),
    )


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


class BackgroundSync:
    """Plays the browser's part in Background Sync: DevTools on a blank tab (so no page of the
    app need be open) fires the service worker's sync event, as Chromium does when the network
    comes back. Create it while an app page has the worker registered."""

    TAG = "fieldapp-outbox"

    def __init__(self, context, server):
        self.server = server
        self.blank = context.new_page()
        self.cdp = context.new_cdp_session(self.blank)
        self.registrations = []
        self.cdp.on(
            "ServiceWorker.workerRegistrationUpdated",
            lambda e: self.registrations.extend(e["registrations"]),
        )
        self.cdp.send("ServiceWorker.enable")

    def fire(self) -> None:
        scope = f"{self.server.url}/"
        registration = next(r for r in self.registrations if r["scopeURL"] == scope)
        self.cdp.send(
            "ServiceWorker.dispatchSyncEvent",
            {
                "origin": self.server.url,
                "registrationId": registration["registrationId"],
                "tag": self.TAG,
                "lastChance": False,
            },
        )
