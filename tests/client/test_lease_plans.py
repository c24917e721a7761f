"""Where the sharded router sends leases (client/leases.py): the key's first
node only, a write with a token there and then to the other replicas
without it; driven step by step as in test_cluster_plans.py."""

from __future__ import annotations

from typing import Any

from cachegrid.client.leases import LEASE_HEADER, acquire_call, lease_read_call, put_call
from cachegrid.client.protocol import Call, NotSent
from tests.client.test_cluster_plans import answer, drive, router


def test_a_read_with_a_lease_asks_the_first_node_only() -> None:
    sharded, client = router()
    first = client.node_for("k")[0]
    read, steps = drive(
        sharded.first("k", lease_read_call("k", 5)),
        lambda h, c: answer(
            404,
            b'{"error": "not_found", "message": "", "key": "k", "lease": "held", "retry_after": 1.25}',
            X_Cache_Lease_Status="held",
            Retry_After="2",
        ),
    )
    assert [[host for host, _ in step] for step in steps] == [[first]]
    assert read.found is False and read.token is None and read.wait == 1.25


def test_the_grant_and_a_stale_hit_are_read_from_the_headers() -> None:
    sharded, _ = router()
    granted, _ = drive(
        sharded.first("k", lease_read_call("k", 5)),
        lambda h, c: answer(
            404,
            b'{"error": "not_found", "message": "no such key", "key": "k", "lease": "granted"}',
            X_Cache_Lease="tok",
        ),
    )
    assert granted.found is False and granted.token == "tok"
    stale, _ = drive(
        sharded.first("k", lease_read_call("k", 5)),
        lambda h, c: answer(200, b'"old"', X_Cache_Stale="true", X_Cache_Lease="tok2"),
    )
    assert (stale.found, stale.value, stale.stale, stale.token) == (True, "old", True, "tok2")


def test_a_leased_write_goes_to_the_first_node_then_plain_to_the_replicas() -> None:
    sharded, client = router(replicas=2)
    first, second = client.node_for("k")
    leased, plain = put_call("k", 1, 60, None, "tok"), put_call("k", 1, 60, None)
    stored, steps = drive(sharded.leased_write("k", leased, plain), lambda h, c: answer(201))
    assert stored is True
    assert steps == [[(first, leased)], [(second, plain)]]
    assert leased.headers[LEASE_HEADER] == "tok" and LEASE_HEADER not in plain.headers


def test_a_lost_lease_writes_no_replica() -> None:
    sharded, _ = router(replicas=2)
    lost = answer(409, b'{"error": "lease_not_held", "message": ""}')
    stored, steps = drive(
        sharded.leased_write("k", put_call("k", 1, None, None, "old"), put_call("k", 1, None, None)), lambda h, c: lost
    )
    assert stored is False and len(steps) == 1


def test_a_lock_fails_over_to_the_next_node_when_the_first_is_down() -> None:
    sharded, client = router(replicas=1)
    home = client.node_for("k")[0]

    def reply(host: str, call: Call) -> Any:
        return NotSent("refused") if host == home else answer(201, b'{"key": "k", "token": "t", "ttl": 5}')

    token, steps = drive(sharded.first("k", acquire_call("k", 5)), reply)
    assert token == "t" and steps[0][0][0] == home and steps[1][0][0] != home
