"""Cheap static facts of the Docker and Heroku files (no Docker engine here),
and that every CACHEGRID_* name the deployment files set is a real setting
(CacheGrid ignores unknown CACHEGRID_* variables, so a typo would pass
silently)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import tomllib
from pathlib import Path

import pytest

from cachegrid.config import CONFIG_ENV, Settings, env_var

from ._support import (
    CACHEGRID,
    REPO,
    clean_env,
    free_port,
    kill_started,
    read,
    require_cachegrid_serve,
    wait_exit,
    wait_for_health,
)

DOCKERFILE = REPO / "docker" / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
DEPLOYMENT_FILES = [
    REPO / "Procfile",
    DOCKERFILE,
    COMPOSE,
    *sorted((REPO / "systemd").iterdir()),
]


def _instructions(path=DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def _cli_variables() -> set[str]:
    """The CACHEGRID_* variables the command line reads itself (CACHEGRID_URL, ...)."""
    if not CACHEGRID.exists():
        return set()
    import typer.main

    from cachegrid.cli.main import app

    found, todo = set(), [typer.main.get_command(app)]
    while todo:
        command = todo.pop()
        for param in command.params:
            found.update([param.envvar] if isinstance(param.envvar, str) else param.envvar or [])
        todo.extend(getattr(command, "commands", {}).values())
    return found


def _compose_environment() -> dict[str, str]:
    """The list-form environment of docker-compose.yml (no YAML parser needed)."""
    return dict(re.findall(r"^\s*-\s*(CACHEGRID_[A-Z0-9_]+)=(\S*)\s*$", COMPOSE.read_text(), flags=re.MULTILINE))


@pytest.mark.parametrize("path", DEPLOYMENT_FILES, ids=lambda path: path.name)
def test_every_cachegrid_variable_set_is_a_real_setting(path) -> None:
    known = {env_var(field) for field in Settings.model_fields} | {CONFIG_ENV} | _cli_variables()
    used = set(re.findall(r"\b(CACHEGRID_[A-Z0-9_]+)=", path.read_text()))
    assert used <= known, f"{path.name}: unknown {sorted(used - known)} (known: {sorted(known)})"


def test_image_runs_as_an_unprivileged_user() -> None:
    users = [args for name, args in _final_stage() if name == "USER"]
    assert users, "the final stage has no USER: the server would run as root"
    user, _, group = users[-1].partition(":")
    assert user not in ("root", "0") and group not in ("root", "0")


def test_image_serves_on_all_interfaces_of_the_default_port_with_a_health_check() -> None:
    final = dict(_final_stage())  # the last of each instruction
    assert re.search(r"\bCACHEGRID_HOST=0\.0\.0\.0\b", final["ENV"])
    assert final["EXPOSE"] == str(Settings.model_fields["port"].default)
    assert json.loads(final["CMD"]) == ["cachegrid", "serve"]
    # Shell form, so that the check follows a CACHEGRID_PORT given to the container.
    check = final["HEALTHCHECK"].split("CMD", 1)[1].split()
    assert check[0] == "cachegrid" and check[-1] == "health"
    assert check[1:3] == ["--url", '"http://127.0.0.1:${CACHEGRID_PORT:-8080}"']


def test_image_and_heroku_use_the_same_python() -> None:
    version = (REPO / ".python-version").read_text().strip()
    bases = [args.split()[0] for name, args in _instructions() if name == "FROM"]
    assert bases and all(base == f"python:{version}-slim" for base in bases), bases
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = re.fullmatch(r">=\s*(\d+)\.(\d+)", requires)
    assert minimum and tuple(map(int, version.split("."))) >= tuple(map(int, minimum.groups()))


def test_build_context_holds_what_pip_install_reads() -> None:
    """The .dockerignore is an allow-list: pyproject.toml, the package and
    whatever file pyproject.toml names (its readme) must be let through."""
    allowed = {
        line[1:].strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    readme = project.get("readme")
    needed = {"pyproject.toml", "cachegrid"} | ({readme} if isinstance(readme, str) else set())
    if isinstance(readme, dict) and "file" in readme:
        needed.add(readme["file"])
    assert needed <= allowed, f"missing from the .dockerignore allow-list: {sorted(needed - allowed)}"


def test_compose_builds_the_image_and_checks_health() -> None:
    yaml = pytest.importorskip("yaml")
    service = yaml.safe_load(COMPOSE.read_text())["services"]["cachegrid"]
    assert service["image"] == "cachegrid:latest"
    assert (REPO / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert service["ports"] == ["8080:8080"]
    assert service["healthcheck"]["test"] == ["CMD", "cachegrid", "health"]
    environment = dict(item.split("=", 1) for item in service["environment"])
    assert environment["CACHEGRID_MAX_SIZE"] == "20000"
    assert environment["CACHEGRID_LOG_LEVEL"] == "info"
    # The container limit leaves room above the cache's own budget, and
    # `docker stop` waits longer than the server's graceful stop.
    budget_mb = float(environment["CACHEGRID_MAX_MEMORY_MB"])
    assert budget_mb == 1024
    assert int(service["mem_limit"].removesuffix("m")) >= 1.5 * budget_mb + 256
    grace = int(service["stop_grace_period"].removesuffix("s"))
    assert grace > Settings.model_fields["graceful_timeout"].default


@pytest.mark.parametrize("command", ["serve", "health"])
def test_commands_the_image_runs_exist(command: str) -> None:
    result = subprocess.run(
        [str(require_cachegrid_serve()), command, "--help"],
        env=clean_env(COLUMNS="400"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"`cachegrid {command}` (CMD/HEALTHCHECK) does not exist:\n{result.stderr}"


@pytest.mark.slow
def test_server_accepts_the_compose_environment_and_health_check_follows_it(tmp_path: Path) -> None:
    """The compose settings start a server; the image's HEALTHCHECK command
    exits 0 while it runs and non-zero once it is stopped."""
    require_cachegrid_serve()
    settings = {name: value for name, value in _compose_environment().items() if "${" not in value}
    assert set(settings) >= {"CACHEGRID_MAX_SIZE", "CACHEGRID_MAX_MEMORY_MB", "CACHEGRID_LOG_LEVEL"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    health = [str(CACHEGRID), "health"]
    health_env = clean_env(COLUMNS="400", CACHEGRID_URL=url)
    server = None
    try:
        with log.open("wb") as out:
            server = subprocess.Popen(
                [str(CACHEGRID), "serve", "--host", "127.0.0.1", "--port", str(port)],
                cwd=tmp_path,
                env=clean_env(**settings),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for_health(f"{url}/health", server, log, timeout=30)
        result = subprocess.run(health, env=health_env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "healthy" in result.stdout
        server.send_signal(signal.SIGTERM)
        assert wait_exit(server, timeout=20) is not None, read(log)
        started = time.monotonic()
        result = subprocess.run(health, env=health_env, capture_output=True, text=True, timeout=60)
        assert result.returncode != 0, result.stdout + result.stderr
        assert time.monotonic() - started < 30
    finally:
        kill_started(server)
