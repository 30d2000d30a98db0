"""Browser-test fixtures: headless Chromium through Playwright, people signed in to the web app.

Playwright drives the system's Chromium (Debian's `chromium`, which `make test` installs
where it can): Playwright's own browser download cannot run here. The tests skip, saying
why, only where there is no Chromium or no Playwright, or no built web client.

The web app's tests run against the shared platform, whose gateway serves the committed
build in gateway/web/dist. TANDEM_TEST_WEB_DIST names another build instead (e.g. one made
with `cd web && npx vite build --outDir /tmp/dist`): the tests then start a platform of
their own whose gateway serves it (GATEWAY_WEB_DIST).

Every page a test opens is watched: a console error or warning, or an uncaught exception,
fails the test (`console.allow(...)` names the few the browser itself prints on purpose,
such as a refused WebSocket while the gateway is down), and a failing test saves a
screenshot of each of its open pages under .data/browser-failures/.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from scripts.platform import LocalPlatform
from tests.browser.harness import (
    DESKTOP,
    WEB_DIST_ENV,
    ConsoleLog,
    save_screenshots,
    web_dist,
    web_dist_env,
    web_platform,
)
from tests.browser.people import Api, Person, new_login

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# TANDEM_CHROMIUM names another Chromium or Chrome binary.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_path() -> str | None:
    explicit = os.environ.get("TANDEM_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the tests of this package (a context per person keeps them apart).

    Package scope, not session: Playwright's sync API keeps an asyncio loop running in this
    thread for as long as it is open, and pytest-asyncio cannot run any async test meanwhile.
    So the tests here are sync, and Playwright is closed before the suite moves on.
    """
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium: install Debian's `chromium` (make test does, as root with apt) "
                    "or set TANDEM_CHROMIUM to a Chromium binary")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed: `pip install -e '.[dev]'` (make install) installs it")
    expect.set_options(timeout=10_000)
    with sync_playwright() as playwright:
        # --no-sandbox: the suite runs as root in CI, where Chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page in its own context (no cookies or storage shared between tests)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="session")
def platform_url(platform: LocalPlatform) -> str:
    """The base URL of the run's shared platform of real processes."""
    return platform.url


# --- the web app's platform ---------------------------------------------------------------


@pytest.fixture(scope="package")
def app_platform(request: pytest.FixtureRequest, base_env: dict[str, str]) -> Iterator[LocalPlatform]:
    """The platform the web-app tests use: the shared one, or (TANDEM_TEST_WEB_DIST) our own."""
    dist = web_dist()
    if not (dist / "index.html").is_file():
        pytest.skip(f"the web client is not built ({dist}/index.html is missing): run `make web`, "
                    f"or point {WEB_DIST_ENV} at a build")
    if web_dist_env():
        with web_platform(base_env) as plat:
            yield plat
    else:
        shared: LocalPlatform = request.getfixturevalue("platform")
        yield shared


@pytest.fixture(scope="package")
def app_url(app_platform: LocalPlatform) -> str:
    return app_platform.url


@pytest.fixture
def api(app_url: str) -> Api:
    """REST set-up (sessions, members) and checks (stored document, messages) beside the browser."""
    return Api(app_url)


# --- watching pages: console problems and screenshots of failures --------------------------

PAGES = pytest.StashKey[list["Page"]]()
CONSOLE = pytest.StashKey[ConsoleLog]()


@pytest.fixture
def console(request: pytest.FixtureRequest) -> ConsoleLog:
    log = ConsoleLog()
    request.node.stash[CONSOLE] = log
    return log


@pytest.fixture
def open_page(browser: Browser, app_url: str, console: ConsoleLog,
              request: pytest.FixtureRequest) -> Iterator[Callable[..., Page]]:
    """A page in a context of its own (a person's browser), watched for console problems."""
    contexts = []
    pages: list[Page] = request.node.stash.setdefault(PAGES, [])

    def make(who: str, viewport: dict[str, int] | None = None, **options: Any) -> Page:
        context = browser.new_context(viewport=viewport or DESKTOP, base_url=app_url, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        opened = context.new_page()
        console.watch(opened, who, app_url)
        pages.append(opened)
        return opened

    yield make
    for context in contexts:
        with contextlib.suppress(Exception):
            context.close()


@pytest.fixture
def person(open_page: Callable[..., Page], app_url: str) -> Callable[..., Person]:
    """`person("ana")`: someone with a fresh GitHub login, signed in through the app's button
    and the GitHub stand-in's page, on the sessions list."""

    def make(tag: str, *, viewport: dict[str, int] | None = None, login: str | None = None,
             sign_in: bool = True) -> Person:
        name = login or new_login(tag)
        someone = Person(name, open_page(name, viewport), app_url)
        if sign_in:
            someone.sign_in()
        return someone

    return make


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A test whose pages logged a console error or warning fails, naming them."""
    result = yield
    log = item.stash.get(CONSOLE, None)
    if log is not None:
        for opened in item.stash.get(PAGES, []):
            # Events reach Python only while Playwright runs: let the last ones arrive.
            with contextlib.suppress(Exception):
                if not opened.is_closed():
                    opened.evaluate("0")
        problems = log.unexpected()
        if problems:
            pytest.fail("the pages logged problems:\n" + "\n".join(problems), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """A failing test saves a screenshot of each page it still has open, and says where."""
    report: pytest.TestReport = yield
    if report.when in ("setup", "call") and report.failed:
        saved = save_screenshots(item.name, item.stash.get(PAGES, []))
        if saved:
            text = "\n".join(saved)
            report.sections.append(("screenshots of the failing test's pages", text))
            print(f"\nscreenshots of {item.nodeid}:\n{text}")
    return report
