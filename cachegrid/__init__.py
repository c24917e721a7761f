"""CacheGrid: an in-memory key/value cache server with an HTTP/JSON API."""

from __future__ import annotations

__version__ = "0.1.0"
