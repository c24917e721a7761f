"""``GET /openapi.json`` and ``GET /docs``: the API described, and browsable.

``/openapi.json`` is the document ``build_document`` assembles
(document.py), encoded once when the app is built.

``/docs`` is Swagger UI 5 (it reads OpenAPI 3.1), its files served from the
installed ``drf-spectacular-sidecar`` package under ``/docs/static``: that
package republishes the current ``swagger-ui-dist`` build every month and
carries nothing else we use (its Django app is never imported: the files are
found without importing the package). The page is started by our own
``static/docs.js``; nothing is fetched from elsewhere, so it works offline.
With a token configured the page loads without one; its Authorize button
takes the token (the document's ``bearer`` scheme) for "Try it out".
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import falcon

from ...config import Settings
from ..dashboard import STATIC_PATH
from .document import build_document

OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"
DOCS_STATIC = "/docs/static"


def _swagger_ui_directory() -> str:
    """Where the installed ``swagger-ui-dist`` files are. Found without
    importing their package (its ``__init__`` imports Django)."""
    spec = importlib.util.find_spec("drf_spectacular_sidecar")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("drf-spectacular-sidecar is not installed: /docs needs its Swagger UI files")
    return str(
        Path(next(iter(spec.submodule_search_locations))) / "static" / "drf_spectacular_sidecar" / "swagger-ui-dist"
    )


SWAGGER_UI_DIRECTORY = _swagger_ui_directory()

DOCS_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>CacheGrid API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{swagger}/swagger-ui.css"></head>
<body><div id="swagger-ui" data-openapi="{openapi}"></div>
<script src="{swagger}/swagger-ui-bundle.js"></script>
<script src="{ours}/docs.js"></script>
</body></html>
"""


class OpenAPI:
    """``GET /openapi.json``."""

    def __init__(self, settings: Settings) -> None:
        self.document = json.dumps(build_document(settings), indent=1).encode()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.document


class Docs:
    """``GET /docs``: Swagger UI's page."""

    def __init__(self) -> None:
        self.page = DOCS_PAGE.format(swagger=DOCS_STATIC, ours=STATIC_PATH, openapi=OPENAPI_PATH).encode()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.data = self.page
