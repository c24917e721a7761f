"""Measure what an entry really costs, per policy, with tracemalloc.

The store charges each entry ``len(key) + len(value) + entry_overhead`` (plus
``ttl_overhead`` with a TTL); the overheads are constants of each policy. This
module is where they come from and how they are checked: it fills a cache
under tracemalloc and compares the bytes Python allocated with what the cache
claims. ``python -m cachegrid.engine.calibrate`` prints the measured overheads
to copy into the policies; tests/engine/test_memory.py checks the claim stays
within 10% of the truth.

Keys look like ``user:000123``; values are distinct ``bytes`` objects of the
given size, as the daemon stores them.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from dataclasses import dataclass

from .cache import Cache
from .registry import POLICIES


@dataclass(frozen=True)
class Measurement:
    policy: str
    entries: int
    value_size: int
    with_ttl: bool
    traced_bytes: int  # what tracemalloc saw allocated for the filled cache
    claimed_bytes: int  # the cache's memory_usage
    payload_bytes: int  # len(key) + len(value), summed

    @property
    def overhead_per_entry(self) -> float:
        """Bytes per entry beyond the key and value lengths."""
        return (self.traced_bytes - self.payload_bytes) / self.entries

    @property
    def claim_error(self) -> float:
        """(claimed - traced) / traced."""
        return (self.claimed_bytes - self.traced_bytes) / self.traced_bytes


def measure(policy: str, entries: int, value_size: int, with_ttl: bool = False) -> Measurement:
    """Fill a fresh cache of ``policy`` with ``entries`` entries under
    tracemalloc; the keys and values are made inside the measured span, since
    the cache keeps them."""
    gc.collect()
    already_tracing = tracemalloc.is_tracing()
    if not already_tracing:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cache = Cache(policy, max_size=entries, max_memory=1 << 62, max_value_size=max(value_size, 1))
        ttl = 3600.0 if with_ttl else None
        payload = 0
        for i in range(entries):
            key = f"user:{i:06d}"
            # A distinct object per entry, whatever the size (b"" would be shared).
            value = (b"%06d" % i).ljust(value_size, b"x")[:value_size] if value_size else b""
            cache.set(key, value, ttl)
            payload += len(key) + len(value)
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - before
        claimed = cache.memory_usage
    finally:
        if not already_tracing:
            tracemalloc.stop()
    del cache
    return Measurement(policy, entries, value_size, with_ttl, traced, claimed, payload)


def main(argv: list[str]) -> None:
    entries = int(argv[0]) if argv else 100_000
    print(f"{'policy':<11} {'value':>6} {'ttl':>4} {'overhead/entry':>15} {'claim error':>12}")
    for policy in POLICIES:
        for value_size in (25, 1024):
            for with_ttl in (False, True):
                m = measure(policy, entries, value_size, with_ttl)
                print(
                    f"{policy:<11} {value_size:>6} {with_ttl!s:>4} "
                    f"{m.overhead_per_entry:>15.1f} {m.claim_error:>+12.1%}"
                )


if __name__ == "__main__":
    main(sys.argv[1:])
