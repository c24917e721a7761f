"""/docs in Chromium: Swagger UI renders the daemon's OpenAPI 3.1 document,
every path of it, and "Try it out" sends a real request."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from cachegrid.testing import ServerProcess, running

from .conftest import screenshot, watch


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with running(graceful=False) as started:
        yield started


def operation(page: Any, method: str, path: str) -> Any:
    """The operation block of ``method path`` on the page."""
    return page.locator(f".opblock-{method}").filter(
        has=page.locator(".opblock-summary-path", has_text=re.compile(f"^{re.escape(path)}$"))
    )


def try_it_out(page: Any, method: str, path: str) -> Any:
    """Open the operation, press Try it out and Execute; the live response."""
    block = operation(page, method, path)
    block.locator(".opblock-summary").click()
    block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    return block.locator(".live-responses-table .response").first


def test_docs_render_every_path_and_try_it_out_sends_a_request(browser: Any, server: ServerProcess) -> None:
    document = json.loads(server.request("GET", "/openapi.json")[2])
    watched = watch(browser)
    page = watched.page
    page.goto(server.url + "/docs")
    page.locator(".opblock").first.wait_for()
    assert page.locator(".info .title").inner_text().startswith("CacheGrid")
    shown = set(page.locator(".opblock-summary-path").all_inner_texts())
    assert {"/cache/{key}", "/cache/batch/get", "/stats"} <= shown
    assert shown == set(document["paths"])  # every path of the document, nothing else
    operations = sum(len(methods) for methods in document["paths"].values())
    assert page.locator(".opblock").count() == operations
    screenshot(page, "docs")

    response = try_it_out(page, "get", "/health")
    assert response.locator(".response-col_status").inner_text().strip() == "200"
    body = response.locator(".response-col_description .microlight, .response-col_description pre").first
    assert json.loads(body.inner_text())["status"] == "healthy"
    watched.assert_clean()
    page.close()


def test_serve_says_where_the_pages_are(server: ServerProcess) -> None:
    output = server.output()
    assert f"dashboard: {server.url}/dashboard, API docs: {server.url}/docs" in output, output
