"""Eviction policies by name (as gunicorn names its worker classes).

The registry maps each public name to the dotted path of its store class, so
that a configuration value is checked against one list and a policy is only
imported when it is used.
"""

from __future__ import annotations

from importlib import import_module

from .store import Store

POLICIES: dict[str, str] = {
    "lru": "cachegrid.engine.lru:LRUStore",
    "lfu": "cachegrid.engine.lfu:LFUStore",
    "tinylfu": "cachegrid.engine.tinylfu:TinyLFUStore",
    "adaptive": "cachegrid.engine.adaptive:AdaptiveStore",
    "ttl": "cachegrid.engine.ttl:TTLStore",
    "size": "cachegrid.engine.size:SizeStore",
    "noeviction": "cachegrid.engine.noeviction:NoEvictionStore",
}
DEFAULT_POLICY = "adaptive"


def store_class(policy: str) -> type[Store]:
    """The store class of the policy named ``policy``; ValueError if unknown."""
    try:
        module, _, name = POLICIES[policy].partition(":")
    except KeyError:
        raise ValueError(f"unknown eviction policy {policy!r}; known: {', '.join(POLICIES)}") from None
    return getattr(import_module(module), name)
