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

A token of the ACL file may be limited (docs/acl.md). So that the page
shows it what it may use instead of errors, its first call is ``GET
/dashboard?access=1`` (this resource, so no route of the API): the
presented token's name, permissions and prefixes, as the ACL decides them
(``Acl.identify``; 401 for no token or an unknown one, as the API would
answer). The page then leaves out what the token may not use: the numbers
and charts without ``metrics``, the key browser and the change stream
without ``read``, the delete button without ``write``, and names the
token's prefixes. A token learns nothing here but its own grant, which its
403s would tell it anyway. Without an ACL file the answer is every
permission (with ``auth_token``, for that token only).
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

import falcon

from ..config import Settings
from .acl import ADMIN, METRICS, READ, UNAUTHORIZED_HEADERS, WRITE, Acl
from .errors import ApiError

DASHBOARD_PATH = "/dashboard"
STATIC_PATH = "/static"  # our own page files: the dashboard's and /docs' starter
STATIC_DIRECTORY = str(Path(__file__).with_name("static"))
PAGE = Path(__file__).with_name("dashboard.html")
TOKEN_FLAG = "__TOKEN_REQUIRED__"


EVERY_PERMISSION = [READ, WRITE, ADMIN, METRICS]


class Dashboard:
    """``GET /dashboard``: the page, with whether the server needs a token;
    ``?access=1``: what the presented token may do (module docstring)."""

    def __init__(self, settings: Settings, acl: Acl | None = None) -> None:
        page = PAGE.read_text(encoding="utf-8")
        flag = "true" if settings.auth_token or settings.acl_file else "false"
        self.page = page.replace(TOKEN_FLAG, flag).replace("__STATIC__", STATIC_PATH).encode()
        self.acl = acl
        token = settings.auth_token.get_secret_value() if settings.auth_token else None
        self.expected = f"Bearer {token}".encode() if token else None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.set_header("Cache-Control", "no-store")
        if req.get_param("access") is not None:
            resp.media = self.access(req.get_header("Authorization"))
            return
        resp.content_type = falcon.MEDIA_HTML
        resp.data = self.page

    def access(self, authorization: str | None) -> dict[str, Any]:
        """The token's name, permissions and prefixes (None: every key); 401
        for no token or an unknown one where the server needs one."""
        if self.acl is not None:
            grant = self.acl.identify(authorization)
            if grant is None:
                raise _unauthorized(authorization)
            prefixes = None if grant.prefixes is None else list(grant.prefixes)
            permissions = [name for name in EVERY_PERMISSION if name in grant.permissions]
            return {"token": grant.name, "permissions": permissions, "prefixes": prefixes}
        if self.expected is not None and not hmac.compare_digest((authorization or "").encode(), self.expected):
            raise _unauthorized(authorization)
        return {"token": None, "permissions": EVERY_PERMISSION, "prefixes": None}


def _unauthorized(authorization: str | None) -> ApiError:
    message = "the bearer token is not this server's" if authorization else "this server needs a bearer token"
    return ApiError(401, "unauthorized", message, headers=UNAUTHORIZED_HEADERS)
