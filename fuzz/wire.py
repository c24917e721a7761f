"""What the fuzz harnesses and the corpus replay test share: how an input is
cut into pieces, how the answers are read back, and which answers are faults.

An input (a corpus file) is: byte 0, whose value modulo 8 is the number n of
cut points; n little-endian 16-bit offsets, each taken modulo the request's
length + 1; then the raw bytes a client sends. The C parser target
(``parser_fuzzer.c``) reads the same layout, so the three share one corpus.
An input too short for its cuts is one piece.

A fault is a 5xx answer other than three that are meant: 501 (a transfer
coding the server does not implement), 505 (an HTTP version it does not
serve) and 503, which meinheld writes when the client ends its input before
the request is complete (every harness half-closes its side once it has sent
everything, so an incomplete request always ends that way).
"""

from __future__ import annotations

import re

MAX_CUTS = 7
MEANT_5XX = frozenset({501, 503, 505})
# Event streams never end by themselves: a harness cannot tell one from a
# hang, so they are left out (the harness answers 404 for them, the replay
# test skips an input that asks for one).
STREAM_PATH = b"/events"

_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})[^\r\n]*\r\n")
_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


def split(data: bytes) -> list[bytes]:
    """The non-empty pieces that ``data`` (an input, in the layout above) is sent in."""
    if not data:
        return []
    wanted = data[0] % (MAX_CUTS + 1)
    if len(data) < 1 + 2 * wanted:
        return [data]
    raw = data[1 + 2 * wanted :]
    cuts = sorted(int.from_bytes(data[1 + 2 * i : 3 + 2 * i], "little") % (len(raw) + 1) for i in range(wanted))
    pieces = []
    start = 0
    for end in [*cuts, len(raw)]:
        if end > start:
            pieces.append(raw[start:end])
            start = end
    return pieces


def encode(raw: bytes, cuts: list[int] | None = None) -> bytes:
    """The input that sends ``raw`` cut at ``cuts`` (at most seven offsets)."""
    cuts = cuts or []
    if len(cuts) > MAX_CUTS or any(not 0 <= cut <= min(len(raw), 0xFFFF) for cut in cuts):
        raise ValueError(f"at most {MAX_CUTS} cuts, each inside the request")
    return bytes([len(cuts)]) + b"".join(cut.to_bytes(2, "little") for cut in cuts) + raw


def statuses(received: bytes) -> list[int]:
    """The status codes of the answers in ``received``, in order; reading
    stops at the first thing that is not an answer where one should start
    (an answer without a length, a HEAD answer's missing body)."""
    found = []
    position = 0
    while match := _STATUS_LINE.match(received, position):
        found.append(int(match.group(1)))
        end = received.find(b"\r\n\r\n", match.start())
        if end < 0:
            break
        length = _LENGTH.search(received, match.start(), end + 2)
        position = end + 4 + (int(length.group(1)) if length else 0)
    return found


def faults(codes: list[int]) -> list[int]:
    """The codes among ``codes`` that are a server fault."""
    return [code for code in codes if code >= 500 and code not in MEANT_5XX]
