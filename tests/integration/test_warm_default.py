"""Warm by default: ``cachegrid serve`` with no snapshot setting keeps its
keys across a restart, in ``$XDG_STATE_HOME/cachegrid/<host>:<port>.snap``
(a directory of the test here, never the home directory), created 0700 with
the file 0600; ``--no-snapshot`` keeps none; where the directory cannot be
made, the server starts cold and says so in one line."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from cachegrid.testing import ServerProcess


def stopped(server: ServerProcess) -> str:
    """Stop ``server`` gracefully (its shutdown snapshot is written); its log."""
    server.stop()
    return server.log_path.read_text(errors="replace")


def test_a_restart_with_the_defaults_keeps_the_keys(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    first = ServerProcess(env=env)
    first.wait_healthy()
    assert first.request("PUT", "/cache/greeting", body="hello")[0] in (200, 201)
    stats = json.loads(first.request("GET", "/stats")[2])
    assert stats["node_id"] == f"127.0.0.1:{first.port}" and stats["snapshot_enabled"] is True
    log = stopped(first)
    snapshot = tmp_path / "state" / "cachegrid" / f"127.0.0.1:{first.port}.snap"
    assert str(snapshot) in log
    assert snapshot.is_file() and stat.S_IMODE(snapshot.stat().st_mode) == 0o600
    assert stat.S_IMODE(snapshot.parent.stat().st_mode) == 0o700

    again = ServerProcess("--port", str(first.port), env=env)
    try:
        again.wait_healthy()
        status, _, raw = again.request("GET", "/cache/greeting")
        assert status == 200 and json.loads(raw) == "hello"
    finally:
        again.kill()


def test_no_snapshot_starts_and_stays_cold(tmp_path: Path) -> None:
    server = ServerProcess("--no-snapshot", env={"XDG_STATE_HOME": str(tmp_path)})
    try:
        server.wait_healthy()
        assert json.loads(server.request("GET", "/stats")[2])["snapshot_enabled"] is False
    finally:
        stopped(server)
    assert not any(tmp_path.rglob("*.snap"))


def test_a_state_directory_that_cannot_be_made_starts_cold_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    server = ServerProcess(env={"XDG_STATE_HOME": str(blocker)})
    try:
        server.wait_healthy()
        assert json.loads(server.request("GET", "/stats")[2])["snapshot_enabled"] is False
    finally:
        log = stopped(server)
    lines = [line for line in log.splitlines() if "starting cold, without snapshots" in line]
    assert len(lines) == 1 and str(blocker / "cachegrid") in lines[0]
