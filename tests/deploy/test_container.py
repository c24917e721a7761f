"""The container image built, run and used as the product description's quick start says.

Built with podman (``podman build --format docker``, which keeps the
HEALTHCHECK) from ``docker/Dockerfile`` on a Debian 12 base image made from
Debian's packages by ``docker/build-base-image`` (no registry is reachable
here; the base is built once per machine, by ``.ci/run`` or by the first run
of this module, and reused). Then, through the published port only: the
health check, the README's PUT and GET, meinheld as the worker, the image's
HEALTHCHECK, its non-root user, what is left out of it (Django, pip), its
labels, a graceful ``stop`` with an idle keep-alive connection open that
writes the snapshot to a volume, a warm restart from it, and both compose
files with podman-compose (>= 1.6: Debian's 1.0.3 mangles ``${VAR:-}``).

Where no container can run here (no podman, the base cannot be built, the
runtime refuses to start one) every test skips and says why; a failing image
build fails. Every container, compose project and image a test makes carries
this run's own name and is removed in a ``finally``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ._support import BIN, REPO, free_port, http_status

pytestmark = [pytest.mark.process, pytest.mark.slow]

BASE_SCRIPT = REPO / "docker" / "build-base-image"
RUN_ID = f"cgtest-{os.getpid()}-{uuid.uuid4().hex[:6]}"
IMAGE = f"localhost/cachegrid-test:{RUN_ID}"
README_VALUE = "Hello CacheGrid!"
# The goal of the image's size: what it adds to its base.
MAX_MB_OVER_BASE = 60
UID = "10001"


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(
            f"podman {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return result


def _unavailable(reason: str) -> None:
    """Skip, except in CI once podman is there: then the setup is broken."""
    if os.environ.get("CI") and shutil.which("podman"):
        pytest.fail(f"CI installs podman, yet: {reason}")
    pytest.skip(reason)


def _base_image() -> str:
    """The Debian base (built now if this machine has none), or skip."""
    if not shutil.which("podman"):
        pytest.skip("podman is not installed (apt-get install podman runc mmdebstrap uidmap slirp4netns; .ci/run does)")
    info = subprocess.run(["podman", "info"], capture_output=True, text=True, timeout=120)
    if info.returncode != 0:
        _unavailable(f"podman cannot run here: {info.stderr.strip()[-500:]}")
    result = subprocess.run([str(BASE_SCRIPT)], capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        _unavailable(f"the base image could not be built ({BASE_SCRIPT.name}):\n{result.stderr[-2000:]}")
    base = result.stdout.strip().splitlines()[-1]
    smoke = subprocess.run(["podman", "run", "--rm", base, "true"], capture_output=True, text=True, timeout=120)
    if smoke.returncode != 0:
        _unavailable(f"podman cannot start a container here: {smoke.stderr.strip()[-800:]}")
    return base


@dataclass
class Images:
    base: str
    image: str
    build_seconds: float


@pytest.fixture(scope="module")
def images() -> Iterator[Images]:
    base = _base_image()
    started = time.monotonic()
    # --layers=false: no intermediate images are kept (a cache of them would
    # grow by the build stage, ~700 MB, at every change of the sources).
    result = subprocess.run(
        ["podman", "build", "--format", "docker", "--layers=false", "--build-arg", f"BASE_IMAGE={base}"]
        + ["-f", "docker/Dockerfile", "-t", IMAGE, "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    try:
        assert result.returncode == 0, f"the image build failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
        assert "meinheld not built" not in result.stdout + result.stderr
        yield Images(base, IMAGE, time.monotonic() - started)
    finally:
        podman("rmi", "--force", IMAGE, check=False)


def published_url(container: str, port: int = 8080) -> str:
    mapping = podman("port", container, f"{port}/tcp").stdout.strip().splitlines()[0]
    return f"http://127.0.0.1:{mapping.rsplit(':', 1)[1]}"


def wait_healthy(url: str, container: str, timeout: float = 60) -> float:
    """Seconds until GET /health answered 200; fails with the logs."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if http_status(f"{url}/health", timeout=1) == 200:
            return time.monotonic() - started
        state = podman("inspect", "--format", "{{.State.Status}}", container, check=False).stdout.strip()
        if state not in ("running", "created", "configured", "initialized"):
            break
        time.sleep(0.05)
    logs = podman("logs", container, check=False)
    pytest.fail(f"{url}/health did not answer 200 (container {state}):\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}")


def request(url: str, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def check_quick_start(url: str) -> None:
    """The README's three curl commands, as requests."""
    status, body = request(url, "GET", "/health")
    assert status == 200 and json.loads(body)["status"] == "healthy", body
    status, body = request(url, "PUT", "/cache/hello", json.dumps(README_VALUE).encode())
    assert status in (200, 201), body
    status, body = request(url, "GET", "/cache/hello")
    assert status == 200 and json.loads(body) == README_VALUE, body


def run_container(image: str, name: str, *args: str) -> str:
    podman("run", "--detach", "--name", name, "--publish", "127.0.0.1::8080", *args, image)
    return name


def remove(*containers: str) -> None:
    for container in containers:
        podman("rm", "--force", "--time", "0", container, check=False)


def inspect(container: str, template: str) -> str:
    return podman("inspect", "--format", template, container).stdout.strip()


@pytest.fixture(scope="module")
def server(images: Images) -> Iterator[tuple[str, str, str]]:
    """One container of the image, as `docker run -d -p 8080:8080` starts it
    (on a free port of 127.0.0.1): (name, url, how long it took to a 200)."""
    name = f"{RUN_ID}-server"
    try:
        started = time.monotonic()
        run_container(images.image, name)
        created = time.monotonic() - started
        url = published_url(name)
        wait_healthy(url, name)
        took = f"{time.monotonic() - started:.2f} s ({created:.2f} s of them in `podman run -d`)"
        yield name, url, took
    finally:
        remove(name)


def test_quick_start_through_the_published_port(server: tuple[str, str, str]) -> None:
    name, url, took = server
    check_quick_start(url)
    print(f"container start to a 200 from /health: {took}")


def test_the_container_runs_meinheld(server: tuple[str, str, str]) -> None:
    name, _, _ = server
    logs = podman("logs", name)
    text = logs.stdout + logs.stderr
    assert re.search(r"CacheGrid node \S+ on 0\.0\.0\.0:8080: worker meinheld,", text), text[-3000:]
    assert "MeinheldWorker" in text


def test_the_image_health_check(server: tuple[str, str, str], images: Images) -> None:
    name, _, _ = server
    healthcheck = json.loads(
        podman("image", "inspect", "--format", "{{json .Config.Healthcheck}}", images.image).stdout
    )
    assert healthcheck and healthcheck["Test"] == ["CMD", "python", "healthcheck.py"], healthcheck
    podman("healthcheck", "run", name)  # exit 0: healthy
    health = json.loads(inspect(name, "{{json .State.Health}}"))
    assert health["Status"] == "healthy", health
    assert "answered 200" in health["Log"][-1]["Output"]


def test_the_server_runs_as_an_unprivileged_user_in_a_slim_image(server: tuple[str, str, str], images: Images) -> None:
    name, _, _ = server
    assert inspect(name, "{{.Config.User}}") == f"{UID}:{UID}"
    ids = podman("exec", name, "python", "-c", "import os; print(os.getuid(), os.getgid())").stdout.split()
    assert ids == [UID, UID]
    probe = "import importlib.util as u; print([m for m in ('django', 'pip', 'setuptools') if u.find_spec(m)])"
    assert podman("exec", name, "python", "-c", probe).stdout.strip() == "[]"
    sizes = {
        image: int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout)
        for image in (images.base, images.image)
    }
    over = (sizes[images.image] - sizes[images.base]) / 1e6
    print(
        f"image {sizes[images.image] / 1e6:.0f} MB, {over:.0f} MB over its base; built in {images.build_seconds:.0f} s"
    )
    assert over <= MAX_MB_OVER_BASE, f"the image adds {over:.0f} MB to its base (goal: at most {MAX_MB_OVER_BASE} MB)"


def test_the_image_labels(images: Images) -> None:
    labels = json.loads(podman("image", "inspect", "--format", "{{json .Config.Labels}}", images.image).stdout)
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert labels["org.opencontainers.image.version"] == version
    assert labels["org.opencontainers.image.licenses"] == "MIT"
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert labels["org.opencontainers.image.title"] == "CacheGrid"


def test_stop_is_graceful_and_writes_the_snapshot_to_a_volume(images: Images, tmp_path: Path) -> None:
    """`stop` with an idle keep-alive connection open: exit 0 (not the
    SIGKILL of the stop timeout), the snapshot in the volume; a new
    container on that volume starts with the key."""
    data = tmp_path / "data"
    data.mkdir()
    if os.geteuid() == 0:
        os.chown(data, int(UID), int(UID))  # the server's user in the image
    else:
        data.chmod(0o777)
    volume = ["--volume", f"{data}:/data", "--env", "CACHEGRID_SNAPSHOT_PATH=/data/cachegrid.snapshot"]
    first, second = f"{RUN_ID}-stop", f"{RUN_ID}-warm"
    try:
        run_container(images.image, first, *volume)
        url = published_url(first)
        wait_healthy(url, first)
        check_quick_start(url)
        host, port = url.removeprefix("http://").rsplit(":", 1)
        idle = http.client.HTTPConnection(host, int(port), timeout=10)
        idle.request("GET", "/health")
        assert idle.getresponse().read()  # the connection stays open, idle
        started = time.monotonic()
        podman("stop", "--time", "25", first, timeout=60)
        seconds = time.monotonic() - started
        idle.close()
        assert inspect(first, "{{.State.ExitCode}}") == "0", podman("logs", first).stderr[-3000:]
        assert (data / "cachegrid.snapshot").is_file(), sorted(p.name for p in data.iterdir())
        print(f"stop with an idle keep-alive connection open: {seconds:.2f} s, exit 0")

        run_container(images.image, second, *volume)
        url = published_url(second)
        wait_healthy(url, second)
        status, body = request(url, "GET", "/cache/hello")
        assert status == 200 and json.loads(body) == README_VALUE, body
    finally:
        remove(first, second)


# -- compose --------------------------------------------------------------------


def podman_compose() -> str:
    """podman-compose >= 1.6 (the dev extra installs it), or skip."""
    path = shutil.which("podman-compose", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if path is None:
        pytest.skip("podman-compose is not installed (pip install 'podman-compose>=1.6'; the dev extra has it)")
    result = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    found = re.search(r"podman-compose version (\d+)\.(\d+)", result.stdout + result.stderr)
    if not found or tuple(map(int, found.groups())) < (1, 6):
        pytest.skip(f"podman-compose >= 1.6 is needed (older ones mangle ${{VAR:-}}): {result.stdout.strip()}")
    return path


def compose(tool: str, project: str, env: dict[str, str], *args: str, file: str = "docker-compose.yml"):
    return subprocess.run(
        [tool, "--project-name", project, "--file", file, *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def compose_leftovers(project: str) -> list[str]:
    result = podman("ps", "--all", "--filter", f"label=io.podman.compose.project={project}", "--format", "{{.Names}}")
    return result.stdout.split()


def cleanup_compose(tool: str, project: str, env: dict[str, str], file: str) -> None:
    compose(tool, project, env, "down", "--volumes", file=file)
    remove(*compose_leftovers(project))
    podman("volume", "rm", "--force", f"{project}_cachegrid-data", check=False)


def test_compose_quick_start_with_the_port_configured(images: Images) -> None:
    """docker-compose.yml: up, health (the check follows CACHEGRID_PORT),
    the README's PUT and GET, down."""
    tool = podman_compose()
    project = f"{RUN_ID}-compose"
    env = {
        "CACHEGRID_IMAGE": images.image,
        "CACHEGRID_PUBLISHED_PORT": str(free_port()),
        # Not 8080: the health check must follow the server's port.
        "CACHEGRID_PORT": "9090",
        "CACHEGRID_AUTH_TOKEN": "",
    }
    try:
        up = compose(tool, project, env, "up", "--detach")
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        (container,) = compose_leftovers(project)
        url = f"http://127.0.0.1:{env['CACHEGRID_PUBLISHED_PORT']}"
        wait_healthy(url, container)
        check_quick_start(url)
        config = json.loads(inspect(container, "{{json .Config.Env}}"))
        # An empty ${CACHEGRID_AUTH_TOKEN:-} stays empty (no authentication).
        assert "CACHEGRID_AUTH_TOKEN=" in config and "CACHEGRID_PORT=9090" in config, config
        podman("healthcheck", "run", container)
        assert (
            "9090/health answered 200" in json.loads(inspect(container, "{{json .State.Health}}"))["Log"][-1]["Output"]
        )
        down = compose(tool, project, env, "down")
        assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-3000:]
        assert compose_leftovers(project) == []
    finally:
        cleanup_compose(tool, project, env, "docker-compose.yml")


def test_production_compose_needs_a_token_and_keeps_snapshots(images: Images) -> None:
    """docker-compose.prod.yml: refuses to start without a token; with one,
    the API needs it, the root filesystem is read-only, and `down` leaves
    the snapshot in the named volume."""
    tool = podman_compose()
    project = f"{RUN_ID}-prod"
    file = "docker-compose.prod.yml"
    env = {"CACHEGRID_IMAGE": images.image, "CACHEGRID_PUBLISHED_PORT": str(free_port()), "CACHEGRID_AUTH_TOKEN": ""}
    try:
        refused = compose(tool, project, env, "up", "--detach", file=file)
        assert refused.returncode != 0 and "CACHEGRID_AUTH_TOKEN" in refused.stdout + refused.stderr
        assert compose_leftovers(project) == []
        env["CACHEGRID_AUTH_TOKEN"] = uuid.uuid4().hex
        up = compose(tool, project, env, "up", "--detach", file=file)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        (container,) = compose_leftovers(project)
        assert podman("port", container, "8080/tcp").stdout.startswith("127.0.0.1:")
        url = f"http://127.0.0.1:{env['CACHEGRID_PUBLISHED_PORT']}"
        wait_healthy(url, container)
        assert request(url, "GET", "/cache/hello")[0] == 401
        assert inspect(container, "{{.HostConfig.ReadonlyRootfs}}") == "true"
        down = compose(tool, project, env, "down", file=file)
        assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-3000:]
        listing = podman(
            "run", "--rm", "--volume", f"{project}_cachegrid-data:/data", "--entrypoint", "ls", images.image, "/data"
        )
        assert "cachegrid.snapshot" in listing.stdout.split()
    finally:
        cleanup_compose(tool, project, env, file)
