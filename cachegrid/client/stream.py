"""The near cache's stream readers: one daemon thread per node following its
``GET /events`` (docs/events.md), with a blocking socket.

Threads with blocking sockets serve both clients alike: the sync client has
no event loop to run a reader on, and the asyncio client's loop must not
depend on a reader being scheduled (a busy or blocked loop would delay
invalidations while local hits go on being served). A reader touches the
near cache only through its callbacks, which take the cache's lock briefly.

How one reader works:

- It connects, sends ``GET /events`` (with the client's headers: auth) and
  never ``Last-Event-ID``: every connection starts with a ``reset`` event,
  and only once that event is read does the node count as *live* (the
  server subscribed the stream before it queued the reset, so every change
  after it will be seen). A near cache reserves reads only for live nodes.
- It reads the body (chunked or not), splits it into SSE events, and hands
  each one to ``on_event``. Heartbeat comments need no handling: any byte
  that arrives restarts the socket's read timeout.
- The stream is *lost* on a connection error, EOF, a read timeout (no byte,
  not even a heartbeat, for ``3 * heartbeat + 1`` seconds), a ``reset``
  after the first event, an ``id:`` of another epoch, or a gap in the ids
  (an unfiltered stream gets every id). Then ``on_lost`` runs at once (the
  cache drops what it read from that node and stops reserving for it) and
  the reader reconnects after a back-off that doubles from 50 ms up to 2 s
  (with jitter), back to 50 ms after a stream that went live.

The server's heartbeat interval is not announced on the stream, so the
reader takes it as a parameter: 5 s, the server's default
(``events_heartbeat``); a server configured slower needs the same value
given to ``NearCache(heartbeat=...)``, or its quiet streams are cut and
reopened (which is safe, only wasteful).

Only ``http://`` nodes are followed: for an ``https://`` node no reader is
started, the node never becomes live, and reads from it pass through the
near cache uncached.
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from .wire import Origin

MIN_BACKOFF = 0.05
MAX_BACKOFF = 2.0
DEFAULT_HEARTBEAT = 5.0
MAX_LINE = 65536  # a status line, header line, chunk size line or SSE line longer than this: broken stream

EventCallback = Callable[[str, str, "dict[str, Any]"], None]  # node, kind, data


class StreamLost(Exception):
    """The stream can no longer be trusted: reconnect."""


class LineReader:
    """Buffered reads from a blocking socket: lines and exact counts."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise StreamLost("the server closed the stream")
        self.buffer += chunk

    def line(self) -> bytes:
        """One line without its CRLF or LF."""
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 1]
                return line.rstrip(b"\r")
            if len(self.buffer) > MAX_LINE:
                raise StreamLost("a line too long")
            self._fill()

    def exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            self._fill()
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    def some(self) -> bytes:
        """Whatever is buffered, or the next bytes to arrive."""
        if not self.buffer:
            self._fill()
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


class SSEParser:
    """Bytes in, complete events out: ``(id, event, data)``; comments skipped."""

    def __init__(self) -> None:
        self.pending = b""
        self.fields: dict[bytes, bytes] = {}

    def feed(self, data: bytes) -> list[tuple[str, str, bytes]]:
        events = []
        lines = (self.pending + data).split(b"\n")
        self.pending = lines.pop()
        if len(self.pending) > MAX_LINE:
            raise StreamLost("an event line too long")
        for raw in lines:
            line = raw.rstrip(b"\r")
            if not line:
                if self.fields:
                    fields, self.fields = self.fields, {}
                    events.append(
                        (
                            fields.get(b"id", b"").decode(),
                            fields.get(b"event", b"message").decode(),
                            fields.get(b"data", b""),
                        )
                    )
                continue
            if line.startswith(b":"):
                continue  # a heartbeat
            name, _, value = line.partition(b":")
            self.fields[name] = value[1:] if value.startswith(b" ") else value
        return events


class StreamReader:
    """One node's reader thread (see the module docstring)."""

    def __init__(
        self,
        node: str,
        headers: Mapping[str, str],
        connect_timeout: float,
        heartbeat: float,
        on_event: EventCallback,
        on_live: Callable[[str, StreamReader], None],
        on_lost: Callable[[str, StreamReader], None],
    ) -> None:
        self.node = node
        self.origin = Origin(node, headers)  # ValueError for what is no plain http:// base URL
        self.request = self.origin.request("GET", "/events", headers={"Accept": "text/event-stream"})
        self.connect_timeout = connect_timeout
        self.read_timeout = 3 * heartbeat + 1
        self.on_event, self.on_live, self.on_lost = on_event, on_live, on_lost
        self.stopped = threading.Event()
        self.sock: socket.socket | None = None
        self.connections = 0
        self.thread = threading.Thread(target=self._run, name=f"cachegrid-near-{node}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        sock = self.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked recv
            except OSError:
                pass

    def join(self, timeout: float) -> None:
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _run(self) -> None:
        backoff = MIN_BACKOFF
        while not self.stopped.is_set():
            went_live = False
            try:
                went_live = self._follow()
            except (OSError, StreamLost, ValueError, UnicodeDecodeError):
                pass
            finally:
                self._close()
                self.on_lost(self.node, self)
            if went_live:
                backoff = MIN_BACKOFF
            self.stopped.wait(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()

    def _follow(self) -> bool:
        """One connection, read until it is lost (raises); True when it went live."""
        sock = socket.create_connection((self.origin.host, self.origin.port), timeout=self.connect_timeout)
        self.sock = sock
        if self.stopped.is_set():  # stop() ran before the socket was there to shut down
            return False
        self.connections += 1
        sock.settimeout(self.read_timeout)
        sock.sendall(self.request)
        reader = LineReader(sock)
        status = reader.line().split(b" ", 2)
        if len(status) < 2 or status[1] != b"200":
            raise StreamLost(f"GET /events answered {b' '.join(status[1:])!r}")
        chunked = False
        while header := reader.line():
            name, _, value = header.partition(b":")
            if name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        parser = SSEParser()
        follower = Follower(self.node, self.on_event, lambda node: self.on_live(node, self))
        while not self.stopped.is_set():
            if chunked:
                size = int(reader.line().split(b";", 1)[0], 16)
                if size == 0:
                    raise StreamLost("the stream ended")
                data = reader.exactly(size)
                reader.exactly(2)
            else:
                data = reader.some()
            for event in parser.feed(data):
                follower.take(*event)
        return follower.live


class Follower:
    """Checks one connection's events and hands them on: the first must be
    a ``reset`` (then the node is live), the rest of the same epoch with
    ids rising by one; anything else is a lost stream."""

    def __init__(self, node: str, on_event: EventCallback, on_live: Callable[[str], None]) -> None:
        self.node = node
        self.on_event, self.on_live = on_event, on_live
        self.live = False
        self.epoch = ""
        self.seq = 0

    def take(self, event_id: str, kind: str, data: bytes) -> None:
        epoch, _, seq_text = event_id.partition("-")
        seq = int(seq_text)
        if not self.live:
            if kind != "reset":
                raise StreamLost(f"the stream began with {kind!r}, not reset")
            self.epoch, self.seq, self.live = epoch, seq, True
            self.on_event(self.node, kind, {"key": None})
            self.on_live(self.node)
            return
        if kind == "reset":
            raise StreamLost("the server reset the stream")
        if epoch != self.epoch:
            raise StreamLost("the server restarted")
        if seq != self.seq + 1:
            raise StreamLost(f"events lost between {self.seq} and {seq}")
        self.seq = seq
        parsed = orjson.loads(data)
        if not isinstance(parsed, dict):
            raise StreamLost("event data is not an object")
        self.on_event(self.node, kind, parsed)
