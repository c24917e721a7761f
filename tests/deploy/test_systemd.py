"""The systemd units: systemd's own checks, and what they assume of the server.

systemd is not PID 1 here, so the units are checked with ``systemd-analyze``
(on a copy whose ExecStart binary is /bin/true: verify fails on a missing
binary) and the two protocols they rely on are exercised without systemd:
READY=1 on $NOTIFY_SOCKET from the main process (Type=notify with
NotifyAccess=main) and a listening socket passed in LISTEN_FDS
(cachegrid.socket), through systemd-socket-activate.
"""

from __future__ import annotations

import array
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from tests.fixtures import SYSTEMD_SERVICES, SYSTEMD_UNITS, unit_value

from ._support import (
    REPO,
    clean_env,
    exec_start,
    free_port,
    http_status,
    kill_started,
    read,
    require_cachegrid_serve,
    serve_help,
    wait_exit,
    wait_for_health,
)

MAX_EXPOSURE = 2.0
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")


def _copy_for_verify(tmp_path: Path, *files: str) -> None:
    """Copies of unit files whose ExecStart binary is /bin/true (the real one
    is only installed on the production host)."""
    for name in files:
        text = (SYSTEMD_UNITS / name).read_text()
        text, count = re.subn(r"^(ExecStart=[-@:+!]*)\S+", r"\1/bin/true", text, flags=re.MULTILINE)
        assert count == (1 if name.endswith(".service") else 0), f"{name}: {count} ExecStart= lines"
        (tmp_path / name).write_text(text)


def _analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SYSTEMD_ANALYZE, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


# -- systemd-analyze ---------------------------------------------------------------


@needs_analyze
@pytest.mark.parametrize("unit_file", sorted(SYSTEMD_SERVICES))
def test_service_verifies_without_any_message(tmp_path: Path, unit_file: str) -> None:
    _copy_for_verify(tmp_path, unit_file)
    result = _analyze("verify", f"./{SYSTEMD_SERVICES[unit_file]}", cwd=tmp_path)
    # verify exits 0 even on unknown keys and bad values: only an empty
    # stderr means systemd understood every line.
    assert result.returncode == 0 and result.stderr == "", result.stderr


@needs_analyze
def test_socket_verifies_with_its_service_without_any_message(tmp_path: Path) -> None:
    _copy_for_verify(tmp_path, "cachegrid.socket", "cachegrid.service")
    result = _analyze("verify", "./cachegrid.socket", "./cachegrid.service", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr


@needs_analyze
@pytest.mark.parametrize("unit_file", sorted(SYSTEMD_SERVICES))
def test_service_exposure_is_at_most_2(tmp_path: Path, unit_file: str) -> None:
    _copy_for_verify(tmp_path, unit_file)
    result = _analyze("security", "--offline=yes", "--no-pager", f"./{SYSTEMD_SERVICES[unit_file]}", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert found, f"no 'Overall exposure level' line in:\n{result.stdout}"
    assert float(found.group(1)) <= MAX_EXPOSURE, result.stdout


@pytest.mark.parametrize("unit_file", sorted(SYSTEMD_SERVICES))
def test_graceful_stop_outlasts_the_servers_graceful_timeout(unit_file: str) -> None:
    from cachegrid.config import Settings

    text = (SYSTEMD_UNITS / unit_file).read_text()
    [stop] = unit_value(text, "TimeoutStopSec")
    assert unit_value(text, "KillSignal") == ["SIGTERM"]  # gunicorn's graceful stop
    assert unit_value(text, "KillMode") == ["mixed"]  # to the master only, then SIGKILL to all
    graceful = Settings.model_fields["graceful_timeout"].default
    assert int(stop.removesuffix("s")) > graceful


@pytest.mark.parametrize("unit_file", sorted(SYSTEMD_SERVICES))
def test_memory_max_leaves_room_above_the_default_cache_budget(unit_file: str) -> None:
    from cachegrid.config import Settings

    [memory_max] = unit_value((SYSTEMD_UNITS / unit_file).read_text(), "MemoryMax")
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    limit = int(memory_max[:-1]) * units[memory_max[-1]]
    budget = Settings.model_fields["max_memory_mb"].default * 2**20
    # 2x with snapshots on (the units set a path): a forked snapshot's
    # copy-on-write pages count against MemoryMax too (docs/snapshots.md).
    factor = 2 if "CACHEGRID_SNAPSHOT_PATH=" in (SYSTEMD_UNITS / unit_file).read_text() else 1.5
    assert limit >= factor * budget + 256 * 2**20


# -- the command line of the units --------------------------------------------------


@pytest.mark.parametrize("unit_file", sorted(SYSTEMD_SERVICES))
def test_exec_start_runs_cachegrid_serve_with_options_it_accepts(tmp_path: Path, unit_file: str) -> None:
    argv = exec_start((SYSTEMD_UNITS / unit_file).read_text())
    assert argv[:2] == ["/opt/cachegrid/bin/cachegrid", "serve"]
    assert argv[argv.index("--config") + 1] == "/etc/cachegrid/cachegrid.toml"
    options = [arg for arg in argv[2:] if arg.startswith("--")]
    help_text = serve_help()
    for option in options:
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", help_text), (
            f"{option} is not an option of `cachegrid serve`:\n{help_text}"
        )
    # The real command parses the unit's arguments: with a config file that
    # does not exist it must stop on that file, not on a usage error.
    missing = tmp_path / "missing.toml"
    args = [str(missing) if arg == "/etc/cachegrid/cachegrid.toml" else arg.replace("%i", "8081") for arg in argv[1:]]
    result = subprocess.run(
        [str(require_cachegrid_serve()), *args],
        env=clean_env(COLUMNS="400"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode not in (0, 2), result.stdout + result.stderr
    assert str(missing) in result.stdout + result.stderr


def test_template_takes_its_port_and_node_id_from_the_instance() -> None:
    text = (SYSTEMD_UNITS / "cachegrid@.service").read_text()
    argv = exec_start(text)
    assert argv[argv.index("--port") + 1] == "%i"
    assert "CACHEGRID_NODE_ID=%H:%i" in unit_value(text, "Environment")


def test_socket_listens_on_the_default_port() -> None:
    from cachegrid.config import Settings

    text = (SYSTEMD_UNITS / "cachegrid.socket").read_text()
    assert unit_value(text, "ListenStream") == [str(Settings.model_fields["port"].default)]
    assert unit_value(text, "Accept") == ["no"]


# -- the protocols the units rely on, without systemd ------------------------------


def _serve_argv(port: int, *extra: str) -> list[str]:
    """The service's ExecStart, with the checkout's config file and a local port."""
    argv = exec_start((SYSTEMD_UNITS / "cachegrid.service").read_text())
    argv = [str(REPO / "etc" / "cachegrid.toml") if arg == "/etc/cachegrid/cachegrid.toml" else arg for arg in argv[1:]]
    return [str(require_cachegrid_serve()), *argv, "--host", "127.0.0.1", "--port", str(port), *extra]


def _stop(process: subprocess.Popen, log: Path) -> None:
    process.send_signal(signal.SIGTERM)  # KillSignal=SIGTERM, KillMode=mixed
    returncode = wait_exit(process, timeout=20)
    assert returncode is not None, f"not stopped within 20 s of SIGTERM:\n{read(log)}"
    assert returncode == 0, f"exit status {returncode} after SIGTERM:\n{read(log)}"


@pytest.mark.slow
def test_ready_notification_comes_from_the_main_process(tmp_path: Path) -> None:
    notify_path = tmp_path / "notify"
    log = tmp_path / "serve.log"
    port = free_port()
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    receiver.bind(str(notify_path))
    server = None
    try:
        with log.open("wb") as out:
            server = subprocess.Popen(
                _serve_argv(port),
                cwd=tmp_path,
                env=clean_env(NOTIFY_SOCKET=str(notify_path)),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        messages: list[tuple[int, str]] = []
        deadline = time.monotonic() + 30
        receiver.settimeout(0.5)
        while not any("READY=1" in text.split("\n") for _, text in messages):
            if time.monotonic() > deadline:
                pytest.fail(f"no READY=1 within 30 s (got {messages}):\n{read(log)}")
            if server.poll() is not None:
                pytest.fail(f"the server exited (rc={server.returncode}) before READY=1:\n{read(log)}")
            try:
                data, ancillary, _, _ = receiver.recvmsg(4096, socket.CMSG_SPACE(struct.calcsize("3i")))
            except TimeoutError:
                continue
            sender = None
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    sender = array.array("i", payload[:12])[0]
            messages.append((sender, data.decode(errors="replace")))
        ready_from = [sender for sender, text in messages if "READY=1" in text.split("\n")]
        # NotifyAccess=main: systemd only believes the process it started.
        assert ready_from == [server.pid], f"READY=1 from {ready_from}, main process {server.pid}"
        # Ready means bound: /health answers once the worker has loaded.
        wait_for_health(f"http://127.0.0.1:{port}/health", server, log, timeout=30)
        assert server.poll() is None  # still the same process: it did not daemonize
        _stop(server, log)
    finally:
        receiver.close()
        kill_started(server)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None, reason="systemd-socket-activate is not installed")
@pytest.mark.parametrize("worker", ["meinheld", "gthread"])
def test_serves_on_a_socket_passed_by_systemd(tmp_path: Path, worker: str) -> None:
    require_cachegrid_serve()
    if worker == "meinheld":
        from cachegrid.daemon.workers import meinheld_problem

        if problem := meinheld_problem():
            pytest.skip(problem)
    socket_port, unused_port = free_port(), free_port()
    log = tmp_path / "serve.log"
    server = None
    try:
        with log.open("wb") as out:
            # It listens, then execs the command with LISTEN_FDS=1 and
            # LISTEN_PID=its own pid, as systemd does for cachegrid.socket.
            server = subprocess.Popen(
                [
                    "systemd-socket-activate",
                    "--listen",
                    f"127.0.0.1:{socket_port}",
                    # It gives the command a fresh environment: the state
                    # directory systemd would give the unit, or a warm
                    # default would write into the home directory.
                    f"--setenv=STATE_DIRECTORY={tmp_path}",
                    *_serve_argv(unused_port, "--worker", worker),
                ],
                cwd=tmp_path,
                env=clean_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for_health(f"http://127.0.0.1:{socket_port}/health", server, log, timeout=30)
        # The socket from systemd replaces the host/port settings.
        assert http_status(f"http://127.0.0.1:{unused_port}/health", timeout=1) is None
        _stop(server, log)
    finally:
        kill_started(server)
