"""CacheGrid's HTTP daemon: a falcon WSGI app around the engine."""

from __future__ import annotations

from .app import create_app
from .cache_factory import build_cache

__all__ = ["build_cache", "create_app"]
