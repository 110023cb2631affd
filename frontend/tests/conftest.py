"""Shared fixtures for console tests: headless Chromium (Debian's /usr/bin/chromium driven by
Playwright, never `playwright install`), axe-core checks, screenshots and query budgets."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "console"
PASSWORD = "pw-12345678"
# Most queries any console page may make, whatever the data: lists are paginated and their
# relations fetched with select_related/prefetch_related, so the count does not grow with rows.
PAGE_QUERY_BUDGET = 25

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

needs_chromium = pytest.mark.skipif(
    not shutil.which(CHROMIUM), reason="Debian chromium is not installed"
)


@pytest.fixture
def launch_browser():
    """Start Chromium; `fake_audio` (a WAV file) becomes the microphone, granted without a
    prompt, so MediaRecorder records that file."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the live server
    # makes happen in its own threads, but fixtures touch the database from here.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    browsers = []

    def launch(fake_audio: Path | None = None):
        args = list(CHROMIUM_ARGS)
        if fake_audio is not None:
            args += [
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={fake_audio}",
            ]
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        browsers.append(browser)
        return browser

    yield launch
    for browser in browsers:
        browser.close()
    playwright.stop()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(launch_browser):
    browser = launch_browser()
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def sign_in(page, live_server, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{live_server.url}/console/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def assert_accessible(page, *, impacts=("serious", "critical")) -> None:
    """Run axe-core (the npm package, installed by `make deps`) on the current page and fail
    on any serious or critical violation, naming the rule and the elements."""
    # The console's CSP runs scripts from its own origin only (no inline script, which is what
    # add_script_tag(path=...) injects): serve axe from the page's origin instead.
    url = page.evaluate("() => location.origin") + "/__axe__/axe.min.js"
    page.route(url, lambda route: route.fulfill(path=str(AXE), content_type="text/javascript"))
    page.add_script_tag(url=url)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    found = [
        {
            "rule": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
        if v["impact"] in impacts
    ]
    assert not found, json.dumps(found, indent=2)


def screenshot(page, name: str) -> Path:
    """A full-page screenshot of a main page, kept in docs/console/ (the README shows some)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def page_queries(django_assert_max_num_queries):
    """`with page_queries(): client.get(url)` fails when a page passes the query budget."""

    def check(budget: int = PAGE_QUERY_BUDGET):
        return django_assert_max_num_queries(budget)

    return check
