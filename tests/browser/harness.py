"""What the browser tests share besides fixtures: the web build under test and its platform,
viewports, the console watch, and screenshots of a failing test's pages."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from scripts.platform import ROOT, LocalPlatform

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Error, Page

WEB_DIST_ENV = "TANDEM_TEST_WEB_DIST"
COMMITTED_DIST = ROOT / "gateway" / "web" / "dist"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
FAILURES = ROOT / ".data" / "browser-failures"


def web_dist() -> Path:
    """The build of the web client under test."""
    return Path(os.environ.get(WEB_DIST_ENV) or COMMITTED_DIST)


def web_dist_env() -> dict[str, str]:
    """What a platform's gateway needs to serve the build under test (nothing for the committed one)."""
    explicit = os.environ.get(WEB_DIST_ENV)
    return {"GATEWAY_WEB_DIST": str(Path(explicit).resolve())} if explicit else {}


@contextlib.contextmanager
def web_platform(base_env: dict[str, str]) -> Iterator[LocalPlatform]:
    """A platform of this package's own, serving the build under test (the gateway-restart
    test needs one: restarting the shared gateway would cut other tests' connections)."""
    plat = LocalPlatform.create({**base_env, **web_dist_env()})
    with plat:
        plat.wait_ready(90)
        yield plat


@dataclass
class ConsoleLog:
    """Console errors and warnings and uncaught exceptions of a test's pages."""

    problems: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        """A message the browser itself prints on purpose in this test (regular expression)."""
        self.allowed.append(re.compile(pattern))

    def watch(self, page: Page, who: str, origin: str) -> None:
        """Record what the app's own pages (on `origin`) log; the GitHub stand-in's pages, which
        a person passes through to sign in, are GitHub's business, not the app's."""

        def on_console(message: ConsoleMessage) -> None:
            where = message.location.get("url", "") or page.url
            if message.type in ("error", "warning") and where.startswith(origin + "/"):
                self.problems.append(f"[{who}] console.{message.type}: {message.text} ({where})")

        def on_error(error: Error) -> None:
            if page.url.startswith(origin + "/"):
                self.problems.append(f"[{who}] uncaught {error.name}: {error.message}\n{error.stack}")

        page.on("console", on_console)
        page.on("pageerror", on_error)

    def unexpected(self) -> list[str]:
        return [p for p in self.problems if not any(a.search(p) for a in self.allowed)]


def save_screenshots(test_name: str, pages: list[Page], folder: Path = FAILURES) -> list[str]:
    """A screenshot of each page still open, as `<folder>/<test>-<n>.png`; answers what was saved."""
    saved = []
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)[:120]
    for number, opened in enumerate(pages):
        if opened.is_closed():
            continue
        path = folder / f"{name}-{number}.png"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            opened.screenshot(path=str(path), full_page=True, timeout=5_000)
        except Exception as exc:  # a screenshot must not hide the failure itself
            saved.append(f"{path}: not saved ({exc})")
        else:
            saved.append(f"{path}  ({opened.url})")
    return saved
