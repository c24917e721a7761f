"""CacheGrid's Python client: ``SyncCacheGridClient`` (requests) and
``CacheGridClient`` (asyncio, httpx), with failover between hosts.

It knows only the HTTP contract: nothing of the engine or the daemon.
"""

from __future__ import annotations

from .aio import CacheGridClient
from .errors import (
    CacheGridConnectionError,
    CacheGridError,
    CacheGridTimeoutError,
    NotFound,
    RequestError,
    Unauthorized,
    Unavailable,
)
from .retry import RetryPolicy
from .sync import SyncCacheGridClient

__all__ = [
    "CacheGridClient",
    "CacheGridConnectionError",
    "CacheGridError",
    "CacheGridTimeoutError",
    "NotFound",
    "RequestError",
    "RetryPolicy",
    "SyncCacheGridClient",
    "Unauthorized",
    "Unavailable",
]
