"""Hit ratio of every CacheGrid policy against libcachesim's and Belady's OPT.

Run it on demand (it is not a test)::

    .venv/bin/python benchmarks/hit_ratio.py [--requests N] [--output PATH] [--ablation]
        [--every-policy] [--only TRACE] [--adaptive-ablation REQUESTS]

Each trace is a list of keys, replayed as a cache server sees it: a read,
and on a miss a write of the key (every entry has the same size, so a cache
of ``size`` holds ``size`` entries). The hit ratio is hits / requests,
including the first requests that fill the cache.

The traces (one random generator per trace, seeded with ``SEED`` = 13, so
every run replays the same requests); ``keys`` = 100,000 and ``requests`` =
1,000,000 unless ``--requests`` says otherwise, and each is replayed with a
cache of 1% and of 10% of the keys (1,000 and 10,000 entries):

- ``zipf-0.8``, ``zipf-0.99``: each request draws a key of Zipf's law with
  that exponent (the key of rank r has weight 1 / r^α) over ``keys`` keys,
  ranks assigned to keys in a shuffled order;
- ``loop``: built per cache size C: a cyclic scan over 1.5 × C keys, in
  the same order every time; 40% of the requests, interleaved at random, go to
  a hot set of C / 2 other keys, in a cycle of their own. Every key comes back only after
  more than C other keys were asked for, so LRU hits nothing; the hot keys
  are asked for twice as often as the scanned ones;
- ``zipf-shift``: Zipf 0.9 over ``keys`` keys; at the halfway point the
  ranks are dealt to the keys anew (the hot keys change);
- ``recency``: 10% of the requests ask for a key never asked for before (the
  next of ``keys`` fresh keys while any is left); the others repeat the key of
  a request drawn uniformly from the last 4 × C requests (C: the cache size
  of the run, so this trace is built per size too). Recency is all there is
  to learn: LRU's best case;
- ``recency-wide``: the same with 5% new keys and a window of 16 × C
  requests: recency still, but more than the cache can hold;
- ``zipf-scans``: Zipf 0.9; after every 20,000 requests, a scan of 5,000
  keys asked for once and never again (a fifth of the requests);
- ``zipf-shift-twice``: Zipf 0.9, the ranks dealt anew at a third and at
  two thirds of the trace;
- ``tenants``: two tenants on disjoint keys, their requests interleaved at
  random, half each: a fifth of the keys under Zipf 1.0, the rest under
  Zipf 0.7.

The columns: CacheGrid's ``lru``, ``tinylfu`` and ``adaptive`` (the stores
themselves, without the lock of ``Cache``; ``--every-policy`` adds the
other policies and the two variants below); ``tinylfu climbing``, ``tinylfu`` with its hill climber on
(the policy option ``climb``: the window's share adapts); libcachesim's LRU, W-TinyLFU (window 1%, SLRU main: the same
design as ``tinylfu``), S3-FIFO, SIEVE and ARC, driven with the same requests
one by one; and Belady's OPT (evict the key asked for again the furthest in
the future), computed here, the upper bound of every column. ``noeviction``
keeps the first keys it is given and refuses the rest.

``tinylfu, lcs rules`` is ``tinylfu``'s machinery (its window, main and
duel) counting as libcachesim's W-TinyLFU counts (lcs_rules.py: its
counters, what it counts, its aging, no random admission, protected in LRU
order, its window while the cache fills); it replays libcachesim's
W-TinyLFU hit for hit. ``--ablation`` adds a second table: on the traces
where ``tinylfu`` is more than 1.5 points from libcachesim's W-TinyLFU at
one size at least (``ABLATION_TRACES``), the hit ratio with only one of
those rules switched to libcachesim's, and with all but one (about 11
minutes more).

``adaptive − best`` is ``adaptive`` less the best of ``RIVALS`` (``lru``
and libcachesim's five) on each run, the goal of issue 27 (each run at
most a point below). ``--adaptive-ablation REQUESTS`` replaces the tables
by one of ``adaptive`` with one of its rules changed at a time
(``ADAPTIVE_ABLATIONS``), on traces of REQUESTS requests. ``--only`` keeps
the named traces alone (for a quick look). hit_ratio_heldout.py replays
six variations of these traces, built with these generators, that
``adaptive`` was not tuned on.

Run time, on 2 shared cores (load average about 3): the main table about
30 minutes (18 runs of 1,000,000 requests; each column about 8 s a run,
OPT's and libcachesim's 2-4 s); ``--adaptive-ablation 150000`` about 10;
``--every-policy`` adds about 1.5 minutes a run, ``--ablation`` 11 more.

With ``--output``, the file's text after ``KEPT_BELOW`` (the prose written
by hand) is kept, and so is its ablation table when ``--ablation`` is not
given, and its table of ``--adaptive-ablation``.

The figures are exact counts of a deterministic replay, not timings: they
do not depend on the machine's load (the hash randomization of Python moves
``tinylfu``'s sketch collisions, so its figures move by a few tenths of a
point from run to run).
"""

from __future__ import annotations

import argparse
import datetime
import heapq
import itertools
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lcs_rules import RULES, LcsRulesStore

from cachegrid.engine import POLICIES, CacheFull
from cachegrid.engine.registry import store_class
from cachegrid.engine.store import Limits, Store

SEED = 13
KEYS = 100_000
REQUESTS = 1_000_000
SIZES = (0.01, 0.10)
SCAN_EVERY, SCAN_LENGTH = 20_000, 5_000  # zipf-scans: a fifth of the requests are one-time keys
LIBCACHESIM = ("LRU", "WTinyLFU", "S3FIFO", "Sieve", "ARC")
# The policies of the main table (``--every-policy``: all of them, and the variants).
MAIN_POLICIES = ("lru", "tinylfu", "adaptive")
# What ``adaptive`` is held against on each run (the goals).
RIVALS = ("lru", "lcs LRU", "lcs WTinyLFU", "lcs S3FIFO", "lcs Sieve", "lcs ARC")

Trace = list  # of int keys


def zipf(rng: random.Random, keys: int, alpha: float, requests: int) -> Trace:
    ranked = list(range(keys))
    rng.shuffle(ranked)
    weights = list(itertools.accumulate(rank**-alpha for rank in range(1, keys + 1)))
    return rng.choices(ranked, cum_weights=weights, k=requests)


def zipf_shift(rng: random.Random, keys: int, requests: int) -> Trace:
    half = requests // 2
    return zipf(rng, keys, 0.9, half) + zipf(rng, keys, 0.9, requests - half)


def loop(
    rng: random.Random, size: int, requests: int, scan: float = 1.5, hot_divisor: int = 2, hot_share: float = 0.4
) -> Trace:
    """A cyclic scan over ``scan`` × ``size`` keys; ``hot_share`` of the requests,
    at random, go to ``size // hot_divisor`` other keys, in a cycle of their own."""
    scanned, hot = int(scan * size), size // hot_divisor
    trace, position, hot_position = [], 0, 0
    for _ in range(requests):
        if rng.random() < hot_share:
            trace.append(scanned + hot_position)
            hot_position = (hot_position + 1) % hot
        else:
            trace.append(position)
            position = (position + 1) % scanned
    return trace


def recency(
    rng: random.Random, keys: int, size: int, requests: int, window: int = 4, fresh_share: float = 0.1
) -> Trace:
    trace: Trace = []
    fresh = 0
    horizon = window * size
    for _ in range(requests):
        if fresh < keys and (not trace or rng.random() < fresh_share):
            trace.append(fresh)
            fresh += 1
        else:
            trace.append(trace[-1 - rng.randrange(min(horizon, len(trace)))])
    return trace


def zipf_scans(rng: random.Random, keys: int, requests: int) -> Trace:
    """Zipf 0.9 over ``keys`` keys; after every ``SCAN_EVERY`` requests, a scan
    of ``SCAN_LENGTH`` keys asked for this once and never again."""
    trace: Trace = []
    fresh = keys  # one-time keys lie beyond the Zipf keys
    popular = iter(zipf(rng, keys, 0.9, requests))
    while len(trace) < requests:
        trace.extend(itertools.islice(popular, SCAN_EVERY))
        scan = min(SCAN_LENGTH, requests - len(trace))
        trace.extend(range(fresh, fresh + scan))
        fresh += scan
    return trace[:requests]


def zipf_shift_twice(rng: random.Random, keys: int, requests: int) -> Trace:
    third = requests // 3
    return zipf(rng, keys, 0.9, third) + zipf(rng, keys, 0.9, third) + zipf(rng, keys, 0.9, requests - 2 * third)


def tenants(rng: random.Random, keys: int, requests: int) -> Trace:
    """Two tenants on disjoint keys, their requests interleaved at random:
    one asks for a fifth of the keys with Zipf 1.0 (a few very hot keys),
    the other for the rest with Zipf 0.7 (a long, flat tail), half the
    requests each."""
    small = keys // 5
    first = zipf(rng, small, 1.0, requests)
    second = zipf(rng, keys - small, 0.7, requests)
    return [first[i] if rng.random() < 0.5 else small + second[i] for i in range(requests)]


def traces(keys: int, requests: int, only: tuple[str, ...] = ()) -> list[tuple[str, int, Trace]]:
    """(name, cache size, trace) for every run."""
    runs = []
    for fraction in SIZES:
        size = int(keys * fraction)
        runs.append(("zipf-0.8", size, lambda: zipf(random.Random(SEED), keys, 0.8, requests)))
        runs.append(("zipf-0.99", size, lambda: zipf(random.Random(SEED), keys, 0.99, requests)))
        runs.append(("loop", size, lambda size=size: loop(random.Random(SEED), size, requests)))
        runs.append(("zipf-shift", size, lambda: zipf_shift(random.Random(SEED), keys, requests)))
        runs.append(("recency", size, lambda size=size: recency(random.Random(SEED), keys, size, requests)))
        runs.append(
            ("recency-wide", size, lambda size=size: recency(random.Random(SEED), keys, size, requests, 16, 0.05))
        )
        runs.append(("zipf-scans", size, lambda: zipf_scans(random.Random(SEED), keys, requests)))
        runs.append(("zipf-shift-twice", size, lambda: zipf_shift_twice(random.Random(SEED), keys, requests)))
        runs.append(("tenants", size, lambda: tenants(random.Random(SEED), keys, requests)))
    cache: dict[str, Trace] = {}
    out = []
    for name, size, make in runs:
        if only and name not in only:
            continue
        key = f"{name}@{size}" if name.startswith(("loop", "recency")) else name
        if key not in cache:
            cache[key] = make()
        out.append((name, size, cache[key]))
    return out


# -- the simulations --------------------------------------------------------------


# Variants of a policy, each its own column: (column, policy, policy options).
VARIANTS = (("tinylfu climbing", "tinylfu", {"climb": True}),)
LCS_RULES = "tinylfu, lcs rules"  # the column of LcsRulesStore with every rule libcachesim's
ABLATION_TRACES = ("loop", "zipf-shift", "recency")


def limits(size: int) -> Limits:
    return Limits(max_size=size, max_memory=1 << 62)


def cachegrid_hits(policy: str, trace: Trace, size: int, **options: object) -> int:
    return replay(store_class(policy)(limits(size), **options), trace)


def lcs_rules_hits(rules: tuple[str, ...], trace: Trace, size: int) -> int:
    return replay(LcsRulesStore(limits(size), rules=rules), trace)


def replay(store: Store, trace: Trace) -> int:
    lookup, write = store.get, store.set
    names = [str(key) for key in range(max(trace) + 1)]
    value = b"v"
    for key in trace:
        name = names[key]
        if lookup(name) is None:
            try:
                write(name, value)
            except CacheFull:
                pass
    return store.hits


def libcachesim_hits(algorithm: str, trace: Trace, size: int) -> int:
    import libcachesim

    cache = getattr(libcachesim, algorithm)(cache_size=size)
    request = libcachesim.Request()
    request.obj_size = 1
    get = cache.get
    hits = 0
    for key in trace:
        request.obj_id = key
        hits += get(request)
    return hits


def opt_hits(trace: Trace, size: int) -> int:
    """Belady's OPT: on a miss with a full cache, evict the held key whose next
    request is the furthest away (never: furthest of all)."""
    never = len(trace)
    next_use = [never] * len(trace)
    seen: dict[int, int] = {}
    for i in range(len(trace) - 1, -1, -1):
        next_use[i] = seen.get(trace[i], never)
        seen[trace[i]] = i
    held: dict[int, int] = {}  # key -> its next request
    furthest: list[tuple[int, int]] = []  # (-next request, key), stale items skipped
    hits = 0
    for i, key in enumerate(trace):
        if key in held:
            hits += 1
        elif len(held) >= size:
            while True:
                negative_next, victim = heapq.heappop(furthest)
                if held.get(victim) == -negative_next:
                    del held[victim]
                    break
        held[key] = next_use[i]
        heapq.heappush(furthest, (-next_use[i], key))
    return hits


# -- the report ---------------------------------------------------------------------


def libcachesim_version() -> str | None:
    try:
        from importlib.metadata import version

        import libcachesim  # noqa: F401

        return version("libcachesim")
    except ImportError:
        return None


KEPT_BELOW = "<!-- The text from here on is written by hand: hit_ratio.py --output keeps it. -->"
ABLATION_HEADING = "## libcachesim's rules one at a time"
# The rows of the ablation table: (row, rules switched to libcachesim's).
ABLATIONS = (
    [("none (tinylfu's rules)", ())]
    + [(f"only {rule}", (rule,)) for rule in RULES]
    + [(f"all but {rule}", tuple(other for other in RULES if other != rule)) for rule in RULES]
    + [(f"all ({LCS_RULES})", RULES)]
)


# What makes ``adaptive`` adapt, one change at a time (``--adaptive-ablation``):
# (row, policy, policy options).
ADAPTIVE_ABLATIONS = (
    (
        "`adaptive` (gain 1, balance, steps weighed by age, min share 1%, ghosts 0.5, promote at 1, uses kept)",
        "adaptive",
        {},
    ),
    ("no signal: the small queue fixed at 10%", "adaptive", {"gain": 0.0}),
    ("ghosts without ARC's balance", "adaptive", {"balance": False}),
    ("small ghost hits not weighed by age (ARC's full step)", "adaptive", {"weigh_age": False}),
    ("step: gain 2", "adaptive", {"gain": 2.0}),
    ("step: gain 4", "adaptive", {"gain": 4.0}),
    ("min share 10% (S3-FIFO's share as the floor)", "adaptive", {"min_share": 0.1}),
    ("ghosts of a quarter of the cache (ghosts 0.25)", "adaptive", {"ghosts": 0.25}),
    ("ghosts of the whole cache (ghosts 1, ARC's)", "adaptive", {"ghosts": 1.0}),
    ("promote at 2 uses (libcachesim's threshold)", "adaptive", {"promote_at": 2}),
    ("uses reset on promotion (S3-FIFO's)", "adaptive", {"keep_uses": False}),
    (
        "S3-FIFO: fixed 10%, ghosts 0.9, promote at 2, uses reset",
        "adaptive",
        {"gain": 0.0, "ghosts": 0.9, "promote_at": 2, "keep_uses": False},
    ),
)
ADAPTIVE_ABLATION_HEADING = "## What makes adaptive adapt"


def adaptive_ablation(keys: int, requests: int, log: Callable[[str], None], only: tuple[str, ...] = ()) -> str:
    """The table of ``ADAPTIVE_ABLATIONS``: hit % of each row on every run, its
    average and its worst run against the best rival (lru and libcachesim's)."""
    started = time.monotonic()
    lcs = libcachesim_version() is not None
    runs = []
    for name, size, trace in traces(keys, requests, only):
        log(f"{name} @ {size}: adaptive ablation")
        ratios = {
            row: cachegrid_hits(policy, trace, size, **options) / len(trace)
            for row, policy, options in ADAPTIVE_ABLATIONS
        }
        rivals = {"lru": cachegrid_hits("lru", trace, size) / len(trace)}
        if lcs:
            rivals.update({f"lcs {a}": libcachesim_hits(a, trace, size) / len(trace) for a in LIBCACHESIM})
        runs.append((f"{name} @ {size:,}", ratios, best_rival(rivals)))
    lines = [
        ADAPTIVE_ABLATION_HEADING,
        "",
        f"Produced by `benchmarks/hit_ratio.py --adaptive-ablation` ({requests:,} requests per trace, "
        f"{time.monotonic() - started:.0f} s): hit % with one thing changed at a time; `worst` is the run "
        "furthest below the best of `lru` and libcachesim's LRU, W-TinyLFU, S3-FIFO, SIEVE and ARC, "
        "`within 1` the runs no more than a point below it.",
        "",
        "| variant | " + " | ".join(run for run, _, _ in runs) + " | average | worst | within 1 |",
        "| :--- | " + " | ".join("---:" for _ in runs) + " | ---: | ---: | ---: |",
    ]
    for row, _, _ in ADAPTIVE_ABLATIONS:
        gaps = [ratios[row] - best for _, ratios, best in runs]
        average = sum(ratios[row] for _, ratios, _ in runs) / len(runs)
        lines.append(
            f"| {row} | "
            + " | ".join(f"{100 * ratios[row]:.1f}" for _, ratios, _ in runs)
            + f" | {100 * average:.1f} | {100 * min(gaps):+.1f} | {sum(gap >= -0.01 for gap in gaps)} of {len(gaps)} |"
        )
    best_average = sum(best for _, _, best in runs) / len(runs)
    lines.append(
        "| best rival of each run | "
        + " | ".join(f"{100 * best:.1f}" for _, _, best in runs)
        + f" | {100 * best_average:.1f} | | |"
    )
    return "\n".join(lines) + "\n"


def run(
    keys: int,
    requests: int,
    log: Callable[[str], None],
    ablation: bool = False,
    every_policy: bool = False,
    only: tuple[str, ...] = (),
) -> tuple[str, str | None]:
    """The hit-ratio table, and the ablation table if asked for (else None)."""
    started = time.monotonic()
    lcs = libcachesim_version()
    policies = list(POLICIES) if every_policy else [policy for policy in POLICIES if policy in MAIN_POLICIES]
    variants = ([column for column, _, _ in VARIANTS] + [LCS_RULES]) if every_policy or ablation else []
    columns = policies + variants + ([f"lcs {name}" for name in LIBCACHESIM] if lcs else []) + ["OPT"]
    rows = []
    ablated: list[tuple[str, int, dict[str, float]]] = []
    for name, size, trace in traces(keys, requests, only):
        log(f"{name} @ {size}")
        ratios: dict[str, float] = {}
        for policy in policies:
            ratios[policy] = cachegrid_hits(policy, trace, size) / len(trace)
        if variants:
            for column, policy, options in VARIANTS:
                ratios[column] = cachegrid_hits(policy, trace, size, **options) / len(trace)
            ratios[LCS_RULES] = lcs_rules_hits(RULES, trace, size) / len(trace)
        if lcs:
            for algorithm in LIBCACHESIM:
                ratios[f"lcs {algorithm}"] = libcachesim_hits(algorithm, trace, size) / len(trace)
        ratios["OPT"] = opt_hits(trace, size) / len(trace)
        rows.append((name, size, ratios))
        if ablation and name in ABLATION_TRACES:
            log(f"{name} @ {size}: ablation")
            ablated.append((name, size, ablation_ratios(trace, size, ratios)))
    lines = [
        "# Hit ratio",
        "",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; "
        f"Python {platform.python_version()}; libcachesim {lcs or 'not installed (its columns are left out)'}",
        f"- {keys:,} keys, {requests:,} requests per trace, seed {SEED} (the traces: benchmarks/hit_ratio.py); "
        f"{time.monotonic() - started:.0f} s in all",
        "",
        "Hit % per trace and cache size (entries). `lcs`: libcachesim's implementation"
        + (
            f"; `{LCS_RULES}`: `tinylfu` counting as libcachesim's W-TinyLFU does (benchmarks/lcs_rules.py)."
            if variants
            else "."
        )
        + " `adaptive − best`: `adaptive` less the best of `lru` and the `lcs` columns on that run.",
        "",
    ]
    differences: list[tuple[str, Callable[[dict[str, float]], float]]] = [
        ("adaptive − best", lambda r: r["adaptive"] - best_rival(r)),
        ("tinylfu − lru", lambda r: r["tinylfu"] - r["lru"]),
    ]
    if lcs:
        differences.append(("tinylfu − lcs WTinyLFU", lambda r: r["tinylfu"] - r["lcs WTinyLFU"]))
        if variants:
            differences.append(("lcs rules − lcs WTinyLFU", lambda r: r[LCS_RULES] - r["lcs WTinyLFU"]))
    lines += [
        "| trace @ size | " + " | ".join(columns + [heading for heading, _ in differences]) + " |",
        "| :--- | " + " | ".join("---:" for _ in columns + differences) + " |",
    ]

    def cells(ratios: dict[str, float]) -> str:
        figures = [f"{100 * ratios[column]:.1f}" for column in columns]
        figures += [f"{100 * difference(ratios):+.1f}" for _, difference in differences]
        return " | ".join(figures)

    for name, size, ratios in rows:
        lines.append(f"| {name} @ {size:,} | {cells(ratios)} |")
    average = {column: sum(r[column] for _, _, r in rows) / len(rows) for column in columns}
    lines.append(f"| **average** | {cells(average)} |")
    worst = min(rows, key=lambda row: row[2]["tinylfu"] - row[2]["lru"])
    lines += [
        "",
        f"tinylfu against lru: at worst {100 * (worst[2]['tinylfu'] - worst[2]['lru']):+.1f} points "
        f"({worst[0]} @ {worst[1]:,}), on average {100 * (average['tinylfu'] - average['lru']):+.1f}.",
    ]
    gaps = [(r["adaptive"] - best_rival(r), name, size) for name, size, r in rows]
    rivals = [column for column in columns if column in RIVALS]
    best_average = max(rivals, key=lambda column: average[column])
    lines.append(
        f"adaptive against the best rival of each run: at worst {100 * min(gaps)[0]:+.1f} points "
        f"({min(gaps)[1]} @ {min(gaps)[2]:,}), {sum(gap >= -0.01 for gap, _, _ in gaps)} of {len(gaps)} runs within "
        f"1.0 point; on average {100 * average['adaptive']:.1f} against {best_average}'s "
        f"{100 * average[best_average]:.1f} ({100 * (average['adaptive'] - average[best_average]):+.1f})."
    )
    if lcs and variants:
        apart = [round((r[LCS_RULES] - r["lcs WTinyLFU"]) * requests) for _, _, r in rows]
        lines.append(
            f"{LCS_RULES} against lcs WTinyLFU: {sum(1 for hits in apart if hits == 0)} runs of {len(rows)} "
            f"hit for hit the same; at most {max(abs(hits) for hits in apart):,} hits apart "
            f"(of {requests:,} requests)."
        )
    table = "\n".join(lines) + "\n"
    return table, (ablation_table(ablated, lcs is not None) if ablation else None)


def best_rival(ratios: dict[str, float]) -> float:
    """The best hit ratio of the run among ``RIVALS`` (those measured)."""
    return max(ratios[column] for column in RIVALS if column in ratios)


def ablation_ratios(trace: Trace, size: int, ratios: dict[str, float]) -> dict[str, float]:
    """The hit ratio of every row of ``ABLATIONS`` (with all rules: the main
    table's figure), beside the main table's ``tinylfu`` and libcachesim's."""
    out = {"tinylfu": ratios["tinylfu"]}
    for row, rules in ABLATIONS:
        out[row] = ratios[LCS_RULES] if rules == RULES else lcs_rules_hits(rules, trace, size) / len(trace)
    if "lcs WTinyLFU" in ratios:
        out["lcs WTinyLFU"] = ratios["lcs WTinyLFU"]
    return out


def ablation_table(ablated: list[tuple[str, int, dict[str, float]]], lcs: bool) -> str:
    runs = [f"{name} @ {size:,}" for name, size, _ in ablated]
    lines = [
        ABLATION_HEADING,
        "",
        "Produced by `benchmarks/hit_ratio.py --ablation`, on the traces where `tinylfu` is more than 1.5 "
        "points from libcachesim's W-TinyLFU at one size at least: "
        f"`{LCS_RULES}` (benchmarks/lcs_rules.py) with only one rule "
        "switched to libcachesim's, and with all but one. Hit %"
        + (", and in brackets the difference from `lcs WTinyLFU`." if lcs else "."),
        "",
        "| rules | " + " | ".join(runs) + " |",
        "| :--- | " + " | ".join("---:" for _ in runs) + " |",
    ]
    for row in ["tinylfu"] + [row for row, _ in ABLATIONS] + (["lcs WTinyLFU"] if lcs else []):
        cells = []
        for _, _, ratios in ablated:
            cell = f"{100 * ratios[row]:.1f}"
            if lcs and row != "lcs WTinyLFU":
                cell += f" ({100 * (ratios[row] - ratios['lcs WTinyLFU']):+.1f})"
            cells.append(cell)
        lines.append(f"| {'`tinylfu`' if row == 'tinylfu' else row} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def replace_section(document: str, heading: str, section: str) -> str:
    """``document`` with the section under ``heading`` (up to the next "## "
    heading or the hand-written part) replaced by ``section``; added just
    before the hand-written part if it has none."""
    if heading in document:
        start = document.index(heading)
        ends = [document.find(mark, start + len(heading)) for mark in ("\n## ", "\n" + KEPT_BELOW)]
        end = min((at for at in ends if at >= 0), default=len(document))
        return document[:start] + section + document[end:]
    if KEPT_BELOW in document:
        at = document.index(KEPT_BELOW)
        return document[:at] + section + "\n" + document[at:]
    return document + "\n" + section


def merge(old: str | None, table: str, ablation: str | None) -> str:
    """The document: the new table, the new ablation table (else the old
    one's, if any), then the old text from ``KEPT_BELOW`` on (if any)."""
    generated, kept = old.split(KEPT_BELOW, 1) if old and KEPT_BELOW in old else (old or "", None)
    adaptive = None
    if ADAPTIVE_ABLATION_HEADING in generated:
        at = generated.index(ADAPTIVE_ABLATION_HEADING)
        generated, adaptive = generated[:at], generated[at:].rstrip("\n") + "\n"
    if ablation is None and ABLATION_HEADING in generated:
        ablation = generated[generated.index(ABLATION_HEADING) :].rstrip("\n") + "\n"
    if adaptive:
        ablation = (ablation + "\n" if ablation else "") + adaptive
    parts = [table] + ([ablation] if ablation else []) + ([KEPT_BELOW + kept] if kept is not None else [])
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=KEYS)
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument(
        "--output", type=Path, help="also write the tables to this file (keeping its hand-written part)"
    )
    parser.add_argument(
        "--ablation",
        action="store_true",
        help=f"add the table of libcachesim's rules one at a time ({', '.join(RULES)})",
    )
    parser.add_argument(
        "--every-policy",
        action="store_true",
        help="every CacheGrid policy and variant as a column, not only " + ", ".join(MAIN_POLICIES),
    )
    parser.add_argument("--only", action="append", default=[], help="only this trace (repeatable)")
    parser.add_argument(
        "--adaptive-ablation",
        type=int,
        metavar="REQUESTS",
        help="instead of the tables above, the table of what makes adaptive adapt, on traces of REQUESTS requests",
    )
    args = parser.parse_args(argv)
    if args.adaptive_ablation:
        text = adaptive_ablation(
            args.keys,
            args.adaptive_ablation,
            lambda message: print(message, file=sys.stderr, flush=True),
            tuple(args.only),
        )
        print(text)
        if args.output:
            old = args.output.read_text() if args.output.exists() else ""
            args.output.write_text(replace_section(old, ADAPTIVE_ABLATION_HEADING, text))
        return
    table, ablation = run(
        args.keys,
        args.requests,
        lambda message: print(message, file=sys.stderr, flush=True),
        args.ablation,
        args.every_policy,
        tuple(args.only),
    )
    print(table + ("\n" + ablation if ablation else ""))
    if args.output:
        old = args.output.read_text() if args.output.exists() else None
        args.output.write_text(merge(old, table, ablation))


if __name__ == "__main__":
    main()
