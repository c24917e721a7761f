"""The asynchronous client, over keep-alive asyncio streams (transport_aio.py).

The transport is the sync client's, written for asyncio (both build their
requests and parse their answers with wire.py), so both clients behave
alike; httpx is left for https hosts. The connection pool is made on first use inside
the running event loop (a client created outside any loop, or never entered
as a context manager, works), and made again if the client is used from
another loop later (each ``asyncio.run`` has its own). The requests of one
step of a plan that go to several nodes at once run as concurrent tasks.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from .api import Api, Fill, First, starts_with
from .leases import Compute, Flow, Refresh, Run, Sleep
from .protocol import Answer, Call, MaybeSent, NotSent, Outcome, Plan
from .transport_aio import AioTransport

log = logging.getLogger("cachegrid.client")


async def _value_of(compute: Callable[[], Any]) -> Any:
    """``compute()``, awaited when it is a coroutine function (or returns an awaitable)."""
    result = compute()
    return await result if inspect.isawaitable(result) else result


class CacheGridClient(Api):
    """An asyncio CacheGrid client: one server, a cluster, or failover hosts
    (the parameters are ``Api``'s); every method of ``SyncCacheGridClient``
    is here a coroutine."""

    def _open_transport(self) -> None:
        self._client: AioTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._refreshes: set[asyncio.Task[None]] = set()  # held until done: the loop keeps only weak references
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # the plans' waits (a test may put a fake here)

    def _open(self) -> AioTransport:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop or self._client.is_closed:
            self._client = AioTransport(self._headers(), self.timeout, self.verify)
            self._loop = loop
        return self._client

    async def connect(self) -> None:
        """Make the connection pool now, in the running event loop, rather than
        on the first call (calling it again is harmless)."""
        self._open()

    async def close(self) -> None:
        """Release the connection pool; the next call makes a new one. Calling
        it again is harmless."""
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()

    async def __aenter__(self) -> CacheGridClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _send(self, host: str, call: Call) -> Answer:
        return await self._open().send(host, call)

    async def _attempt(self, host: str, call: Call) -> Outcome:
        try:
            return await self._send(host, call)
        except (NotSent, MaybeSent) as error:
            return error

    async def _direct(
        self, host: str, call: Call, plan: Callable[[], Plan], miss_ends: bool, fill: Fill | None = None
    ) -> Any:
        outcome = await self._attempt(host, call)
        if fill is not None:
            self.fill_near(fill, outcome)
        if isinstance(outcome, Answer) and self._ends(outcome, call, miss_ends):
            return call.read(outcome)
        return await self._run(plan(), (host, call, outcome))

    async def _ready(self, value: Any) -> Any:
        return value

    async def _finally(self, run: Callable[[], Any], after: Callable[[], None]) -> Any:
        try:
            return await run()
        finally:
            after()

    async def _run(self, plan: Plan, first: First | None = None) -> Any:
        try:
            wait, sends = next(plan)
            if first is not None and starts_with(wait, sends, first):
                wait, sends = plan.send([first[2]])
            while True:
                if wait:
                    await self._sleep(wait)
                if len(sends) == 1:
                    outcomes = [await self._attempt(*sends[0])]
                else:
                    outcomes = list(await asyncio.gather(*(self._attempt(*send) for send in sends)))
                wait, sends = plan.send(outcomes)
        except StopIteration as done:
            return done.value

    async def _drive(self, flow: Flow, compute: Callable[[], Any]) -> Any:
        """Run a get_or_set flow (leases.py): awaited calls, refreshes as tasks."""
        try:
            action = next(flow)
            while True:
                result: Any = None
                try:
                    if isinstance(action, Run):
                        result = await self._run(action.plan)
                    elif isinstance(action, Sleep):
                        await self._sleep(action.seconds)
                    elif isinstance(action, Compute):
                        result = await _value_of(compute)
                    else:
                        self._refresh_in_background(action, compute)
                except BaseException as error:  # the flow releases its lease, then re-raises
                    action = flow.throw(error)
                    continue
                action = flow.send(result)
        except StopIteration as done:
            return done.value

    def _refresh_in_background(self, refresh: Refresh, compute: Callable[[], Any]) -> None:
        async def run() -> None:
            try:
                await self._run(refresh.fill(await _value_of(compute)))
            except Exception:
                log.exception("refreshing %r failed; its stale value is served until its window ends", refresh.key)

        task = asyncio.get_running_loop().create_task(run())
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)

    async def iter_keys(self, pattern: str | None = None, page_size: int = 1000) -> AsyncIterator[str]:
        """Every live key matching ``pattern``, page by page through the cursor
        (once each, also where replicas hold a key on several nodes)."""
        once = self._once()
        page = await self.scan(pattern, page_size)
        for key in once(page["keys"]):
            yield key
        while page["cursor"]:
            page = await self.scan(pattern, page_size, page["cursor"])
            for key in once(page["keys"]):
                yield key
