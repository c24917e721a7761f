"""The asynchronous client's transport: keep-alive asyncio streams, one request at a time each.

The asyncio twin of transport_sync.py, with the same rules (read that
module's docstring for why): per host an ``AioLane`` keeps idle
connections on a stack, a request is the bytes ``wire.Origin`` built,
written at once, and its answer is framed as there (``wire.framed_head``,
or a ``wire.ResponseParser``).
Connecting fails as ``NotSent`` (``ConnectTimedOut``); an idempotent
request that finds its reused connection closed by the server (no byte of
answer) is sent once more on a new one, any other is ``MaybeSent``; a
timeout waiting for the answer is ``TimedOut``. Before a request that is
not idempotent goes on a reused connection, the stream is asked whether the
server closed it (the event loop has read that end already: no system call).

The client's ``timeout`` bounds connecting, and writing and reading the
answer, each as one ``asyncio.timeout``. The streams belong to the event
loop they were made in; the client makes a new transport for a new loop.
``https://`` hosts go through an ``httpx.AsyncClient``, as before, which
verifies their certificates as transport_sync.py's requests session does
(``verify``), a TLS failure being ``TLSError``. Compressed answers and
uploads are handled as there (coding.py), on the httpx path too: a coded
answer is streamed and its body read as sent, then inflated within
``coding.MAX_INFLATED_SIZE``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Mapping

import httpx

from .coding import Uploads, answer_of, is_upload, library_answer
from .protocol import Answer, Call, ConnectTimedOut, MaybeSent, NotSent, TimedOut, new_answer
from .wire import Origin, ProtocolError, ResponseParser, StaleConnection, broken_exchange, framed_head, tls_error

MAX_IDLE = 16
READ_SIZE = 65536
Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def _nothing() -> None:
    pass


class AioLane:
    """The keep-alive connections to one ``http://`` host, in one event loop."""

    def __init__(self, url: str, headers: Mapping[str, str], timeout: float | None) -> None:
        self.origin = Origin(url, headers)
        self.timeout = timeout
        self._idle: list[Stream] = []
        self.closed = False
        # Called when the server may have restarted (transport_sync.Lane's twin).
        self.restarted: Callable[[], None] = _nothing

    async def _connect(self) -> Stream:
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(self.origin.host, self.origin.port, limit=READ_SIZE)
        except TimeoutError:
            raise ConnectTimedOut(f"connecting to {self.origin.host}:{self.origin.port} timed out") from None
        except OSError as error:
            self.restarted()
            raise NotSent(f"connecting to {self.origin.host}:{self.origin.port}: {error}") from None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer

    def _take(self, check: bool) -> Stream | None:
        while self._idle:
            stream = self._idle.pop()
            if not check or not (stream[0].at_eof() or stream[1].is_closing()):
                return stream
            stream[1].close()
        return None

    async def send(self, call: Call) -> Answer:
        data = self.origin.request(call.method, call.path, call.params, call.body, call.headers)
        stream = self._take(check=not call.idempotent)
        if stream is not None:
            try:
                return await self._exchange(stream, data, call.method == "HEAD")
            except StaleConnection as stale:
                self.restarted()
                if not call.idempotent:
                    raise MaybeSent(f"the kept-alive connection closed: {stale}") from None
        return await self._exchange(await self._connect(), data, call.method == "HEAD", fresh=True)

    async def _exchange(self, stream: Stream, data: bytes, head: bool, fresh: bool = False) -> Answer:
        reader, writer = stream
        parser = None
        try:
            async with asyncio.timeout(self.timeout):
                writer.write(data)
                got = await reader.read(READ_SIZE)
                # PERF: the common answer, whole in one read, framed without a parser.
                end = got.find(b"\r\n\r\n")
                framed = None if end < 0 or head else framed_head(got[: end + 2].decode("latin-1"))
                if framed is None or len(got) - end - 4 != framed[1]:
                    parser = ResponseParser(head)
                    while not parser.feed(got):
                        got = await reader.read(READ_SIZE)
        except TimeoutError:
            writer.close()
            raise TimedOut(f"no answer within {self.timeout} s") from None
        except (OSError, ProtocolError) as error:
            writer.close()
            raise broken_exchange(error, parser or ResponseParser(head), fresh) from None
        except BaseException:  # cancelled mid-answer: the connection is in an unknown state
            writer.close()
            raise
        if parser is None and framed is not None:  # (framed whenever there is no parser)
            self._keep(stream, framed[2])
            return new_answer((framed[0], got[end + 4 :], framed[3]))  # no Content-Encoding: as read
        assert parser is not None
        self._keep(stream, parser.keep_alive)
        return answer_of(parser.status, parser.body, parser.headers)

    def _keep(self, stream: Stream, keep_alive: bool) -> None:
        """Put ``stream`` back for the next request, or close it."""
        if keep_alive and not self.closed and len(self._idle) < MAX_IDLE:
            self._idle.append(stream)
        else:
            stream[1].close()

    def close(self) -> None:
        self.closed = True
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()


class AioTransport:
    """The lanes of a client's hosts in one event loop (made on first use),
    and an httpx client for the hosts a lane does not handle."""

    def __init__(
        self,
        headers: Mapping[str, str],
        timeout: float | None,
        verify: bool | str = True,
        uploads: Uploads | None = None,
    ) -> None:
        self.headers = dict(headers)
        self.uploads = uploads or Uploads()  # which hosts take compressed writes (coding.py)
        self.timeout = timeout
        self.verify = verify  # https: True (httpx's CA bundle), a CA bundle's path, or False
        self._lanes: dict[str, AioLane | None] = {}  # None: through httpx
        self._httpx: httpx.AsyncClient | None = None
        self.is_closed = False

    async def send(self, host: str, call: Call) -> Answer:
        try:
            lane = self._lanes[host]
        except KeyError:
            try:
                lane = AioLane(host, self.headers, self.timeout)
                lane.restarted = lambda: self.uploads.forget(host)
            except ValueError:
                lane = None
            self._lanes[host] = lane
        if call.body is not None and is_upload(call):
            return await self._upload(host, lane, call)
        if lane is not None:
            return await lane.send(call)
        return await self._send_httpx(host, call)

    async def _upload(self, host: str, lane: AioLane | None, call: Call) -> Answer:
        """A write of values: compressed when large and ``host`` takes it,
        and its answer read for whether it does (coding.py)."""
        sent = self.uploads.prepare(host, call)
        answer = await (lane.send(sent) if lane is not None else self._send_httpx(host, sent))
        self.uploads.learn(host, answer)
        return answer

    async def _send_httpx(self, host: str, call: Call) -> Answer:
        if self._httpx is None:
            # A path as an SSLContext: httpx takes a bundle's path no more.
            verify = ssl.create_default_context(cafile=self.verify) if isinstance(self.verify, str) else self.verify
            self._httpx = httpx.AsyncClient(headers=self.headers, timeout=self.timeout, verify=verify)
        request = self._httpx.build_request(
            call.method, host + call.path, params=call.params, content=call.body, headers=call.headers
        )
        try:
            response = await self._httpx.send(request, stream=True)
            try:
                if "content-encoding" not in response.headers:
                    return Answer(response.status_code, await response.aread(), response.headers)
                # As sent, inflated within bounds: httpx's own decoding has none.
                sent = b"".join([part async for part in response.aiter_raw()])
            finally:
                await response.aclose()
            return library_answer(response.status_code, sent, response.headers)
        except httpx.ConnectTimeout as error:
            raise ConnectTimedOut(str(error) or type(error).__name__) from None
        except (httpx.ConnectError, httpx.UnsupportedProtocol) as error:
            raise (tls_error(host, error) or NotSent(str(error) or type(error).__name__)) from None
        except httpx.TimeoutException as error:
            raise TimedOut(str(error) or type(error).__name__) from None
        except httpx.TransportError as error:
            raise MaybeSent(str(error) or type(error).__name__) from None

    async def aclose(self) -> None:
        self.is_closed = True
        lanes, self._lanes = list(self._lanes.values()), {}
        for lane in lanes:
            if lane is not None:
                lane.close()
        client, self._httpx = self._httpx, None
        if client is not None:
            await client.aclose()
