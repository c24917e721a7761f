"""The synchronous client's transport: keep-alive sockets, one request at a time each.

Per host, a ``Lane`` keeps idle connections on a stack; a call takes one
(or connects a new one), writes the request ``wire.Origin`` built, reads
with ``recv`` until the answer is whole (the common answer, whole in the
first read, is framed by ``wire.framed_head`` alone; any other goes through
a ``wire.ResponseParser``), and puts the connection back when the answer
allows it (``Lane.quick`` is the same exchange for the sync client's quick
path, sync.py: bytes already made, an idle connection or nothing sent).
Threads never share a connection, and the stack needs no lock:
``list.pop`` and ``list.append`` are atomic, a race past ``MAX_IDLE`` idle
connections keeps one or two more for a while, and a connection given back
while the lane closes is closed by the thread that gave it back. More
threads than ``MAX_IDLE`` open and close their own, as requests' pool does
past its size.

Failures are told apart as the plans need them (protocol.py):

* Connecting fails (refused, no such host, connect timeout): ``NotSent``
  (``ConnectTimedOut``).
* A connection taken from the stack may have been closed by the server
  while it was idle (its keep-alive timeout, a restart); then the answer is
  no byte at all. An idempotent request is simply sent once more, on a new
  connection: nothing is lost by trying, and the hot path pays no check. A
  request that is not idempotent must not be sent twice, so before it goes
  on a reused connection that connection is polled without waiting
  (readable means the server closed it: it sends nothing unasked) and a new
  one is made instead; in the remaining race (closed between that poll and
  the write) it is ``MaybeSent``, since the server may have applied it
  before closing.
* A timeout while waiting for the answer is ``TimedOut``; a connection
  reset or closed mid-answer, or bytes that are no HTTP answer, ``MaybeSent``.
  The connection is dropped in every such case.

The client's ``timeout`` bounds connecting and every wait for bytes, as
requests' single timeout did. On Linux the kernel enforces it on the
connected socket (``SO_RCVTIMEO``/``SO_SNDTIMEO``: a wait that runs out
fails with ``EAGAIN``), which spares the ``poll`` Python's own socket
timeout makes before every ``send`` and ``recv``; elsewhere Python's
socket timeout does it. Nagle's algorithm is
off: a request is written in one ``sendall`` and waits for its answer.

``https://`` hosts (and base URLs with user info) are not handled here:
``Transport`` sends them through a ``requests.Session`` as before, which
brings certificate bundles and proxies from the environment with it. It
verifies the certificate against ``verify`` (True: requests' bundle, or a
CA bundle's path; False only where the client was told so), and a TLS
failure is ``TLSError`` (``wire.tls_error``), raised past the retries: a
certificate that did not verify will not verify on the next try.

Compression (coding.py): an answer with ``Content-Encoding: gzip`` is
decoded before it is returned, within ``coding.MAX_INFLATED_SIZE`` (on the
requests path too: it streams the answer and reads a coded body as sent,
which requests would inflate without a bound), and a write of values (a value PUT, a batch
set) goes through ``Transport._upload``, which compresses a large one for a
node that said it reads gzip and learns that from the answer; a lane tells
it when its node may have restarted (a kept-alive connection found closed,
connecting failed), and the node must say it again.

After a ``fork()`` the child must not share the parent's sockets: a lane
that sees the fork count changed forgets its idle connections (leaving them
to the parent) and connects anew.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import sys
import threading
from collections.abc import Callable, Mapping

import requests
import urllib3

from .coding import Uploads, answer_of, is_upload, library_answer
from .protocol import Answer, Call, ConnectTimedOut, MaybeSent, NotSent, TimedOut, new_answer
from .wire import Origin, ProtocolError, ResponseParser, StaleConnection, broken_exchange, framed_head, tls_error

MAX_IDLE = 16
# Timeouts set on the socket for the kernel to keep (see the module docstring).
KERNEL_TIMEOUTS = sys.platform.startswith("linux")
RECV_SIZE = 65536

# Bumped in a child after each fork(): cheaper to compare than os.getpid() a call.
_forks = [0]
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))


def _nothing() -> None:
    pass


class Lane:
    """The keep-alive connections to one ``http://`` host."""

    def __init__(self, url: str, headers: Mapping[str, str], timeout: float) -> None:
        self.origin = Origin(url, headers)
        self.timeout = timeout
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()
        self._generation = _forks[0]
        self._closed = False
        # Called when the server may have restarted (a kept-alive connection
        # found closed, connecting failed): what it said of itself may be old.
        self.restarted: Callable[[], None] = _nothing

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.origin.host, self.origin.port), self.timeout)
        except TimeoutError as error:
            raise ConnectTimedOut(f"connecting to {self.origin.host}:{self.origin.port} timed out") from error
        except OSError as error:
            self.restarted()
            raise NotSent(f"connecting to {self.origin.host}:{self.origin.port}: {error}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if KERNEL_TIMEOUTS and self.timeout:
            seconds, fraction = divmod(self.timeout, 1.0)
            # At least 1 µs: a zero interval would mean no timeout at all.
            interval = struct.pack("ll", int(seconds), max(int(fraction * 1_000_000), 0 if seconds else 1))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, interval)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, interval)
            sock.settimeout(None)
        return sock

    def _take(self, check: bool) -> socket.socket | None:
        """An idle connection, or None; with ``check``, one the server has not closed."""
        if self._generation != _forks[0]:
            with self._lock:
                self._idle, self._generation = [], _forks[0]
        idle = self._idle
        while idle:
            try:
                sock = idle.pop()  # atomic: no lock (nor in _give_back) on the hot path
            except IndexError:  # another thread took the last one
                return None
            if not check or not select.select((sock,), (), (), 0)[0]:
                return sock
            sock.close()  # closed by the server (or a stray byte): either way unusable
        return None

    def _give_back(self, sock: socket.socket) -> None:
        idle = self._idle
        if len(idle) < MAX_IDLE and not self._closed and self._generation == _forks[0]:
            idle.append(sock)
            if self._closed:  # closed meanwhile: close() may have missed it
                sock.close()
            return
        sock.close()

    def send(self, call: Call) -> Answer:
        data = self.origin.request(call.method, call.path, call.params, call.body, call.headers)
        sock = self._take(check=not call.idempotent)
        if sock is not None:
            try:
                return self._exchange(sock, data, call.method == "HEAD")
            except StaleConnection as stale:
                self.restarted()
                if not call.idempotent:
                    raise MaybeSent(f"the kept-alive connection closed: {stale}") from None
        return self._exchange(self._connect(), data, call.method == "HEAD", fresh=True)

    def quick(self, data: bytes) -> Answer | None:
        """PERF: ``send``'s steps for the sync client's one-key hot path
        (sync.py, ``_quick_send``): ``data``, the bytes of an idempotent request, on
        an idle connection, and its answer. None when it was not sent: no
        idle connection, or the one taken had been closed by the server (the
        caller then sends it through ``send``, as ``send`` would send it again
        on a new connection). A failure once sent is ``_exchange``'s, as in ``send``."""
        if self._generation != _forks[0]:
            return None
        try:
            sock = self._idle.pop()
        except IndexError:
            return None
        try:
            return self._exchange(sock, data, False)
        except StaleConnection:
            self.restarted()
            return None

    def _exchange(self, sock: socket.socket, data: bytes, head: bool, fresh: bool = False) -> Answer:
        parser = None
        try:
            sock.sendall(data)
            got = sock.recv(RECV_SIZE)
            # PERF: the common answer, whole in one read, framed without a parser.
            end = got.find(b"\r\n\r\n")
            framed = None if end < 0 or head else framed_head(got[: end + 2].decode("latin-1"))
            if framed is None or len(got) - end - 4 != framed[1]:
                parser = ResponseParser(head)
                while not parser.feed(got):
                    got = sock.recv(RECV_SIZE)
        except (TimeoutError, BlockingIOError):  # BlockingIOError: a kernel timeout (EAGAIN)
            sock.close()
            raise TimedOut(f"no answer within {self.timeout} s") from None
        except (OSError, ProtocolError) as error:
            sock.close()
            raise broken_exchange(error, parser or ResponseParser(head), fresh) from None
        if parser is None and framed is not None:  # (framed whenever there is no parser)
            if framed[2]:
                self._give_back(sock)
            else:
                sock.close()
            return new_answer((framed[0], got[end + 4 :], framed[3]))  # no Content-Encoding: as read
        assert parser is not None
        if parser.keep_alive:
            self._give_back(sock)
        else:
            sock.close()
        return answer_of(parser.status, parser.body, parser.headers)

    def close(self) -> None:
        with self._lock:
            idle, self._idle, self._closed = self._idle, [], True
        for sock in idle:
            sock.close()


class Transport:
    """The lanes of a client's hosts (made on first use), and a requests
    session for the hosts a lane does not handle."""

    def __init__(
        self,
        headers: Mapping[str, str],
        timeout: float,
        verify: bool | str = True,
        uploads: Uploads | None = None,
    ) -> None:
        self.headers = dict(headers)
        self.uploads = uploads or Uploads()  # which hosts take compressed writes (coding.py)
        self.timeout = timeout
        self.verify = verify  # https: True (requests' CA bundle), a CA bundle's path, or False
        # The lane of each host used so far (None: through requests); read
        # directly by the sync client's quick path (sync.py).
        self.lanes: dict[str, Lane | None] = {}
        self._lock = threading.Lock()
        self._session: requests.Session | None = None

    def send(self, host: str, call: Call) -> Answer:
        try:
            lane = self.lanes[host]
        except KeyError:
            lane = self._lane(host)
        if call.body is not None and is_upload(call):
            return self._upload(host, lane, call)
        if lane is not None:
            return lane.send(call)
        return self._send_requests(host, call)

    def _upload(self, host: str, lane: Lane | None, call: Call) -> Answer:
        """A write of values: compressed when large and ``host`` takes it,
        and its answer read for whether it does (coding.py)."""
        sent = self.uploads.prepare(host, call)
        answer = lane.send(sent) if lane is not None else self._send_requests(host, sent)
        self.uploads.learn(host, answer)
        return answer

    def _lane(self, host: str) -> Lane | None:
        with self._lock:
            if host not in self.lanes:
                try:
                    lane = self.lanes[host] = Lane(host, self.headers, self.timeout)
                    lane.restarted = lambda: self.uploads.forget(host)
                except ValueError:
                    self.lanes[host] = None
            return self.lanes[host]

    def _send_requests(self, host: str, call: Call) -> Answer:
        with self._lock:
            if self._session is None:
                self._session = requests.Session()
                self._session.headers.update(self.headers)
            session = self._session
        try:
            response = session.request(
                call.method,
                host + call.path,
                params=call.params,
                data=call.body,
                headers=call.headers,
                timeout=self.timeout,
                # Per request: a session's own verify loses to REQUESTS_CA_BUNDLE.
                verify=self.verify,
                stream=True,  # the body read below: a coded one as sent, inflated within bounds
            )
            if "content-encoding" not in response.headers:
                return Answer(response.status_code, response.content, response.headers)
            return library_answer(response.status_code, _raw_body(response), response.headers)
        except requests.exceptions.SSLError as error:
            raise (tls_error(host, error) or NotSent(str(error))) from None
        except requests.ConnectTimeout as error:
            raise ConnectTimedOut(str(error)) from None
        except requests.exceptions.InvalidURL as error:
            raise NotSent(str(error)) from None
        except requests.ConnectionError as error:
            if "NewConnectionError" in repr(error) or "Connection refused" in str(error):
                raise NotSent(str(error)) from None
            raise MaybeSent(str(error)) from None
        except requests.Timeout as error:
            raise TimedOut(str(error)) from None

    def close(self) -> None:
        with self._lock:
            lanes, self.lanes = list(self.lanes.values()), {}
            session, self._session = self._session, None
        for lane in lanes:
            if lane is not None:
                lane.close()
        if session is not None:
            session.close()


def _raw_body(response: requests.Response) -> bytes:
    """A streamed answer's body as the server sent it (urllib3 does not
    decode it), with urllib3's failures mid-body told apart as requests'
    own ``content`` tells them (a read timeout, a broken connection)."""
    try:
        return response.raw.read(decode_content=False)
    except urllib3.exceptions.ReadTimeoutError as error:
        response.close()
        raise TimedOut(str(error)) from None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        response.close()
        raise MaybeSent(f"{type(error).__name__}: {error}") from None
