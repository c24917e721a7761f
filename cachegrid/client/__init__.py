"""CacheGrid's Python client: ``SyncCacheGridClient`` and ``CacheGridClient``
(asyncio), over keep-alive connections of their own (requests and httpx
for https hosts), with failover between hosts, clusters, and a near cache
(``NearCache``: an in-process copy of hot values the servers keep coherent).

It knows only the HTTP contract: nothing of the engine or the daemon.
"""

from __future__ import annotations

from .aio import CacheGridClient
from .coding import AnswerTooLarge
from .errors import (
    CacheGridConnectionError,
    CacheGridError,
    CacheGridTimeoutError,
    NotFound,
    RequestError,
    TLSError,
    Unauthorized,
    Unavailable,
)
from .near import NearCache
from .retry import RetryPolicy
from .sync import SyncCacheGridClient

__all__ = [
    "AnswerTooLarge",
    "CacheGridClient",
    "CacheGridConnectionError",
    "CacheGridError",
    "CacheGridTimeoutError",
    "NearCache",
    "NotFound",
    "RequestError",
    "RetryPolicy",
    "SyncCacheGridClient",
    "TLSError",
    "Unauthorized",
    "Unavailable",
]
