"""A value's path (protocol.item_path): remembered per key, bounded, the same as made afresh."""

from __future__ import annotations

import pytest

from cachegrid.client import protocol
from cachegrid.client.protocol import item_path, key_segment


@pytest.mark.parametrize("key", ["user:42", "a b/c", "é", "x?y#z", "k" * 300])
def test_a_remembered_path_is_the_one_made_afresh(key: str) -> None:
    expected = f"/cache/{key_segment(key)}"
    assert item_path(key) == expected
    assert item_path(key) == expected  # now from the table
    assert item_path(key, "/incr") == f"{expected}/incr"  # a suffix is never taken from it


@pytest.mark.parametrize("key", ["", None, 5, ["a"]])
def test_what_is_no_key_is_refused_every_time(key: object) -> None:
    for _ in range(2):
        with pytest.raises(ValueError):
            item_path(key)  # type: ignore[arg-type]


def test_the_table_is_emptied_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "_ITEM_PATHS", {})
    for number in range(protocol.MAX_ITEM_PATHS * 3):
        assert item_path(f"key:{number}") == f"/cache/key:{number}"
        assert len(protocol._ITEM_PATHS) <= protocol.MAX_ITEM_PATHS
