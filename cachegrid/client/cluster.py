"""Routers: which hosts each operation goes to, as plans (see protocol.py).

``Failover`` is one logical cache: every call goes to the first host that is
not cooling down (``HostPool.run``). A client with one host uses it, and so
does ``sharding=False``, where every host is a copy of the same cache.

``Sharded`` is a cluster in the memcached model: the nodes know nothing of
each other, and the client places each key with a consistent-hash ring
(ring.py). A key's *placement* is the first R nodes (R = ``replicas``) of the
ring's walk from the key that are not cooling down; when every node of the
walk is cooling down, the one back soonest is tried anyway. So a node that
fails (connection error, timeout, a 5xx but 507) gives its keys to the next
nodes of the ring until its cool-down ends, and a call raises ``Unavailable``
only when every candidate for its key failed, or its retries ran out. How
often and after what wait a path sends again is retry.py's (``retrying``):
each path below says only where its next round goes and what an answer means.

- Writes (set, delete, touch, persist) go to every node of the placement at
  once; a node that fails is replaced by the next one of the ring. The answer
  is the one of the first node in ring order that answered.
- Reads (get, exists, ttl) ask the placement in ring order and return the
  first hit; a 404 asks the next replica, and a miss on every replica is the
  miss. When ``get`` hits on a later replica, the earlier ones that missed are
  repaired: the entry (value, remaining TTL, what else it carries: see
  ``protocol.ENTRY_FIELDS``) is copied to them with If-None-Match: *, so a
  value written there meanwhile is never overwritten. A repair is a
  courtesy: its failures are not retried, and a client whose token may
  read but not write (a 403 on the copy, docs/acl.md) stops repairing for
  ``REPAIR_PAUSE`` seconds rather than be refused (and logged) on every read.
- Counters (incr, decr) run on the first node of the placement, which is
  authoritative; with R > 1 its entry is then copied over the others.
- Leases and locks (client/leases.py) live on the first node of the
  placement: a read that asks for a lease, acquire, release and held? go
  there only; a write with a lease's token goes there, and once stored, to
  the other replicas without the token. ``mark_stale`` is a write: every
  replica.
- Batches are split per node, one request per node per round, all sent at
  once and merged; keys whose node failed go round again to their next node.
  ``get_multi`` asks the next replica for the keys a node did not have.
- ``scan`` asks every node for its share of the page; the cursor holds every
  node's own (opaque) cursor. ``stats`` sums the nodes' and keeps each one's;
  ``clear`` clears every node.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections import defaultdict
from collections.abc import Callable, Container
from typing import Any, Protocol
from urllib.parse import urlsplit

from .errors import RequestError, Unavailable
from .protocol import (
    Answer,
    Call,
    Plan,
    batch_delete_call,
    batch_get_call,
    batch_set_call,
    clear_call,
    copy_call,
    get_call,
    is_miss,
    key_segment,
    keys_call,
    stats_call,
    unavailable,
)
from .retry import HostPool, Send, retrying
from .ring import RINGS, NginxRing

CURSOR_PREFIX = "c1."
# Seconds a client refused a repair (403: its token may not write) leaves
# repairs alone; then it tries once more, in case the ACL file changed.
REPAIR_PAUSE = 60.0


class Router(Protocol):
    replicas: int

    def placement(self, key: str) -> list[str]: ...
    def direct(self, key: str, write: bool) -> str | None: ...
    def read(self, key: str, call: Call, repair: bool = False) -> Plan: ...
    def write(self, key: str, call: Call) -> Plan: ...
    def counter(self, key: str, call: Call) -> Plan: ...
    def first(self, key: str, call: Call) -> Plan: ...
    def leased_write(self, key: str, leased: Call, plain: Call) -> Plan: ...
    def get_multi(self, keys: list[str]) -> Plan: ...
    def set_multi(
        self, items: dict[str, Any], ttl: float | None, tags: list[str] | None = None, stale: float | None = None
    ) -> Plan: ...
    def delete_multi(self, keys: list[str]) -> Plan: ...
    def scan(self, pattern: str | None, limit: int, cursor: str | None) -> Plan: ...
    def clear(self) -> Plan: ...
    def stats(self) -> Plan: ...
    def nodes(self) -> list[str]: ...
    def broadcast(self, call: Call) -> Plan: ...


class Failover:
    """One logical cache over hosts tried in order."""

    replicas = 1

    def __init__(self, pool: HostPool) -> None:
        self.pool = pool

    def placement(self, key: str) -> list[str]:
        return self.pool.candidates()[:1]

    def direct(self, key: str, write: bool) -> str | None:
        """The host the first round of a one-key plan goes to, when that is
        known without running the plan (no host is cooling down), else None."""
        return self.pool.hosts[0] if self.pool.calm() else None

    def read(self, key: str, call: Call, repair: bool = False) -> Plan:
        return self.pool.run(call)

    def write(self, key: str, call: Call) -> Plan:
        return self.pool.run(call)

    def counter(self, key: str, call: Call) -> Plan:
        return self.pool.run(call)

    def first(self, key: str, call: Call) -> Plan:
        return self.pool.run(call)

    def leased_write(self, key: str, leased: Call, plain: Call) -> Plan:
        return self.pool.run(leased)

    def get_multi(self, keys: list[str]) -> Plan:
        return self.pool.run(batch_get_call(keys))

    def set_multi(
        self, items: dict[str, Any], ttl: float | None, tags: list[str] | None = None, stale: float | None = None
    ) -> Plan:
        return self.pool.run(batch_set_call(items, ttl, tags, stale))

    def delete_multi(self, keys: list[str]) -> Plan:
        return self.pool.run(batch_delete_call(keys))

    def scan(self, pattern: str | None, limit: int, cursor: str | None) -> Plan:
        return self.pool.run(keys_call(pattern, limit, cursor))

    def clear(self) -> Plan:
        return self.pool.run(clear_call())

    def nodes(self) -> list[str]:
        """The one node a node-wide job (delete by pattern) runs on."""
        return self.pool.candidates()[:1]

    def broadcast(self, call: Call) -> Plan:
        """``call`` where every key lives: here, the one cache; [its answer]."""
        return [(yield from self.pool.run(call))]

    def stats(self) -> Plan:
        return self.pool.run(stats_call())


class Sharded:
    """Keys placed on ``replicas`` nodes each by a consistent-hash ring."""

    def __init__(self, pool: HostPool, weights: dict[str, int], replicas: int, ring: str) -> None:
        self.pool = pool
        self.replicas = replicas
        self.repair_refused_until = -math.inf  # pool.clock() time; see REPAIR_PAUSE
        self._url = {urlsplit(url).netloc: url for url in weights}
        labelled = {urlsplit(url).netloc: weight for url, weight in weights.items()}
        self.ring = NginxRing(labelled, key_segment) if RINGS[ring] is NginxRing else RINGS[ring](labelled)

    # -- where a key goes ------------------------------------------------------------

    def placement(self, key: str, failed: Container[str] = frozenset()) -> list[str]:
        """The first R nodes of ``key``'s walk that are neither cooling down nor
        in ``failed``; when there are none, the failed-free ones back soonest."""
        now, live, resting = self.pool.clock(), [], []
        for label in self.ring.walk(key):
            url = self._url[label]
            if url in failed:
                continue
            if self.pool.cooling(url, now):
                resting.append(url)
                continue
            live.append(url)
            if len(live) == self.replicas:
                return live
        return live or sorted(resting, key=self.pool.back_at)[: self.replicas]

    def direct(self, key: str, write: bool) -> str | None:
        """The node the first round of a one-key plan goes to, when that is
        known without running the plan: nothing cools down, and a write goes
        to one node only (one replica); else None."""
        if not self.pool.calm() or (write and self.replicas > 1):
            return None
        return self._url[next(iter(self.ring.walk(key)))]

    def _unavailable(self, what: str, errors: dict[str, str]) -> Unavailable:
        detail = "; ".join(f"{host}: {error}" for host, error in errors.items()) or "no node to ask"
        return unavailable(f"no CacheGrid node answered {what}: {detail}", errors)

    # -- one key ---------------------------------------------------------------------

    def read(self, key: str, call: Call, repair: bool = False) -> Plan:
        missed: dict[str, Answer] = {}  # the replicas that answered 404, in ring order
        found: list[Answer] = []  # the answer that is no miss, once there is one

        def sends(failed: Container[str]) -> list[Send]:
            host = next((h for h in self.placement(key, failed) if h not in missed), None)
            return [] if found or host is None else [(host, call)]

        def take(host: str, call: Call, answer: Answer | None) -> None:
            if answer is not None and answer.status == 404 and is_miss(answer.body):
                missed[host] = answer
            elif answer is not None:
                found.append(answer)

        errors = yield from retrying(self.pool, sends, take)
        if not found:
            if missed:  # a miss on every replica that answered is the miss
                return call.read(list(missed.values())[-1])
            raise self._unavailable(f"{call.method} {call.path}", errors)
        result = call.read(found[0])
        if repair and missed and found[0].status == 200 and self.pool.clock() >= self.repair_refused_until:
            copy = copy_call(key, found[0], overwrite=False)
            if copy is not None:
                answers = yield from self._send_each(list(missed), copy)
                if any(answer.status == 403 for answer in answers.values()):
                    self.repair_refused_until = self.pool.clock() + REPAIR_PAUSE
        return result

    def _send_each(self, hosts: list[str], call: Call) -> Plan:
        """Send ``call`` to every host at once, once (a copy that is a
        courtesy: it is not retried); the answers by host (failures mark their
        host and are left out)."""
        sends = [(host, call) for host in hosts]
        answers = self.pool.tally(sends, (yield 0.0, sends), {})
        return {host: answer for host, answer in zip(hosts, answers) if answer is not None}

    def write(self, key: str, call: Call) -> Plan:
        answers: dict[str, Answer] = {}

        def sends(failed: Container[str]) -> list[Send]:
            # The failed ones' places go to the next nodes of the ring.
            return [(host, call) for host in self.placement(key, failed) if host not in answers]

        def take(host: str, call: Call, answer: Answer | None) -> None:
            if answer is not None:
                answers[host] = answer

        errors = yield from retrying(self.pool, sends, take)
        if not answers:
            raise self._unavailable(f"{call.method} {call.path}", errors)
        first = next((host for host in self.placement(key, errors) if host in answers), next(iter(answers)))
        return call.read(answers[first])

    def _on_primary(self, key: str, call: Call) -> Plan:
        """``call`` on the first node of the placement that answers: (its
        result, that node, the nodes that failed before it)."""
        answered: list[tuple[str, Answer]] = []

        def sends(failed: Container[str]) -> list[Send]:
            placement = self.placement(key, failed)
            return [] if answered or not placement else [(placement[0], call)]

        def take(host: str, call: Call, answer: Answer | None) -> None:
            if answer is not None:
                answered.append((host, answer))

        errors = yield from retrying(self.pool, sends, take)
        if not answered:
            raise self._unavailable(f"{call.method} {call.path}", errors)
        primary, answer = answered[0]
        return call.read(answer), primary, errors

    def first(self, key: str, call: Call) -> Plan:
        """``call`` on the key's first node only (its leases live there)."""
        result, _, _ = yield from self._on_primary(key, call)
        return result

    def leased_write(self, key: str, leased: Call, plain: Call) -> Plan:
        """``leased`` (a write presenting a lease's token) on the key's first
        node, which holds the lease; once it is stored there, ``plain`` (the
        same write without the token) on the other replicas."""
        result, _, failed = yield from self._on_primary(key, leased)
        others = self.placement(key, failed)[1:]
        if others and result:
            yield from self._send_each(others, plain)
        return result

    def counter(self, key: str, call: Call) -> Plan:
        result, primary, failed = yield from self._on_primary(key, call)
        others = self.placement(key, failed)[1:]
        if others:  # the primary is authoritative: its entry overwrites the replicas'
            entry = (yield from self._send_each([primary], get_call(key))).get(primary)
            if entry is not None and entry.status == 200:
                copy = copy_call(key, entry, overwrite=True)
                if copy is not None:
                    yield from self._send_each(others, copy)
        return result

    # -- batches -----------------------------------------------------------------------

    def get_multi(self, keys: list[str]) -> Plan:
        unique = list(dict.fromkeys(keys))
        pending = list(unique)  # the keys to ask for in the next round
        found: dict[str, Any] = {}
        missed: dict[str, list[str]] = defaultdict(list)  # the nodes that had not the key
        unreachable: list[str] = []
        groups: dict[str, list[str]] = {}  # this round's keys by node

        def sends(failed: Container[str]) -> list[Send]:
            groups.clear()
            for key in pending:
                host = next((h for h in self.placement(key, failed) if h not in missed[key]), None)
                if host is not None:
                    groups.setdefault(host, []).append(key)
                elif not missed[key]:
                    unreachable.append(key)
            pending.clear()
            return [(host, batch_get_call(group)) for host, group in groups.items()]

        def take(host: str, call: Call, answer: Answer | None) -> None:
            if answer is None:
                pending.extend(groups[host])
                return
            items = call.read(answer)
            found.update(items)
            for key in groups[host]:
                if key not in items:
                    missed[key].append(host)
                    pending.append(key)

        errors = yield from retrying(self.pool, sends, take)
        unreachable.extend(key for key in pending if not missed[key])  # where the retries ran out
        if unreachable:
            raise self._unavailable(f"get_multi of {len(unreachable)} key(s)", errors)
        return {key: found[key] for key in unique if key in found}

    def _each_copy(self, keys: list[str], call_for: Callable[[list[str]], Call], what: str) -> Plan:
        """Send every key to every node of its placement, one request per node
        and round, keys of failed nodes going round again to their next node;
        the parsed answers."""
        done: dict[str, set[str]] = {key: set() for key in keys}
        results: list[Any] = []
        groups: dict[str, list[str]] = {}  # this round's keys by node

        def sends(failed: Container[str]) -> list[Send]:
            groups.clear()
            for key in keys:
                for host in self.placement(key, failed):
                    if host not in done[key]:
                        groups.setdefault(host, []).append(key)  # every replica of the key in the same round
            return [(host, call_for(group)) for host, group in groups.items()]

        def take(host: str, call: Call, answer: Answer | None) -> None:
            if answer is not None:
                results.append(call.read(answer))
                for key in groups[host]:
                    done[key].add(host)

        errors = yield from retrying(self.pool, sends, take)
        if any(not hosts for hosts in done.values()):
            raise self._unavailable(what, errors)
        return results

    def set_multi(
        self, items: dict[str, Any], ttl: float | None, tags: list[str] | None = None, stale: float | None = None
    ) -> Plan:
        yield from self._each_copy(
            list(items),
            lambda group: batch_set_call({k: items[k] for k in group}, ttl, tags, stale),
            f"set_multi of {len(items)} key(s)",
        )
        return len(items)

    def delete_multi(self, keys: list[str]) -> Plan:
        unique = list(dict.fromkeys(keys))
        counts = yield from self._each_copy(unique, batch_delete_call, f"delete_multi of {len(unique)} key(s)")
        # Each node counts the copies it deleted: exact with one replica, and
        # with R when the replicas agree.
        return math.ceil(sum(counts) / self.replicas)

    # -- the whole cluster -----------------------------------------------------------

    def scan(self, pattern: str | None, limit: int, cursor: str | None) -> Plan:
        positions = self._decode_cursor(cursor)
        walking = [host for host in self.pool.hosts if positions[host] is not None]
        if not walking:  # a cursor of a finished walk
            return {"keys": [], "count": 0, "cursor": None, "pattern": pattern}
        share = max(1, math.ceil(limit / max(len(walking), 1)))
        calls = [(host, keys_call(pattern, share, positions[host] or None)) for host in walking]
        found: list[str] = []
        errors: dict[str, str] = {}
        answers = self.pool.tally(calls, (yield 0.0, calls), errors)
        if errors and self.replicas == 1:  # their keys are nowhere else
            raise self._unavailable("GET /admin/keys", errors)
        for (host, call), answer in zip(calls, answers):
            if answer is None:
                positions[host] = None  # its keys have copies on the others
                continue
            page = call.read(answer)
            found.extend(page["keys"])
            positions[host] = page["cursor"]
        if len(errors) == len(walking):  # not one node answered: no page to give
            raise self._unavailable("GET /admin/keys", errors)
        unique = list(dict.fromkeys(found))
        more = any(position is not None for position in positions.values())
        return {
            "keys": unique,
            "count": len(unique),
            "cursor": self._encode_cursor(positions) if more else None,
            "pattern": pattern,
        }

    def _encode_cursor(self, positions: dict[str, str | None]) -> str:
        document = json.dumps([positions[host] for host in self.pool.hosts], separators=(",", ":"))
        return CURSOR_PREFIX + base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")

    def _decode_cursor(self, cursor: str | None) -> dict[str, str | None]:
        """Each node's position: "" not started, None finished, else its cursor."""
        if not cursor:
            return dict.fromkeys(self.pool.hosts, "")
        try:
            if not cursor.startswith(CURSOR_PREFIX):
                raise ValueError
            text = cursor[len(CURSOR_PREFIX) :]
            positions = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            if (
                not isinstance(positions, list)
                or len(positions) != len(self.pool.hosts)
                or not all(p is None or isinstance(p, str) for p in positions)
            ):
                raise ValueError
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise RequestError(
                400,
                "invalid_cursor",
                f"the cursor is not one this cluster's scan() returned (a cluster of {len(self.pool.hosts)} nodes)",
            ) from None
        return dict(zip(self.pool.hosts, positions))

    def _every_node(self, call: Call) -> Plan:
        """``call`` on every node at once: the parsed answers by host, and the errors of those that failed."""
        sends = [(host, call) for host in self.pool.hosts]
        errors: dict[str, str] = {}
        answers = self.pool.tally(sends, (yield 0.0, sends), errors)
        return {host: call.read(answer) for (host, _), answer in zip(sends, answers) if answer is not None}, errors

    def clear(self) -> Plan:
        answers, errors = yield from self._every_node(clear_call())
        if errors:
            raise unavailable(
                f"cleared {len(answers)} of {len(self.pool.hosts)} nodes; not cleared: "
                + "; ".join(f"{host}: {error}" for host, error in errors.items()),
                errors,
            )
        return sum(answers.values())

    def nodes(self) -> list[str]:
        """Every node: a node-wide job (delete by pattern) runs on each."""
        return list(self.pool.hosts)

    def broadcast(self, call: Call) -> Plan:
        """``call`` on every node (tag invalidation: a tag's entries may be on
        any); their answers. Unavailable unless every node answered."""
        answers, errors = yield from self._every_node(call)
        if errors:
            raise unavailable(
                f"{call.method} {call.path} reached {len(answers)} of {len(self.pool.hosts)} "
                "nodes; not: " + "; ".join(f"{host}: {error}" for host, error in errors.items()),
                errors,
            )
        return list(answers.values())

    def stats(self) -> Plan:
        answers, errors = yield from self._every_node(stats_call())
        if not answers:
            raise self._unavailable("GET /stats", errors)
        return merge_stats(answers, errors)


# Fields of /stats that are not summed across nodes: recomputed or the least.
_LEAST = frozenset({"uptime_seconds"})


def merge_stats(answers: dict[str, dict[str, Any]], errors: dict[str, str]) -> dict[str, Any]:
    """The cluster's /stats: numbers summed over the nodes that answered
    (uptime: the youngest node's), ratios recomputed, a field that differs
    between nodes and is no number null; ``nodes`` holds each node's own."""
    documents = list(answers.values())
    total: dict[str, Any] = {}
    for name in dict.fromkeys(name for document in documents for name in document):
        values = [document.get(name) for document in documents]
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(numbers) == len(values):
            total[name] = min(numbers) if name in _LEAST else sum(numbers)
        else:
            total[name] = values[0] if all(v == values[0] for v in values) else None
    hits, misses = total.get("hits"), total.get("misses")
    if isinstance(hits, (int, float)) and isinstance(misses, (int, float)):
        total["hit_ratio"] = round(hits / (hits + misses), 4) if hits + misses else 0.0
    for mb, byte_count in (("memory_usage_mb", "memory_usage_bytes"), ("max_memory_mb", "max_memory_bytes")):
        if isinstance(total.get(byte_count), (int, float)) and mb in total:
            total[mb] = round(total[byte_count] / 2**20, 2)
    total["nodes_up"] = len(answers)
    total["nodes_down"] = len(errors)
    total["nodes"] = {
        host: answers[host] if host in answers else {"down": True, "error": errors[host]}
        for host in [*answers, *errors]
    }
    return total
