"""The daemon's key check is the engine's: its inline common case (a PERF
shortcut in Resource.check_key) accepts and refuses exactly what
``cachegrid.engine.check_key`` does, naming the key when it refuses."""

from __future__ import annotations

import pytest

from cachegrid.config import Settings
from cachegrid.daemon.resources import Resource
from cachegrid.engine import Cache, InvalidKey, check_key

MAX = 10
KEYS = ["a", "user:42", "x" * MAX, "x" * (MAX + 1), "", "é" * 5, "é" * 6, "\ud800", "k\x00", " "]


@pytest.mark.parametrize("key", KEYS)
def test_the_resources_key_check_is_the_engines(key: str) -> None:
    resource = Resource(Cache("lru", max_key_length=MAX), Settings())
    try:
        check_key(key, MAX)
    except InvalidKey as engine_error:
        with pytest.raises(type(engine_error)) as raised:
            resource.check_key(key)
        assert str(raised.value) == str(engine_error)
        assert raised.value.key == key  # type: ignore[attr-defined]
    else:
        resource.check_key(key)  # accepted by both
