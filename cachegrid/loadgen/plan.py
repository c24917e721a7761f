"""What a load test runs against and what it runs: the ``Target`` server, the
``Plan``, and how the plan is shared out among the worker processes."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    token: str | None = None

    @classmethod
    def parse(cls, url: str, token: str | None = None) -> Target:
        """ValueError unless ``url`` is http://host[:port][/]."""
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise ValueError(f"{url!r}: only http:// URLs are supported")
        if not parts.hostname:
            raise ValueError(f"{url!r}: no host")
        if parts.path not in ("", "/") or parts.query:
            raise ValueError(f"{url!r}: give the server's base URL, without a path")
        try:
            port = parts.port or 80
        except ValueError:
            raise ValueError(f"{url!r}: the port is not a number from 0 to 65535") from None
        return cls(parts.hostname, port, token or None)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


# A key prefix: characters that need no escaping in a URL path, in JSON, in
# a %-template or in a key listing's pattern (no glob characters *?[ there).
PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def check_prefix(prefix: str) -> str:
    """``prefix`` if it can prefix the load test's keys; ValueError otherwise."""
    if not PREFIX.fullmatch(prefix):
        raise ValueError(f"{prefix!r}: 1 to 64 letters, digits and _ . : - (nothing to escape in a URL or a pattern)")
    return prefix


@dataclass(frozen=True)
class Plan:
    """What to run. ``requests`` or ``duration`` bounds it; ``get_share`` is the
    fraction of requests that are GETs; ``batch`` > 0 sends batch requests of
    that many keys. The keys are ``prefix`` followed by 0 .. ``keyspace`` - 1
    (``cachegrid loadtest`` gives a prefix of its own: keyspace.py)."""

    requests: int | None = 100_000
    duration: float | None = None
    concurrency: int = 32
    get_share: float = 0.8
    keyspace: int = 10_000
    value_size: int = 32
    batch: int = 0
    pipeline: int = 1
    processes: int = 1
    seed: int | None = None
    prefix: str = "key:"

    def __post_init__(self) -> None:
        check_prefix(self.prefix)


def split(total: int, parts: int) -> list[int]:
    """``total`` in ``parts`` shares that differ by at most one."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def budgets(plan: Plan, connections: list[int]) -> list[int | None]:
    """Each process's requests, in proportion to its ``connections``, adding up
    to ``plan.requests``; None each when the plan runs for a duration."""
    if plan.requests is None:
        return [None] * len(connections)
    shares = [plan.requests * share // plan.concurrency for share in connections]
    for i in range(plan.requests - sum(shares)):  # what the rounding down left over
        shares[i % len(shares)] += 1
    return [*shares]


def default_processes() -> int:
    return os.cpu_count() or 1
