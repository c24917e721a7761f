"""coding.py alone: answers decoded (and refused when they lie, or inflate
past the limit), and which writes go compressed to which nodes."""

from __future__ import annotations

import gzip
import zlib

import pytest
from requests.structures import CaseInsensitiveDict

from cachegrid.client import CacheGridError, coding
from cachegrid.client.coding import AnswerTooLarge, Uploads, answer_of, decoded, gzip_body, is_upload
from cachegrid.client.protocol import JSON_BODY, Answer, Call, MaybeSent
from cachegrid.client.wire import Headers, framed_head

LARGE = b'{"name":"' + b"a" * 4000 + b'"}'
HOST = "http://127.0.0.1:1"
SAYS_GZIP = Answer(201, b"{}", Headers({"accept-encoding": "gzip"}))


def test_a_gzip_answer_is_decoded_and_says_identity_then() -> None:
    headers = Headers({"content-encoding": "gzip", "etag": '"e-1-gzip"'})
    answer = answer_of(200, gzip.compress(LARGE), headers)
    assert answer.body == LARGE and "Content-Encoding" not in answer.headers
    assert answer.headers["ETag"] == '"e-1-gzip"'
    assert answer_of(200, LARGE, Headers({"content-encoding": "identity"})).body == LARGE
    plain = Headers({"content-type": "application/json"})
    assert answer_of(200, b"1", plain) == Answer(200, b"1", plain)


@pytest.mark.parametrize(
    "body, coding",
    [
        (b"not gzip", "gzip"),
        (gzip.compress(LARGE)[:-9], "gzip"),  # cut short
        (gzip.compress(LARGE) + b"x", "gzip"),  # garbage after it
        (zlib.compress(LARGE), "br"),
    ],
    ids=["not-gzip", "cut-short", "trailing", "unknown-coding"],
)
def test_an_answer_that_is_not_what_it_says_is_maybe_sent(body: bytes, coding: str) -> None:
    with pytest.raises(MaybeSent):
        answer_of(200, body, Headers({"content-encoding": coding}))


def test_decoded_reads_x_gzip() -> None:
    headers = {"content-encoding": "x-gzip"}
    assert decoded(gzip_body(LARGE), headers, "x-gzip") == LARGE and headers == {}


def test_uploads_go_compressed_only_large_compressible_and_to_nodes_that_said_so() -> None:
    uploads = Uploads()
    put = Call("PUT", "/cache/k", body=LARGE, headers=JSON_BODY)
    assert uploads.prepare(HOST, put) is put  # not heard from yet
    uploads.learn(HOST, SAYS_GZIP)
    sent = uploads.prepare(HOST, put)
    assert sent is not put and gzip.decompress(sent.body or b"") == LARGE
    assert dict(sent.headers or {}) == {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    assert put.body == LARGE and put.headers is JSON_BODY  # the call itself is unchanged (it may be retried)
    small = Call("PUT", "/cache/k", body=b"[1]", headers=JSON_BODY)
    assert uploads.prepare(HOST, small) is small
    noise = Call("PUT", "/cache/k", body=bytes(range(256)) * 2 + gzip_body(LARGE * 3))
    assert uploads.prepare(HOST, noise) is noise  # saves too little
    coded = Call("PUT", "/cache/k", body=LARGE, headers={"content-encoding": "identity"})
    assert uploads.prepare(HOST, coded) is coded
    assert uploads.prepare("http://other:1", put) is put


def test_what_a_node_says_is_learnt_from_successful_write_answers() -> None:
    uploads = Uploads()
    uploads.learn(HOST, Answer(412, b"{}", Headers()))
    assert not uploads.accepts(HOST)
    uploads.learn(HOST, SAYS_GZIP)
    assert uploads.accepts(HOST)
    uploads.learn(HOST, Answer(413, b"{}", Headers()))  # an error answer says nothing
    assert uploads.accepts(HOST)
    uploads.learn(HOST, Answer(201, b"{}", Headers()))  # an older server's answer
    assert not uploads.accepts(HOST)
    uploads.learn(HOST, SAYS_GZIP)
    uploads.forget(HOST)
    assert not uploads.accepts(HOST)
    never = Uploads(0)
    never.learn(HOST, SAYS_GZIP)
    put = Call("PUT", "/cache/k", body=LARGE)
    assert never.prepare(HOST, put) is put


@pytest.mark.parametrize("threshold", [-1, 1.5, True, "1024"])
def test_a_threshold_is_a_whole_number_of_bytes(threshold: object) -> None:
    with pytest.raises(ValueError, match="compress_threshold"):
        Uploads(threshold)  # type: ignore[arg-type]


def test_which_calls_are_uploads() -> None:
    assert is_upload(Call("PUT", "/cache/k", body=b"1"))
    assert is_upload(Call("POST", "/cache/batch/set", body=b"{}"))
    assert not is_upload(Call("PUT", "/cache/k/ttl", params={"ttl": "1"}))
    assert not is_upload(Call("POST", "/cache/batch/get", body=b"{}"))
    assert not is_upload(Call("POST", "/cache/k/incr"))


def test_a_gzip_answer_inflates_up_to_the_limit_and_no_further(monkeypatch: pytest.MonkeyPatch) -> None:
    assert decoded(gzip_body(LARGE), {"content-encoding": "gzip"}, "gzip", len(LARGE)) == LARGE
    with pytest.raises(AnswerTooLarge) as raised:
        decoded(gzip_body(LARGE), {"content-encoding": "gzip"}, "gzip", len(LARGE) - 1)
    assert raised.value.limit == len(LARGE) - 1
    monkeypatch.setattr(coding, "MAX_INFLATED_SIZE", 1000)  # the module setting, read at each answer
    with pytest.raises(AnswerTooLarge):  # not MaybeSent: raised past the retries
        answer_of(200, gzip.compress(LARGE), Headers({"content-encoding": "gzip"}))
    bomb = gzip.compress(bytes(50_000_000), compresslevel=9)
    with pytest.raises(AnswerTooLarge, match="inflates to more than 1000 bytes"):
        answer_of(200, bomb, Headers({"content-encoding": "gzip"}))
    assert issubclass(AnswerTooLarge, CacheGridError) and not issubclass(AnswerTooLarge, MaybeSent)


@pytest.mark.parametrize(
    ("lines", "says"),
    [
        (["Accept-Encoding: gzip"], True),
        (["accept-encoding:  GZIP, br "], True),
        (["Accept-Encoding: identity"], False),
        ([], False),
        (["X-Accept-Encoding: gzip", "ETag: gzip"], False),  # gzip elsewhere says nothing
        (["Accept-Encoding: br", "accept-encoding: gzip"], True),  # several lines: joined
        (["Accept-Encoding: gzip", "Accept-Encoding: br"], True),
    ],
)
def test_a_write_answers_accept_encoding_is_read_alike_from_every_kind_of_headers(lines: list[str], says: bool) -> None:
    head = "\r\n".join(["HTTP/1.1 201 Created", *lines, "Content-Length: 2"]) + "\r\n"
    framed = framed_head(head)
    assert framed is not None
    parsed = Headers(dict(framed_head(head)[3].items()))  # type: ignore[index]
    for headers in (framed[3], parsed, CaseInsensitiveDict(dict(parsed))):
        uploads = Uploads()
        uploads.learn(HOST, Answer(201, b"{}", headers))
        assert uploads.accepts(HOST) is says
