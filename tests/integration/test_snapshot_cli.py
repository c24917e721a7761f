"""``cachegrid snapshot`` and ``cachegrid snapshot --status`` against real servers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from cachegrid.testing import CLI, ServerProcess


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "--url", server.url, *args], capture_output=True, text=True, timeout=60)


def test_snapshot_wait_writes_one_and_status_shows_it(start_server, tmp_path: Path) -> None:
    path = tmp_path / "cache.snap"
    server = start_server("--snapshot-path", str(path), "--snapshot-interval", "0")
    server.request("POST", "/cache/batch/set", {"items": {f"k{number}": number for number in range(300)}})
    done = cli(server, "snapshot", "--wait")
    assert done.returncode == 0, done.stderr
    assert "last result       ok (request)" in done.stdout and "last entries      300" in done.stdout
    assert path.stat().st_size > 0
    status = cli(server, "snapshot", "--status", "--json")
    state = json.loads(status.stdout)
    assert state["written"] == 1 and state["last"]["bytes"] == path.stat().st_size
    assert "only at shutdown" in cli(server, "snapshot", "--status").stdout


def test_snapshot_on_a_server_without_snapshots_is_refused_in_one_line(start_server) -> None:
    server = start_server()
    refused = cli(server, "snapshot")
    assert refused.returncode == 5  # REFUSED
    assert refused.stderr.strip().count("\n") == 0 and "snapshots are off" in refused.stderr
    status = cli(server, "snapshot", "--status")
    assert status.returncode == 0 and "off (set snapshot_path" in status.stdout
