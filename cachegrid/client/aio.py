"""The asynchronous client, over ``httpx.AsyncClient``.

httpx because it is the maintained async HTTP client with the same model as
requests (a pooled client object, timeouts, the same exceptions split), so
both clients behave alike. The connection pool is made on first use inside
the running event loop (a client created outside any loop, or never entered
as a context manager, works), and made again if the client is used from
another loop later (each ``asyncio.run`` has its own).
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Iterable

import httpx

from .protocol import Api, Call, MaybeSent, NotSent


class CacheGridClient(Api):
    """An asyncio CacheGrid client with failover between ``hosts``; every
    method of ``SyncCacheGridClient`` is here a coroutine."""

    def __init__(self, hosts: Iterable[str] | str = ("localhost:8080",), timeout: float = 5.0,
                 max_retries: int = 3, auth_token: str | None = None, cooldown: float = 30.0) -> None:
        super().__init__(hosts, timeout, max_retries, auth_token, cooldown)
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _open(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop or self._client.is_closed:
            self._client = httpx.AsyncClient(headers=self._headers(), timeout=self.timeout)
            self._loop = loop
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()

    async def __aenter__(self) -> CacheGridClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _send(self, host: str, call: Call) -> tuple[int, bytes]:
        client = self._open()
        try:
            response = await client.request(call.method, host + call.path, params=call.params,
                                            content=call.body, headers=call.headers)
            return response.status_code, response.content
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol) as error:
            raise NotSent(str(error) or type(error).__name__) from None
        except httpx.TransportError as error:
            raise MaybeSent(str(error) or type(error).__name__) from None

    async def _call(self, call: Call) -> Any:  # type: ignore[override]
        plan = self.pool.run(call)
        host, wait = next(plan)
        while True:
            if wait:
                await asyncio.sleep(wait)
            try:
                outcome: Any = await self._send(host, call)
            except (NotSent, MaybeSent) as error:
                outcome = error
            try:
                host, wait = plan.send(outcome)
            except StopIteration as done:
                return done.value

    async def iter_keys(self, pattern: str | None = None, page_size: int = 1000) -> AsyncIterator[str]:
        """Every live key matching ``pattern``, page by page through the cursor."""
        page = await self.keys(pattern, page_size)
        for key in page["keys"]:
            yield key
        while page["cursor"]:
            page = await self.keys(pattern, page_size, page["cursor"])
            for key in page["keys"]:
                yield key
