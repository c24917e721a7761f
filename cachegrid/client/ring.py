"""Where a key lives in a cluster: consistent-hash rings behind one interface.

A ring is built from node labels (``host:port``, as other clients and
nginx's configuration spell a server) with a weight each, and answers one
question: ``walk(key)``, every node once, in the order the ring visits them
from the key's point. The first node is the key's home; the next ones are its
replicas and where it goes when nodes before them are down. Adding a node
takes over only the keys whose points now fall on it (about 1/N of them);
removing one moves only its own keys.

Two rings, placing the same key on different nodes:

- ``KetamaRing`` (the default): libketama's ring, MD5, 160 points per node
  and weight, from uhashring with ``hash_fn='ketama'`` - the ring of
  memcached clients (libmemcached, pylibmc, spymemcached, uhashring).
- ``NginxRing``: exactly the ring of nginx's ``hash ... consistent``
  upstream, so that this client and HTTP clients going through nginx agree on
  every key's node. nginx's algorithm (the one of Cache::Memcached::Fast):
  a server ``HOST:PORT`` of weight w gets 160*w points; the base is the CRC-32
  state after ``HOST``, a NUL byte and ``PORT``; point j continues that state
  with the previous point's value as four little-endian bytes (0 for the
  first) and finalises it. Points are sorted by value, a repeated value kept
  once. A key's hash is the CRC-32 of the key as nginx sees it (here: the
  key's path segment as this client sends it, percent-encoded); its home is
  the first point at or after that hash, wrapping round; failover walks the
  following points. A server with no ``:PORT`` hashes with an empty port.
"""

from __future__ import annotations

import struct
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from uhashring import HashRing

POINTS_PER_WEIGHT = 160  # nginx's and ketama's


class Ring(Protocol):
    """What the client needs of a ring."""

    nodes: list[str]

    def walk(self, key: str) -> Iterator[str]:
        """Every node once, in ring order from ``key``'s point."""
        ...


def check_weights(weights: Mapping[str, int]) -> None:
    if not weights:
        raise ValueError("a ring needs at least one node")
    for label, weight in weights.items():
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 1:
            raise ValueError(f"the weight of {label} must be a whole number >= 1, not {weight!r}")


class KetamaRing:
    """libketama's ring (MD5), from uhashring."""

    def __init__(self, weights: Mapping[str, int]) -> None:
        check_weights(weights)
        self.nodes = list(weights)
        self._ring = HashRing(nodes={label: {"weight": weight} for label, weight in weights.items()}, hash_fn="ketama")
        # uhashring's continuum, read once: its range() copies the point list
        # on every call. A key's point is uhashring's: the first after its hash.
        points = self._ring.get_points()
        self._hashes = [point for point, _ in points]
        self._labels = [label for _, label in points]

    def walk(self, key: str) -> Iterator[str]:
        start = bisect_right(self._hashes, self._ring.hashi(key)) % len(self._hashes)
        return walk_points(self._labels, start, len(self.nodes))


class NginxRing:
    """The ring of nginx's ``hash $key consistent`` (see the module docstring).

    ``segment`` turns a key into the bytes nginx hashes: the percent-encoded
    path segment the client sends."""

    def __init__(self, weights: Mapping[str, int], segment: Callable[[str], str] = lambda key: key) -> None:
        check_weights(weights)
        self.nodes = list(weights)
        self._segment = segment
        points: dict[int, str] = {}
        for label, weight in weights.items():
            host, port = _split_server(label)
            base = zlib.crc32(host + b"\0" + port)
            previous = 0
            for _ in range(POINTS_PER_WEIGHT * weight):
                point = zlib.crc32(struct.pack("<I", previous), base)
                points.setdefault(point, label)  # a repeated value: the first server keeps it
                previous = point
        self._hashes = sorted(points)
        self._labels = [points[point] for point in self._hashes]

    def home_index(self, key: str) -> int:
        index = bisect_left(self._hashes, zlib.crc32(self._segment(key).encode()))
        return index % len(self._hashes)

    def walk(self, key: str) -> Iterator[str]:
        return walk_points(self._labels, self.home_index(key), len(self.nodes))


def walk_points(labels: list[str], start: int, nodes: int) -> Iterator[str]:
    """The distinct nodes of the points from ``start`` on, wrapping round."""
    seen: set[str] = set()
    count = len(labels)
    for offset in range(count):
        label = labels[(start + offset) % count]
        if label not in seen:
            seen.add(label)
            yield label
            if len(seen) == nodes:
                return


def _split_server(label: str) -> tuple[bytes, bytes]:
    """``host:port`` as nginx splits it: at the last colon when only digits follow."""
    host, colon, port = label.rpartition(":")
    if colon and port.isdigit():
        return host.encode(), port.encode()
    return label.encode(), b""


RINGS: dict[str, type[KetamaRing] | type[NginxRing]] = {"ketama": KetamaRing, "nginx": NginxRing}
