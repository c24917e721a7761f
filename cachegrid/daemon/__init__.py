"""CacheGrid's HTTP daemon: a falcon WSGI app around the engine."""

from __future__ import annotations

from .app import build_cache, create_app

__all__ = ["build_cache", "create_app"]
