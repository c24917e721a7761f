"""``GET /events``: the change stream, as Server-Sent Events.

The engine reports every change through its one change hook
(engine/changes.py); ``EventHub.hook`` is that hook while anybody listens.
Each change becomes one SSE event, formatted once::

    id: <epoch>-<seq>
    event: set|delete|expire|evict|clear|invalidate|reset
    data: {"key": "user:42", "time": 1765000000.123456}   ({"key": null}: everything; {"tag": "t"})

``epoch`` names this process's life (a restart starts a new one), ``seq``
rises by one per event; ``time`` is when the change was made (Unix time, the
server's wall clock), so that a reader can tell how late an event came. The hook runs under the engine's lock, after the
change is applied; it appends the event to a ring buffer of the last
``events_ring_size`` events and to the bounded queue of every subscriber
whose prefixes match, then wakes the subscribers. It never blocks and never
writes to a socket: a subscriber whose queue passes ``events_queue_size``
is dropped on the spot and its stream ends with a ``reset`` event, so a
slow reader slows neither writers nor other readers.

Resuming: ``Last-Event-ID`` of this epoch, not older than the ring's oldest
event nor newer than the last, replays what came after it; anything else
(none, malformed, another epoch, too old) starts the stream with ``reset``
(the reader drops what it knows and starts afresh from there).

The hook costs something only while somebody listens: it is installed with
the first subscriber and removed with the last. Changes made meanwhile are
not recorded, so the ring restarts after such a gap (one id is skipped and
nothing before it can be resumed from).

Waiting without a thread per stream
-----------------------------------
Under meinheld (one thread, a greenlet per request) a stream with nothing to
send suspends its greenlet with ``server._suspend_client(client, seconds)``:
the worker goes on serving everyone else. The hook wakes it with
``server.cancel_wait(fd)`` and then ``server._resume_client(client, (), {})``
(both are needed: without the cancel the pending timeout later fires on a
freed client). Only the loop's own thread may touch meinheld's loop, so a
change reported from the sweeper thread (an expiry) wakes nobody: such
events go out at the stream's next timer tick (a second at most). Under
gthread (or in process) a stream holds a worker thread and waits on an
``Event``: there at most ``threads - 1`` streams are open at once (503 past
that), so that one thread always serves other requests.

A graceful stop (``close_all``, from the workers' SIGTERM handlers) ends
every stream at once.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from typing import Any

import falcon

from ..config import Settings
from ..engine import INVALIDATE, RESET, Cache
from .acl import deny, scope
from .errors import ApiError

try:  # meinheld is optional: the gthread worker and tests run without it
    from meinheld import server as meinheld_server
except ImportError:  # pragma: no cover
    meinheld_server = None

CLIENT_KEY = "meinheld.client"
HEARTBEAT = b": heartbeat\n\n"
# Whole seconds: meinheld's suspend timeout runs on a one-second timer.
TICK = 1

_hubs: weakref.WeakSet[EventHub] = weakref.WeakSet()


def close_all() -> None:
    """End every open stream of every hub in this process (a graceful stop)."""
    for hub in list(_hubs):
        hub.close_all()


class Subscriber:
    """One open stream: its filter, its bounded queue and how to wake it."""

    __slots__ = ("client", "closed", "event", "fd", "limit", "overflowed", "prefixes", "queue", "suspended")

    def __init__(self, prefixes: tuple[str, ...] | None, limit: int, client: Any = None) -> None:
        self.prefixes = prefixes  # None: every key
        self.limit = limit
        self.queue: deque[bytes] = deque()
        self.overflowed = self.closed = self.suspended = False
        self.client = client  # meinheld's client object, or None (a thread waits on event)
        self.fd = client.get_fd() if client is not None else -1
        self.event = threading.Event()

    def take(self) -> bytes:
        """Everything queued, as one chunk (b"": nothing)."""
        queue = self.queue
        if not queue:
            return b""
        chunks = []
        while queue:
            chunks.append(queue.popleft())
        return b"".join(chunks)


class EventHub:
    """The ring buffer, the subscribers and the engine's change hook."""

    def __init__(self, cache: Cache, settings: Settings, thread_streams: int | None = None) -> None:
        self.cache = cache
        self.epoch = secrets.token_hex(4)
        self.seq = 0
        self.low = 0  # the oldest id a Last-Event-ID may resume from
        self.ring: deque[tuple[int, bytes]] = deque(maxlen=settings.events_ring_size or None)
        self.ring_size = settings.events_ring_size
        self.queue_size = settings.events_queue_size
        self.max_subscribers = settings.events_max_subscribers
        self.thread_streams = thread_streams  # the most thread-held streams (None: max_subscribers)
        self.heartbeat = settings.events_heartbeat
        self.subscribers: list[Subscriber] = []
        # Reentrant: a signal handler (close_all) may run while the hook holds it.
        self.lock = threading.RLock()
        # Lock order: install_lock, then the engine's lock (set_change_hook),
        # then self.lock (the hook runs under the engine's lock and takes it):
        # self.lock is never held while waiting for another.
        self.install_lock = threading.Lock()
        self.loop_thread = threading.get_ident()
        self.dropped = 0  # subscribers dropped for falling behind
        self.installed = False
        _hubs.add(self)

    # -- the hook (under the engine's lock) -------------------------------------

    def hook(self, kind: str, name: str | None) -> None:
        field = "tag" if kind == INVALIDATE else "key"
        with self.lock:
            # The wall-clock time of the change: a reader measures how late
            # the event came (the same clock on one machine; skewed across two).
            chunk = self._record(kind, f'{{"{field}": {json.dumps(name)}, "time": {time.time():.6f}}}')
            wake = []
            for sub in self.subscribers:
                prefixes = sub.prefixes
                if prefixes is not None and name is not None and field == "key" and not name.startswith(prefixes):
                    continue
                sub.queue.append(chunk)
                if len(sub.queue) > sub.limit:
                    self._drop(sub)
                wake.append(sub)
        self._wake(wake)

    def _record(self, kind: str, data: str) -> bytes:
        self.seq += 1
        chunk = f"id: {self.epoch}-{self.seq}\nevent: {kind}\ndata: {data}\n\n".encode()
        if self.ring_size:
            if len(self.ring) == self.ring_size:
                self.low = self.ring[0][0]  # about to be forgotten: resumable from it, not before
            self.ring.append((self.seq, chunk))
        else:
            self.low = self.seq
        return chunk

    def _drop(self, sub: Subscriber) -> None:
        """A subscriber that fell behind: its queue becomes one reset; it
        leaves the hub at once (its stream sends the reset and ends)."""
        sub.queue.clear()
        sub.queue.append(self._reset_chunk())
        sub.overflowed = True
        self.subscribers.remove(sub)
        self.dropped += 1
        # (Not uninstalled here, under the engine's lock: unsubscribe does it.)

    def _reset_chunk(self) -> bytes:
        return f'id: {self.epoch}-{self.seq}\nevent: {RESET}\ndata: {{"key": null}}\n\n'.encode()

    def _wake(self, subs: list[Subscriber]) -> None:
        on_loop = threading.get_ident() == self.loop_thread
        for sub in subs:
            if sub.client is None:
                sub.event.set()
            elif sub.suspended and on_loop:
                sub.suspended = False
                try:
                    meinheld_server.cancel_wait(sub.fd)  # first: else its timer fires later on a freed client
                    meinheld_server._resume_client(sub.client, (), {})
                except OSError:  # not suspended after all (a signal handler ran between two steps)
                    pass

    # -- subscribers ----------------------------------------------------------------

    def subscribe(self, last_id: str | None, prefixes: tuple[str, ...] | None, client: Any = None) -> Subscriber:
        """A new subscriber, its queue holding the replay after ``last_id``
        or a reset; ApiError 503 when there are too many."""
        sub = Subscriber(prefixes, self.queue_size, client)
        bound = self.max_subscribers
        if client is None and self.thread_streams is not None:
            bound = min(bound, self.thread_streams)
        with self.install_lock:  # (never inside self.lock: the hook takes that under the engine's lock)
            with self.lock:
                full = len(self.subscribers) >= bound
            if full:
                raise ApiError(
                    503,
                    "too_many_subscribers",
                    f"this server streams events to at most {bound} subscribers at once",
                    limit=bound,
                )
            if not self.installed:
                self._install()
            with self.lock:
                start = self._resume_point(last_id)
                if start is None:
                    sub.queue.append(self._reset_chunk())
                else:
                    for seq, chunk in self.ring:
                        if seq > start and self._matches(sub, chunk):
                            sub.queue.append(chunk)
                self.subscribers.append(sub)
        return sub

    def _install(self) -> None:
        self.cache.set_change_hook(self.hook)  # takes the engine's lock
        with self.lock:
            # The hook was off: changes meanwhile were not recorded, so nothing
            # before now can be resumed from (one id is skipped to mark the gap).
            self.seq += 1
            self.low = self.seq
            self.ring.clear()
        self.installed = True

    def _uninstall_if_idle(self) -> None:
        with self.lock:
            idle = not self.subscribers and self.installed
        if idle:
            self.installed = False
            self.cache.set_change_hook(None)  # takes the engine's lock

    def _resume_point(self, last_id: str | None) -> int | None:
        """The seq after which to replay, None: start with a reset."""
        if last_id is None:
            return None
        epoch, _, seq = last_id.strip().partition("-")
        if epoch != self.epoch or not seq.isdigit() or len(seq) > 18:
            return None
        number = int(seq)
        return number if self.low <= number <= self.seq else None

    @staticmethod
    def _matches(sub: Subscriber, chunk: bytes) -> bool:
        if sub.prefixes is None:
            return True
        data = json.loads(chunk.rsplit(b"data: ", 1)[1])
        key = data.get("key")
        return key is None or "tag" in data or key.startswith(sub.prefixes)

    def unsubscribe(self, sub: Subscriber) -> None:
        """``sub`` leaves (if it has not been dropped already); the hook goes
        with the last one. Never called from the hook: it takes the engine's lock."""
        with self.install_lock:
            with self.lock:
                if sub in self.subscribers:
                    self.subscribers.remove(sub)
            self._uninstall_if_idle()

    def close_all(self) -> None:
        with self.lock:
            subs = list(self.subscribers)
            for sub in subs:
                sub.closed = True
        self._wake(subs)

    # -- the streams ----------------------------------------------------------------

    def stream(self, sub: Subscriber) -> Iterator[bytes]:
        """The response body: queued events as they come, heartbeats between."""
        try:
            last_sent = time.monotonic()
            while True:
                chunk = sub.take()
                if chunk:
                    yield chunk
                    last_sent = time.monotonic()
                if sub.overflowed or sub.closed:
                    if sub.queue:  # the reset came while the last chunk was being sent
                        continue
                    return
                if time.monotonic() - last_sent >= self.heartbeat:
                    yield HEARTBEAT
                    last_sent = time.monotonic()
                if not sub.queue:
                    self._wait(sub, last_sent)
        finally:
            self.unsubscribe(sub)

    def _wait(self, sub: Subscriber, last_sent: float) -> None:
        if sub.client is None:
            sub.event.wait(max(0.01, self.heartbeat - (time.monotonic() - last_sent)))
            sub.event.clear()
            return
        sub.suspended = True
        try:
            meinheld_server._suspend_client(sub.client, TICK)
        except meinheld_server.timeout:
            pass
        finally:
            sub.suspended = False


class Events:
    """``GET /events``: opens a stream (see the module docstring)."""

    def __init__(self, hub: EventHub, settings: Settings) -> None:
        self.hub = hub
        self.max_key_length = settings.max_key_length

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        prefixes = req.get_param_as_list("prefix")
        if prefixes is not None:
            for prefix in prefixes:
                if not prefix or len(prefix.encode()) > self.max_key_length:
                    raise ApiError(
                        400,
                        "invalid_prefix",
                        f"a prefix is 1 to {self.max_key_length} bytes, not {len(prefix.encode())}",
                    )
        allowed = scope(req)  # acl.py: a token confined to prefixes streams only their events
        if allowed is not None:
            outside = next((prefix for prefix in prefixes or () if not prefix.startswith(allowed)), None)
            if outside is not None:
                grant = req.context.grant
                message = f"the token {grant.name!r} may not follow the prefix {outside!r}: it is outside its prefixes"
                raise deny(grant, req, ApiError(403, "forbidden", message, prefix=outside, prefixes=list(allowed)))
            prefixes = prefixes or list(allowed)
        client = req.env.get(CLIENT_KEY) if meinheld_server is not None else None
        sub = self.hub.subscribe(req.get_header("Last-Event-ID"), tuple(prefixes) if prefixes else None, client)
        resp.content_type = "text/event-stream"
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")
        resp.stream = self.hub.stream(sub)
