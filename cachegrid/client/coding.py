"""Compression on the wire, for both clients: gzip answers read, large writes sent gzip.

Answers: every request of the lean transports carries ``Accept-Encoding:
gzip`` (in the header block prepared once per node, so it costs nothing per
call), and a server holding a value compressed sends it as it holds it, with
``Content-Encoding: gzip``; so does a large batch get. ``decoded`` turns such
an answer back into the value's bytes before anything else sees it (the
operations, the near cache, read repair), and drops the Content-Encoding
header: what the client keeps is always the identity representation. A
small value is never compressed by the server, so the header costs a small
read nothing. The ``https://`` paths (requests, httpx) ask for gzip too, but
read a coded answer's body as sent and leave it to ``library_answer``: the
libraries' own decoding has no bound.

A gzip answer is inflated at most ``MAX_INFLATED_SIZE`` bytes (64 MiB by
default; a module setting, read at every answer): a broken or hostile
server could otherwise make a small answer inflate to gigabytes in the
client's memory. Past it the call raises ``AnswerTooLarge`` at once, without
a retry (the same server would send the same answer), having held at most
the limit and a byte. The bound is far above any one value (the server's
``max_value_size`` is 1 MiB by default) and leaves room for large batch
gets; a deployment with larger values or batches raises it.

Writes: a value PUT or a batch set whose body is at least the client's
``compress_threshold`` (1 KiB by default, the server's own default) is sent
gzip-compressed (``Content-Encoding: gzip``), at level 1 as the server
compresses, when that saves at least a fifth, and only to a node that said
it reads compressed bodies: a server that does answers its value writes
with ``Accept-Encoding: gzip`` (RFC 9110 12.5.3). ``Uploads`` remembers that
per node from the answers themselves; every successful write's answer says
it again, so a node that was replaced by an older server (which never says
it) is forgotten at its first answer, and so is a node whose kept-alive
connection was found closed (a restart, perhaps into another version). The
first large write to a node not yet heard from goes uncompressed. A compact
JSON value sent as one gzip member is held by the server as sent, without
compressing it again.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Mapping, MutableMapping
from dataclasses import replace

from .errors import CacheGridError
from .protocol import Answer, Call, MaybeSent
from .wire import ProtocolError

GZIP = "gzip"
GZIP_LEVEL = 1  # the server's level: fast, and 0.2 of a typical JSON document
MIN_SAVING = 0.2  # sent compressed only when that saves this share (the server's default too)
DEFAULT_COMPRESS_THRESHOLD = 1024
BATCH_SET = "/cache/batch/set"
_GZIP_WBITS = 31  # zlib's window bits for one gzip member (16 + 15)
_GZIP_NAMES = frozenset({"gzip", "x-gzip"})
MAX_INFLATED_SIZE = 64 * 1024 * 1024  # the most bytes a gzip answer may inflate to
_ACCEPT = "\r\naccept-encoding:"  # a line of a head in lower case (_says_gzip)
_ACCEPT_SIZE = len(_ACCEPT)


class CodingError(ProtocolError):
    """An answer's Content-Encoding is not one this client reads, or its body is not what it says."""


class AnswerTooLarge(CacheGridError):
    """A server's gzip answer inflates to more than ``limit`` bytes
    (``coding.MAX_INFLATED_SIZE``): a decompression bomb, or a batch larger
    than this client was set to take. Raised at once, never retried."""

    def __init__(self, limit: int, sent: int) -> None:
        super().__init__(
            f"the server's gzip answer ({sent} bytes) inflates to more than {limit} bytes, "
            "this client's limit (cachegrid.client.coding.MAX_INFLATED_SIZE)"
        )
        self.limit = limit


def gzip_body(body: bytes) -> bytes:
    """One gzip member of ``body``."""
    packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
    return packer.compress(body) + packer.flush()


def decoded(body: bytes, headers: MutableMapping[str, str], coding: str, limit: int | None = None) -> bytes:
    """The bytes of a body sent with Content-Encoding ``coding`` (``headers``,
    lower-case names, then says identity: the header is dropped), at most
    ``limit`` bytes of them (None: ``MAX_INFLATED_SIZE``; ``AnswerTooLarge`` past it)."""
    name = coding.strip().lower()
    if name in _GZIP_NAMES:
        limit = MAX_INFLATED_SIZE if limit is None else limit
        decompressor = zlib.decompressobj(_GZIP_WBITS)
        try:
            # One byte over the limit at most: zlib stops there, the rest of the input left unread.
            plain = decompressor.decompress(body, limit + 1)
            if len(plain) <= limit:
                plain += decompressor.flush()
        except zlib.error as error:
            raise CodingError(f"a gzip answer that does not inflate: {error}") from None
        if len(plain) > limit:
            raise AnswerTooLarge(limit, len(body))
        if not decompressor.eof or decompressor.unused_data:
            raise CodingError("a gzip answer cut short, or with bytes after it")
    elif name == "identity":
        plain = body
    else:
        raise CodingError(f"an answer in a coding this client does not read: {coding[:40]!r}")
    del headers["content-encoding"]
    return plain


def answer_of(status: int, body: bytes, headers: dict[str, str]) -> Answer:
    """The ``Answer`` a lean transport read, its body decoded when the server
    sent it compressed (``MaybeSent`` when that fails: the exchange was not
    what HTTP says; an idempotent request is sent again; ``AnswerTooLarge``
    when it inflates past ``MAX_INFLATED_SIZE``)."""
    # The names are lower case: no folding.
    return _decoded_answer(status, body, headers, dict.get(headers, "content-encoding"))


def library_answer(status: int, sent: bytes, headers: MutableMapping[str, str]) -> Answer:
    """``answer_of`` for the ``https://`` paths: ``sent``, the body as it came
    (requests' or httpx's, not decoded by them), under their case-insensitive
    ``headers``; decoded here, within ``MAX_INFLATED_SIZE``. An empty body
    (a HEAD's, a 204's) is left as it is, as the libraries leave it."""
    return _decoded_answer(status, sent, headers, headers.get("content-encoding"))


def _decoded_answer(status: int, body: bytes, headers: MutableMapping[str, str], coding: str | None) -> Answer:
    """The ``Answer`` of ``body`` sent with Content-Encoding ``coding``
    (None: none); an empty body (a HEAD's, a 304's) has nothing to decode."""
    if coding is not None and body:
        try:
            body = decoded(body, headers, coding)
        except CodingError as error:
            raise MaybeSent(str(error)) from None
    return Answer(status, body, headers)


def is_upload(call: Call) -> bool:
    """Whether ``call`` writes values from its body (a PUT of a value, a batch
    set): the requests a server reads compressed and whose answers say so."""
    return call.body is not None and (call.method == "PUT" or call.path == BATCH_SET)


class Uploads:
    """Which nodes take compressed uploads (heard from their answers), and the
    compressed form of a write for them (see the module docstring)."""

    def __init__(self, threshold: int = DEFAULT_COMPRESS_THRESHOLD) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
            raise ValueError(f"compress_threshold is a whole number of bytes >= 0, not {threshold!r}")
        self.threshold = threshold or sys.maxsize  # 0: never compress
        self._nodes: set[str] = set()  # set.add and discard are atomic: no lock

    def accepts(self, host: str) -> bool:
        return host in self._nodes

    def prepare(self, host: str, call: Call) -> Call:
        """``call`` as it goes to ``host``: compressed when it is large, saves
        enough and ``host`` said it reads gzip; else as it is."""
        body = call.body
        if body is None or len(body) < self.threshold or host not in self._nodes:
            return call
        headers = call.headers or {}
        if any(name.lower() == "content-encoding" for name in headers):
            return call  # coded by the caller already
        coded = gzip_body(body)
        if len(coded) > len(body) * (1 - MIN_SAVING):
            return call
        return replace(call, body=coded, headers=_with_coding(headers))

    def learn(self, host: str, answer: Answer) -> None:
        """Remember what a write's successful answer says of ``host``."""
        if 200 <= answer.status < 300:
            if _says_gzip(answer.headers):
                self._nodes.add(host)
            else:
                self._nodes.discard(host)

    def forget(self, host: str) -> None:
        """``host`` may have been restarted (into another version): ask again."""
        self._nodes.discard(host)


def _says_gzip(headers: Mapping[str, str]) -> bool:
    """Whether an answer's Accept-Encoding names gzip. PERF: in a head still
    in text (wire.HeadText: ``low``) its one line is found and read there,
    without the lookup's slicing, stripping and folding."""
    low = getattr(headers, "low", None)
    if low is not None:
        at = low.find(_ACCEPT)
        if at < 0:
            return False
        end = low.find("\r\n", at + 2)
        if low.find(_ACCEPT, end) < 0:  # one line (several are joined: the lookup's)
            return GZIP in low[at + _ACCEPT_SIZE : end]
    return GZIP in headers.get("Accept-Encoding", "").lower()


def _with_coding(headers: Mapping[str, str]) -> dict[str, str]:
    return {**headers, "Content-Encoding": GZIP}
