"""A frequency sketch: how often each key was used lately, in 4 bits.

The ``tinylfu`` policy (tinylfu.py) asks it which of two keys has been used
more often, including keys the store no longer holds. It is a count-min
sketch of 4-bit counters (so an estimate saturates at 15) that ages: counts
are halved as new uses arrive, so the past fades.

Layout
------
The table is an ``array('Q')`` of ``width`` 64-bit words, ``width`` a power
of two at least as large as the number of entries the store holds (it
starts at ``max_size`` or 1,024 words, whichever is smaller, and doubles as
the store grows, up to ``max_size``): 8 to 16 bytes per entry, no object per
key. A word holds 16 counters. A key's hash picks one word (its low bits) and,
for each of the four rows of the count-min sketch, one of the word's 16
counters (four more bits a row; two rows may pick the same counter). The
estimate is the smallest of the key's counters; a use adds one to each that
is below 15. Keeping a key's counters in one word costs a little accuracy
against four independent rows, and makes a use one read and one write of the
table (the bit arithmetic runs on the whole word at once), which is what a
pure-Python hot path can afford. The hash is Python's own ``hash(key)``,
randomized per process, so keys cannot be crafted to collide.

Aging in slices
---------------
Every ``10 × width`` counted uses (a use that changed no counter counts not),
every counter has been halved once: the table is cut into slices of
``SLICE_WORDS`` words and, every ``10 × width / slices`` uses, the next slice
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

SLICE_WORDS = 512  # 4 KiB of table halved at a time
SAMPLE_FACTOR = 10  # counted uses per word of table between two halvings of a counter
_START_WIDTH = 1024  # 8 KiB: small tables crowd, and a copy would carry their noise on

# The four counters a key uses: bits 32..47 of its hash, four bits a row,
# each name one of the word's 16 counters. _PAIR holds the lowest bit of the
# counters named by one byte of those (two rows), for the 256 bytes.
_PAIR = tuple((1 << 4 * (byte & 15)) | (1 << 4 * (byte >> 4)) for byte in range(256))
# Halving both counters of a byte: each 4-bit half shifted right by one.
_HALVE = bytes((byte >> 1) & 0x77 for byte in range(256))


class FrequencySketch:
    __slots__ = ("table", "mask", "limit", "uses", "period", "next_slice")

    def __init__(self, max_width: int) -> None:
        self.limit = 1 << max(0, max_width - 1).bit_length()  # the widest it may grow
        width = min(self.limit, _START_WIDTH)
        self._resize(width, array("Q", bytes(8 * width)))

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
        return 8 * len(self.table)

    def ensure_width(self, entries: int) -> None:
        """Grow (doubling) until the table has at least a word per entry."""
        while self.mask + 1 < entries and self.mask + 1 < self.limit:
            table = self.table
            table.extend(table)
            self._resize(len(table), table)

    def increment(self, key_hash: int, _pair: tuple = _PAIR) -> None:
        """Record one use of the key whose ``hash()`` is ``key_hash``."""
        index = key_hash & self.mask
        table = self.table
        word = table[index]
        one = _pair[(key_hash >> 32) & 255] | _pair[(key_hash >> 40) & 255]
        # The chosen counters that are at 15 already: all four of their bits set.
        saturated = word & (word >> 1) & (word >> 2) & (word >> 3) & one
        if saturated != one:
            table[index] = word + (one ^ saturated)
            self.uses += 1
            if self.uses >= self.period:
                self._age()

    def frequency(self, key_hash: int) -> int:
        """The estimated recent uses of the key (0..15)."""
        word = self.table[key_hash & self.mask]
        return min((word >> 4 * ((key_hash >> shift) & 15)) & 15 for shift in (32, 36, 40, 44))

    def _age(self) -> None:
        """Halve the next slice of the table."""
        self.uses = 0
        view = memoryview(self.table).cast("B")
        start = self.next_slice * 8 * SLICE_WORDS
        end = min(start + 8 * SLICE_WORDS, len(view))
        view[start:end] = view[start:end].tobytes().translate(_HALVE)
        self.next_slice = 0 if end >= len(view) else self.next_slice + 1
