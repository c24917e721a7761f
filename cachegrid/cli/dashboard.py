"""``cachegrid dashboard``: where the server's web dashboard and API docs are.

Prints the dashboard's URL of each ``--url`` server on stdout (one a line,
for scripts) after checking that a server answers there (``/health``, which
needs no token), and where the API docs are on stderr. ``--open`` opens the
first in the browser. The pages themselves load without a token; with one
configured they ask for it in the browser.
"""

from __future__ import annotations

import webbrowser
from typing import Annotated

import typer

from .common import JsonFlag, connect, hosts, note, options, print_json, wants_json

app = typer.Typer()

DASHBOARD_PATH = "/dashboard"
DOCS_PATH = "/docs"


@app.command()
def dashboard(
    ctx: typer.Context,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the dashboard in the default browser.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Print the URL of the server's web dashboard (and of its API docs).

    Exit 4 (UNAVAILABLE) when no server answers there.
    """
    servers = hosts(options(ctx).urls)
    with connect(ctx) as client:
        client.health()
    pages = [{"dashboard": url + DASHBOARD_PATH, "docs": url + DOCS_PATH} for url in servers]
    if wants_json(ctx, as_json):
        print_json(pages if len(pages) > 1 else pages[0])
    else:
        for page in pages:
            print(page["dashboard"], flush=True)
        note(f"API docs: {pages[0]['docs']}. Both load without a token; with one configured, the page asks for it.")
    if open_browser:
        webbrowser.open(pages[0]["dashboard"])
