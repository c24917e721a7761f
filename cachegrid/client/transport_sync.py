"""The synchronous client's transport: keep-alive sockets, one request at a time each.

Per host, a ``Lane`` keeps idle connections on a stack; a call takes one
(or connects a new one), writes the request ``wire.Origin`` built, reads
with ``recv`` into a ``wire.ResponseParser`` until the answer is whole, and
puts the connection back when the answer allows it. Threads never share a
connection, so the lane needs a lock only around its stack, and it keeps at
most ``MAX_IDLE`` idle connections (more threads than that open and close
their own, as requests' pool does past its size).

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
from collections.abc import Mapping

import requests

from .protocol import Answer, Call, ConnectTimedOut, MaybeSent, NotSent, TimedOut
from .wire import Origin, ProtocolError, ResponseParser, StaleConnection, broken_exchange, tls_error

MAX_IDLE = 16
# Timeouts set on the socket for the kernel to keep (see the module docstring).
KERNEL_TIMEOUTS = sys.platform.startswith("linux")
RECV_SIZE = 65536

# Bumped in a child after each fork(): cheaper to compare than os.getpid() a call.
_forks = [0]
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))


class Lane:
    """The keep-alive connections to one ``http://`` host."""

    def __init__(self, url: str, headers: Mapping[str, str], timeout: float) -> None:
        self.origin = Origin(url, headers)
        self.timeout = timeout
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()
        self._generation = _forks[0]
        self._closed = False

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.origin.host, self.origin.port), self.timeout)
        except TimeoutError as error:
            raise ConnectTimedOut(f"connecting to {self.origin.host}:{self.origin.port} timed out") from error
        except OSError as error:
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
        while True:
            with self._lock:
                if not self._idle:
                    return None
                sock = self._idle.pop()
            if not check or not select.select((sock,), (), (), 0)[0]:
                return sock
            sock.close()  # closed by the server (or a stray byte): either way unusable

    def _give_back(self, sock: socket.socket) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE and not self._closed and self._generation == _forks[0]:
                self._idle.append(sock)
                return
        sock.close()

    def send(self, call: Call) -> Answer:
        data = self.origin.request(call.method, call.path, call.params, call.body, call.headers)
        sock = self._take(check=not call.idempotent)
        if sock is not None:
            try:
                return self._exchange(sock, data, call.method == "HEAD")
            except StaleConnection as stale:
                if not call.idempotent:
                    raise MaybeSent(f"the kept-alive connection closed: {stale}") from None
        return self._exchange(self._connect(), data, call.method == "HEAD", fresh=True)

    def _exchange(self, sock: socket.socket, data: bytes, head: bool, fresh: bool = False) -> Answer:
        parser = ResponseParser(head)
        try:
            sock.sendall(data)
            while not parser.feed(sock.recv(RECV_SIZE)):
                pass
        except (TimeoutError, BlockingIOError):  # BlockingIOError: a kernel timeout (EAGAIN)
            sock.close()
            raise TimedOut(f"no answer within {self.timeout} s") from None
        except (OSError, ProtocolError) as error:
            sock.close()
            raise broken_exchange(error, parser, fresh) from None
        if parser.keep_alive:
            self._give_back(sock)
        else:
            sock.close()
        return Answer(parser.status, parser.body, parser.headers)

    def close(self) -> None:
        with self._lock:
            idle, self._idle, self._closed = self._idle, [], True
        for sock in idle:
            sock.close()


class Transport:
    """The lanes of a client's hosts (made on first use), and a requests
    session for the hosts a lane does not handle."""

    def __init__(self, headers: Mapping[str, str], timeout: float, verify: bool | str = True) -> None:
        self.headers = dict(headers)
        self.timeout = timeout
        self.verify = verify  # https: True (requests' CA bundle), a CA bundle's path, or False
        self._lanes: dict[str, Lane | None] = {}  # None: through requests
        self._lock = threading.Lock()
        self._session: requests.Session | None = None

    def send(self, host: str, call: Call) -> Answer:
        try:
            lane = self._lanes[host]
        except KeyError:
            lane = self._lane(host)
        if lane is not None:
            return lane.send(call)
        return self._send_requests(host, call)

    def _lane(self, host: str) -> Lane | None:
        with self._lock:
            if host not in self._lanes:
                try:
                    self._lanes[host] = Lane(host, self.headers, self.timeout)
                except ValueError:
                    self._lanes[host] = None
            return self._lanes[host]

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
            )
            return Answer(response.status_code, response.content, response.headers)
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
            lanes, self._lanes = list(self._lanes.values()), {}
            session, self._session = self._session, None
        for lane in lanes:
            if lane is not None:
                lane.close()
        if session is not None:
            session.close()
