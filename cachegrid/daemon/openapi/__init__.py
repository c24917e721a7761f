"""The API described (``GET /openapi.json``) and browsable (``GET /docs``).

The document is written out here by hand, one module per URL family
(document.py says how it is assembled), and is kept honest by a fuzz test
(schemathesis) that checks every answer of the real app against it, and by
a validator of OpenAPI 3.1 (tests/daemon/test_pages.py). pages.py serves it,
and Swagger UI's page.
"""

from __future__ import annotations

from .document import build_document
from .pages import DOCS_PATH, DOCS_STATIC, OPENAPI_PATH, SWAGGER_UI_DIRECTORY, Docs, OpenAPI

__all__ = ["DOCS_PATH", "DOCS_STATIC", "OPENAPI_PATH", "SWAGGER_UI_DIRECTORY", "Docs", "OpenAPI", "build_document"]
