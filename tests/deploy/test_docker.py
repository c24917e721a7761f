"""Cheap static facts of the Docker and Heroku files (test_container.py
builds and runs the image with podman where it can), and that every
CACHEGRID_* name the deployment files set is a real setting (CacheGrid
ignores unknown CACHEGRID_* variables, so a typo would pass silently)."""

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
    BIN,
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
PROD_COMPOSE = REPO / "docker-compose.prod.yml"
HEALTHCHECK_SCRIPT = REPO / "docker" / "healthcheck.py"
DEPLOYMENT_FILES = [
    REPO / "Procfile",
    DOCKERFILE,
    COMPOSE,
    PROD_COMPOSE,
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
    # healthcheck.py reads the server's own settings: it follows CACHEGRID_PORT.
    assert json.loads(final["HEALTHCHECK"].split("CMD", 1)[1]) == ["python", "healthcheck.py"]
    assert "/opt/cachegrid/healthcheck.py" in DOCKERFILE.read_text()
    assert final["WORKDIR"] == "/opt/cachegrid"


def test_image_and_heroku_use_the_same_python() -> None:
    """Both stages start FROM ${BASE_IMAGE}, whose default is Heroku's Python."""
    version = (REPO / ".python-version").read_text().strip()
    instructions = _instructions()
    first_from = next(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    arguments = dict(args.split("=", 1) for name, args in instructions[:first_from] if name == "ARG")
    assert arguments.get("BASE_IMAGE") == f"python:{version}-slim", arguments
    bases = [args.split()[0] for name, args in instructions if name == "FROM"]
    assert bases == ["${BASE_IMAGE}", "${BASE_IMAGE}"], bases
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
    needed = {"pyproject.toml", "cachegrid", "docker/healthcheck.py"} | ({readme} if isinstance(readme, str) else set())
    if isinstance(readme, dict) and "file" in readme:
        needed.add(readme["file"])
    assert needed <= allowed, f"missing from the .dockerignore allow-list: {sorted(needed - allowed)}"


def test_compose_builds_the_image_and_checks_health() -> None:
    yaml = pytest.importorskip("yaml")
    service = yaml.safe_load(COMPOSE.read_text())["services"]["cachegrid"]
    assert service["image"] == "${CACHEGRID_IMAGE:-cachegrid:latest}"
    assert (REPO / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == DOCKERFILE
    # The published port and the server's port both default to 8080, and the
    # container's port follows CACHEGRID_PORT, as its health check does.
    assert service["ports"] == ["${CACHEGRID_PUBLISHED_PORT:-8080}:${CACHEGRID_PORT:-8080}"]
    assert service["healthcheck"]["test"] == ["CMD", "python", "healthcheck.py"]
    environment = dict(item.split("=", 1) for item in service["environment"])
    assert environment["CACHEGRID_PORT"] == "${CACHEGRID_PORT:-8080}"
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


def test_production_compose() -> None:
    """docker-compose.prod.yml: a required token, snapshots on a named
    volume, restart always, limits, loopback-only publishing by default."""
    yaml = pytest.importorskip("yaml")
    document = yaml.safe_load(PROD_COMPOSE.read_text())
    service = document["services"]["cachegrid"]
    environment = dict(item.split("=", 1) for item in service["environment"])
    assert environment["CACHEGRID_AUTH_TOKEN"].startswith("${CACHEGRID_AUTH_TOKEN:?")
    assert environment["CACHEGRID_SNAPSHOT_PATH"].startswith("/data/")
    assert service["volumes"] == ["cachegrid-data:/data"] and "cachegrid-data" in document["volumes"]
    assert service["ports"] == ["${CACHEGRID_PUBLISH_ADDRESS:-127.0.0.1}:${CACHEGRID_PUBLISHED_PORT:-8080}:8080"]
    assert service["restart"] == "always" and service["read_only"] is True and service["tmpfs"] == ["/tmp"]
    assert service["healthcheck"]["test"] == ["CMD", "python", "healthcheck.py"]
    assert int(service["mem_limit"].removesuffix("m")) >= 1.5 * float(environment["CACHEGRID_MAX_MEMORY_MB"]) + 256
    grace = int(service["stop_grace_period"].removesuffix("s"))
    assert grace > Settings.model_fields["graceful_timeout"].default
    assert "build" not in service


@pytest.mark.slow
def test_health_check_script_follows_the_port(tmp_path: Path) -> None:
    """docker/healthcheck.py exits 0 against a server on CACHEGRID_PORT and
    1 once it is stopped; it reads the same settings as the server."""
    require_cachegrid_serve()
    port = free_port()
    log = tmp_path / "serve.log"
    env = clean_env(CACHEGRID_PORT=str(port))
    check = [str(BIN / "python"), str(HEALTHCHECK_SCRIPT)]
    server = None
    try:
        with log.open("wb") as out:
            server = subprocess.Popen(
                [str(CACHEGRID), "serve", "--host", "127.0.0.1"],
                cwd=tmp_path,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for_health(f"http://127.0.0.1:{port}/health", server, log, timeout=30)
        result = subprocess.run(check, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and f":{port}/health answered 200" in result.stdout, result
        server.send_signal(signal.SIGTERM)
        assert wait_exit(server, timeout=20) is not None, read(log)
        result = subprocess.run(check, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1 and result.stdout.startswith("unhealthy:"), result
    finally:
        kill_started(server)
