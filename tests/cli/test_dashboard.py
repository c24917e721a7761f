"""``cachegrid dashboard``: the URLs of the pages, once a server answers."""

from __future__ import annotations

import json

from cachegrid.cli.status import ExitCode
from cachegrid.testing import ServerProcess as Server
from cachegrid.testing import free_port

from .conftest import Invoke, runner_for


def test_dashboard_prints_the_url_of_a_server_that_answers(cli: Invoke, cli_server: Server) -> None:
    result = cli("dashboard")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{cli_server.url}/dashboard\n"
    assert f"{cli_server.url}/docs" in result.stderr
    status, headers, _ = cli_server.request("GET", "/dashboard")
    assert status == 200 and headers["content-type"].startswith("text/html")


def test_dashboard_json_names_both_pages(cli: Invoke, cli_server: Server) -> None:
    result = cli("dashboard", "--json")
    assert json.loads(result.stdout) == {"dashboard": f"{cli_server.url}/dashboard", "docs": f"{cli_server.url}/docs"}


def test_dashboard_needs_no_token_to_tell_the_url(token_server: Server) -> None:
    result = runner_for(token_server.url)("dashboard")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"{token_server.url}/dashboard"


def test_dashboard_with_nothing_listening_exits_unavailable() -> None:
    result = runner_for(f"http://127.0.0.1:{free_port()}")("dashboard")
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert "no CacheGrid server answered" in result.stderr and result.stdout == ""
