"""The rings' properties, checked over many node sets (no process): every
node once per walk, balance, what adding a node moves, weights, and nginx's
way of splitting a server name. That the nginx ring places keys as nginx
does is checked against a real nginx in tests/integration/test_cluster_nginx.py."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from cachegrid.client.ring import KetamaRing, NginxRing, _split_server

KEYS = [f"key:{number}" for number in range(3000)]
RINGS = [KetamaRing, NginxRing]


def random_nodes(rng: random.Random, count: int) -> dict[str, int]:
    return {f"127.0.0.1:{port}": 1 for port in rng.sample(range(1024, 65535), count)}


def shares(ring: KetamaRing | NginxRing, keys: list[str]) -> Counter[str]:
    return Counter(next(ring.walk(key)) for key in keys)


@pytest.mark.parametrize("make", RINGS)
def test_a_walk_visits_every_node_once(make: type) -> None:
    ring = make(random_nodes(random.Random(1), 5))
    for key in KEYS[:200]:
        walk = list(ring.walk(key))
        assert sorted(walk) == sorted(ring.nodes)


@pytest.mark.parametrize("make", RINGS)
def test_keys_spread_evenly_over_most_node_sets(make: type) -> None:
    # 160 points per node: a node's share varies with the node names by
    # about 8 %; over 200 random sets of three nodes, nearly all stay within 20 %.
    rng = random.Random(7)
    within = 0
    for _ in range(200):
        counts = shares(make(random_nodes(rng, 3)), KEYS[:1500])
        within += all(abs(count - 500) <= 100 for count in counts.values())
    assert within >= 190


@pytest.mark.parametrize("make", RINGS)
def test_a_new_node_takes_about_its_share_and_only_from_the_others(make: type) -> None:
    # A fourth node takes 1/4 of the keys on average; one node set varies
    # around that as the balance does (see the test above).
    rng = random.Random(11)
    fractions = []
    for _ in range(20):
        nodes = random_nodes(rng, 4)
        old = make(dict(list(nodes.items())[:3]))
        new = make(nodes)
        added = list(nodes)[3]
        moved = [key for key in KEYS if next(old.walk(key)) != next(new.walk(key))]
        assert all(next(new.walk(key)) == added for key in moved)  # nothing moves between old nodes
        fractions.append(len(moved) / len(KEYS))
    assert 0.22 <= sum(fractions) / len(fractions) <= 0.28 and max(fractions) <= 0.4


@pytest.mark.parametrize("make", RINGS)
def test_a_heavier_node_gets_more_keys(make: type) -> None:
    nodes = random_nodes(random.Random(3), 3)
    heavy = next(iter(nodes))
    counts = shares(make({**nodes, heavy: 2}), KEYS)
    assert counts[heavy] > 1.4 * max(count for node, count in counts.items() if node != heavy)


@pytest.mark.parametrize("make", RINGS)
def test_bad_weights_are_refused(make: type) -> None:
    for weights in ({}, {"a:1": 0}, {"a:1": 1.5}, {"a:1": True}):
        with pytest.raises(ValueError):
            make(weights)


def test_the_rings_place_keys_differently() -> None:
    nodes = random_nodes(random.Random(5), 3)
    ketama, nginx = KetamaRing(nodes), NginxRing(nodes)
    differ = sum(next(ketama.walk(key)) != next(nginx.walk(key)) for key in KEYS)
    assert differ > len(KEYS) / 3


def test_server_names_split_as_nginx_splits_them() -> None:
    assert _split_server("127.0.0.1:8001") == (b"127.0.0.1", b"8001")
    assert _split_server("[::1]:80") == (b"[::1]", b"80")
    assert _split_server("cache.example.com") == (b"cache.example.com", b"")


def test_the_ketama_walk_is_uhashrings_own_order() -> None:
    # The ring reads uhashring's continuum once; its order must stay uhashring's
    # (libketama's), weights included.
    from uhashring import HashRing

    rng = random.Random(13)
    for count in (2, 3, 5):
        weights = {node: rng.choice([1, 2, 3]) for node in random_nodes(rng, count)}
        ours = KetamaRing(weights)
        theirs = HashRing(nodes={node: {"weight": weight} for node, weight in weights.items()}, hash_fn="ketama")
        for key in KEYS[:1000]:
            assert list(ours.walk(key)) == [conf["nodename"] for conf in theirs.range(key)]
