"""HTTP/1.1 on the wire for the lean transports, without any I/O (sans-IO).

Two halves, both written for the key/value hot path of the clients:

* ``Origin`` is one base URL taken apart once (scheme, address, path
  prefix) with the header block every request to it carries (Host,
  User-Agent, Authorization) already encoded; ``Origin.request()`` then
  builds a request's bytes with one join: the request line, that block, the
  Call's own headers and Content-Length, and the body. No URL is parsed and
  no header merged per call.

* ``ResponseParser`` is fed the bytes a socket reads and says when one
  answer is complete. It reads the status line and every header into a
  case-insensitive ``Headers`` (the clients read Content-Type and a few
  X-Cache-* headers), then frames the body the way RFC 9112 section 6.3
  says: none for HEAD, 1xx, 204 and 304; chunked when Transfer-Encoding
  ends in chunked; Content-Length bytes when given; otherwise up to the end
  of the connection. ``keep_alive`` says whether the connection may carry
  the next request (not after ``Connection: close``, nor after an HTTP/1.0
  answer that did not ask for keep-alive, nor after a body framed by the
  end of the connection). An interim 1xx answer is skipped.

The common case, a small answer that arrives in one read, is framed by
``framed_head`` without parsing its lines: HTTP/1.1, a status with a body,
one Content-Length, at most one Connection, no Content-Encoding nor
Transfer-Encoding, found by a few searches of the head in lower case. Its
headers are a ``HeadText``, which finds a header in that text when it is
asked for (a read asks for one: Content-Type) and parses every line only
when something needs them all. Each line costs about as much as all those
searches together, and a CacheGrid answer has seven or so. Any other head
is parsed line by line, and so is anything odd in one (a repeated framing
header, a length that is no number). Larger bodies are gathered in parts
and joined once.

Two helpers say what a failure means for both transports: ``broken_exchange``
(a connection error mid-exchange) and ``tls_error`` (a failure of the
requests or httpx path for ``https://`` hosts whose cause is TLS).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from requests.utils import requote_uri

from .errors import TLSError
from .protocol import BINARY_BODY, JSON_BODY, MaybeSent

MAX_HEAD = 64 * 1024  # a longer head is no answer of a CacheGrid server
MAX_READS = 1024  # plain GETs' bytes an Origin keeps (Origin.request)
NO_BODY = frozenset({204, 304})
# What ResponseParser._start searches the lower-cased head for.
_LENGTH, _CONNECTION = "\r\ncontent-length:", "\r\nconnection:"
_LENGTH_SIZE, _CONNECTION_SIZE = len(_LENGTH), len(_CONNECTION)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # sent with a Content-Length, 0 when bodyless
_TRANSFER, _CODING = "\r\ntransfer-encoding:", "\r\ncontent-encoding:"


class ProtocolError(Exception):
    """The bytes read are not an HTTP/1.1 answer (or not a whole one)."""


class Headers(dict[str, str]):
    """Answer headers, keyed by their lower-case names and looked up in any case."""

    # The head's text in lower case, where a ``HeadText`` still has it: a
    # reader may search it for a word no header then holds (protocol.get_call).
    low: str | None = None

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return dict.get(self, name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())


def _fields(lines: list[str], strict: bool = True) -> dict[str, str]:
    """Header lines as a dict of lower-case names (a repeated one's values
    joined by commas); a line without a colon is an error, or skipped."""
    fields: dict[str, str] = {}  # a plain dict while building: no case folding on each lookup
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            if strict:
                raise ProtocolError(f"not a header line: {line[:80]!r}")
            continue
        name = name.lower()
        value = value.strip()
        fields[name] = f"{fields[name]}, {value}" if name in fields else value
    return fields


class HeadText(Headers):
    """``Headers`` read from the head's text when asked, not while the answer is framed.

    ``text`` is the whole head, from the status line to the CRLF of its last
    header line, and ``low`` the same in lower case (as long: no Latin-1
    letter changes length in lower case). A lookup searches ``low`` for
    ``CRLF name:`` and takes the value from ``text``, stripped, as the line
    by line parse would; a name that occurs twice (those values are joined)
    or holds a colon parses every line into the dict itself, and so does
    everything else a dict does (iterating, comparing, changing). A read of
    a value asks for one header and never pays for the seven or so lines.
    Here a line without a colon is skipped, as http.client does; only
    ``framed_head`` makes one, and it looks at the lines it needs alone.

    ``dict``'s own methods called on it directly (``dict.get(headers, name)``)
    see only what was parsed so far: ``framed_head`` never makes one of an
    answer with Content-Encoding, the one header read that way (coding.py)."""

    __slots__ = ("_text", "low")

    def __init__(self, text: str, low: str) -> None:  # (dict's own __init__: nothing to add)
        self._text = text
        self.low = low  # None once every line is parsed

    def _load(self) -> None:
        if self.low is not None:
            self.low = None
            dict.update(self, _fields(self._text.split("\r\n")[1:-1], strict=False))

    def get(self, name: str, default: Any = None) -> Any:
        low = self.low
        if low is not None:
            pattern = _PATTERNS.get(name) or _pattern(name)
            if pattern:
                at = low.find(pattern)
                if at < 0:
                    return default
                start = at + len(pattern)
                end = low.find("\r\n", start)
                if low.find(pattern, end) < 0:
                    return self._text[start:end].strip()
            self._load()
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __reduce_ex__(self, protocol: Any) -> Any:  # copied or pickled: as the plain Headers it stands for
        self._load()
        return Headers, (dict(dict.items(self)),)


_PATTERNS: dict[str, str] = {}  # a header name -> what HeadText.get searches for ("": it cannot)


def _pattern(name: str) -> str:
    pattern = "" if ":" in name else f"\r\n{name.lower()}:"
    if len(_PATTERNS) < 256:  # the names asked for are a few constants; any others are not kept
        _PATTERNS[name] = pattern
    return pattern


def _loading(method: str) -> Any:
    """``dict``'s ``method``, on ``HeadText`` after parsing every line."""
    plain = getattr(dict, method)

    def loaded(self: HeadText, *args: Any, **kwargs: Any) -> Any:
        self._load()
        return plain(self, *args, **kwargs)

    loaded.__name__ = method
    return loaded


for _method in (
    "__iter__", "__len__", "__repr__", "__eq__", "__ne__", "__or__", "__ror__", "__ior__", "__reversed__",
    "__setitem__", "__delitem__", "keys", "values", "items", "copy", "pop", "popitem", "setdefault", "update",
    "clear",
):  # fmt: skip
    setattr(HeadText, _method, _loading(_method))


class Origin:
    """One ``http://`` base URL, taken apart once, and its prepared headers."""

    def __init__(self, url: str, headers: Mapping[str, str]) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or parts.username or parts.query or parts.fragment:
            raise ValueError(f"not a plain http:// base URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        netloc = parts.netloc
        block = [f"Host: {netloc}\r\n"] + [f"{name}: {value}\r\n" for name, value in headers.items()]
        self._fixed = "".join(block).encode("latin-1")
        self._bare = self._fixed + b"\r\n"
        self._reads: dict[str, bytes] = {}  # a plain GET's bytes by its path (at most MAX_READS)
        self._names = frozenset(name.lower() for name in headers)
        # A plain PUT's headers (protocol.JSON_BODY, BINARY_BODY, which never
        # change) prepared with the fixed block, unless that block sets them.
        self._json_block, self._binary_block = (
            None
            if self._names.intersection(name.lower() for name in typed)
            else self._fixed + "".join(f"{name}: {value}\r\n" for name, value in typed.items()).encode("latin-1")
            for typed in (JSON_BODY, BINARY_BODY)
        )

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """The bytes of one request (the Call's headers win over the fixed ones)."""
        plain = body is None and headers is None and not params
        if plain and method == "GET":
            try:
                return self._reads[path]  # PERF: a plain GET's bytes, made once per path
            except KeyError:
                pass
        target = self.prefix + path
        if params:
            target = f"{target}?{urlencode(params)}"
        if not target.isascii():
            target = requote_uri(target)
        head = f"{method} {target} HTTP/1.1\r\n".encode("ascii")
        if plain and method not in _BODY_METHODS:  # a plain read: the fixed block alone
            data = head + self._bare
            if method == "GET":
                if len(self._reads) >= MAX_READS:
                    self._reads.clear()  # a workload's hot keys come back at once
                self._reads[path] = data
            return data
        typed = self._json_block if headers is JSON_BODY else self._binary_block if headers is BINARY_BODY else None
        if typed is not None and body is not None:
            return b"".join((head, typed, b"Content-Length: %d\r\n\r\n" % len(body), body))
        fixed = self._fixed
        extra = ""
        if headers:
            for name in headers:
                if name.lower() in self._names:
                    fixed = self._without(headers)
                    break
            extra = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
        if body is not None or method in _BODY_METHODS:
            extra += f"Content-Length: {len(body) if body else 0}\r\n"
        return b"".join((head, fixed, extra.encode("latin-1"), b"\r\n", body or b""))

    def _without(self, headers: Mapping[str, str]) -> bytes:
        """The fixed header block less the names ``headers`` sets itself."""
        names = {name.lower() for name in headers}
        lines = self._fixed.split(b"\r\n")[:-1]
        return b"".join(line + b"\r\n" for line in lines if line.split(b":", 1)[0].decode().lower() not in names)


def framed_head(text: str) -> tuple[int, int, bool, HeadText] | None:
    """The status, Content-Length, keep-alive and (unparsed) headers of the
    common answer's head ``text`` (its status line to the CRLF of its last
    header line): HTTP/1.1, a status with a body, one Content-Length, no
    Content-Encoding nor Transfer-Encoding, at most one Connection. None for
    any other head, and for anything odd in one (the line by line parse then
    reads it, and says what is wrong).

    PERF: a few searches of the head in lower case instead of a parse of each
    of its seven or so lines; HeadText reads a header when it is asked for."""
    if not text.startswith("HTTP/1.1 "):
        return None
    low = text.lower()
    found = low.find(_LENGTH)
    if found < 0 or _TRANSFER in low or _CODING in low or low.find(_LENGTH, found + 1) >= 0:
        return None
    try:
        code = int(text[9:12])
        length = int(low[found + _LENGTH_SIZE : low.find("\r\n", found + 1)])
    except ValueError:
        return None
    if code < 200 or code in NO_BODY or length < 0:
        return None
    keep_alive = True
    # PERF: without "close" anywhere in the head no Connection header can
    # say it, one or several: the usual answer is spared three searches.
    if "close" in low:
        at = low.find(_CONNECTION)
        if at >= 0:
            if low.find(_CONNECTION, at + 1) >= 0:
                return None
            keep_alive = "close" not in low[at + _CONNECTION_SIZE : low.find("\r\n", at + 1)]
    return code, length, keep_alive, HeadText(text, low)


class ResponseParser:
    """One HTTP/1.1 answer, from the bytes fed to it (see the module docstring).

    ``feed(data)`` answers True once the answer is complete; ``feed(b"")``
    says the peer closed the connection. Then ``status``, ``headers``,
    ``body`` and ``keep_alive`` hold the answer, and ``received`` says
    whether any byte came at all (a reused connection the server had closed
    answers nothing)."""

    __slots__ = ("_buf", "_head", "_left", "_mode", "_parts", "body", "headers", "keep_alive", "received", "status")

    def __init__(self, head_request: bool = False) -> None:
        self.status = 0
        self.headers = Headers()
        self.body = b""
        self.keep_alive = True
        self.received = False
        self._head = head_request
        self._mode = "head"  # head, length, chunked, close, done
        self._left = 0
        self._parts: list[bytes] = []
        self._buf = b""

    def feed(self, data: bytes) -> bool:
        if not data:
            return self._eof()
        self.received = True
        if self._mode == "head":
            buf = self._buf + data if self._buf else data
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise ProtocolError("the answer's head is too long")
                self._buf = buf
                return False
            self._buf = b""
            return self._start(buf, end)
        if self._mode == "length":
            return self._length(data)
        if self._mode == "chunked":
            self._buf += data
            return self._chunks()
        if self._mode == "close":
            self._parts.append(data)
            return False
        raise ProtocolError("bytes after the end of the answer")

    def _eof(self) -> bool:
        if self._mode == "close":
            self.body = b"".join(self._parts)
            self._mode = "done"
            return True
        if self._mode == "done":
            return True
        raise ProtocolError("the connection closed before the answer ended" if self.received else "no answer")

    def _start(self, buf: bytes, end: int) -> bool:
        """Frame the answer whose head ends at ``end`` of ``buf`` (the rest is body)."""
        text = buf[: end + 2].decode("latin-1")
        framed = None if self._head else framed_head(text)
        if framed is None:
            return self._parse(text[:-2], buf[end + 4 :])
        self.status, self._left, self.keep_alive, self.headers = framed
        return self._body(buf[end + 4 :])

    def _parse(self, head: str, rest: bytes) -> bool:
        """``_start`` for any answer: its every header line parsed."""
        lines = head.split("\r\n")
        version, _, status = lines[0].partition(" ")
        try:
            code = int(status[:3])
        except ValueError:
            raise ProtocolError(f"not a status line: {lines[0][:80]!r}") from None
        if not version.startswith("HTTP/1."):
            raise ProtocolError(f"not a status line: {lines[0][:80]!r}")
        fields = _fields(lines[1:])
        if 100 <= code < 200:  # an interim answer: the real one follows
            return self.feed(rest) if rest else False
        self.status = code
        self.headers = Headers(fields)
        connection = fields.get("connection", "").lower()
        if version == "HTTP/1.0":
            self.keep_alive = "keep-alive" in connection
        elif "close" in connection:
            self.keep_alive = False
        if self._head or code in NO_BODY:
            return self._done(rest)
        if fields.get("transfer-encoding", "").lower().endswith("chunked"):
            self._mode = "chunked"
            self._buf = rest
            return self._chunks()
        length = fields.get("content-length")
        if length is not None:
            try:
                self._left = int(length.split(",")[0])
            except ValueError:
                raise ProtocolError(f"a bad Content-Length: {length[:40]!r}") from None
            if self._left < 0:
                raise ProtocolError(f"a bad Content-Length: {length[:40]!r}")
            return self._body(rest)
        self._mode = "close"
        self.keep_alive = False
        if rest:
            self._parts.append(rest)
        return False

    def _body(self, rest: bytes) -> bool:
        """The first bytes of a body of ``_left`` bytes."""
        if len(rest) == self._left:  # the common case: the whole answer in one read
            self.body = rest
            self._mode = "done"
            return True
        self._mode = "length"
        return self._length(rest) if rest or not self._left else False

    def _length(self, data: bytes) -> bool:
        if len(data) > self._left:
            raise ProtocolError("more bytes than the answer's Content-Length")
        self._parts.append(data)
        self._left -= len(data)
        if self._left:
            return False
        self.body = b"".join(self._parts)
        self._mode = "done"
        return True

    def _chunks(self) -> bool:
        """Take every whole chunk in the buffer; True after the last one and its trailers."""
        buf = self._buf
        at = 0
        while True:
            if self._left:  # inside a chunk's data (and its CRLF)
                if len(buf) - at < self._left + 2:
                    break
                self._parts.append(buf[at : at + self._left])
                if buf[at + self._left : at + self._left + 2] != b"\r\n":
                    raise ProtocolError("a chunk does not end in CRLF")
                at += self._left + 2
                self._left = 0
            end = buf.find(b"\r\n", at)
            if end < 0:
                break
            try:
                size = int(buf[at:end].split(b";", 1)[0], 16)
            except ValueError:
                raise ProtocolError("a bad chunk size") from None
            if size < 0:
                raise ProtocolError("a bad chunk size")
            if size == 0:  # the last chunk, then trailers (if any) up to an empty line
                after = end + 2
                if buf[after : after + 2] == b"\r\n":
                    rest = buf[after + 2 :]
                else:
                    trailers = buf.find(b"\r\n\r\n", after)
                    if trailers < 0:
                        break
                    rest = buf[trailers + 4 :]
                self.body = b"".join(self._parts)
                self._buf = b""
                return self._done(rest)
            self._left = size
            at = end + 2
        self._buf = buf[at:]
        return False

    def _done(self, rest: bytes) -> bool:
        if rest:  # no request is pipelined: more bytes mean the framing went wrong
            raise ProtocolError("bytes after the end of the answer")
        self._mode = "done"
        return True


class StaleConnection(Exception):
    """A reused connection answered nothing: the server had closed it."""


def broken_exchange(error: Exception, parser: ResponseParser, fresh: bool) -> Exception:
    """What a connection error in the middle of an exchange means, for both
    transports: on a reused (not ``fresh``) connection that sent back
    nothing, a ``StaleConnection`` (an idempotent call may go again on a new
    one); otherwise the request may have been applied: ``MaybeSent``."""
    if not parser.received and not fresh:
        return StaleConnection(str(error) or type(error).__name__)
    return MaybeSent(f"{type(error).__name__}: {error}")


def tls_error(host: str, error: BaseException) -> TLSError | None:
    """The ``TLSError`` for a failure of requests or httpx whose cause is
    TLS (an ``ssl.SSLError`` somewhere in its chain of causes, reasons and
    arguments), None when it is not. A certificate that does not verify
    gets OpenSSL's own reason (``verify_message``)."""
    seen: set[int] = set()
    pending: list[object] = [error]
    while pending:
        found = pending.pop()
        if not isinstance(found, BaseException) or id(found) in seen:
            continue
        seen.add(id(found))
        if isinstance(found, ssl.SSLCertVerificationError):
            return TLSError(host, found.verify_message or str(found), verification=True)
        if isinstance(found, ssl.SSLError):
            return TLSError(host, found.reason or str(found), verification="CERTIFICATE_VERIFY_FAILED" in str(found))
        pending += [found.__cause__, found.__context__, getattr(found, "reason", None), *found.args]
    return None
