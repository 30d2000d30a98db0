"""/docs in a real browser: Swagger UI renders the OpenAPI 3.1 document, offline, and runs it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page, Request

pytestmark = pytest.mark.e2e

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _operations(platform_url: str) -> int:
    document = httpx.get(platform_url + "/openapi.json", timeout=10).json()
    assert document["openapi"].startswith("3.1"), document["openapi"]
    return sum(1 for item in document["paths"].values() for method in item if method in METHODS)


def test_swagger_ui_renders_every_operation_offline_and_tries_one(
        page: Page, platform_url: str, tmp_path: Path) -> None:
    expected = _operations(platform_url)
    elsewhere: list[str] = []

    def outside(request: Request) -> None:
        if not request.url.startswith((platform_url + "/", "data:", "blob:")):
            elsewhere.append(request.url)

    page.on("request", outside)
    page.goto(platform_url + "/docs")
    # Either the operations appear or Swagger UI says why it cannot show them.
    page.wait_for_selector(".opblock, .errors-wrapper, .version-pragma", state="attached")
    for refusal in (".version-pragma", ".errors-wrapper"):  # "Unable to render this definition"
        shown = page.locator(refusal)
        assert shown.count() == 0, shown.first.inner_text()
    assert page.locator(".opblock").count() == expected
    assert "Tandem API" in page.locator(".info .title").inner_text()

    # Try it out -> Execute on a public route, as a reader of the docs would.
    health = page.locator(".opblock-get").filter(
        has=page.locator('.opblock-summary-path[data-path="/health"]'))
    health.locator(".opblock-summary").click()
    health.get_by_role("button", name="Try it out").click()
    health.get_by_role("button", name="Execute").click()
    status = health.locator(".live-responses-table tr.response .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200"
    assert '"status": "ok"' in health.locator(".live-responses-table .microlight").first.inner_text()

    status.scroll_into_view_if_needed()
    shot = Path(os.environ.get("TANDEM_SCREENSHOT_DIR", tmp_path)) / "docs.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    # Every script, style and font came from the gateway: /docs needs no internet.
    assert not elsewhere, elsewhere
