"""/dashboard in Chromium with a limited token (docs/acl.md): a server with
an ACL file of four tokens (tests/integration/test_acl.py's), each given to
the page in a tab of its own. The page shows each token what it may use and
names what it leaves out; it sends no request the token would be refused
(no 403 on the console, no /stats without metrics) and shows no error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cachegrid.testing import ServerProcess, running
from tests.integration.test_acl import TOKENS, acl_text, auth

expect = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed").expect

from .conftest import watch

pytestmark = pytest.mark.process


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    path: Path = tmp_path_factory.mktemp("acl") / "acl.toml"
    path.write_text(acl_text(TOKENS))
    with running("--acl-file", str(path), graceful=False) as started:
        for key in ("app:1", "app:2", "other:1"):
            assert started.request("PUT", f"/cache/{key}", {"k": key}, headers=auth("admin"))[0] == 201
        yield started


def signed_in(browser: Any, server: ServerProcess, name: str) -> Any:
    """A new tab of the dashboard, given the token ``name``."""
    watched = watch(browser)
    page = watched.page
    page.goto(server.url + "/dashboard")
    page.fill("#token-input", TOKENS[name][0])
    page.click("#token-form button[type=submit]")
    expect(page.locator("#token-panel")).to_be_hidden()
    return watched


def search(page: Any, pattern: str) -> None:
    page.fill("#pattern", pattern)
    page.click("#key-search button[type=submit]")


def test_a_read_only_token_on_a_prefix_sees_its_keys_and_no_numbers(browser: Any, server: ServerProcess) -> None:
    watched = signed_in(browser, server, "ro")
    page = watched.page
    expect(page.locator("#status")).to_have_text("signed in as ro")
    expect(page.locator("#access-panel")).to_be_visible()
    expect(page.locator("#access-scope")).to_contain_text("may use: read, on keys starting with app:")
    expect(page.locator("#access-missing")).to_contain_text("need the metrics permission")
    expect(page.locator("#access-missing")).to_contain_text("Deleting a key: it needs the write permission")
    for hidden in ("#numbers", "#charts", "#identity"):
        expect(page.locator(hidden)).to_be_hidden()
    expect(page.locator("#pattern")).to_have_attribute("placeholder", "app:")
    search(page, "")  # every key it may read: its prefix's only
    expect(page.locator("#key-count")).to_have_text("2 keys")
    page.click('#key-list button[data-key="app:1"]')
    expect(page.locator("#detail-value")).to_contain_text('"k": "app:1"')
    expect(page.locator("#delete-key")).to_be_hidden()
    page.click("#follow-changes")
    expect(page.locator("#changes-status")).to_have_text("following")
    assert server.request("PUT", "/cache/app:3", {"k": 3}, headers=auth("admin"))[0] == 201
    expect(page.locator("#change-list li").first).to_have_text("set app:3")
    page.click("#follow-changes")
    assert not [url for url in watched.requests if url.endswith("/stats")]
    watched.assert_clean()  # no 401, no 403, no exception
    page.close()


def test_a_metrics_only_token_sees_the_numbers_and_no_keys(browser: Any, server: ServerProcess) -> None:
    watched = signed_in(browser, server, "scraper")
    page = watched.page
    expect(page.locator("#status")).to_contain_text("live")
    expect(page.locator("#items")).not_to_have_text("-")
    for hidden in ("#keys", "#changes"):
        expect(page.locator(hidden)).to_be_hidden()
    expect(page.locator("#access-missing")).to_have_text(
        "The key browser and the change stream: they need the read permission."
        "Deleting a key: it needs the write permission."
    )
    assert not [url for url in watched.requests if "/admin/keys" in url or "/events" in url]
    watched.assert_clean()
    page.close()


def test_a_read_write_token_deletes_within_its_prefix(browser: Any, server: ServerProcess) -> None:
    watched = signed_in(browser, server, "rw")
    page = watched.page
    expect(page.locator("#access-scope")).to_contain_text("may use: read, write, on keys starting with app:")
    search(page, "app:2")
    page.click('#key-list button[data-key="app:2"]')
    page.click("#delete-key")
    page.click("#confirm-delete-button")
    expect(page.locator("#key-message")).to_have_text("Deleted app:2.")
    assert server.request("GET", "/cache/app:2", headers=auth("admin"))[0] == 404
    watched.assert_clean()
    page.close()


def test_the_admin_token_sees_everything_and_no_notice(browser: Any, server: ServerProcess) -> None:
    watched = signed_in(browser, server, "admin")
    page = watched.page
    expect(page.locator("#status")).to_contain_text("live")
    expect(page.locator("#access-panel")).to_be_hidden()
    for shown in ("#numbers", "#charts", "#keys", "#changes"):
        expect(page.locator(shown)).to_be_visible()
    search(page, "other:")
    expect(page.locator("#key-count")).to_have_text("1 keys matching other:")
    watched.assert_clean()
    page.close()
