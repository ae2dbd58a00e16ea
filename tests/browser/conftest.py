"""Browser tests: the real app behind a real HTTP server on loopback, driven by headless Chromium.

* The app runs on the parametrised `database_url` (SQLite, and PostgreSQL when
  TEST_DATABASE_URL is set), served by werkzeug's server in a thread on 127.0.0.1 and a
  free port, with Stripe pointed at the pytest-httpserver stub.
* Chromium is Debian's /usr/bin/chromium, launched by Playwright for Python (never
  `playwright install`, which cannot download browsers here). Without it the tests are
  skipped, unless REQUIRE_BROWSER is set (not "" or "0"): then a missing browser fails.
* Every step waits at most STEP_TIMEOUT_MS; screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from app import create_app
from app.db.locking import ensure_lock_row
from tests.webtools import PASSWORD, make_user

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
STEP_TIMEOUT_MS = 10_000
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
STRIPE_SECRET_KEY = "sk_test_armslength_browser"


def browser_required() -> bool:
    return os.environ.get("REQUIRE_BROWSER", "").strip() not in ("", "0")


def _unavailable(reason: str):
    if browser_required():
        pytest.fail(f"REQUIRE_BROWSER is set but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="package")
def browser():
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[test]')")
    expect.set_options(timeout=STEP_TIMEOUT_MS)
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS, timeout=30_000)
    except Exception:
        playwright.stop()
        raise
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def app(database_url, httpserver, tmp_path):
    """The conftest app, with Stripe pointed at the local stub (so the donate page is on)."""
    application = create_app({
        "JOBS_DIR": str(tmp_path / "jobs"),
        "DATABASE_URL": database_url,
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "ORG_TIMEZONE": "UTC",
        "STRIPE_SECRET_KEY": STRIPE_SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": "whsec_armslength_browser",
        "STRIPE_API_BASE": httpserver.url_for("").rstrip("/"),
        "STRIPE_MAX_NETWORK_RETRIES": 0,
    })
    with application.app_context():
        with application.extensions["armslength"].sessions() as session:
            ensure_lock_row(session)
    yield application
    application.extensions["armslength"].engine.dispose()


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # one line per request is noise here
        pass


@pytest.fixture
def live_server(app) -> Iterator[str]:
    """The app served over HTTP on 127.0.0.1 and a free port; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def backend(database_url) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


@pytest.fixture
def new_page(browser, live_server):
    """new_page() -> a page in a fresh browser context (own cookies) on the live server."""
    contexts = []

    def make():
        context = browser.new_context(base_url=live_server, accept_downloads=True,
                                      viewport={"width": 1280, "height": 900})
        context.set_default_timeout(STEP_TIMEOUT_MS)
        context.set_default_navigation_timeout(STEP_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def shot(backend):
    """shot(page, "name") saves a full-page screenshot as <backend>-<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{backend}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def staff(app, new_page):
    """staff("reviewer") -> a page signed in, through the sign-in form, as a new user of that role."""

    def make(role: str):
        email = f"{role}@example.org"
        make_user(app, email, role)
        page = new_page()
        sign_in(page, email)
        return page

    return make


def sign_in(page, email: str, password: str = PASSWORD) -> None:
    from playwright.sync_api import expect

    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/staff/$"))
    expect(page.locator(".who")).to_contain_text(email)
