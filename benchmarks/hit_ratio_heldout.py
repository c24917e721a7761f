"""Hit ratio of ``adaptive`` on traces it was not tuned on (the held-out set).

Run it on demand (it is not a test)::

    PYTHONHASHSEED=0 .venv/bin/python benchmarks/hit_ratio_heldout.py [--requests N] [--keys N]

``adaptive`` was tuned on the traces of hit_ratio.py; these six are
variations of them, each with its own cache size, to see whether what it
learnt holds elsewhere. They are built with hit_ratio.py's generators and
replayed the same way (a read, and on a miss a write; the hit ratio counts
the requests that fill the cache too), each with its own random generator
seeded with ``SEED`` (13); ``keys`` = 100,000 and ``requests`` = 300,000
unless told otherwise:

- ``zipf-0.7 @ 5,000``, ``zipf-1.2 @ 2,000``: Zipf's law with that exponent
  over ``keys`` keys (flatter and steeper than the tuning set's 0.8-0.99);
- ``recency, window 2 × C, 15% new @ 3,000``: 15% of the requests ask for a
  key never asked for before, the others repeat the key of a request drawn
  uniformly from the last 2 × C (C: the cache size);
- ``loop of 1.2 × C, hot C / 3 (30%) @ 3,000``: a cyclic scan over 1.2 × C
  keys, and 30% of the requests, at random, to C / 3 hot keys in a cycle of
  their own (``loop`` is 1.5 × C, C / 2 and 40%): every key comes back
  after more than C others, the hot ones about 1.5 times as often;
- ``zipf-0.9, popularity dealt anew 4 times @ 5,000``: Zipf 0.9 in five
  equal phases, the ranks dealt to the keys anew at the start of each of
  the last four (``zipf-shift`` deals them anew once, ``zipf-shift-twice``
  twice);
- ``zipf 0.9 and recency in turns, 6 phases @ 2,000``: six equal phases,
  Zipf 0.9 over ``keys`` keys in the first, third and fifth, ``recency``
  (window 4 × C, 10% new) in the others on keys beyond the Zipf ones. Each
  picks up where it left off: the Zipf phases keep one popularity, and a
  recency phase's window starts with the end of the previous one.

The columns are the main table's (``lru`` and ``adaptive``, CacheGrid's;
libcachesim's W-TinyLFU, S3-FIFO, SIEVE and ARC), and ``adaptive − best``:
``adaptive`` less the best of the others on that run. ``adaptive`` hashes
its keys (its ghosts), so its figures move a little with Python's hash
seed: the table in docs/benchmarks-hit-ratio.md is ``PYTHONHASHSEED=0``,
as is the main table. About half a minute on 2 shared cores.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import sys
import time
from collections.abc import Callable

from hit_ratio import (
    KEYS,
    SEED,
    Trace,
    best_rival,
    cachegrid_hits,
    libcachesim_hits,
    libcachesim_version,
    loop,
    recency,
    zipf,
)

REQUESTS = 300_000
POLICIES = ("adaptive", "lru")
LIBCACHESIM = ("WTinyLFU", "S3FIFO", "Sieve", "ARC")


def zipf_dealt_anew(rng: random.Random, keys: int, requests: int, deals: int) -> Trace:
    """Zipf 0.9 in ``deals`` + 1 equal phases, each with its ranks dealt anew."""
    phases = deals + 1
    lengths = [requests // phases] * deals + [requests - deals * (requests // phases)]
    return [key for length in lengths for key in zipf(rng, keys, 0.9, length)]


def zipf_recency_turns(rng: random.Random, keys: int, size: int, requests: int, phases: int) -> Trace:
    """Zipf 0.9 and ``recency`` (on keys beyond the Zipf ones) in turns, Zipf
    first, ``phases`` equal phases; each stream picks up where it left off."""
    zipf_phases = (phases + 1) // 2
    length = requests // phases
    popular = iter(zipf(rng, keys, 0.9, requests - (phases - zipf_phases) * length))
    recent = iter(keys + key for key in recency(rng, keys, size, (phases - zipf_phases) * length))
    trace: Trace = []
    for phase in range(phases):
        last = phase == phases - 1
        source = popular if phase % 2 == 0 else recent
        trace.extend(source if last else itertools.islice(source, length))
    return trace


def held_out(keys: int, requests: int) -> list[tuple[str, int, Callable[[], Trace]]]:
    """(name, cache size, trace maker) of the six held-out runs."""
    return [
        ("zipf-0.7", 5_000, lambda: zipf(random.Random(SEED), keys, 0.7, requests)),
        ("zipf-1.2", 2_000, lambda: zipf(random.Random(SEED), keys, 1.2, requests)),
        (
            "recency, window 2 × C, 15% new",
            3_000,
            lambda: recency(random.Random(SEED), keys, 3_000, requests, window=2, fresh_share=0.15),
        ),
        (
            "loop of 1.2 × C, hot C / 3 (30%)",
            3_000,
            lambda: loop(random.Random(SEED), 3_000, requests, scan=1.2, hot_divisor=3, hot_share=0.3),
        ),
        (
            "zipf-0.9, popularity dealt anew 4 times",
            5_000,
            lambda: zipf_dealt_anew(random.Random(SEED), keys, requests, deals=4),
        ),
        (
            "zipf 0.9 and recency in turns, 6 phases",
            2_000,
            lambda: zipf_recency_turns(random.Random(SEED), keys, 2_000, requests, phases=6),
        ),
    ]


def table(keys: int, requests: int, log: Callable[[str], None]) -> str:
    """The Markdown table of the held-out runs, with their average."""
    if libcachesim_version() is None:
        sys.exit("libcachesim is not installed (the dev extra): its columns are the rivals")
    started = time.monotonic()
    columns = list(POLICIES) + [f"lcs {name}" for name in LIBCACHESIM]
    rows = []
    for name, size, make in held_out(keys, requests):
        log(f"{name} @ {size}")
        trace = make()
        ratios = {policy: cachegrid_hits(policy, trace, size) / len(trace) for policy in POLICIES}
        for algorithm in LIBCACHESIM:
            ratios[f"lcs {algorithm}"] = libcachesim_hits(algorithm, trace, size) / len(trace)
        rows.append((f"{name} @ {size:,}", ratios))
    lines = [
        f"{keys:,} keys, {requests:,} requests per trace, seed {SEED}, "
        f"PYTHONHASHSEED={os.environ.get('PYTHONHASHSEED', 'random')}; {time.monotonic() - started:.0f} s",
        "",
        "| trace @ size | " + " | ".join(columns) + " | adaptive − best |",
        "| :--- | " + " | ".join("---:" for _ in columns) + " | ---: |",
    ]
    for run, ratios in rows:
        cells = " | ".join(f"{100 * ratios[column]:.1f}" for column in columns)
        lines.append(f"| {run} | {cells} | {100 * (ratios['adaptive'] - best_rival(ratios)):+.1f} |")
    average = " | ".join(f"{100 * sum(r[column] for _, r in rows) / len(rows):.1f}" for column in columns)
    lines.append(f"| **average** | {average} | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=KEYS)
    parser.add_argument("--requests", type=int, default=REQUESTS)
    args = parser.parse_args(argv)
    print(table(args.keys, args.requests, lambda message: print(message, file=sys.stderr, flush=True)))


if __name__ == "__main__":
    main()
