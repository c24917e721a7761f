"""Helpers of the deployment tests: paths, free ports, bounded waits, /proc.

Every wait here is bounded; every process a test starts is ended by
``kill_started`` in a ``finally``, by process id (and the process groups of
its own descendants), never by name.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest

from cachegrid.testing import free_port as free_port
from tests.fixtures import unit_value

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CACHEGRID = BIN / "cachegrid"


def require_cachegrid_serve() -> Path:
    """The installed ``cachegrid`` script; skips while it does not exist yet."""
    if not CACHEGRID.exists():
        pytest.skip(f"{CACHEGRID} is not installed yet (the package's command line)")
    return CACHEGRID


def serve_help() -> str:
    """``cachegrid serve --help``, unwrapped; fails if the command fails."""
    env = clean_env(COLUMNS="400", NO_COLOR="1", TERM="dumb")
    result = subprocess.run(
        [str(require_cachegrid_serve()), "serve", "--help"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"cachegrid serve --help failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without CACHEGRID_*/PORT/WEB_CONCURRENCY, the
    virtualenv first on PATH, plus ``extra``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("CACHEGRID_")
        and name not in ("PORT", "WEB_CONCURRENCY", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The status of GET url, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, urllib.error.URLError):
        return None


def wait_for_health(url: str, process: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    """Poll url until it answers 200; fail (with the log) on timeout or if
    ``process`` exits first."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited (rc={process.returncode}) before {url} answered:\n{read(log)}")
        status = http_status(url)
        if status == 200:
            return
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer 200 within {timeout:g} s (last status: {status}):\n{read(log)}")


def read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-6000:]
    except OSError:
        return "(no output)"


def wait_exit(process: subprocess.Popen, timeout: float) -> int | None:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


# -- /proc -----------------------------------------------------------------------


def _fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, or None when it is gone."""
    fields = _fields(pid)
    return None if fields is None else (fields[0], int(fields[1]))


def identity(pid: int) -> tuple[int, str] | None:
    """(pid, start time): tells a process from a later one with its pid."""
    fields = _fields(pid)
    return None if fields is None else (pid, fields[19])


def parent(pid: int) -> int | None:
    stat = _stat(pid)
    return None if stat is None else stat[1]


def alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def children(pid: int) -> list[int]:
    """Live (not zombie) child processes of pid."""
    by_parent: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[0] not in ("Z", "X"):
                by_parent[stat[1]].append(int(entry))
    return sorted(by_parent.get(pid, []))


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on a TCP port (IPv4 or IPv6, any address)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def holders(pids: list[int], inodes: set[str]) -> list[int]:
    """Those of pids that hold one of the socket inodes open."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    found = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                    found.append(pid)
                    break
            except OSError:
                continue
    return found


def kill_started(process: subprocess.Popen | None, seen: set[tuple[int, str]] = frozenset()) -> None:
    """SIGKILL a process the test started, every descendant of it, their
    process groups (not the test's own) and the processes ``seen`` earlier
    (``identity`` values: a pid reused since is left alone)."""
    if process is None:
        return
    pids = {pid for pid, start in seen if identity(pid) == (pid, start)}
    if process.poll() is None:
        pids.update(descendants(process.pid))
        pids.add(process.pid)
    own_group = os.getpgrp()
    groups = set()
    for pid in pids:
        try:
            groups.add(os.getpgid(pid))
        except OSError:
            pass
    for group in groups - {own_group}:
        try:
            os.killpg(group, signal.SIGKILL)
        except OSError:
            pass
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def exec_start(text: str) -> list[str]:
    values = unit_value(text, "ExecStart")
    assert len(values) == 1, f"expected one ExecStart=, found {values}"
    return shlex.split(values[0].lstrip("-@:+!"))
