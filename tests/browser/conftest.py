"""Browser-test fixtures: headless Chromium through Playwright, a page, and a platform URL.

Playwright drives the system's Chromium (Debian's `chromium`, which `make test` installs
where it can): Playwright's own browser download cannot run here. The tests skip, saying
why, only where there is no Chromium or no Playwright.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from scripts.platform import LocalPlatform

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
    """One headless Chromium for the tests of this package (a context per test keeps them apart).

    Package scope, not session: Playwright's sync API keeps an asyncio loop running in this
    thread for as long as it is open, and pytest-asyncio cannot run any async test meanwhile.
    So the tests here are sync, and Playwright is closed before the suite moves on.
    """
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium: install Debian's `chromium` (make test does, as root with apt) "
                    "or set TANDEM_CHROMIUM to a Chromium binary")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed: `pip install -e '.[dev]'` (make install) installs it")
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
