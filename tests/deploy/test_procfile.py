"""The Procfile (Heroku), run as Heroku would with honcho.

The web process binds 0.0.0.0:$PORT as on Heroku; the test only ever talks
to 127.0.0.1, and sets an auth token so the briefly open port serves nothing
but /health to anyone else.
"""

from __future__ import annotations

import re
import secrets
import signal
import subprocess
import sys
import time

import pytest

from ._support import (
    REPO,
    alive,
    children,
    clean_env,
    descendants,
    free_port,
    holders,
    identity,
    kill_started,
    listening_inodes,
    parent,
    read,
    require_cachegrid_serve,
    wait_exit,
    wait_for_health,
)

PROCFILE = REPO / "Procfile"
HONCHO = [sys.executable, "-m", "honcho"]
# Honcho reads no .env file of the checkout: only what the test sets.
HONCHO_ARGS = ["-f", str(PROCFILE), "-d", str(REPO), "-e", "/dev/null", "--no-colour"]

pytest.importorskip("honcho", reason="honcho is not installed (pip install honcho)")


def test_procfile_has_one_web_process_on_all_interfaces_and_port() -> None:
    lines = [line for line in PROCFILE.read_text().splitlines() if re.match(r"^[A-Za-z0-9_-]+:", line)]
    assert [line.split(":", 1)[0] for line in lines] == ["web"]
    command = lines[0].split(":", 1)[1].split()
    assert command[:2] == ["cachegrid", "serve"]
    assert " ".join(command).count("--host 0.0.0.0") == 1 and " ".join(command).count("--port $PORT") == 1


def test_honcho_check_accepts_the_procfile() -> None:
    result = subprocess.run(
        [*HONCHO, "check", *HONCHO_ARGS], cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid procfile detected (web)" in result.stdout + result.stderr


def _server_processes(honcho_pid: int, port: int) -> tuple[int, list[int]]:
    """(the gunicorn master, its children): the master is the process holding
    the listening socket whose parent does not; found through /proc, so
    neither the process titles nor the shell in between matter."""
    tree = descendants(honcho_pid)
    owners = holders(tree, listening_inodes(port))
    masters = [pid for pid in owners if not set(owners) & {parent(pid)}]
    assert len(masters) == 1, f"expected one gunicorn master on port {port}, found {masters} (holders {owners})"
    return masters[0], children(masters[0])


@pytest.mark.slow
def test_honcho_start_serves_health_with_exactly_one_worker_and_stops_on_sigterm(tmp_path) -> None:
    require_cachegrid_serve()
    port = free_port("0.0.0.0")
    log = tmp_path / "honcho.log"
    env = clean_env(
        # What Heroku's Python buildpack sets (2 and up): must not matter.
        WEB_CONCURRENCY="3",
        CACHEGRID_AUTH_TOKEN=secrets.token_urlsafe(24),
    )
    seen: set[tuple[int, str]] = set()
    honcho = None
    try:
        with log.open("wb") as out:
            honcho = subprocess.Popen(
                [*HONCHO, "start", *HONCHO_ARGS, "-p", str(port)],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for_health(f"http://127.0.0.1:{port}/health", honcho, log, timeout=30)
        seen.update(filter(None, map(identity, descendants(honcho.pid))))

        # gunicorn forks all its workers at once; look a few times over 2 s
        # so that a second or third worker would be seen too.
        master, workers = _server_processes(honcho.pid, port)
        for _ in range(8):
            time.sleep(0.25)
            master_now, workers_now = _server_processes(honcho.pid, port)
            assert master_now == master
            assert len(workers_now) == 1, (
                f"expected exactly one gunicorn worker (WEB_CONCURRENCY=3 must be ignored), "
                f"found {workers_now}:\n{read(log)}"
            )
        seen.update(filter(None, map(identity, [master, *workers_now])))

        honcho.send_signal(signal.SIGTERM)
        returncode = wait_exit(honcho, timeout=20)
        assert returncode is not None, f"honcho did not exit within 20 s of SIGTERM:\n{read(log)}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(identity(pid) == (pid, start) and alive(pid) for pid, start in seen):
            time.sleep(0.1)
        left = [pid for pid, start in seen if identity(pid) == (pid, start) and alive(pid)]
        assert not left, f"processes left running after honcho stopped: {left}:\n{read(log)}"
        assert re.search(r"web\.1 stopped \(rc=", read(log)), read(log)
    finally:
        kill_started(honcho, seen)
