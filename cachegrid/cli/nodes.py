"""A cluster's nodes one by one, for the commands that must say which node
they asked and which did not answer.

The client treats a cluster as one cache: a node that fails gives its keys
to the next node of the ring, and a call that needs every node (a key
listing, clear, a tag or pattern sent to all) fails as a whole when one of
them is down. A person at a terminal needs more than that: what the live
nodes hold, and the names of the ones that did not answer. So the commands
that span the cluster ask each node with a client of its own (one host, one
more try, the global options), all at once, and get back each node's answer
or, in a few words, why it gave none (``Fanned``). A refusal (4xx) is no
outage: it ends the command as anywhere else (``common.client_errors``).

Keyed commands (get, ttl, delete, batch get) keep the client's routing; when
their answer is a miss, ``unreachable`` asks the key's own nodes (its
placement on the ring while every node is up) whether they answer at all:
a miss because a key's node is down is no "no such key".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import typer

from ..client import SyncCacheGridClient, Unavailable
from .common import (
    checked,
    client_errors,
    connect,
    is_cluster,
    missing_words,
    names,
    node_name,
    one_node,
    reason_of,
    unreachable,
)
from .status import ExitCode, fail


@dataclass
class Fanned:
    """Each node's answer (by base URL, in --url order) and, for the nodes
    that gave none, why."""

    answers: dict[str, Any] = field(default_factory=dict)
    down: dict[str, str] = field(default_factory=dict)

    def asked(self) -> str:
        """The nodes that answered, by name."""
        return names(self.answers)

    def missing(self) -> str:
        """The nodes that did not answer and why, in the words of the
        single-server errors: ``127.0.0.1:8002 did not answer: connection refused``."""
        return missing_words(self.down)


def each_node(
    ctx: typer.Context, call: Callable[[SyncCacheGridClient], Any], urls: Iterable[str] | None = None
) -> Fanned:
    """``call`` on each --url node (or each of ``urls``) at once. When none
    answers, the command ends as a lone server's would: UNAVAILABLE."""
    given, servers = checked(ctx)
    asked = list(servers if urls is None else urls)

    def run(url: str) -> Any:
        with one_node(given, url) as client:
            return call(client)

    fanned = Fanned()
    with client_errors(given, asked), ThreadPoolExecutor(max(len(asked), 1)) as pool:
        futures = {url: pool.submit(run, url) for url in asked}
        for url, future in futures.items():
            try:
                fanned.answers[url] = future.result()
            except Unavailable as error:
                fanned.down[url] = reason_of(error)
    if asked and not fanned.answers:
        reasons = set(fanned.down.values())
        detail = (
            next(iter(reasons))
            if len(reasons) == 1
            else "; ".join(f"{node_name(url)}: {reason}" for url, reason in fanned.down.items())
        )
        raise fail(f"no CacheGrid server answered at {', '.join(asked)}: {detail}", ExitCode.UNAVAILABLE)
    return fanned


def partial(fanned: Fanned, what: str) -> typer.Exit:
    """The end of a cluster-wide command some nodes did not answer:
    ``what`` it did on the others, the missing ones named, PARTIAL."""
    return fail(f"partial result: {what} on {fanned.asked()} only; {fanned.missing()}", ExitCode.PARTIAL)


def owners(ctx: typer.Context, keys: Iterable[str]) -> dict[str, list[str]]:
    """Each key's nodes while every node is up (its ring placement), in a
    sharded cluster; empty for one server or copies of one cache."""
    given, servers = checked(ctx)
    if not given.sharding or len(servers) < 2:
        return {}
    with SyncCacheGridClient(servers, replicas=given.replicas, ring=given.ring) as ring:  # nothing is sent
        return {key: ring.node_for(key) for key in keys}


def key_unavailable(ctx: typer.Context, key: str) -> typer.Exit | None:
    """For a key the cluster says does not exist: the UNAVAILABLE end when
    one of its nodes does not answer (it may hold the key), else None."""
    placed = owners(ctx, [key]).get(key, [])
    down = unreachable(checked(ctx)[0], placed)
    if not down:
        return None
    return fail(
        f"no answer for {key!r}: its node {missing_words(down)}; the nodes that answered do not have it",
        ExitCode.UNAVAILABLE,
    )


def on_each_node(ctx: typer.Context, call: Callable[[SyncCacheGridClient], Any]) -> Fanned:
    """``call`` on each node of a cluster (nodes.py: which did not answer is
    known), or through one client for one server or copies of one cache."""
    if is_cluster(ctx):
        return each_node(ctx, call)
    with connect(ctx) as client:
        return Fanned({client.hosts[0]: call(client)})


def nodes_down(fanned: Fanned) -> dict[str, Any]:
    """What a --json document adds when nodes did not answer."""
    return {"nodes_down": {node_name(url): reason for url, reason in fanned.down.items()}} if fanned.down else {}
