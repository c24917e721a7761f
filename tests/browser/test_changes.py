"""The dashboard's Changes panel in Chromium, against a server with a token:
it reads GET /events with a streaming fetch and the bearer header (no token
in a URL), lists the changes as they come, and stops when asked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cachegrid.testing import ServerProcess, running

expect = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed").expect

from .conftest import watch

TOKEN = "browser-changes-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with running(env={"CACHEGRID_AUTH_TOKEN": TOKEN}, graceful=False) as started:
        yield started


def test_the_changes_panel_follows_the_stream(browser: Any, server: ServerProcess) -> None:
    watched = watch(browser)
    page = watched.page
    page.goto(server.url + "/dashboard")
    page.evaluate(f"sessionStorage.setItem('cachegrid.token', '{TOKEN}')")
    page.reload()
    expect(page.locator("#status")).to_contain_text("live")
    page.click("#follow-changes")
    expect(page.locator("#changes-status")).to_have_text("following")
    expect(page.locator("#change-list li").first).to_have_text("reset (everything)")
    assert server.request("PUT", "/cache/user:<b>1</b>", {"v": 1}, headers=AUTH)[0] == 201
    assert server.request("POST", "/tags/news/invalidate", headers=AUTH)[0] == 200
    expect(page.locator("#change-list li").first).to_have_text("invalidate tag news")
    expect(page.locator("#change-list li").nth(1)).to_have_text("set user:<b>1</b>")  # text, not markup
    page.click("#follow-changes")
    expect(page.locator("#changes-status")).to_have_text("stopped")
    expect(page.locator("#follow-changes")).to_have_text("Follow changes")
    assert all("token" not in url and TOKEN not in url for url in watched.requests), watched.requests
    watched.assert_clean()
    page.close()
