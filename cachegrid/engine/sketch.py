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
bits) and four distinct counters of the word's 7 (one of the 35 ways to
choose four, by the hash modulo 35; ``PATTERNS``). The
estimate is the smallest of the key's counters; a use adds one to each that
is below 15. Keeping a key's counters in one word costs some accuracy against
four independent rows, and makes a use one read and one write of the table
(the bit arithmetic runs on the whole word at once, and a carry out of a
counter tells that one was at 15), which is what a pure-Python hot path can
afford. The hash is Python's own ``hash(key)``, randomized per process, so
keys cannot be crafted to collide.

Aging in slices
---------------
Every ``5 × width`` uses (10 per entry where the table is exactly two words
per entry, as Caffeine's 10; up to 20 where the power of two rounds it up:
10.24 at 1,000 entries and 16.4 at 10,000; unlike Caffeine a use that found
all its counters at 15 counts too), every counter
has been halved once: the table is cut into slices of ``SLICE_WORDS`` words
and, every ``5 × width / slices`` uses, the next slice is halved (one
``bytes.translate`` of 4 KiB, in C). A table that fits in one slice is
halved all at once, as in Caffeine's sketch. Between two slices some
counters are halved and others not yet: estimates are off by at most a
factor of two for a while, the same error a halving makes anyway.

The read path (tinylfu.py) only calls ``add``, which counts nothing: its owner
counts those uses anyway (the store's hits) and hands the running count to
``catch_up`` on its writes, which halves the slices that are due, at most
four per call (the rest stay owed; more than four full halvings owed, which
would zero every counter, are dropped). So no call ever halves more than
four slices, whatever the size of the table, and a run of reads without
writes halves nothing until the next write, the only time estimates are
compared.

Growing the table doubles it by appending a copy of itself: a key's new word
is its old one or its copy, so every estimate survives the growth.
"""

from __future__ import annotations

import itertools
from array import array

SLICE_WORDS = 1024  # 4 KiB of table halved at a time
SAMPLE_FACTOR = 5  # counted uses per word of table (10 per entry) between two halvings of a counter
_START_WIDTH = 1024  # 4 KiB: small tables crowd, and a copy would carry their noise on

COUNTERS_PER_WORD = 7  # 28 bits: a word stays a one-digit Python int (below 2**30), the fast kind
WORDS_PER_ENTRY = 2


# The four counters (of a word's seven) a key uses: four distinct ones, one of
# the 35 ways to choose them, picked by the key's hash (``pattern``).
PATTERNS = tuple(itertools.combinations(range(COUNTERS_PER_WORD), 4))
# Adding one to each counter of a pattern: the lowest bit of each.
ONES = tuple(sum(1 << 4 * position for position in pattern) for pattern in PATTERNS)
# The same counters as shifts: where each starts in the word.
SHIFTS = tuple(tuple(4 * position for position in pattern) for pattern in PATTERNS)
# Halving both counters of a byte: each 4-bit half shifted right by one.
_HALVE = bytes((byte >> 1) & 0x77 for byte in range(256))
# Four full halvings of the table zero every counter: aging owed beyond that is dropped.
_MAX_HALVINGS_OWED = 4


def pattern(key_hash: int) -> int:
    """Which of ``PATTERNS`` the key whose ``hash()`` is ``key_hash`` uses."""
    return key_hash % len(PATTERNS)


class FrequencySketch:
    __slots__ = ("limit", "mask", "next_slice", "period", "reads_seen", "table", "uses")

    def __init__(self, max_width: int, reads: int = 0) -> None:
        entries = max(1, WORDS_PER_ENTRY * max_width)
        self.limit = 1 << (entries - 1).bit_length()  # the widest it may grow
        self.reads_seen = reads  # the owner's count of reads when last looked at (``catch_up``)
        width = min(self.limit, _START_WIDTH)
        self._resize(width, array("I", bytes(4 * width)))

    def _resize(self, width: int, table: array) -> None:
        self.table = table
        self.mask = width - 1
        slices = max(1, width // SLICE_WORDS)
        self.period = max(1, SAMPLE_FACTOR * width // slices)  # counted uses between two slices
        self.uses = 0  # counted uses since the last slice was halved
        self.next_slice = 0

    @property
    def width(self) -> int:
        return self.mask + 1

    @property
    def nbytes(self) -> int:
        return 4 * len(self.table)

    def ensure_width(self, entries: int) -> bool:
        """Grow (doubling) until the table has ``WORDS_PER_ENTRY`` words per
        entry; whether it grew (``table`` is the same array, ``mask`` not)."""
        grew = False
        while self.mask + 1 < WORDS_PER_ENTRY * entries and self.mask + 1 < self.limit:
            table = self.table
            table.extend(table)
            self._resize(len(table), table)
            grew = True
        return grew

    def add(self, key_hash: int, _ones: tuple = ONES, _patterns: int = len(PATTERNS)) -> None:
        """One use of the key: each of its counters below 15 goes up by one.
        Counts nothing towards aging (``increment`` and ``catch_up`` do)."""
        index = key_hash & self.mask
        table = self.table
        word = table[index]
        one = _ones[key_hash % _patterns]
        added = word + one
        if (added ^ word ^ one) & (one << 4):  # a carry out of a counter: some were at 15
            # Only the counters below 15 (all four of their bits not set).
            added = word + (one ^ (word & (word >> 1) & (word >> 2) & (word >> 3) & one))
        table[index] = added

    def increment(self, key_hash: int) -> None:
        """Record one use of the key whose ``hash()`` is ``key_hash``, and count it."""
        self.add(key_hash)
        self.uses += 1
        if self.uses >= self.period:
            self.catch_up(self.reads_seen)

    def catch_up(self, reads: int, most: int = 4) -> None:
        """Count the uses its owner recorded with ``add`` alone (``reads``:
        the owner's running count of them, e.g. the store's hits) and halve
        the slices that are due, at most ``most`` of them in this call (the
        rest stay owed, and are halved by the next calls)."""
        self.uses += reads - self.reads_seen
        self.reads_seen = reads
        owed = _MAX_HALVINGS_OWED * (len(self.table) // SLICE_WORDS or 1) * self.period
        if self.uses > owed:
            self.uses = owed
        while self.uses >= self.period and most:
            self.uses -= self.period
            self.age()
            most -= 1

    def frequency(self, key_hash: int, _shifts: tuple = SHIFTS, _patterns: int = len(PATTERNS)) -> int:
        """The estimated recent uses of the key (0..15)."""
        word = self.table[key_hash & self.mask]
        a, b, c, d = _shifts[key_hash % _patterns]
        return min((word >> a) & 15, (word >> b) & 15, (word >> c) & 15, (word >> d) & 15)

    def age(self) -> None:
        """Halve the next slice of the table."""
        view = memoryview(self.table).cast("B")
        start = self.next_slice * 4 * SLICE_WORDS
        end = min(start + 4 * SLICE_WORDS, len(view))
        view[start:end] = view[start:end].tobytes().translate(_HALVE)
        self.next_slice = 0 if end >= len(view) else self.next_slice + 1
