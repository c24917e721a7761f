"""Calling either client by method name, so one test holds both to the same
behaviour: the synchronous one directly, the asynchronous one through
``asyncio.run``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from cachegrid.client import CacheGridClient, SyncCacheGridClient
from cachegrid.testing import ServerProcess as Server

Call = Callable[..., Any]


def address(server: Server) -> str:
    return f"{server.host}:{server.port}"


def make_caller(kind: str, hosts: list[str], **options: Any) -> tuple[Call, Any]:
    """A function calling ``kind``'s ("sync" or "async") client by method name, and the client."""
    if kind == "sync":
        client: Any = SyncCacheGridClient(hosts, **options)
        return (lambda name, *args, **kwargs: getattr(client, name)(*args, **kwargs)), client
    client = CacheGridClient(hosts, **options)
    return (lambda name, *args, **kwargs: asyncio.run(getattr(client, name)(*args, **kwargs))), client


def collect(kind: str, client: Any, *args: Any, **kwargs: Any) -> list[str]:
    """Every key ``client.iter_keys(...)`` yields, as a list."""
    if kind == "sync":
        return list(client.iter_keys(*args, **kwargs))

    async def every() -> list[str]:
        return [name async for name in client.iter_keys(*args, **kwargs)]

    return asyncio.run(every())
