"""``GET /dashboard``: the web dashboard, one page served by the daemon.

The page is our own HTML, CSS and JavaScript (package data, no build step,
nothing fetched from elsewhere): ``dashboard.html`` beside this file is
served here, its script and style from ``static/`` under ``/static``. The script reads the API the
way any client does:

- ``GET /stats`` every refresh: the numbers, and rates from the change of
  each counter between two refreshes over the change of ``uptime_seconds``
  (the server's monotonic clock, so a slow browser does not skew them); the
  last minutes of them are drawn as small charts on canvases;
- ``GET /admin/keys`` with its cursor for the key browser (a prefix or a
  glob), ``GET /cache/{key}?peek=true`` to open a key (a peek counts no hit
  or miss and moves no key in the eviction order: opening keys does not
  change what the page shows), ``DELETE /cache/{key}`` after a confirmation.

With a token configured, this page and its files load without one (app.py's
open paths); the page is told so (``data-token-required``), asks for the
token before its first call, keeps it in the browser's session storage and
sends it as ``Authorization: Bearer`` on every API call. A 401 asks again,
saying that the token was refused.
"""

from __future__ import annotations

from pathlib import Path

import falcon

from ..config import Settings

DASHBOARD_PATH = "/dashboard"
STATIC_PATH = "/static"  # our own page files: the dashboard's and /docs' starter
STATIC_DIRECTORY = str(Path(__file__).with_name("static"))
PAGE = Path(__file__).with_name("dashboard.html")
TOKEN_FLAG = "__TOKEN_REQUIRED__"


class Dashboard:
    """``GET /dashboard``: the page, with whether the server needs a token."""

    def __init__(self, settings: Settings) -> None:
        page = PAGE.read_text(encoding="utf-8")
        flag = "true" if settings.auth_token or settings.acl_file else "false"
        self.page = page.replace(TOKEN_FLAG, flag).replace("__STATIC__", STATIC_PATH).encode()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.set_header("Cache-Control", "no-store")
        resp.data = self.page
