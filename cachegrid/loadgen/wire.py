"""What goes over the wire: the requests as bytes, and the little of a
response the load generator reads.

Requests are built from bytes templates made once per worker: the GET of each
key of a small keyspace is built in advance (a list lookup per request), every
other request is one ``%`` formatting of a template. Nothing goes through an
HTTP library.

The server frames every response with Content-Length, so a response is
complete when ``\\r\\n\\r\\n`` and that many body bytes have arrived. Only the
status code, Content-Length and a ``Connection: close`` are read; the body is
skipped.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from .plan import Plan, Target

PREBUILT_KEYS = 1 << 16  # up to this keyspace, every single-key GET is built in advance

# What the connection keeps of each request in flight: (send time, keys, is a get).
Sent = tuple[float, int, bool]


def value_json(size: int) -> bytes:
    """The JSON string value: ``size`` characters between the quotes."""
    return b'"' + b"x" * size + b'"'


class Requests:
    """Builds the bytes of each kind of request from templates made once."""

    def __init__(self, target: Target, plan: Plan) -> None:
        host = f"Host: {target.url.removeprefix('http://')}\r\n"
        auth = f"Authorization: Bearer {target.token}\r\n" if target.token else ""
        common = (host + auth).encode()
        self.keyspace = plan.keyspace
        self.batch = plan.batch
        self.value = value_json(plan.value_size)
        # The key prefix is of characters that need no escaping in a URL path,
        # in JSON or in a %-template (Plan checks it: plan.check_prefix).
        prefix = self.prefix = plan.prefix.encode()
        self.get_head = b"GET /cache/" + prefix + b"%d HTTP/1.1\r\n" + common + b"\r\n"
        self.set_head = (
            b"PUT /cache/"
            + prefix
            + b"%d HTTP/1.1\r\n"
            + common
            + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        )
        self.post_head = (
            b"POST /cache/batch/%s HTTP/1.1\r\n"
            + common
            + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        )
        self.gets = (
            [self.get_head % key for key in range(plan.keyspace)]
            if plan.batch == 0 and plan.keyspace <= PREBUILT_KEYS
            else None
        )

    def get(self, key: int) -> bytes:
        if self.gets is not None:
            return self.gets[key]
        return self.get_head % key

    def set(self, key: int) -> bytes:
        return self.set_head % (key, len(self.value)) + self.value

    def batch_keys(self, first: int) -> list[int]:
        """``batch`` distinct keys: a window of the keyspace from ``first``,
        wrapping around (distinct, so every key counts once)."""
        return [(first + i) % self.keyspace for i in range(self.batch)]

    def batch_get(self, first: int) -> bytes:
        body = b'{"keys":["' + b'","'.join(self.prefix + b"%d" % k for k in self.batch_keys(first)) + b'"]}'
        return self.post_head % (b"get", len(body)) + body

    def batch_set(self, first: int) -> bytes:
        pairs = b",".join(b'"' + self.prefix + b'%d":' % k + self.value for k in self.batch_keys(first))
        body = b'{"items":{' + pairs + b"}}"
        return self.post_head % (b"set", len(body)) + body


def request_mix(build: Requests, plan: Plan, rng: random.Random) -> Callable[[float], tuple[bytes, Sent]]:
    """``next_request(now)``: the bytes of the plan's next request (a GET with
    probability ``get_share``, of a uniformly drawn key) and what to keep of it
    while it is in flight."""
    # A closure over locals: this runs once per request, the hottest call there is.
    rand = rng.random
    keyspace, get_share = plan.keyspace, plan.get_share
    keys_per_request = plan.batch or 1
    get_one: Callable[[int], bytes] = build.batch_get if plan.batch else build.get
    set_one: Callable[[int], bytes] = build.batch_set if plan.batch else build.set

    def next_request(now: float) -> tuple[bytes, Sent]:
        is_get = rand() < get_share
        key = int(rand() * keyspace)
        return (get_one(key) if is_get else set_one(key)), (now, keys_per_request, is_get)

    return next_request


def response_length(head: bytes, end: int) -> int:
    """The length of a whole response whose head is ``head`` (its first
    ``end`` bytes, up to the blank line): head, blank line and body.
    ValueError when it is not HTTP/1.x framed by Content-Length."""
    at = head.find(b"ontent-length:")  # the usual spelling first: no lower() of every head
    if at < 0:
        at = head.lower().find(b"content-length:") + 1
    line_end = head.find(b"\r", at)
    if at <= 0 or not head.startswith(b"HTTP/1."):
        raise ValueError("not an HTTP/1.x response framed by Content-Length")
    return end + 4 + int(head[at + 14 : line_end if line_end > 0 else len(head)])


def closes(head: bytes) -> bool:
    """Whether the server says it closes the connection after this response."""
    # The cheap test first: lower() only when "lose" is there at all.
    return b"lose" in head and b"connection: close" in head.lower()
