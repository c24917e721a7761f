"""The synchronous client, over keep-alive sockets (transport_sync.py).

Use it as a context manager or not at all; both work, and so does entering
the same client again and again (one client made at import time, ``with
client:`` around each request of a web app): the session is opened on first
use and closed when the last ``with`` block that is still open ends. The
requests of one step of a plan that go to several nodes at once (batches
across a cluster, writes to replicas) run on a small thread pool, made on
first use.

A plain one-key read or write (no near cache, one replica, a small body)
takes a quick path (``_quick_send``): its request goes straight onto an idle
connection of the key's node, and only an unusual outcome builds the Call
and plan the usual path would have made from the start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .api import NOT_SENT, Api, Fill, First, _stored, starts_with
from .leases import Compute, Flow, Refresh, Run, Sleep
from .protocol import Answer, Call, MaybeSent, NotSent, Outcome, Plan, get_call, item_path, read_or
from .transport_sync import Transport

MAX_THREADS = 16
_STORED = frozenset((200, 201))  # a plain PUT's answers that say it is stored
log = logging.getLogger("cachegrid.client")


class SyncCacheGridClient(Api):
    """A blocking CacheGrid client: one server, a cluster, or failover hosts
    (the parameters are ``Api``'s)."""

    def _open_transport(self) -> None:
        self._session: Transport | None = None
        self._entered = 0
        self._lock = threading.Lock()
        self._threads: ThreadPoolExecutor | None = None
        self._sleep: Callable[[float], None] = time.sleep  # the plans' waits (a test may put a fake here)

    def _open(self) -> Transport:
        session = self._session
        if session is not None:
            return session
        with self._lock:
            if self._session is None:
                self._session = Transport(self._headers(), self.timeout, self.verify, self.uploads)
            return self._session

    def connect(self) -> None:
        """Open the connection pool now rather than on the first call (calling
        it again is harmless). The pool stays open until ``close()`` or the end
        of the last ``with`` block."""
        self._open()

    def close(self) -> None:
        """Release the connection pool and threads; the next call opens them
        again. Calling it again is harmless."""
        with self._lock:
            session, self._session = self._session, None
            threads, self._threads = self._threads, None
        if session is not None:
            session.close()
        if threads is not None:
            threads.shutdown(wait=False)

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(
                    min(MAX_THREADS, len(self.hosts)), thread_name_prefix="cachegrid-client"
                )
            return self._threads

    def __enter__(self) -> SyncCacheGridClient:
        with self._lock:
            self._entered += 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._entered -= 1
            last = self._entered == 0
        if last:
            self.close()

    def _send(self, host: str, call: Call) -> Answer:
        session = self._session  # PERF: _open's first line, without the call
        return (session or self._open()).send(host, call)

    def _attempt(self, send: tuple[str, Call]) -> Outcome:
        try:
            return self._send(*send)
        except (NotSent, MaybeSent) as error:
            return error

    def _direct(
        self, host: str, call: Call, plan: Callable[[], Plan], miss_ends: bool, fill: Fill | None = None
    ) -> Any:
        try:  # _attempt's work, inline: the one-key hot path
            outcome: Outcome = self._send(host, call)
        except (NotSent, MaybeSent) as error:
            outcome = error
        if fill is not None:
            self.fill_near(fill, outcome)
        return self._settle(host, call, plan, miss_ends, outcome)

    def _settle(self, host: str, call: Call, plan: Callable[[], Plan], miss_ends: bool, outcome: Outcome) -> Any:
        """The result of a one-key operation whose first request, ``call`` to ``host``, had ``outcome``."""
        if isinstance(outcome, Answer) and self._ends(outcome, call, miss_ends):
            return call.read(outcome)
        return self._run(plan(), (host, call, outcome))

    def _quick_send(
        self,
        key: str,
        write: bool,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[str, Outcome] | None:
        """PERF: the quick path's request (``_quick_get``, ``_quick_put``):
        written on an idle keep-alive connection of the key's node with no
        Call, plan or layer of the transport in between, when the node is
        known without the plan (``Router.direct``) and reached by a lane; the
        node and the outcome, or None when nothing was sent (the caller then
        goes the usual way). Between two socket waits every Python call costs
        several times its cost in a loop (the CPU's caches went to the server
        and the kernel meanwhile): this path makes a dozen fewer."""
        session = self._session
        if session is None:
            return None
        host = self.router.direct(key, write)
        if host is None:
            return None
        lane = session.lanes.get(host)
        if lane is None:
            return None
        try:
            outcome = lane.quick(lane.origin.request(method, path, params, body, headers))
        except (NotSent, MaybeSent) as error:
            return host, error
        return None if outcome is None else (host, outcome)

    def _quick_get(self, key: str, default: Any) -> Any:
        """PERF: a GET (api.py's ``get`` without a near cache) by
        ``_quick_send``, with one replica: its 200 or 404 read at once
        (``read_or``), any other outcome gone on with as ``_direct`` would
        (``_settle``); ``NOT_SENT`` when it was not sent."""
        if self.router.replicas != 1:
            return NOT_SENT
        sent = self._quick_send(key, False, "GET", item_path(key))
        if sent is None:
            return NOT_SENT
        host, outcome = sent
        if isinstance(outcome, Answer) and (outcome.status == 200 or outcome.status == 404):
            return read_or(outcome, default)
        call = get_call(key, default)
        return self._settle(host, call, self._read_plan(key, call, default), True, outcome)

    def _quick_put(self, key: str, body: bytes, headers: Mapping[str, str], params: Mapping[str, str] | None) -> Any:
        """PERF: a PUT (api.py's ``set`` without a condition or a near cache;
        ``params``: its TTL, stale window and tags) by ``_quick_send``, when
        its body is small (never compressed: ``Uploads``): its common answer
        (200, 201) is the result at once, any other outcome gone on with as
        ``_direct`` would (``_settle``); None when it was not sent."""
        if len(body) >= self.uploads.threshold:
            return None
        path = item_path(key)
        sent = self._quick_send(key, True, "PUT", path, params, body, headers)
        if sent is None:
            return None
        host, outcome = sent
        if isinstance(outcome, Answer) and outcome.status in _STORED:
            if not self.uploads.accepts(host):  # what a write's answer says of its node (coding.py)
                self.uploads.learn(host, outcome)
            return True
        call = Call("PUT", path, _stored, params, body, headers)
        return self._settle(host, call, self._write_plan(key, call), True, outcome)

    def _finally(self, run: Callable[[], Any], after: Callable[[], None]) -> Any:
        try:
            return run()
        finally:
            after()

    def _run(self, plan: Plan, first: First | None = None) -> Any:
        try:
            wait, sends = next(plan)
            if first is not None and starts_with(wait, sends, first):
                wait, sends = plan.send([first[2]])
            while True:
                if wait:
                    self._sleep(wait)
                # The first request in this thread, the others on the pool meanwhile.
                others = [self._pool().submit(self._attempt, send) for send in sends[1:]]
                outcomes = [self._attempt(sends[0]), *(other.result() for other in others)]
                wait, sends = plan.send(outcomes)
        except StopIteration as done:
            return done.value

    def _drive(self, flow: Flow, compute: Callable[[], Any]) -> Any:
        """Run a get_or_set flow (leases.py): blocking calls, refreshes on daemon threads."""
        try:
            action = next(flow)
            while True:
                result: Any = None
                try:
                    if isinstance(action, Run):
                        result = self._run(action.plan)
                    elif isinstance(action, Sleep):
                        self._sleep(action.seconds)
                    elif isinstance(action, Compute):
                        result = compute()
                    else:
                        self._refresh_in_background(action, compute)
                except BaseException as error:  # the flow releases its lease, then re-raises
                    action = flow.throw(error)
                    continue
                action = flow.send(result)
        except StopIteration as done:
            return done.value

    def _refresh_in_background(self, refresh: Refresh, compute: Callable[[], Any]) -> None:
        def run() -> None:
            try:
                self._run(refresh.fill(compute()))
            except Exception:
                log.exception("refreshing %r failed; its stale value is served until its window ends", refresh.key)

        threading.Thread(target=run, name=f"cachegrid-refresh:{refresh.key[:40]}", daemon=True).start()

    def iter_keys(self, pattern: str | None = None, page_size: int = 1000) -> Iterator[str]:
        """Every live key matching ``pattern``, page by page through the cursor
        (once each, also where replicas hold a key on several nodes)."""
        once = self._once()
        page = self.scan(pattern, page_size)
        yield from once(page["keys"])
        while page["cursor"]:
            page = self.scan(pattern, page_size, page["cursor"])
            yield from once(page["keys"])
