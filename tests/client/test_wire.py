"""The sans-IO HTTP/1.1 halves of the lean transport (wire.py): requests built, answers framed."""

from __future__ import annotations

import copy
import pickle
import random

import pytest

from cachegrid.client import wire
from cachegrid.client.protocol import BINARY_BODY, JSON_BODY
from cachegrid.client.wire import Headers, HeadText, Origin, ProtocolError, ResponseParser, framed_head


def parse(*pieces: bytes, head: bool = False, eof: bool = False) -> ResponseParser:
    """A parser fed ``pieces`` one by one; it must be done with the last (or at the end, with ``eof``)."""
    parser = ResponseParser(head)
    for piece in pieces[:-1]:
        assert not parser.feed(piece)
    if eof:
        assert not parser.feed(pieces[-1])
        assert parser.feed(b"")
    else:
        assert parser.feed(pieces[-1])
    return parser


def every_split(data: bytes) -> list[tuple[bytes, bytes]]:
    return [(data[:at], data[at:]) for at in range(1, len(data))]


# -- requests ---------------------------------------------------------------------------------------


def test_a_request_has_the_fixed_headers_and_the_calls_own() -> None:
    origin = Origin("http://127.0.0.1:8080", {"User-Agent": "cachegrid-client", "Authorization": "Bearer t"})
    data = origin.request(
        "PUT", "/cache/k", {"ttl": "5", "tags": "a,b"}, b'{"x":1}', {"Content-Type": "application/json"}
    )
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "PUT /cache/k?ttl=5&tags=a%2Cb HTTP/1.1"
    assert lines[1:] == [
        "Host: 127.0.0.1:8080",
        "User-Agent: cachegrid-client",
        "Authorization: Bearer t",
        "Content-Type: application/json",
        "Content-Length: 7",
    ]
    assert body == b'{"x":1}'


@pytest.mark.parametrize("typed", [JSON_BODY, BINARY_BODY])
@pytest.mark.parametrize("params", [None, {"ttl": "5"}])
@pytest.mark.parametrize("fixed", [{}, {"User-Agent": "cachegrid-client", "Authorization": "Bearer t"}])
def test_a_plain_puts_prepared_headers_are_the_bytes_the_general_path_writes(typed, params, fixed) -> None:
    """protocol.JSON_BODY and BINARY_BODY take a header block prepared per
    node; the bytes are those of the same headers in an ordinary dict."""
    origin = Origin("http://127.0.0.1:8080", fixed)
    for body in (b'{"x":1}', b"\x00" * 300, b""):
        prepared = origin.request("PUT", "/cache/k", params, body, typed)
        assert prepared == origin.request("PUT", "/cache/k", params, body, dict(typed))
        assert prepared.endswith(b"Content-Length: %d\r\n\r\n" % len(body) + body)


def test_a_fixed_content_type_still_gives_way_to_a_plain_puts() -> None:
    """A Content-Type among the client's own headers is replaced by the
    value's, as any header a Call sets replaces a fixed one."""
    origin = Origin("http://h:1", {"content-type": "text/plain"})
    data = origin.request("PUT", "/cache/k", None, b"1", JSON_BODY)
    assert b"text/plain" not in data and b"Content-Type: application/json\r\n" in data


def test_a_plain_gets_bytes_are_made_once_per_path_and_kept_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "MAX_READS", 4)
    origin = Origin("http://127.0.0.1:8080/prefix", {"User-Agent": "cachegrid-client", "Accept-Encoding": "gzip"})
    fresh = Origin("http://127.0.0.1:8080/prefix", {"User-Agent": "cachegrid-client", "Accept-Encoding": "gzip"})
    first = origin.request("GET", "/cache/k")
    assert origin.request("GET", "/cache/k") is first
    assert first == b"GET /prefix/cache/k HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: cachegrid-client\r\n" + (
        b"Accept-Encoding: gzip\r\n\r\n"
    )
    for path in [f"/cache/{n}" for n in range(10)] + ["/cache/\u00e9"]:
        assert origin.request("GET", path) == fresh.request("GET", path)
        assert len(origin._reads) <= 4
    # Anything but a plain GET is built as before, never from the kept bytes.
    assert origin.request("GET", "/cache/k", {"peek": "1"}) == b"GET /prefix/cache/k?peek=1" + first[19:]
    assert origin.request("HEAD", "/cache/k") == b"HEAD" + first[3:]
    assert origin.request("GET", "/cache/k", headers={"X-A": "1"}).endswith(b"X-A: 1\r\n\r\n")


def test_a_get_has_no_content_length_and_a_bodyless_post_has_zero() -> None:
    origin = Origin("http://h:1", {})
    assert b"Content-Length" not in origin.request("GET", "/cache/k")
    assert b"Content-Length: 0\r\n" in origin.request("POST", "/tags/invalidate")


def test_a_calls_header_replaces_a_fixed_one_of_the_same_name() -> None:
    data = Origin("http://h:1", {"User-Agent": "a", "Authorization": "Bearer t"}).request(
        "GET", "/x", headers={"user-agent": "b"}
    )
    assert b"User-Agent: a" not in data and b"user-agent: b" in data and b"Authorization: Bearer t" in data


def test_a_base_url_with_a_path_prefixes_every_request() -> None:
    origin = Origin("http://[::1]:9000/cache-proxy/", {})
    assert (origin.host, origin.port) == ("::1", 9000)
    assert origin.request("GET", "/stats").startswith(b"GET /cache-proxy/stats HTTP/1.1\r\nHost: [::1]:9000\r\n")


@pytest.mark.parametrize("url", ["https://h:1", "http://user:pw@h:1", "ftp://h", "http://h:1?q=1"])
def test_what_a_lane_does_not_handle_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        Origin(url, {})


def test_a_target_that_is_not_ascii_is_percent_encoded() -> None:
    assert Origin("http://h:1", {}).request("GET", "/cache/é").startswith(b"GET /cache/%C3%A9 HTTP/1.1")


# -- answers ----------------------------------------------------------------------------------------

SMALL = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Cache-TTL: 5.0\r\nContent-Length: 7\r\n\r\n{"a":1}'


def test_a_content_length_answer_in_one_read_and_in_every_split() -> None:
    parser = parse(SMALL)
    assert (parser.status, parser.body, parser.keep_alive) == (200, b'{"a":1}', True)
    assert parser.headers["content-type"] == "application/json"
    assert parser.headers.get("X-CACHE-TTL") == "5.0" and "x-cache-ttl" in parser.headers
    for first, second in every_split(SMALL):
        assert parse(first, second).body == b'{"a":1}'


def test_a_zero_length_answer() -> None:
    parser = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert parser.body == b""


@pytest.mark.parametrize("status", [204, 304])
def test_answers_without_a_body(status: int) -> None:
    parser = parse(f"HTTP/1.1 {status} X\r\nETag: x\r\n\r\n".encode())
    assert (parser.status, parser.body, parser.keep_alive) == (status, b"", True)


def test_the_answer_to_a_head_has_no_body_whatever_its_length_says() -> None:
    parser = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", head=True)
    assert parser.body == b"" and parser.headers["Content-Length"] == "12"


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\n\r\n"


def test_a_chunked_answer_in_one_read_and_in_every_split() -> None:
    assert parse(CHUNKED).body == b"hello world"
    for first, second in every_split(CHUNKED):
        assert parse(first, second).body == b"hello world", (first, second)


def test_a_chunked_answer_with_trailers() -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n"
    assert parse(data).body == b"abc"
    for first, second in every_split(data):
        assert parse(first, second).body == b"abc"


def test_a_body_up_to_the_end_of_the_connection() -> None:
    parser = parse(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nab", b"cd", eof=True)
    assert (parser.body, parser.keep_alive) == (b"abcd", False)


def test_connection_close_and_http_1_0_end_the_connection() -> None:
    assert not parse(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive
    assert not parse(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive
    assert parse(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").keep_alive


def test_an_interim_answer_is_skipped() -> None:
    parser = parse(b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
    assert (parser.status, parser.body) == (201, b"ok")
    assert parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n").status == 204


def test_repeated_headers_are_joined() -> None:
    parser = parse(b"HTTP/1.1 200 OK\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 0\r\n\r\n")
    assert parser.headers["X-A"] == "1, 2"
    assert isinstance(parser.headers, Headers)


@pytest.mark.parametrize(
    "data",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab",
        b"HTTP/1.1 204 OK\r\n\r\nextra",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc",
    ],
)
def test_what_is_no_answer_is_a_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        ResponseParser().feed(data)


def test_an_answer_cut_short_is_a_protocol_error_and_says_whether_bytes_came() -> None:
    parser = ResponseParser()
    with pytest.raises(ProtocolError, match="no answer"):
        parser.feed(b"")
    assert not parser.received
    parser = ResponseParser()
    assert not parser.feed(SMALL[:-2])
    with pytest.raises(ProtocolError, match="before the answer ended"):
        parser.feed(b"")
    assert parser.received


def test_a_head_without_end_is_bounded() -> None:
    parser = ResponseParser()
    with pytest.raises(ProtocolError, match="too long"):
        for _ in range(100):
            parser.feed(b"X" * 1024)


# -- the common answer's quick framing (framed_head, HeadText) ------------------------------------

NAMES = ["Content-Length", "content-type", "Connection", "ETag", "X-Cache-Type", "X-A", "x-a", "Date", ""]
VALUES = [" 25", "25", " 7 ", "keep-alive", " Close", "application/json", ' "e-1" ', "a: b", " \t", "x,y", "-1", "2, 3"]


def line_by_line(data: bytes) -> ResponseParser:
    """The parse of every line (what any answer framed_head refuses gets)."""
    parser = ResponseParser()
    end = data.find(b"\r\n\r\n")
    parser._parse(data[:end].decode("latin-1"), data[end + 4 :])
    return parser


@pytest.mark.parametrize("seed", range(300))
def test_a_quickly_framed_answer_reads_as_the_line_by_line_parse(seed: int) -> None:
    """Heads drawn from names that matter to the framing (repeated, in any
    case) and odd values: where the quick framing takes one, status, length,
    keep-alive, body and every header read alike; where it does not, the
    line by line parse reads it."""
    draw = random.Random(seed)
    lines = [f"{draw.choice(NAMES)}:{draw.choice(VALUES)}" for _ in range(draw.randrange(0, 6))]
    if draw.random() < 0.8:  # mostly one good length, somewhere among them
        lines.insert(draw.randrange(len(lines) + 1), f"{draw.choice(['Content-Length', 'content-LENGTH'])}: 3")
    if draw.random() < 0.2:  # a line without a colon: the quick framing skips it, the parse refuses it
        lines.insert(draw.randrange(len(lines) + 1), "no colon")
    status = draw.choice(["200 OK", "404 Not Found", "201 Created", "204 No Content", "100 Continue", "20 X"])
    head = "\r\n".join([f"HTTP/1.1 {status}", *lines]) + "\r\n"
    framed = framed_head(head)
    if framed is None:
        return
    data = head.encode("latin-1") + b"\r\n" + b"x" * framed[1]
    expected = line_by_line(data.replace(b"\r\nno colon", b""))
    code, length, keep_alive, headers = framed
    assert (code, length, keep_alive) == (expected.status, len(expected.body), expected.keep_alive)
    for name in {*NAMES, "content-encoding", "missing", "a: b", "CONTENT-TYPE"}:
        assert headers.get(name) == expected.headers.get(name), name
        assert (name in headers) == (name in expected.headers)
    assert dict(headers) == dict(expected.headers) and headers == expected.headers
    assert parse(data).body == expected.body


def test_head_text_is_a_dict_of_every_header_once_asked_for_more_than_a_lookup() -> None:
    data = b'HTTP/1.1 200 OK\r\nETag: "e-1"\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 2\r\n\r\nok'
    parser = parse(data)
    headers = parser.headers
    assert isinstance(headers, HeadText)
    assert headers["etag"] == '"e-1"' and headers.get("X-A") == "1, 2"
    assert sorted(headers) == ["content-length", "etag", "x-a"] and len(headers) == 3
    assert pickle.loads(pickle.dumps(headers)) == headers == copy.copy(headers)
    with pytest.raises(KeyError):
        headers["missing"]
    assert "missing" not in parse(data).headers and parse(data).headers.get("missing", 0) == 0


def test_an_answer_with_content_encoding_has_every_header_parsed() -> None:
    """coding.py reads Content-Encoding with dict's own get: the parse of
    every line, never a HeadText, for such an answer."""
    parser = parse(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\nok")
    assert type(parser.headers) is Headers and dict.get(parser.headers, "content-encoding") == "gzip"


@pytest.mark.parametrize("coded", ["Transfer-Encoding: chunked", "content-encoding: gzip", "CONTENT-ENCODING: x"])
@pytest.mark.parametrize("where", [0, 1, 2, 3])
def test_a_coded_answer_is_never_framed_quickly_wherever_its_header_is(coded: str, where: int) -> None:
    lines = ["Accept-Encoding: gzip", "X-Content-Encoding: no", "Content-Length: 2"]
    lines.insert(where, coded)
    assert framed_head("\r\n".join(["HTTP/1.1 200 OK", *lines]) + "\r\n") is None
    lines.remove(coded)  # Accept-Encoding and a name that merely ends alike are no coding
    assert framed_head("\r\n".join(["HTTP/1.1 200 OK", *lines]) + "\r\n") is not None
