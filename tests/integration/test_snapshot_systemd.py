"""The systemd units turn snapshots on, in a directory systemd keeps for the
service (the memory budget of a forked snapshot and the units' verification
are checked in tests/deploy/test_systemd.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures import SYSTEMD_SERVICES, SYSTEMD_UNITS, unit_value


@pytest.mark.parametrize("unit_file", sorted(SYSTEMD_SERVICES))
def test_the_snapshot_lives_under_the_state_directory(unit_file: str) -> None:
    text = (SYSTEMD_UNITS / unit_file).read_text()
    assert unit_value(text, "StateDirectory") == ["cachegrid"]
    [path] = [
        value.split("=", 1)[1]
        for value in unit_value(text, "Environment")
        if value.startswith("CACHEGRID_SNAPSHOT_PATH=")
    ]
    assert path.startswith("%S/cachegrid/") and Path(path).suffix == ".snap"
    if "@" in unit_file:
        assert "%i" in path  # one file per instance
