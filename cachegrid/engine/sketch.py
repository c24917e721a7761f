"""A frequency sketch: how often each key was used lately, in 4 bits.

The ``tinylfu`` policy (tinylfu.py) asks it which of two keys has been used
more often, including keys the store no longer holds. It is a count-min
sketch of 4-bit counters (so an estimate saturates at 15) that ages: counts
are halved as new uses arrive, so the past fades.

Layout
------
The table is an ``array('I')`` of ``width`` words, ``width`` a power of two
at least twice the number of entries the store holds (it starts at 1,024
words, or less for a small ``max_size``, and doubles as the store grows, up
to twice ``max_size``): 8 to 16 bytes per entry, no object per key. A word
holds 7 counters in its low 28 bits, so that it is a one-digit Python int,
which the interpreter handles fastest. A key's hash picks one word (its low
bits) and, for each of the four rows of the count-min sketch, one of the
word's 7 counters (from bits 32..47; two rows may pick the same counter). The
estimate is the smallest of the key's counters; a use adds one to each that
is below 15. Keeping a key's counters in one word costs some accuracy against
four independent rows, and makes a use one read and one write of the table
(the bit arithmetic runs on the whole word at once, and a carry out of a
counter tells that one was at 15), which is what a pure-Python hot path can
afford. The hash is Python's own ``hash(key)``, randomized per process, so
keys cannot be crafted to collide.

Aging in slices
---------------
Every ``5 × width`` counted uses (10 per entry, as Caffeine; a use that
changed no counter counts not),
every counter has been halved once: the table is cut into slices of
``SLICE_WORDS`` words and, every ``5 × width / slices`` uses, the next slice
is halved (one ``bytes.translate`` of 4 KiB, in C). So no use ever halves more
than one slice, whatever the size of the table; a table that fits in one
slice is halved all at once, as in Caffeine's sketch. Between two slices some
counters are halved and others not yet: estimates are off by at most a
factor of two for a while, the same error a halving makes anyway.

Growing the table doubles it by appending a copy of itself: a key's new word
is its old one or its copy, so every estimate survives the growth.
"""

from __future__ import annotations

from array import array

SLICE_WORDS = 1024  # 4 KiB of table halved at a time
SAMPLE_FACTOR = 5  # counted uses per word of table (10 per entry) between two halvings of a counter
_START_WIDTH = 1024  # 4 KiB: small tables crowd, and a copy would carry their noise on

COUNTERS_PER_WORD = 7  # 28 bits: a word stays a one-digit Python int (below 2**30), the fast kind
WORDS_PER_ENTRY = 2


def _positions(byte: int) -> tuple[int, int]:
    """The two counters (of a word's seven) one byte of a key's hash names."""
    return byte % COUNTERS_PER_WORD, byte // COUNTERS_PER_WORD % COUNTERS_PER_WORD


# The lowest bit of the two counters each byte names, for the 256 bytes.
_PAIR = tuple(sum({1 << 4 * position for position in _positions(byte)}) for byte in range(256))
# Halving both counters of a byte: each 4-bit half shifted right by one.
_HALVE = bytes((byte >> 1) & 0x77 for byte in range(256))


class FrequencySketch:
    __slots__ = ("table", "mask", "limit", "uses", "period", "next_slice")

    def __init__(self, max_width: int) -> None:
        entries = max(1, WORDS_PER_ENTRY * max_width)
        self.limit = 1 << (entries - 1).bit_length()  # the widest it may grow
        width = min(self.limit, _START_WIDTH)
        self._resize(width, array("I", bytes(4 * width)))

    def _resize(self, width: int, table: array) -> None:
        self.table = table
        self.mask = width - 1
        slices = max(1, width // SLICE_WORDS)
        self.period = max(1, SAMPLE_FACTOR * width // slices)  # counted uses between two slices
        self.uses = 0
        self.next_slice = 0

    @property
    def width(self) -> int:
        return self.mask + 1

    @property
    def nbytes(self) -> int:
        return 4 * len(self.table)

    def ensure_width(self, entries: int) -> None:
        """Grow (doubling) until the table has ``WORDS_PER_ENTRY`` words per entry."""
        while self.mask + 1 < WORDS_PER_ENTRY * entries and self.mask + 1 < self.limit:
            table = self.table
            table.extend(table)
            self._resize(len(table), table)

    def increment(self, key_hash: int, _pair: tuple = _PAIR) -> None:
        """Record one use of the key whose ``hash()`` is ``key_hash``."""
        index = key_hash & self.mask
        table = self.table
        word = table[index]
        one = _pair[(key_hash >> 32) & 255] | _pair[(key_hash >> 40) & 255]
        added = word + one
        if (added ^ word ^ one) & (one << 4):  # a carry out of a counter: some were at 15
            # Only the counters below 15 (all four of their bits not set).
            added = word + (one ^ (word & (word >> 1) & (word >> 2) & (word >> 3) & one))
            if added == word:
                return
        table[index] = added
        self.uses += 1
        if self.uses >= self.period:
            self.age()

    def frequency(self, key_hash: int) -> int:
        """The estimated recent uses of the key (0..15)."""
        word = self.table[key_hash & self.mask]
        low, high = _positions((key_hash >> 32) & 255), _positions((key_hash >> 40) & 255)
        return min((word >> 4 * position) & 15 for position in low + high)

    def age(self) -> None:
        """Halve the next slice of the table."""
        self.uses = 0
        view = memoryview(self.table).cast("B")
        start = self.next_slice * 4 * SLICE_WORDS
        end = min(start + 4 * SLICE_WORDS, len(view))
        view[start:end] = view[start:end].tobytes().translate(_HALVE)
        self.next_slice = 0 if end >= len(view) else self.next_slice + 1
