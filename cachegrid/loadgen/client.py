"""The connections of one worker process, after redis-benchmark's ``client``.

A ``Client`` is one non-blocking connection: its socket, the requests it has
in flight, the bytes it has read and not yet parsed, the bytes the socket did
not take yet, and the two handlers the worker's selector loop calls:

- ``write_handler``: the socket can take more; send what it did not take before
  (rare with small requests, which fit in the socket's buffer at once).
- ``read_handler``: bytes arrived; take every complete response off the front,
  record its latency and status, and send as many new requests as were
  answered, so that ``pipeline`` stay in flight (HTTP/1.1 pipelining; depth 1
  is plain keep-alive, like wrk). Responses come back in order, so the send
  times of the requests in flight are a FIFO.

What the connections share is a ``Load``: the selector, the request budget,
the deadline, the counters and the histogram. A connection that breaks counts
its requests in flight as errors and is replaced once, while there is work;
one that cannot be replaced leaves its slot closed.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections import Counter, deque
from collections.abc import Callable

from .plan import Plan, Target
from .results import EXACT_US, bucket
from .wire import Sent, closes, response_length

CONNECT_TIMEOUT = 5.0
RECV_SIZE = 65536
READ = selectors.EVENT_READ
READ_WRITE = selectors.EVENT_READ | selectors.EVENT_WRITE


def open_socket(target: Target, timeout: float = CONNECT_TIMEOUT) -> socket.socket:
    sock = socket.create_connection((target.host, target.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


def error_kind(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        return "connection reset"
    if isinstance(error, (BrokenPipeError, ConnectionAbortedError)):
        return "connection closed"
    if isinstance(error, (TimeoutError, socket.timeout)):
        return "timeout"
    return f"connection error ({type(error).__name__})"


class Load:
    """What one worker's connections share. ``remaining`` is the request
    budget (-1: none, only the deadline ``stop_at``, on the perf_counter
    clock); ``sending`` turns false once the budget, the deadline or the stop
    flag says so."""

    __slots__ = (
        "alive",
        "clients",
        "done",
        "errors",
        "gets",
        "histogram",
        "in_flight",
        "keys",
        "last_answer",
        "max_us",
        "next_request",
        "pipeline",
        "receive",
        "remaining",
        "selector",
        "sending",
        "sets",
        "stop_at",
        "target",
        "view",
    )

    def __init__(
        self, target: Target, plan: Plan, budget: int | None, next_request: Callable[[float], tuple[bytes, Sent]]
    ) -> None:
        self.target = target
        self.pipeline = plan.pipeline
        self.next_request = next_request
        self.selector = selectors.DefaultSelector()
        self.clients: list[Client] = []  # every connection opened, the closed ones included
        self.alive = 0
        self.remaining = budget if budget is not None else -1
        self.stop_at: float | None = None
        self.sending = True
        self.in_flight = 0
        self.done = self.gets = self.sets = self.keys = self.max_us = 0
        self.errors: Counter[str] = Counter()
        self.histogram: Counter[int] = Counter()
        self.last_answer = 0.0
        # One receive buffer for every connection: recv() would allocate one per
        # call, and one above glibc's mmap threshold (128 KiB) costs three more
        # syscalls each time.
        self.receive = bytearray(RECV_SIZE)
        self.view = memoryview(self.receive)

    def open(self) -> Client:
        """A new connection, registered for reading; OSError when it cannot connect."""
        client = Client(self, open_socket(self.target))
        self.clients.append(client)
        self.alive += 1
        self.selector.register(client.sock, READ, client)
        return client

    def replace(self) -> None:
        """A new connection in place of a closed one, while there is work; if
        the server cannot be reached, the slot stays closed."""
        if (
            not self.sending
            or self.remaining == 0
            or (self.stop_at is not None and time.perf_counter() >= self.stop_at)
        ):
            return
        try:
            client = self.open()
        except OSError as error:
            # One request could not be sent: an error, out of the budget.
            self.errors[error_kind(error)] += 1
            self.done += 1
            if self.remaining > 0:
                self.remaining -= 1
            return
        client.issue(self.pipeline, time.perf_counter())

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.selector.close()


class Client:
    __slots__ = ("buffer", "closing", "dead", "load", "need", "pending", "sent", "sock")

    def __init__(self, load: Load, sock: socket.socket) -> None:
        self.load = load
        self.sock = sock
        self.sent: deque[Sent] = deque()  # the requests in flight, oldest first
        self.buffer = b""  # bytes read and not parsed yet: the start of a response
        self.need = -1  # the whole length of the response being read, once its head is parsed
        self.pending = b""  # bytes the socket did not take yet
        self.closing = False  # the server said Connection: close
        self.dead = False

    def issue(self, count: int, now: float) -> int:
        """Send up to ``count`` new requests (fewer when the budget runs out);
        the number sent."""
        load = self.load
        remaining = load.remaining
        if remaining >= 0:
            count = min(count, remaining)
            load.remaining = remaining - count
        if count <= 0:
            return 0
        next_request, sent = load.next_request, self.sent
        if count == 1:
            data, record = next_request(now)
            sent.append(record)
        else:
            chunks = []
            for _ in range(count):
                chunk, record = next_request(now)
                chunks.append(chunk)
                sent.append(record)
            data = b"".join(chunks)
        load.in_flight += count
        self.send(data)
        return count

    def send(self, data: bytes) -> None:
        if self.pending:  # keep the order: behind what is already waiting
            self.pending += data
            return
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as error:
            self.broken(error_kind(error))
            return
        if sent < len(data):
            self.pending = data[sent:]
            self.load.selector.modify(self.sock, READ_WRITE, self)

    def write_handler(self) -> None:
        """The socket can take more: send what it did not take before."""
        data, self.pending = self.pending, b""
        self.load.selector.modify(self.sock, READ, self)
        self.send(data)

    def read_handler(self, now: float) -> None:
        """Bytes arrived (``now``, on the perf_counter clock): record every
        complete response, then send as many new requests."""
        load = self.load
        try:
            got = self.sock.recv_into(load.receive)
        except BlockingIOError:
            return
        except OSError as error:
            self.broken(error_kind(error))
            return
        if not got:  # the server closed the connection
            self.broken("connection closed")
            return
        load.last_answer = now
        chunk = load.view[:got].tobytes()
        buffer = self.buffer + chunk if self.buffer else chunk
        need = self.need
        sent = self.sent
        histogram = load.histogram
        max_us = load.max_us
        # Counted here and added to the load once per read, not once per response.
        answered = gets = sets = keys = 0
        while True:
            if need < 0:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = buffer[:end]
                try:
                    need = response_length(head, end)
                except ValueError:  # not HTTP, or not framed by Content-Length: give up this connection
                    buffer = b""
                    self.broken("bad response")
                    break
                if closes(head):
                    self.closing = True
            if len(buffer) < need:
                break
            status = buffer[9:12]
            buffer = buffer[need:]
            need = -1
            sent_at, nkeys, is_get = sent.popleft()
            answered += 1
            us = int((now - sent_at) * 1e6)
            histogram[us if us < EXACT_US else bucket(us)] += 1
            if us > max_us:
                max_us = us
            if status[0] == 50:  # b"2"
                if is_get:
                    gets += 1
                else:
                    sets += 1
                keys += nkeys
            else:
                load.errors["HTTP " + status.decode("ascii", "replace")] += 1
        load.in_flight -= answered
        load.done += answered
        load.gets += gets
        load.sets += sets
        load.keys += keys
        load.max_us = max_us
        if self.dead:
            return
        self.buffer = buffer
        self.need = need
        if self.closing:
            if not sent:  # everything answered: close and open a new one
                self.close()
                load.replace()
            return
        if answered and load.sending:
            if load.stop_at is not None and now >= load.stop_at:
                load.sending = False
            else:
                self.issue(answered, now)

    def lose(self, kind: str) -> None:
        """The requests in flight will get no answer: count them as errors of ``kind``."""
        lost = len(self.sent)
        if lost:
            load = self.load
            load.errors[kind] += lost
            load.in_flight -= lost
            load.done += lost
            self.sent.clear()

    def broken(self, kind: str) -> None:
        """The connection broke (or the server closed it): its requests in
        flight are errors of ``kind``; a new connection takes its place."""
        self.lose(kind)
        self.close()
        self.load.replace()

    def close(self) -> None:
        if self.dead:
            return
        self.load.alive -= 1
        try:
            self.load.selector.unregister(self.sock)
        except (KeyError, ValueError):
            pass
        self.sock.close()
        self.dead = True
