"""A GET's answer read (protocol.read_or): binary by its Content-Type, JSON
otherwise, whatever kind of headers the transport made of it; and the plain
read's Call, made once per key."""

from __future__ import annotations

import pytest
from requests.structures import CaseInsensitiveDict

from cachegrid.client import protocol
from cachegrid.client.protocol import Answer, get_call, read_or
from cachegrid.client.wire import Headers, framed_head

BODY = b'{"a":"application/octet-stream"}'


def head_text(*lines: str) -> Headers:
    framed = framed_head("\r\n".join(["HTTP/1.1 200 OK", *lines, f"Content-Length: {len(BODY)}"]) + "\r\n")
    assert framed is not None
    return framed[3]


@pytest.mark.parametrize(
    ("lines", "binary"),
    [
        (["Content-Type: application/json"], False),
        (["content-type: application/octet-stream"], True),
        (["X-Cache-Tags: octet-stream", "Content-Type: application/json"], False),  # the word elsewhere
        (["Content-Type: Application/Octet-Stream"], False),  # as the lookup compares: case and all
        (["X-Cache-Type: binary"], False),  # no Content-Type at all: JSON
    ],
)
def test_a_value_is_binary_by_its_content_type_in_every_kind_of_headers(lines: list[str], binary: bool) -> None:
    text = head_text(*lines)
    parsed = Headers(dict(text.items()))  # the line by line parse's
    library = CaseInsensitiveDict(dict(text.items()))  # requests'
    for headers in (head_text(*lines), parsed, library):
        assert read_or(Answer(200, BODY, headers)) == (BODY if binary else {"a": "application/octet-stream"})


def test_a_plain_read_has_one_call_per_key_and_a_default_its_own() -> None:
    assert get_call("k") is get_call("k") and get_call("k").path == "/cache/k"
    miss = Answer(404, b'{"error":"not_found","message":"m","key":"k"}', Headers())
    assert get_call("k").read(miss) is None
    with_default = get_call("k", 7)
    assert with_default is not get_call("k", 7) and with_default.read(miss) == 7


def test_the_kept_calls_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "MAX_ITEM_PATHS", 8)
    monkeypatch.setattr(protocol, "_GET_CALLS", {})
    for n in range(50):
        get_call(f"key-{n}")
        assert len(protocol._GET_CALLS) <= 8
