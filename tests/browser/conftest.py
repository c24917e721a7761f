"""Chromium for the browser tests: Debian's ``/usr/bin/chromium`` driven by
Playwright for Python, headless, with a fresh profile, one browser per test
module. Never a browser that Playwright downloads: where none can be
started, the tests skip and say why.

``Watched`` records what a page does that a person would not see: console
errors, uncaught exceptions, and every request it sends, so a test can
check that none left 127.0.0.1.

``UPDATE_SCREENSHOTS=1`` makes the tests write the README's screenshots
(docs/img/*.png) from the pages they have just checked.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 860}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"
TIMEOUT_MS = 15_000  # the longest wait for anything a page should show


def screenshots_wanted() -> bool:
    return os.environ.get("UPDATE_SCREENSHOTS") == "1"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A Chromium context with a fresh profile, for the whole module."""
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError as error:  # pragma: no cover - the dev extra installs it
        pytest.skip(f"Playwright for Python is not installed ({error})")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    profile = tempfile.mkdtemp(prefix="cachegrid-chromium-")
    playwright = sync_playwright().start()
    try:
        try:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=FLAGS, headless=True, viewport=VIEWPORT
            )
        except Exception as error:
            pytest.skip(f"Chromium at {CHROMIUM} did not start: {error}")
        context.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        yield context
        context.close()
    finally:
        playwright.stop()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class Watched:
    """A page, and what it did: console errors, exceptions, request URLs."""

    page: Any
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def hosts(self) -> set[str]:
        """Where the page's requests went (data: URLs go nowhere)."""
        return {urlsplit(url).hostname or "" for url in self.requests if not url.startswith("data:")}

    def assert_clean(self, allowed_errors: tuple[str, ...] = ()) -> None:
        """No console error (but those containing one of ``allowed_errors``),
        no uncaught exception, and no request to anywhere but 127.0.0.1."""
        unexpected = [error for error in self.errors if not any(allowed in error for allowed in allowed_errors)]
        assert unexpected == [], unexpected
        assert self.requests, "the page sent no request at all"
        assert self.hosts() == {"127.0.0.1"}, sorted(set(self.requests))


def watch(context: Any) -> Watched:
    """A new page (a new tab: its own session storage) of ``context``, watched."""
    page = context.new_page()
    watched = Watched(page)
    page.on("console", lambda message: message.type == "error" and watched.errors.append(message.text))
    page.on("pageerror", lambda error: watched.errors.append(f"uncaught: {error}"))
    page.on("request", lambda request: watched.requests.append(request.url))
    return watched


def screenshot(page: Any, name: str) -> None:
    """Write docs/img/<name>.png from ``page`` when UPDATE_SCREENSHOTS=1."""
    if screenshots_wanted():
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
