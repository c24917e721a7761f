"""Compression over HTTP: values held gzip-compressed, served as held to the
clients that accept gzip, and compressed request bodies read safely.

docs/compression.md says what a user sees and why gzip; this is how.

Held compressed
---------------
A value written with at least ``compress_threshold`` bytes (its compact JSON,
or a binary value's bytes) is compressed in the request's thread, outside
the engine's lock (``Compressor.pack``), and held compressed when that saves
at least ``compress_min_saving`` of its size; the engine keeps the gzip
member with a flag and the original size (engine/entry.py), and charges it
as held. Below the threshold a write pays one comparison (``compress_from``
is the threshold, or ``sys.maxsize`` when compression is off).

Served
------
A GET of a value held compressed selects its representation from
``Accept-Encoding`` (``accepts_gzip``): gzip, the held bytes as they are with
``Content-Encoding: gzip``, when the header allows gzip (by name, as
``x-gzip`` or by ``*``, with a q-value above 0); identity otherwise,
decompressed, also when there is no header at all (as curl sends none).
Both answers carry ``Vary: Accept-Encoding``, and their strong ETags differ
(``ETags.of``: the gzip one ends in ``-gzip``), as RFC 9110 asks of two
representations. A batch get's answer is compressed on the fly when it is at
least ``compress_threshold`` bytes and the client accepts gzip; a single
value held as sent is never compressed on the fly.

Compressed uploads
------------------
A PUT or a batch set whose ``Content-Encoding`` is ``gzip`` (or ``x-gzip``;
``identity`` is no coding) is inflated before it is read as any body is
(``read_coded_body``); any other coding is refused with 415 naming the
supported ones, before the body is read. Inflating is incremental, at most
``INFLATE_CHUNK`` bytes of output a step, and stops with 413 as soon as the
output passes its limit (``max_value_size`` for a value, ``max_body_size``
for a batch): a small body that inflates to gigabytes costs at most the
limit and a step of memory. A body that is not the gzip it claims to be
(not gzip at all, cut short, garbage after it) is a 400. When the body is
one gzip member whose content is exactly the value to hold (compact JSON,
or bytes) and it saves enough, it is held as sent: no work to compress again.

Inflated values kept for identity reads
---------------------------------------
An identity read of a value held compressed would inflate it on every
request (about 30 µs for the issue's 20 KB document: half the requests a
second at c32). ``InflatedValues`` keeps the inflations of the values read
so most recently, by key, up to ``inflated_cache_size`` bytes (0: none
kept), least recently read first out.

A kept inflation is served only while the key's held bytes are still the
very bytes it was inflated from: each slot keeps the gzip member beside its
inflation, and a read compares the two members, byte for byte (a memcmp of
a few KB, under 1 µs), before it uses the slot. Equal members inflate to
equal values, so whatever happened to the key meanwhile (a write, a delete
and a new write, an expiry, an eviction, a clear, a snapshot restored, which
starts the store's versions again) a slot can never answer with anything
but the key's current value. Nothing has to tell it of changes, then, and
nothing does: the engine's one change hook is the event stream's, and a
hook would cost every write of a small value a call. A slot whose key was
written, deleted or evicted is dead weight until it ages out, or until the
key's next identity read replaces it; ``DELETE /cache`` (a clear) and a
``DELETE`` of the key drop it at once, since those paths are the daemon's.

The bound counts both members of each slot and a fixed overhead, and
holds at every moment: a value whose slot would take more than a quarter
of it is inflated per read and not kept, so one large value cannot wipe
the others out. It is memory outside what the engine charges (its limits
and evictions do not see it): /stats (``inflated_cache_bytes``, and its
hits and misses) and /metrics report it. One lock guards the slots; it is
held for the lookup, the comparison and the bookkeeping, never while
inflating, so gthread's threads inflate in parallel (zlib releases the GIL).
"""

from __future__ import annotations

import sys
import threading
import zlib
from collections import OrderedDict
from functools import lru_cache
from typing import Any

import falcon

from ..config import Settings
from .body import read_body
from .errors import ApiError

GZIP = "gzip"
ETAG_SUFFIX = "-gzip"  # the gzip representation's ETag: "<epoch>-<version>-gzip"
VARY = ("vary", "Accept-Encoding")
CONTENT_ENCODING = ("content-encoding", GZIP)
# On the answers to writes (a PUT of a value, a batch set) and /health: the
# codings this server reads in a request body (RFC 9110 12.5.3 lets a
# response say so). The clients send large values gzip-compressed only to a
# server that said it; an older one never does, so a rolling upgrade works.
ACCEPTS_CODINGS = ("accept-encoding", GZIP)
# Level 1: docs/compression.md's measurements (a third of the time of level
# 6 for 0.21 against 0.17 of the size on the 20 KB JSON).
GZIP_LEVEL = 1
_GZIP_WBITS = 31  # zlib's window bits for a gzip member (16 + 15)
INFLATE_CHUNK = 256 * 1024  # most output bytes one inflate step makes
SUPPORTED_CODINGS = ("gzip", "identity")
_GZIP_NAMES = frozenset({"gzip", "x-gzip"})  # x-gzip: RFC 9110 8.4.1.3


def gzip_bytes(value: bytes) -> bytes:
    """One gzip member of ``value`` (no name, no time: the same bytes every time)."""
    packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
    return packer.compress(value) + packer.flush()


def gunzip(held: bytes, size: int) -> bytes:
    """The value held as one gzip member (the server's own bytes: trusted),
    ``size`` bytes long: zlib's output buffer is made that size at once
    (without the hint it grows in steps and is copied once more at the end,
    a third of the time of a 20 KB value's decompression)."""
    return zlib.decompress(held, _GZIP_WBITS, size or 1)


class Compressor:
    """The two settings, and what a write does with them."""

    def __init__(self, settings: Settings) -> None:
        self.threshold = settings.compress_threshold
        # What a write compares a value's length with: one comparison below it.
        self.compress_from = settings.compress_threshold or sys.maxsize
        self.max_held = 1.0 - settings.compress_min_saving  # held ÷ original at most

    def saves_enough(self, held: int, original: int) -> bool:
        return held <= original * self.max_held

    def pack(self, value: bytes) -> bytes | None:
        """``value`` compressed, when that saves enough; None to hold it as
        it is. The caller has compared its length with ``compress_from``."""
        packed = gzip_bytes(value)
        return packed if self.saves_enough(len(packed), len(value)) else None

    def held(self, value: bytes, sent: bytes | None) -> bytes | None:
        """What to hold for ``value`` compressed (None: as it is). ``sent``:
        the gzip member it arrived in, when its content is exactly ``value``."""
        if len(value) < self.compress_from:
            return None
        if sent is not None and self.saves_enough(len(sent), len(value)):
            return sent
        return self.pack(value)


# -- inflations kept for identity reads -----------------------------------------------

# Bytes a slot costs beyond its two members: the OrderedDict's node, the
# tuple, the two bytes objects' headers (measured with sys.getsizeof, rounded up).
SLOT_OVERHEAD = 256


class InflatedValues:
    """The inflations of the values read most recently (see the module docstring)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.largest = capacity // 4  # the most one slot may take
        self._slots: OrderedDict[str, tuple[bytes, bytes]] = OrderedDict()  # key: (held, inflated)
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def value(self, key: str, held: bytes, size: int) -> bytes:
        """The value of ``key`` held as the gzip member ``held``, ``size`` bytes inflated."""
        with self._lock:
            slot = self._slots.get(key)
            if slot is not None and slot[0] == held:
                self._slots.move_to_end(key)
                self.hits += 1
                return slot[1]
            self.misses += 1
        value = gunzip(held, size)
        cost = len(held) + len(value) + SLOT_OVERHEAD
        if cost <= self.largest:
            self._keep(key, held, value, cost)
        return value

    def _keep(self, key: str, held: bytes, value: bytes, cost: int) -> None:
        with self._lock:
            old = self._slots.pop(key, None)
            if old is not None:
                self._bytes -= _cost(old)
            self._slots[key] = (held, value)
            self._bytes += cost
            while self._bytes > self.capacity:
                self._bytes -= _cost(self._slots.popitem(last=False)[1])

    def drop(self, *keys: str) -> None:
        """Forget the slots of ``keys`` (deleted: their memory is freed at once)."""
        if not self._slots:  # nothing kept: no lock to take
            return
        with self._lock:
            for key in keys:
                old = self._slots.pop(key, None)
                if old is not None:
                    self._bytes -= _cost(old)

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()
            self._bytes = 0

    def stats(self) -> dict[str, Any]:
        """The fields /stats and /metrics report."""
        with self._lock:
            return {
                "inflated_cache_bytes": self._bytes,
                "inflated_cache_entries": len(self._slots),
                "inflated_cache_max_bytes": self.capacity,
                "inflated_cache_hits": self.hits,
                "inflated_cache_misses": self.misses,
            }


def _cost(slot: tuple[bytes, bytes]) -> int:
    return len(slot[0]) + len(slot[1]) + SLOT_OVERHEAD


class NoInflatedValues(InflatedValues):
    """``inflated_cache_size = 0``: every identity read inflates, nothing is kept or counted."""

    def __init__(self) -> None:
        super().__init__(0)

    def value(self, key: str, held: bytes, size: int) -> bytes:
        return gunzip(held, size)


def inflated_values(capacity: int) -> InflatedValues:
    return InflatedValues(capacity) if capacity > 0 else NoInflatedValues()


# -- Accept-Encoding ------------------------------------------------------------------


@lru_cache(maxsize=256)
def accepts_gzip(header: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header allows gzip (RFC 9110 12.5.3):
    gzip or x-gzip with a q-value above 0, or else ``*`` with one. No
    header: identity (curl sends none; the issue's rule, and the safe one)."""
    if not header:
        return False
    named = wildcard = None
    for part in header.split(","):
        coding, _, parameters = part.partition(";")
        coding = coding.strip().lower()
        weight = _q_value(parameters)
        if coding in _GZIP_NAMES:
            named = weight if named is None else max(named, weight)
        elif coding == "*":
            wildcard = weight
    if named is not None:
        return named > 0
    return wildcard is not None and wildcard > 0


def _q_value(parameters: str) -> float:
    """The q-value among a coding's parameters: 1 when absent, 0 when malformed."""
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                weight = float(value.strip())
            except ValueError:
                return 0.0
            return weight if 0 <= weight <= 1 else 0.0
    return 1.0


# -- compressed request bodies --------------------------------------------------------


def body_coding(header: str | None) -> str | None:
    """The coding of a request body: None (identity) or ``GZIP``; 415 for any other."""
    if not header:
        return None
    codings = [coding.strip().lower() for coding in header.split(",")]
    codings = [coding for coding in codings if coding and coding != "identity"]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in _GZIP_NAMES:
        return GZIP
    raise ApiError(
        415,
        "unsupported_content_encoding",
        f"the body's Content-Encoding is {header!r}; this server reads {' and '.join(SUPPORTED_CODINGS)}",
        supported=list(SUPPORTED_CODINGS),
    )


def inflate(body: bytes, limit: int) -> tuple[bytes, bool]:
    """The content of the gzip ``body`` and whether it was one member; 413
    as soon as it passes ``limit`` bytes, 400 when ``body`` is not gzip."""
    parts: list[bytes] = []
    total, rest, members = 0, body, 0
    while rest:
        members += 1
        inflater = zlib.decompressobj(_GZIP_WBITS)
        pending = rest
        try:
            while True:
                out = inflater.decompress(pending, INFLATE_CHUNK)
                total += len(out)
                if total > limit:
                    raise _too_large(limit)
                parts.append(out)
                pending = inflater.unconsumed_tail
                if inflater.eof or not pending:
                    break
            if not inflater.eof:  # what zlib still holds is at most a few bytes
                out = inflater.flush()
                total += len(out)
                if total > limit:
                    raise _too_large(limit)
                parts.append(out)
        except zlib.error as error:
            raise _not_gzip(f"it is not gzip ({error})") from None
        if not inflater.eof:
            raise _not_gzip("it ends before its gzip stream does")
        rest = inflater.unused_data  # another member (RFC 1952 allows several), or garbage
    if not members:
        raise _not_gzip("it is empty")
    return b"".join(parts), members == 1


def read_coded_body(req: falcon.Request, settings: Settings, limit: int) -> tuple[bytes, bytes | None]:
    """The body as its sender means it, inflated when its Content-Encoding
    says gzip (``limit``: the most it may inflate to), and the gzip member it
    came in (None: none, or several). 415 for an unsupported coding."""
    coding = body_coding(req.get_header("Content-Encoding"))
    body = read_body(req, settings.max_body_size, allow_empty=True)
    if coding is None:
        return body, None
    content, single = inflate(body, limit)
    return content, body if single else None


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "value_too_large", f"the body inflates to more than {limit} bytes, the limit", limit=limit)


def _not_gzip(why: str) -> ApiError:
    return ApiError(400, "invalid_content_encoding", f"the body is labelled Content-Encoding: gzip, but {why}")
