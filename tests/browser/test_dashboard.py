"""/dashboard in Chromium, against a real server: the numbers of /stats, the
key browser (find by prefix, open with a peek, delete after confirming),
and no request anywhere but 127.0.0.1."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cachegrid.testing import ServerProcess, running

expect = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed").expect

from .conftest import TIMEOUT_MS, screenshot, screenshots_wanted, watch

KEYS = 123
ALICE = {"name": "Alice", "age": 30, "roles": ["admin", "ops"]}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with running("--max-size", "1000", graceful=False) as started:
        yield started


def stats(server: ServerProcess) -> dict[str, Any]:
    status, _, body = server.request("GET", "/stats")
    assert status == 200
    return json.loads(body)


def read(server: ServerProcess, key: str) -> int:
    return server.request("GET", f"/cache/{key}")[0]


def fill(server: ServerProcess) -> None:
    """123 keys (user:42 with a TTL), 30 of them read, 10 misses."""
    items = {f"user:{index}": {"name": f"user {index}", "age": 20 + index % 50} for index in range(KEYS)}
    items["user:42"] = ALICE
    status, _, _ = server.request("POST", "/cache/batch/set", {"items": items})
    assert status == 200
    assert server.request("PUT", "/cache/user:42?ttl=3600", ALICE)[0] == 200
    for index in range(30):
        assert read(server, f"user:{index}") == 200
    for index in range(10):
        assert read(server, f"nobody:{index}") == 404


def test_the_dashboard_shows_the_numbers_of_stats(browser: Any, server: ServerProcess) -> None:
    fill(server)
    watched = watch(browser)
    page = watched.page
    page.goto(server.url + "/dashboard")
    expect(page.locator("#items")).to_have_text(str(KEYS))
    expect(page.locator("#max-items")).to_have_text("1,000")
    now = stats(server)
    expect(page.locator("#hit-ratio")).to_have_attribute("data-value", str(now["hit_ratio"]))
    expect(page.locator("#hit-ratio")).to_have_text(f"{now['hit_ratio'] * 100:.2f} %")
    expect(page.locator("#node-id")).to_have_text(now["node_id"])
    expect(page.locator("#policy")).to_have_text(now["policy"])
    expect(page.locator("#worker")).to_have_text(now["worker"])
    expect(page.locator("#status")).to_contain_text("live")

    # Reads while the page is open: it follows within a refresh or two.
    for index in range(40):
        assert read(server, f"user:{index + 50}") == 200
    after = stats(server)
    assert after["hit_ratio"] != now["hit_ratio"]
    expect(page.locator("#hit-ratio")).to_have_attribute("data-value", str(after["hit_ratio"]))
    # Rates come from two documents at least; they are numbers, never NaN.
    expect(page.locator("#rate-reads")).to_have_text(re.compile(r"^[0-9,]+\.[0-9]$"))
    assert stats(server)["hits"] == after["hits"]  # the page itself reads no key
    watched.assert_clean()
    page.close()


def test_the_key_browser_finds_opens_and_deletes_a_key(browser: Any, server: ServerProcess) -> None:
    if read(server, "user:42") != 200:  # this test alone: the keys are not there yet
        fill(server)
    _, headers, _ = server.request("HEAD", "/cache/user:42")
    watched = watch(browser)
    page = watched.page
    page.goto(server.url + "/dashboard")
    page.fill("#pattern", "user:4")
    page.click("#key-search button[type=submit]")
    found = page.locator('#key-list button[data-key="user:42"]')
    expect(found).to_be_visible()
    listed = set(page.locator("#key-list button").all_inner_texts())
    assert listed == {"user:4", *(f"user:{n}" for n in range(40, 50))}  # the prefix, nothing else

    before = stats(server)
    found.click()
    expect(page.locator("#detail-key")).to_have_text("user:42")
    value = page.locator("#detail-value").inner_text()
    assert json.loads(value) == ALICE and '\n  "name": "Alice"' in value  # pretty-printed
    expect(page.locator("#detail-type")).to_have_text("object (3 fields)")
    expect(page.locator("#detail-etag")).to_have_text(headers["etag"])
    ttl = page.locator("#detail-ttl").inner_text()
    assert 3000 < float(ttl.removesuffix(" s")) <= 3600, ttl
    opened = stats(server)
    assert (opened["hits"], opened["misses"]) == (before["hits"], before["misses"])  # a peek

    if screenshots_wanted():
        _traffic_for_the_charts(server, page)
        screenshot(page, "dashboard")

    page.click("#delete-key")
    dialog = page.locator("#confirm-delete")
    expect(dialog).to_be_visible()
    expect(page.locator("#confirm-key")).to_have_text("user:42")
    page.click("#confirm-delete-button")
    expect(page.locator("#key-message")).to_have_text("Deleted user:42.")
    expect(found).to_have_count(0)
    assert read(server, "user:42") == 404
    watched.assert_clean()
    page.close()


def open_key(browser: Any, server: ServerProcess, pattern: str, key: str) -> tuple[Any, Any]:
    """A watched dashboard page that found ``pattern`` and opened ``key``."""
    watched = watch(browser)
    page = watched.page
    page.goto(server.url + "/dashboard")
    page.fill("#pattern", pattern)
    page.click("#key-search button[type=submit]")
    page.click(f'#key-list button[data-key="{key}"]')
    return watched, page


def test_the_key_browser_shows_stored_and_original_sizes(browser: Any, server: ServerProcess) -> None:
    users = [{"id": n, "name": f"user {n}", "email": f"user{n}@example.com"} for n in range(100)]
    assert server.request("PUT", "/cache/sized:big", users)[0] in (200, 201)
    assert server.request("PUT", "/cache/sized:small", {"n": 1})[0] in (200, 201)
    sizes = json.loads(server.request("GET", "/admin/keys?pattern=sized:*")[2])["sizes"]
    big, small = sizes["sized:big"], sizes["sized:small"]
    assert big["stored_bytes"] < big["original_bytes"] and small["stored_bytes"] == small["original_bytes"]
    watched, page = open_key(browser, server, "sized:", "sized:big")
    listed = page.locator('#key-list li:has(button[data-key="sized:big"]) .size').inner_text()
    assert re.fullmatch(r"[0-9.]+ (B|KiB) of [0-9.]+ KiB \(gzip, [0-9]+%\)", listed), listed
    assert f"{round(100 * big['stored_bytes'] / big['original_bytes'])}%" in listed
    expect(page.locator("#detail-held")).to_have_text(listed)
    plain = page.locator('#key-list li:has(button[data-key="sized:small"]) .size').inner_text()
    assert plain == f"{small['stored_bytes']} B", plain
    page.click('#key-list button[data-key="sized:small"]')
    expect(page.locator("#detail-held")).to_have_text(plain)
    watched.assert_clean()
    page.close()


def test_cancelling_the_confirmation_deletes_nothing(browser: Any, server: ServerProcess) -> None:
    assert server.request("PUT", "/cache/keep:me", {"kept": True})[0] in (200, 201)
    watched, page = open_key(browser, server, "keep:*", "keep:me")
    page.click("#delete-key")
    page.click('#confirm-delete button[value="cancel"]')
    expect(page.locator("#confirm-delete")).to_be_hidden()
    expect(page.locator("#key-detail")).to_be_visible()
    assert read(server, "keep:me") == 200
    watched.assert_clean()
    page.close()


def _traffic_for_the_charts(server: ServerProcess, page: Any, seconds: float = 20.0) -> None:
    """A few seconds of mixed requests, so that the screenshot's charts have
    a history (only when the screenshots are written)."""
    stop = time.monotonic() + seconds

    def load() -> None:
        index = 0
        while time.monotonic() < stop:
            index += 1
            key = f"user:{index % 150}"
            if index % 5 == 0:
                server.request("PUT", f"/cache/{key}", {"n": index})
            else:
                server.request("GET", f"/cache/{key}")
            time.sleep(0.002)

    thread = threading.Thread(target=load)
    thread.start()
    thread.join(timeout=seconds + TIMEOUT_MS / 1000)
    page.wait_for_timeout(1500)


def test_a_binary_value_shows_its_size_and_type_not_json(browser: Any, server: ServerProcess) -> None:
    value = bytes(range(256)) * 2
    status, _, _ = server.request(
        "PUT", "/cache/blob:1", raw=value, headers={"Content-Type": "application/octet-stream"}
    )
    assert status in (200, 201)
    watched, page = open_key(browser, server, "blob:", "blob:1")
    expect(page.locator("#detail-key")).to_have_text("blob:1")
    expect(page.locator("#detail-type")).to_have_text("binary (application/octet-stream)")
    expect(page.locator("#detail-size")).to_have_text("512 B")
    shown = page.locator("#detail-value").inner_text().splitlines()
    assert shown[0] == "00000000  " + " ".join(f"{byte:02x}" for byte in range(16))
    assert shown[15].startswith("000000f0  f0 f1") and shown[-1] == "... 256 more bytes"
    watched.assert_clean()
    page.close()
