"""The systemd units turn snapshots on, in a directory systemd keeps for the service,
with the memory a fork-based snapshot needs; the units still verify (tests/deploy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cachegrid.config import Settings
from tests.deploy.test_systemd import SERVICES, UNITS, unit_value


@pytest.mark.parametrize("unit_file", sorted(SERVICES))
def test_the_snapshot_lives_under_the_state_directory(unit_file: str) -> None:
    text = (UNITS / unit_file).read_text()
    assert unit_value(text, "StateDirectory") == ["cachegrid"]
    [path] = [value.split("=", 1)[1] for value in unit_value(text, "Environment")
              if value.startswith("CACHEGRID_SNAPSHOT_PATH=")]
    assert path.startswith("%S/cachegrid/") and Path(path).suffix == ".snap"
    if "@" in unit_file:
        assert "%i" in path  # one file per instance


@pytest.mark.parametrize("unit_file", sorted(SERVICES))
def test_memory_max_budgets_the_copy_of_a_background_snapshot(unit_file: str) -> None:
    [memory_max] = unit_value((UNITS / unit_file).read_text(), "MemoryMax")
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    limit = int(memory_max[:-1]) * units[memory_max[-1]]
    budget = Settings.model_fields["max_memory_mb"].default * 2**20
    assert limit >= 2 * budget + 256 * 2**20
