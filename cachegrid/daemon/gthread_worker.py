"""gunicorn's gthread worker, with request heads read by the event loop.

gthread hands a connection to a thread as soon as it is readable, and that
thread then blocks until the whole request head has arrived: a client that
sends its headers a byte a second holds a thread for as long as it likes, and
``threads`` such clients (4 by default) stop the server answering anyone.

This worker reads the head in its main loop instead, without blocking, as an
event loop does: a connection goes to a thread only once its head is
complete (the blank line has arrived, or more than ``HEAD_LIMIT`` bytes that
the parser will refuse with 431). A head that is not complete within
``header_timeout`` seconds of the first byte (of the connection, or of the
next request on a kept-alive one) is answered 408 and closed. The bytes read
are handed to gunicorn's own parser, so parsing, limits and errors stay
gunicorn's.

While reading, it also refuses a transfer coding other than ``chunked``
alone (gunicorn accepts ``gzip, chunked`` and hands on the body still
coded): 501, as CacheGrid's meinheld build answers.

What remains: a client that sends a complete head and then its *body*
slowly still holds a thread while the body arrives (bounded by gunicorn's
per-read socket behaviour, not by a deadline); ``threads`` such clients at
once stall the server. meinheld, the default worker, has no such limit.
"""

from __future__ import annotations

import errno
import json
import re
import selectors
import socket
import time
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn  # the connection type gthread's threads expect
from gunicorn.workers.gthread import ThreadWorker as GunicornThreadWorker

from . import events

HEAD_LIMIT = 64 * 1024  # past this the parser refuses the head itself (431)
READ_SIZE = 16 * 1024
_END_OF_HEAD = b"\r\n\r\n"
_TRANSFER_ENCODING = re.compile(rb"\r\ntransfer-encoding[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)


def error_response(status: str, error: str, message: str) -> bytes:
    """A complete JSON error response that closes the connection."""
    body = json.dumps({"error": error, "message": message}).encode()
    return (
        f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


TIMEOUT_RESPONSE = error_response("408 Request Timeout", "request_timeout", "the request head did not arrive in time")
CODING_RESPONSE = error_response(
    "501 Not Implemented", "unsupported_transfer_coding", "only Transfer-Encoding: chunked is served"
)


def unsupported_coding(head: bytes) -> bool:
    """Whether ``head`` names a transfer coding other than chunked alone."""
    codings = [match.group(1).strip().lower() for match in _TRANSFER_ENCODING.finditer(head)]
    return bool(codings) and codings != [b"chunked"]


class ThreadWorker(GunicornThreadWorker):
    header_timeout = 10.0  # set by the application before the worker starts

    def init_process(self) -> None:
        self.heads: dict[Any, bytearray] = {}
        super().init_process()

    # -- where gthread would hand a connection to a thread ----------------------

    def accept(self, listener: socket.socket) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())  # non-blocking
        self._read_head_of(conn)

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        """A kept-alive connection has its next request coming."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._read_head_of(conn)

    # -- reading heads -----------------------------------------------------------

    def _read_head_of(self, conn: Any) -> None:
        self.heads[conn] = bytearray()
        conn.timeout = time.monotonic() + self.header_timeout
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_head_readable, conn))

    def _forget(self, conn: Any) -> None:
        self.heads.pop(conn, None)
        try:
            self.pending_conns.remove(conn)
        except ValueError:
            pass
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass

    def _close(self, conn: Any, response: bytes | None = None) -> None:
        self._forget(conn)
        if response:
            try:
                conn.sock.send(response)
            except OSError:
                pass
        self.nr_conns -= 1
        conn.close()

    def _on_head_readable(self, conn: Any, client: Any) -> None:
        head = self.heads.get(conn)
        if head is None:
            return
        try:
            data = conn.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data and not head:
            self._close(conn)
            return
        head += data
        # Complete: the blank line, or a bare-LF one (the parser refuses it:
        # 400), or the client is done sending (the parser answers what it
        # can), or too long (the parser refuses it: 431).
        end = head.find(_END_OF_HEAD)
        if end < 0 and b"\n\n" not in head and data and len(head) <= HEAD_LIMIT:
            return
        if end >= 0 and unsupported_coding(bytes(head[: end + 2])):
            self._close(conn, CODING_RESPONSE)
            return
        self._forget(conn)
        conn.init()  # the parser; blocking from here on, in the thread
        conn.parser.unreader.unread(bytes(head))
        conn.data_ready = True
        self.enqueue_req(conn)

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM: graceful, as gthread's own, but event streams (which
        never finish) are ended at once instead of awaited."""
        super().handle_exit(sig, frame)
        events.close_all()

    def murder_pending(self) -> None:
        """Heads that did not arrive in time: 408 and close (gthread's own
        pending connections are ours now)."""
        now = time.monotonic()
        while self.pending_conns and self.pending_conns[0].timeout <= now:
            conn = self.pending_conns[0]
            started = bool(self.heads.get(conn))
            self._close(conn, TIMEOUT_RESPONSE if started else None)
