"""dogpile.cache on CacheGrid: a region whose backend is ``"cachegrid"``,
a function cached on its arguments, and its invalidation.

    make serve                                   # CacheGrid on 127.0.0.1:8080 (another terminal)
    .venv/bin/python examples/dogpile_app.py     # twice: the second run finds the values made by the first

CACHEGRID_URL names another server (several, separated by commas: a
cluster) and CACHEGRID_AUTH_TOKEN its token, as for the command line.
"""

from __future__ import annotations

import os
import time

from dogpile.cache import make_region

region = make_region().configure(
    "cachegrid",
    expiration_time=300,  # dogpile regenerates a value older than this
    arguments={
        "hosts": os.environ.get("CACHEGRID_URL", "http://127.0.0.1:8080").split(","),
        "token": os.environ.get("CACHEGRID_AUTH_TOKEN"),
        "timeout": 2.0,
        "ttl": 3600,  # and the server forgets it after this
    },
)


@region.cache_on_arguments(namespace="dogpile-example")
def report(year: int) -> dict[str, object]:
    time.sleep(0.5)  # the work the cache saves
    return {"year": year, "made_at": time.time()}


if __name__ == "__main__":
    for year in (2025, 2026, 2025):
        started = time.perf_counter()
        value = report(year)
        print(f"report({year}) made at {value['made_at']:.3f}, took {time.perf_counter() - started:.3f} s")
    report.invalidate(2026)
    print("report(2026) invalidated: the next call makes it again")
