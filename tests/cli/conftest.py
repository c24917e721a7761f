"""Real servers for the CLI tests, shared by the package (each test uses its
own keys), and a runner that invokes ``cachegrid`` in-process against them."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from cachegrid.cli.main import app
from cachegrid.testing import ServerProcess as Server
from cachegrid.testing import running

TOKEN = "cli-test-token"
_unique = itertools.count()


@pytest.fixture(scope="package")
def cli_server() -> Iterator[Server]:
    with running(graceful=False) as server:
        yield server


@pytest.fixture(scope="package")
def token_server() -> Iterator[Server]:
    """A server started with CACHEGRID_AUTH_TOKEN=TOKEN."""
    with running(env={"CACHEGRID_AUTH_TOKEN": TOKEN}, graceful=False) as server:
        yield server


@pytest.fixture
def key(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Keys of this test only: key("a") -> "test_name:<n>:a"."""
    prefix = f"{request.node.name}:{next(_unique)}"
    return lambda name="k": f"{prefix}:{name}"


Invoke = Callable[..., Result]


@pytest.fixture
def cli(cli_server: Server) -> Invoke:
    """``cli("get", "k")``: cachegrid against the shared server (CACHEGRID_URL)."""
    return runner_for(cli_server.url)


def runner_for(url: str, **env: str) -> Invoke:
    def invoke(*args: str, input: str | None = None, **more_env: Any) -> Result:
        result = CliRunner().invoke(app, list(args), input=input, env={"CACHEGRID_URL": url, **env, **more_env})
        assert "Traceback" not in result.stdout + result.stderr, result.stderr
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        return result

    return invoke
