"""A server with a token, in Chromium: /dashboard and /docs load without it,
the dashboard asks for it once (session storage), says so when it is wrong,
and sends it as a bearer token; /docs' Authorize does the same for "Try it
out". The API itself refuses every call without it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from cachegrid.testing import ServerProcess, running

expect = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed").expect

from .conftest import watch
from .test_docs import operation, try_it_out

TOKEN = "browser-test-token"
REFUSED = "401"  # Chromium logs each refused request on the console: expected where a wrong token is sent


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with running(env={"CACHEGRID_AUTH_TOKEN": TOKEN}, graceful=False) as started:
        yield started


def test_the_api_refuses_calls_without_the_token(server: ServerProcess) -> None:
    for method, path in (
        ("GET", "/stats"),
        ("GET", "/admin/keys"),
        ("GET", "/cache/k?peek=true"),
        ("DELETE", "/cache/k"),
    ):
        status, headers, body = server.request(method, path)
        assert status == 401 and json.loads(body)["error"] == "unauthorized", (method, path)
    for path in ("/dashboard", "/docs", "/openapi.json", "/static/dashboard.js", "/docs/static/swagger-ui.css"):
        assert server.request("GET", path)[0] == 200, path


def test_the_dashboard_asks_for_the_token_once_and_then_works(browser: Any, server: ServerProcess) -> None:
    assert server.request("PUT", "/cache/secret:1", {"v": 1}, headers={"Authorization": f"Bearer {TOKEN}"})[0] == 201
    watched = watch(browser)
    page = watched.page
    page.goto(server.url + "/dashboard")
    expect(page.locator("#token-panel")).to_be_visible()
    expect(page.locator("#token-title")).to_have_text("This server needs a token")
    assert not [url for url in watched.requests if "/stats" in url]  # it asked before calling

    page.fill("#token-input", "wrong-token")
    page.click("#token-form button[type=submit]")
    expect(page.locator("#token-title")).to_have_text("Token refused")
    expect(page.locator("#token-message")).to_contain_text("refused this token")
    assert page.evaluate("sessionStorage.getItem('cachegrid.token')") is None  # a refused token is not kept

    page.fill("#token-input", TOKEN)
    page.click("#token-form button[type=submit]")
    expect(page.locator("#token-panel")).to_be_hidden()
    expect(page.locator("#items")).to_have_text("1")
    expect(page.locator("#status")).to_contain_text("live")
    assert page.evaluate("sessionStorage.getItem('cachegrid.token')") == TOKEN

    page.reload()  # the same tab: not asked again
    expect(page.locator("#items")).to_have_text("1")
    expect(page.locator("#token-panel")).to_be_hidden()
    page.fill("#pattern", "secret:")
    page.click("#key-search button[type=submit]")
    page.click('#key-list button[data-key="secret:1"]')
    expect(page.locator("#detail-value")).to_contain_text('"v": 1')

    # /docs in the same tab takes the token the dashboard was given.
    page.goto(server.url + "/docs")
    page.locator(".opblock").first.wait_for()
    response = try_it_out(page, "get", "/stats")
    assert response.locator(".response-col_status").inner_text().strip() == "200"
    watched.assert_clean(allowed_errors=(REFUSED,))
    refused = [error for error in watched.errors if REFUSED in error]
    assert len(refused) == 1, watched.errors  # the wrong token's one call, nothing else
    page.close()


def test_docs_authorize_button_sends_the_bearer_token(browser: Any, server: ServerProcess) -> None:
    watched = watch(browser)  # a new tab: nothing in its session storage
    page = watched.page
    page.goto(server.url + "/docs")
    page.locator(".opblock").first.wait_for()
    response = try_it_out(page, "get", "/stats")
    assert response.locator(".response-col_status").inner_text().strip() == "401"

    page.click("button.authorize")
    page.locator(".auth-container input").fill(TOKEN)
    page.locator(".auth-btn-wrapper button.authorize").click()
    page.locator(".auth-btn-wrapper button.btn-done").click()
    block = operation(page, "get", "/stats")
    block.locator("button.execute").click()
    expect(block.locator(".live-responses-table .response .response-col_status").first).to_have_text("200")
    watched.assert_clean(allowed_errors=(REFUSED,))
    page.close()
