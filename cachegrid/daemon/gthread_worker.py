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

While reading, it also refuses what gunicorn's parser would let through
and CacheGrid's meinheld build refuses, so that both workers answer alike
(tests/integration/test_differential.py holds them to it): a transfer coding
other than ``chunked`` alone (gunicorn accepts ``gzip, chunked`` and hands on
the body still coded): 501; a method that meinheld does not serve (gunicorn
takes any token): 400; an HTTP version other than 1.0 and 1.1: 505
(gunicorn serves 1.2 and answers 400 to 2.0); a Content-Length past 64 bits:
400. Chunk sizes past 64 bits are refused too (gunicorn waited for the data
of such a chunk, and a client that did not close got no answer at all). An
HTTP/1.1 request without Host is refused (400, RFC 9112 section 3.2) once
gunicorn has parsed its head, so that its parse errors come first, as in
meinheld.

A request's body is read whole, in its thread, before the application runs,
as meinheld reads it: a body whose framing is broken (a bad chunk, a body
cut short) or that is over ``body_limit`` is refused by the worker with the
same answer as meinheld's (400 ``bad_request``, 413), not by the application
as it reads, and a body the application never reads (a GET with a chunked
body) is consumed and checked all the same, so that none of its bytes is
ever read as the next request.

Every answer the worker writes itself, gunicorn's parser errors included
(gunicorn writes HTML pages), is CacheGrid's JSON error (worker_errors.py).

A body is read in a thread, each read waiting at most ``body_timeout``
seconds for data (the application answers 408 then, body.py). What remains:
a client that sends its body slowly, but faster than that, still holds a
thread while the body arrives; ``threads`` such clients at once stall the
server. meinheld, the default worker, has no such limit.
"""

from __future__ import annotations

import errno
import io
import re
import select
import selectors
import socket
import time
from functools import partial
from typing import Any

from gunicorn import util
from gunicorn.http.body import ChunkedReader
from gunicorn.http.errors import InvalidChunkSize
from gunicorn.workers.gthread import TConn  # the connection type gthread's threads expect
from gunicorn.workers.gthread import ThreadWorker as GunicornThreadWorker

from . import events, worker_errors

HEAD_LIMIT = 64 * 1024  # past this the parser refuses the head itself (431)
READ_SIZE = 16 * 1024
_END_OF_HEAD = b"\r\n\r\n"
_TRANSFER_ENCODING = re.compile(rb"\r\ntransfer-encoding[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:([^\r\n]*)", re.IGNORECASE)
_METHOD = re.compile(rb"(?:\r\n)*([^ \r\n]*)")
# The methods meinheld serves (its parser reads a few more, which patch
# 0029 refuses): any other is 400 there, and so here.
METHODS = frozenset(
    b"DELETE GET HEAD POST PUT PATCH CONNECT OPTIONS TRACE COPY LOCK MKCOL MOVE PROPFIND PROPPATCH UNLOCK"
    b" REPORT MKACTIVITY CHECKOUT MERGE".split()
)
# A target begins as a path, "*" or a URL does (meinheld's parser refuses any other start).
_REQUEST_LINE = re.compile(rb"[A-Z-]+ (?:[/*]|[A-Za-z][A-Za-z0-9+.-]*://)[\x21-\x7e]* HTTP/[0-9]\.[0-9]")
_FIELD_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\x00-\x08\x0a-\x1f\x7f]*")
FIELD_LIMIT = 8190  # gunicorn's limit_request_line and limit_request_field_size, and meinheld's
FIELD_COUNT_LIMIT = 100  # gunicorn's limit_request_fields, and meinheld's
_VERSION = re.compile(rb"(?:\r\n)*[^ \r\n]+ [^ \r\n]+ HTTP/([0-9])\.([0-9])\r\n")
LINGER_SECONDS = 2.0
LINGER_MAX_SECONDS = 30.0
LARGEST = 2**64 - 1  # past this, a length or chunk size is refused as meinheld's parser does

MiB = 1024 * 1024
TIMEOUT_RESPONSE = worker_errors.answer(408)
CODING_RESPONSE = worker_errors.answer(501)


def unsupported_coding(head: bytes) -> bool:
    """Whether ``head`` names a transfer coding other than chunked alone."""
    codings = [match.group(1).strip().lower() for match in _TRANSFER_ENCODING.finditer(head)]
    return bool(codings) and codings != [b"chunked"]


def well_formed(head: bytes) -> bool:
    """Whether ``head`` (ending with its last CRLF) has the syntax of a head
    within the parser's limits: meinheld answers 505 and 501 only for such
    heads (once the head is parsed), so a head wrong in two ways gets the
    parser's refusal under both workers."""
    lines = head.lstrip(b"\r\n").split(b"\r\n")[:-1]
    if not lines or len(lines) > FIELD_COUNT_LIMIT + 1 or not _REQUEST_LINE.fullmatch(lines[0]):
        return False
    return len(lines[0]) <= FIELD_LIMIT and all(
        len(line) <= FIELD_LIMIT and _FIELD_LINE.fullmatch(line) for line in lines[1:]
    )


def refusal(head: bytes) -> int | None:
    """The status this worker answers a complete ``head`` with itself, or
    None to hand it to gunicorn's parser."""
    method = _METHOD.match(head)
    if method is None or method.group(1) not in METHODS:
        return 400  # gunicorn takes any token; meinheld only the methods it knows
    if not well_formed(head):
        return None  # the parser's 400 (or 414, 431) comes first, as in meinheld
    # In meinheld's order: what its parser refuses as it reads (a length
    # that is not a decimal within 64 bits; a chunked line beside a length),
    # then the version, then the framing (HTTP/1.0 with a transfer coding,
    # RFC 9112 section 6.1, before the coding itself).
    lengths = [match.group(1).strip(b" \t") for match in _CONTENT_LENGTH.finditer(head)]
    if any(not length.isdigit() or int(length) > LARGEST for length in lengths):
        return 400
    codings = [match.group(1).strip().lower() for match in _TRANSFER_ENCODING.finditer(head)]
    if b"chunked" in codings and lengths:
        return 400
    version = _VERSION.match(head)
    if version and version.groups() not in ((b"1", b"0"), (b"1", b"1")):
        return 505
    if version and version.groups() == (b"1", b"0") and codings:
        return 400
    if unsupported_coding(head):
        return 501
    return None


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error``, in CacheGrid's JSON shape."""
    util.write_nonblock(sock, worker_errors.answer(status_int))


_parse_chunk_size = ChunkedReader.parse_chunk_size


def parse_chunk_size(self: ChunkedReader, unreader: Any, data: Any = None) -> Any:
    """gunicorn's, refusing a size past 64 bits before waiting for its data."""
    size, rest = _parse_chunk_size(self, unreader, data)
    if size > LARGEST:
        raise InvalidChunkSize(b"a chunk size past 64 bits")
    return size, rest


def closing_when_asked(app: Any) -> Any:
    """``app``, with a response that says ``Connection: close`` (a body
    whose framing broke or stopped arriving: where the next request starts
    is unknown) or refuses a body as too large (its body was never read)
    closing the connection: gunicorn drops the application's Connection
    header and would keep it alive."""

    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if status.startswith("413") or any(
                name.lower() == "connection" and value.lower() == "close" for name, value in headers
            ):
                response = getattr(start_response, "__self__", None)  # gunicorn's Response
                if response is not None:
                    response.force_close()
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wrapped


class _TooLarge(Exception):
    pass


def _whole_body(stream: Any, limit: int, length: int | None) -> bytes:
    """All of the body in ``stream``: _TooLarge past ``limit`` bytes, and
    ValueError when it ends before its ``length``."""
    parts = []
    size = 0
    while chunk := stream.read(READ_SIZE * 4):
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        parts.append(chunk)
    if length is not None and size < length:
        raise ValueError("the body ended before its length")
    return b"".join(parts)


def _refused(start_response: Any, status: int) -> list[bytes]:
    line, headers, body = worker_errors.parts(status)
    start_response(line, headers)
    return [body]


def bodies_read_first(app: Any, limit: int) -> Any:
    """``app``, with the request body read whole before it runs (from a
    stream that then holds it in memory): a broken one is the worker's 400,
    one that stops arriving 408, one over ``limit`` 413, each closing the
    connection (closing_when_asked)."""

    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        chunked = "HTTP_TRANSFER_ENCODING" in environ  # chunked alone: any other coding was refused
        length = int(environ.get("CONTENT_LENGTH") or 0)  # gunicorn checked it is digits
        if not chunked and not length:
            return app(environ, start_response)
        if length > limit:
            return _refused(start_response, 413)
        try:
            body = _whole_body(environ["wsgi.input"], limit, None if chunked else length)
        except _TooLarge:
            return _refused(start_response, 413)
        except TimeoutError:
            return _refused(start_response, 408)
        except Exception:  # gunicorn's framing errors, each a class of its own (a body cut short: an OSError)
            return _refused(start_response, 400)
        environ["wsgi.input"] = io.BytesIO(body)
        return app(environ, start_response)

    return wrapped


def lacks_host(req: Any) -> bool:
    """Whether gunicorn's parsed ``req`` is HTTP/1.1 without a Host header
    (two Host headers gunicorn refuses itself)."""
    return tuple(req.version) == (1, 1) and not any(name == "HOST" for name, _ in req.headers)


class TimedReads:
    """A connection's socket for gunicorn's parser, whose reads wait at most
    ``seconds`` for data (TimeoutError then): a body a client stops sending
    holds its thread no longer than that."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self.sock = sock
        self.seconds = seconds

    def recv(self, size: int) -> bytes:
        if not _readable(self.sock, self.seconds):
            raise TimeoutError(f"no data for {self.seconds:g} s")
        return self.sock.recv(size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def _readable(sock: socket.socket, seconds: float) -> bool:
    poller = select.poll()  # no descriptor limit, and no system call to make one
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(seconds * 1000))


class ThreadWorker(GunicornThreadWorker):
    header_timeout = 10.0  # set by the application before the worker starts
    body_timeout = 10.0  # likewise
    body_limit = 16 * MiB  # likewise: meinheld's, the largest body read before the application runs

    def init_process(self) -> None:
        self.heads: dict[Any, bytearray] = {}
        self.lingering: dict[socket.socket, tuple[float, float]] = {}  # socket -> (deadline, idle deadline)
        # In this worker process only (gunicorn's master never runs this):
        # gunicorn's parser errors in our JSON shape, and its chunk sizes
        # bounded as meinheld's are.
        util.write_error = write_json_error
        ChunkedReader.parse_chunk_size = parse_chunk_size
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
        if head[:1] in (b"\r", b"\n"):
            # Empty lines before a request line are ignored (RFC 9112 section
            # 2.2), any number of them, as meinheld's parser does.
            del head[: len(head) - len(head.lstrip(b"\r\n"))]
            if not head:
                if not data:
                    self._close(conn)
                return
        # Complete: the blank line, or a bare-LF one (the parser refuses it:
        # 400), or too long (the parser refuses it: 431); or the client is
        # done sending, which cuts the head short (400).
        end = head.find(_END_OF_HEAD)
        if end < 0 and b"\n\n" not in head and data and len(head) <= HEAD_LIMIT:
            return
        if not data and end < 0 and b"\n\n" not in head:
            # The client stopped sending halfway through a head: 400, as
            # meinheld answers (gunicorn closed without a word).
            self._close(conn, worker_errors.answer(400))
            return
        status = refusal(bytes(head[: end + 2])) if end >= 0 else None
        if status is not None:
            self._close(conn, worker_errors.answer(status))
            return
        self._forget(conn)
        conn.init()  # the parser; blocking from here on, in the thread
        unreader = conn.parser.unreader
        if not isinstance(unreader.sock, TimedReads):
            unreader.sock = TimedReads(unreader.sock, self.body_timeout)
        unreader.unread(bytes(head))
        conn.data_ready = True
        self.enqueue_req(conn)

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM: graceful, as gthread's own, but event streams (which
        never finish) are ended at once instead of awaited."""
        super().handle_exit(sig, frame)
        events.close_all()

    def murder_pending(self) -> None:
        """Heads that did not arrive in time: 408 and close (gthread's own
        pending connections are ours now); lingering connections past their time."""
        now = time.monotonic()
        while self.pending_conns and self.pending_conns[0].timeout <= now:
            conn = self.pending_conns[0]
            started = bool(self.heads.get(conn))
            self._close(conn, TIMEOUT_RESPONSE if started else None)
        for sock, (deadline, idle) in list(self.lingering.items()):
            if min(deadline, idle) <= now:
                self._end_linger(sock)

    # -- closing without destroying the answer ----------------------------------

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi: Any = closing_when_asked(bodies_read_first(self.wsgi, self.body_limit))

    def handle_request(self, req: Any, conn: Any) -> bool:
        """gthread's, but an HTTP/1.1 request without Host is refused (400)
        before the application, and the connection closed."""
        if lacks_host(req):
            try:
                conn.sock.sendall(worker_errors.answer(400))
            except OSError:
                pass
            return False
        return bool(super().handle_request(req, conn))

    def finish_request(self, conn: Any, fs: Any) -> None:
        """gthread's, but a connection it closes lingers (below) instead."""
        if fs.cancelled() or fs.exception() is not None or fs.result():
            super().finish_request(conn, fs)
            return
        self.nr_conns -= 1
        self._linger(conn.sock)

    def _linger(self, sock: socket.socket) -> None:
        """Close ``sock`` once the client has: shut the write side (the
        client sees the answer end), then read and drop what still comes,
        for up to LINGER_SECONDS without a byte (LINGER_MAX_SECONDS in all).
        A socket closed with unread data resets the connection, and the
        reset destroys the answer before a client still sending (a body
        over the limit) has read it; meinheld's patch 0015 does the same."""
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
            self.poller.register(sock, selectors.EVENT_READ, self._drain)
        except (OSError, ValueError, KeyError):
            sock.close()
            return
        now = time.monotonic()
        self.lingering[sock] = (now + LINGER_MAX_SECONDS, now + LINGER_SECONDS)

    def _drain(self, sock: socket.socket) -> None:
        for _ in range(16):  # per wake-up: a fast sender does not hog the loop
            try:
                if not sock.recv(READ_SIZE * 4):
                    break
            except (BlockingIOError, InterruptedError):
                deadline, _ = self.lingering[sock]
                self.lingering[sock] = (deadline, time.monotonic() + LINGER_SECONDS)
                return
            except OSError:
                break
        else:
            deadline, _ = self.lingering[sock]
            self.lingering[sock] = (deadline, time.monotonic() + LINGER_SECONDS)
            return
        self._end_linger(sock)

    def _end_linger(self, sock: socket.socket) -> None:
        self.lingering.pop(sock, None)
        try:
            self.poller.unregister(sock)
        except (KeyError, ValueError, OSError):
            pass
        sock.close()
