"""The cache the daemon serves, built from the settings in one place.

``create_app`` builds the served cache with it, and the load test builds its
scratch cache with it, so the two always share the policy and the limits.
"""

from __future__ import annotations

import time

from ..config import Settings
from ..engine import Cache, Clock, Limits
from ..engine.tags import TagLimits


def build_cache(settings: Settings, clock: Clock = time.monotonic) -> Cache:
    """A cache with the settings' policy and limits (its sweeper not started)."""
    limits = Limits(
        max_size=settings.max_size,
        max_memory=settings.max_memory_bytes,
        max_key_length=settings.max_key_length,
        max_value_size=settings.max_value_size,
    )
    options = {"decay_time": settings.lfu_decay_time} if settings.eviction_policy == "lfu" else None
    return Cache(
        settings.eviction_policy,
        limits,
        cleanup_interval=settings.cleanup_interval,
        clock=clock,
        scan_count=settings.keys_scan_count,
        policy_options=options,
        max_leases=settings.max_leases,
        max_lease_time=settings.max_lease_time,
        tag_limits=TagLimits(settings.max_tags_per_entry, settings.max_tag_length, settings.max_tags),
    )
