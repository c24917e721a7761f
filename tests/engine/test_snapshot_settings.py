"""The snapshot settings: defaults, validation with a clear error, and the sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from cachegrid.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no etc/cachegrid.toml of the checkout
    for name in (
        "CACHEGRID_SNAPSHOT_PATH",
        "CACHEGRID_SNAPSHOT_INTERVAL",
        "CACHEGRID_SNAPSHOT_ON_SHUTDOWN",
        "CACHEGRID_CONFIG",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_change_nothing_for_those_who_do_not_ask() -> None:
    settings = load_settings()
    assert settings.snapshot_path is None
    assert settings.snapshot_interval == 300 and settings.snapshot_on_shutdown is True


def test_every_source_sets_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"[cachegrid]\nsnapshot_path = '{tmp_path / 'a.snap'}'\nsnapshot_interval = 60\n")
    assert load_settings(config).snapshot_path == tmp_path / "a.snap"
    monkeypatch.setenv("CACHEGRID_SNAPSHOT_PATH", str(tmp_path / "b.snap"))
    monkeypatch.setenv("CACHEGRID_SNAPSHOT_ON_SHUTDOWN", "false")
    settings = load_settings(config)
    assert (settings.snapshot_path, settings.snapshot_interval) == (tmp_path / "b.snap", 60)
    assert settings.snapshot_on_shutdown is False
    assert load_settings(config, snapshot_interval=0).snapshot_interval == 0


def test_an_empty_path_means_no_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEGRID_SNAPSHOT_PATH", "")
    assert load_settings().snapshot_path is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"snapshot_path": "."}, "is a directory; give the snapshot's file name"),
        ({"snapshot_path": "/no/such/directory/cache.snap"}, "the directory '/no/such/directory' does not exist"),
        ({"snapshot_interval": 0.5}, "must be 0 (only at shutdown) or at least 1 second"),
        ({"snapshot_interval": -1}, "greater than or equal to 0"),
        ({"snapshot_interval": 10**9}, "less than or equal to 604800"),
    ],
)
def test_bad_values_stop_start_up_with_one_clear_line(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(**overrides)
    assert message in str(error.value) and next(iter(overrides)) in str(error.value)
    assert "\n" not in str(error.value)
