"""The near cache: a bounded in-process copy of hot values, kept coherent by
the servers' change streams (``GET /events``, read by stream.py).

What it holds. An entry is a key's answer as a node sent it: the body's
bytes, whether it is binary, when it stops being served locally (the
earliest of the server's ``X-Cache-TTL`` and ``max_ttl``), the node it came
from and its tags (``X-Cache-Tags``). A hit decodes a JSON value anew from
the bytes (protocol.decode: orjson), so a caller that mutates what it got never changes the
copy; a binary value is bytes, immutable, returned as it is. The entries
form an LRU (an ``OrderedDict``) bounded by a count and by bytes (a value's
bytes plus its key's length); a tag index maps a tag to its keys.

Why it is coherent. A node's stream tells of every change after the change
is applied (docs/events.md). A change to a key drops it here whichever node
it came from; a tag invalidation drops the tag's entries; a clear, a restore
(``"key": null``) or a lost stream drops every entry read from that node.
While a node's stream is not live, reads of it are not cached at all.

The fill race. A read sent before a change may be answered with the old
value after the change's event was already handled here; storing that
answer would keep a dead value for good. So a read is *reserved* before it
is sent (``reserve``, which answers None when the node's stream is not
live: the read then passes through) and its answer is stored (``fill``)
only if nothing that could concern the key happened in between: no event
of that key (nor the client's own write, ``forget``), no tag invalidation
(the answer's tags are not known before it comes), no clear or lost stream
of that node (a generation per node), no ``forget_all``. An event that
arrives before the reservation is harmless: the read is sent after it, so
it sees that change or a later one.

After ``fork()`` the child's near caches start empty, with no readers (the
parent's threads do not exist in the child) and a new lock (the parent's
may have been held by one of its threads at the fork); the next ``watch``
opens the child's own streams.

Thread safety: one plain ``threading.Lock`` guards everything; each public
call holds it for a few dictionary operations (a hit: about a microsecond
with the JSON decoding, which happens outside the lock).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .protocol import decode
from .stream import DEFAULT_HEARTBEAT, StreamReader
from .wire import Headers

MISS: tuple[bool, Any] = (False, None)
MAX_PENDING = 4096  # keys with reads in flight; past it every pending fill is cancelled (never unbounded)
JSON_TYPES = frozenset({"application/json"})
BINARY_TYPES = frozenset({"application/octet-stream"})

# An entry: (body, binary, expires_at, node, tags, size), a tuple (the cheapest to build and read).
BODY, BINARY, EXPIRES, NODE, TAGS, SIZE = range(6)

_caches: weakref.WeakSet[NearCache] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for cache in list(_caches):
        cache._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Ticket:
    """A reserved read: stored by ``fill`` only while still ``alive``."""

    __slots__ = ("alive", "key", "node", "node_gen", "tag_gen")

    def __init__(self, key: str, node: str, node_gen: int, tag_gen: int) -> None:
        self.key, self.node, self.node_gen, self.tag_gen = key, node, node_gen, tag_gen
        self.alive = True


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by its canonical or lower-case name: ``fill`` takes a
    case-insensitive mapping (requests'), or one with either spelling."""
    value = headers.get(name)
    if value is None and not isinstance(headers, Headers):  # (Headers: any case already)
        return headers.get(name.lower())
    return value


def cacheable(status: int, headers: Mapping[str, str], max_ttl: float) -> tuple[bool, float, tuple[str, ...]] | None:
    """(binary, lifetime, tags) of an answer worth storing, None when it is not:
    not a 200, marked stale, of another type than JSON or binary, or its TTL run out."""
    if status != 200 or (_header(headers, "X-Cache-Stale") or "").lower() == "true":
        return None
    kind = _header(headers, "X-Cache-Type")
    if kind is None:
        media = (_header(headers, "Content-Type") or "").split(";", 1)[0].strip().lower()
        kind = "json" if media in JSON_TYPES else "binary" if media in BINARY_TYPES else None
    if kind not in ("json", "binary"):
        return None
    lifetime = max_ttl
    ttl_text = _header(headers, "X-Cache-TTL")
    if ttl_text is not None:
        try:
            lifetime = min(float(ttl_text), max_ttl)
        except ValueError:
            return None
    fresh_text = _header(headers, "X-Cache-Fresh")  # a value with a stale window: fresh for this long
    if fresh_text is not None:
        try:
            lifetime = min(float(fresh_text), lifetime)
        except ValueError:
            return None
    if not lifetime > 0:  # (NaN too)
        return None
    tags_text = _header(headers, "X-Cache-Tags")
    tags = tuple(tag.strip() for tag in tags_text.split(",") if tag.strip()) if tags_text else ()
    return kind == "binary", lifetime, tags


class NearCache:
    """A near cache (see the module docstring). One may be shared by several
    clients of the same servers."""

    def __init__(
        self,
        max_entries: int = 10_000,
        max_bytes: int = 64 * 2**20,
        max_ttl: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        heartbeat: float = DEFAULT_HEARTBEAT,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if max_entries < 1 or max_bytes < 1 or not max_ttl > 0:
            raise ValueError("max_entries, max_bytes and max_ttl must be positive")
        self.max_entries, self.max_bytes, self.max_ttl = max_entries, max_bytes, max_ttl
        self.heartbeat = heartbeat
        self._clock, self._wall_clock = clock, wall_clock
        self._readers: dict[str, StreamReader] = {}
        self._closed = False
        self._reset_state()
        _caches.add(self)

    def _reset_state(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Any, ...]] = OrderedDict()
        self._tags: dict[str, set[str]] = {}
        self._pending: dict[str, list[Ticket]] = {}
        self._live: set[str] = set()
        self._node_gen: dict[str, int] = {}
        self._tag_gen = 0
        self._bytes = 0
        self.hits = self.misses = self.invalidations = self.resets = 0
        self.last_event_delay: float | None = None

    # -- the hot path --------------------------------------------------------------------

    def lookup(self, key: str) -> tuple[bool, Any]:
        """(True, value) on a live local hit, else (False, None)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return MISS
            if entry[EXPIRES] <= self._clock():
                self._drop(key)
                self.misses += 1
                return MISS
            self._entries.move_to_end(key)
            self.hits += 1
        return (True, entry[BODY]) if entry[BINARY] else (True, decode(entry[BODY]))

    def reserve(self, key: str, node: str) -> Ticket | None:
        """A ticket for a read of ``key`` about to be sent to ``node``, None
        when that node's stream is not live (then nothing is stored)."""
        with self._lock:
            if node not in self._live:
                return None
            ticket = Ticket(key, node, self._node_gen[node], self._tag_gen)
            pending = self._pending
            tickets = pending.get(key)
            if tickets is None:
                if len(pending) >= MAX_PENDING:  # fills that never came (a caller that gave up on its read)
                    self._cancel_pending()
                pending[key] = [ticket]
            elif len(tickets) < MAX_PENDING:
                tickets.append(ticket)
            else:
                self._cancel_pending()
                pending[key] = [ticket]
        return ticket

    def fill(self, ticket: object, status: int, headers: Mapping[str, str], body: bytes) -> None:
        """Store the answer of a reserved read, unless something that could
        concern its key happened since ``reserve`` or it is not cacheable."""
        if not isinstance(ticket, Ticket):
            return
        found = cacheable(status, headers, self.max_ttl)
        if found is not None:
            body = bytes(body)  # (a bytearray or memoryview of a transport's buffer: a copy of our own)
        key = ticket.key
        with self._lock:
            tickets = self._pending.get(key)
            if tickets is not None and ticket in tickets:
                tickets.remove(ticket)
                if not tickets:
                    del self._pending[key]
            if (
                found is None
                or not ticket.alive
                or ticket.tag_gen != self._tag_gen
                or ticket.node not in self._live
                or ticket.node_gen != self._node_gen[ticket.node]
            ):
                return
            ticket.alive = False
            binary, lifetime, tags = found
            size = len(body) + len(key)
            if size > self.max_bytes:
                return
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (body, binary, self._clock() + lifetime, ticket.node, tags, size)
            self._bytes += size
            for tag in tags:
                self._tags.setdefault(tag, set()).add(key)
            self._evict()

    def _evict(self) -> None:
        entries = self._entries
        while len(entries) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(entries)))

    def _drop(self, key: str) -> None:
        """Remove ``key``'s entry (present) and its tag index entries (lock held)."""
        entry = self._entries.pop(key)
        self._bytes -= entry[SIZE]
        for tag in entry[TAGS]:
            keys = self._tags.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tags[tag]

    # -- invalidations -------------------------------------------------------------------

    def forget(self, key: str) -> None:
        """The client's own write or delete of ``key``: drop it and any pending fill of it."""
        with self._lock:
            self._forget_key(key)

    def _forget_key(self, key: str) -> None:
        for ticket in self._pending.pop(key, ()):
            ticket.alive = False
        if key in self._entries:
            self._drop(key)

    def forget_tags(self, tags: Iterable[str]) -> None:
        """The client's own invalidation of ``tags``."""
        with self._lock:
            for tag in tags:
                self._forget_tag(tag)

    def _forget_tag(self, tag: str) -> None:
        self._tag_gen += 1  # an answer in flight may carry the tag: no pending fill survives
        for key in list(self._tags.get(tag, ())):
            self._drop(key)

    def forget_all(self) -> None:
        """Drop everything, and every pending fill."""
        with self._lock:
            self._forget_nodes(None)

    def forget_node(self, node: str) -> None:
        """Drop what was read from ``node`` and its pending fills (a ring
        change that moved its keys elsewhere); its stream stays followed."""
        with self._lock:
            self._forget_nodes(node)

    def _cancel_pending(self) -> None:
        for tickets in self._pending.values():
            for ticket in tickets:
                ticket.alive = False
        self._pending.clear()

    def cancel(self, ticket: object) -> None:
        """A reserved read that will not be filled (it failed): forget the reservation."""
        if isinstance(ticket, Ticket):
            with self._lock:
                ticket.alive = False
                tickets = self._pending.get(ticket.key)
                if tickets is not None and ticket in tickets:
                    tickets.remove(ticket)
                    if not tickets:
                        del self._pending[ticket.key]

    def _forget_nodes(self, node: str | None) -> None:
        """Drop the entries read from ``node`` (None: all) and its pending fills (lock held)."""
        for name in [node] if node is not None else list(self._node_gen):
            if name in self._node_gen:
                self._node_gen[name] += 1
        if node is None:
            self._cancel_pending()
            self._entries.clear()
            self._tags.clear()
            self._bytes = 0
            return
        for key in [key for key, entry in self._entries.items() if entry[NODE] == node]:
            self._drop(key)

    # -- the streams ---------------------------------------------------------------------

    def watch(self, nodes: list[str], headers: Mapping[str, str], timeout: float) -> None:
        """Follow the change stream of each of ``nodes`` (base URLs) not yet
        followed, sending ``headers`` (auth); ``timeout`` bounds a connect."""
        with self._lock:
            if self._closed:
                return
            new = [node for node in nodes if node not in self._readers]
            for node in new:
                self._node_gen.setdefault(node, 0)
                try:
                    reader = StreamReader(
                        node, headers, timeout, self.heartbeat, self.stream_event, self.stream_live, self.stream_lost
                    )
                except ValueError:  # not a plain http:// base URL (https, user info): its reads pass through
                    continue
                self._readers[node] = reader
                reader.start()

    def unwatch(self, node: str) -> None:
        """Stop following ``node`` (it left the ring) and drop what was read from it."""
        with self._lock:
            reader = self._readers.pop(node, None)
            self._live.discard(node)
            self._forget_nodes(node)
        if reader is not None:
            reader.stop()

    # What a reader reports (stream.py); tests call these to feed fake events.

    def stream_live(self, node: str, reader: StreamReader | None = None) -> None:
        """``node``'s stream has begun (its first ``reset`` was read): reads
        of it may be reserved (unless ``reader`` is no longer the node's)."""
        with self._lock:
            if not self._closed and (reader is None or self._readers.get(node) is reader):
                self._node_gen.setdefault(node, 0)
                self._live.add(node)

    def stream_lost(self, node: str, reader: StreamReader | None = None) -> None:
        """``node``'s stream is gone: drop what was read from it, reserve
        nothing for it (a reader no longer the node's speaks for nothing)."""
        with self._lock:
            if reader is not None and self._readers.get(node) is not reader:
                return
            if node in self._live:
                self._live.discard(node)
                self.resets += 1
            self._forget_nodes(node)

    def stream_event(self, node: str, kind: str, data: dict[str, Any]) -> None:
        """One event of ``node``'s stream (stream.py has checked its order)."""
        sent = data.get("time")
        key, tag = data.get("key"), data.get("tag")
        with self._lock:
            # By the shape of the data, not the kind: an event kind this
            # client does not know still drops what it names.
            if kind == "reset":
                self._forget_nodes(node)
                return
            if isinstance(key, str):
                self._forget_key(key)
            elif isinstance(tag, str):
                self._forget_tag(tag)
            elif "key" in data and key is None:
                self._forget_nodes(node)  # clear, restore: everything that node held
            else:
                return
            self.invalidations += 1
            if isinstance(sent, (int, float)):
                self.last_event_delay = max(0.0, self._wall_clock() - sent)

    def close(self) -> None:
        """Stop the readers and drop everything; reads pass through from now on."""
        with self._lock:
            self._closed = True
            readers = list(self._readers.values())
            self._live.clear()
            self._forget_nodes(None)
        for reader in readers:
            reader.stop()
        for reader in readers:
            reader.join(2.0)

    def _after_fork(self) -> None:
        # The parent's reader threads do not exist here; their sockets are
        # this process's copies, closed when the readers are collected (the
        # parent's connections live on).
        self._readers = {}
        self._reset_state()

    # -- numbers -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "entries": len(self._entries),
                "bytes": self._bytes,
                "invalidations": self.invalidations,
                "resets": self.resets,
                "reconnects": sum(max(0, reader.connections - 1) for reader in self._readers.values()),
                "last_event_delay": self.last_event_delay,
                "streams": len(self._readers),
                "streams_live": len(self._live),
            }
