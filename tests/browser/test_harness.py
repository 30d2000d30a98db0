"""The browser tests' own safety nets: the console watch and the screenshots of a failure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.harness import ConsoleLog, save_screenshots

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e


def test_the_console_watch_sees_the_apps_errors_warnings_and_uncaught_exceptions(
        open_page: Callable[..., Page], console: ConsoleLog) -> None:
    probe = open_page("probe")
    probe.goto("/")
    probe.evaluate("() => { console.warn('probe warning'); console.error('probe error'); console.log('fine'); }")
    probe.evaluate("() => { setTimeout(() => { throw new Error('probe thrown'); }); }")
    probe.wait_for_function("() => new Promise((done) => setTimeout(() => done(true), 50))")
    caught = "\n".join(console.problems)
    for expected in ("console.warning: probe warning", "console.error: probe error", "probe thrown"):
        assert expected in caught, caught
    assert "fine" not in caught
    console.allow("probe")
    console.problems[:] = [p for p in console.problems if "probe" in p]  # the watch's own test passes
    assert console.unexpected() == []


def test_a_failing_test_saves_a_screenshot_of_each_open_page(
        open_page: Callable[..., Page], tmp_path: Path) -> None:
    first, second, closed = open_page("one"), open_page("two"), open_page("three")
    for number, opened in enumerate((first, second)):
        opened.set_content(f"<h1>page {number}</h1>")
    closed.close()
    saved = save_screenshots("test_x[a/b c]", [first, second, closed], tmp_path)
    assert len(saved) == 2, saved
    for number in (0, 1):
        shot = tmp_path / f"test_x_a_b_c_-{number}.png"
        assert shot.stat().st_size > 1_000
        assert str(shot) in saved[number]
