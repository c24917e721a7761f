"""``cachegrid invalidate-tag TAG...``: make every entry carrying a tag a miss.

A thin adapter over the client's ``invalidate_tags`` (docs/tags.md), sent to
every node. ``cachegrid delete --pattern P`` (commands.py) is its companion
for keys by name.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .common import JsonFlag, note, print_json, wants_json
from .nodes import nodes_down, on_each_node, partial

app = typer.Typer()


@app.command("invalidate-tag")
def invalidate_tag(
    ctx: typer.Context,
    tags: Annotated[list[str], typer.Argument(metavar="TAG...", help="The tags.", show_default=False)],
    as_json: JsonFlag = False,
) -> None:
    """Make every entry carrying one of the TAGs a miss (on every node).

    Exit 11 (PARTIAL) when a node of the cluster does not answer: its
    entries may still carry the tags.
    """
    fanned = on_each_node(ctx, lambda client: client.invalidate_tags(tags))
    in_use = sum(fanned.answers.values())
    if wants_json(ctx, as_json):
        print_json({"tags": tags, "in_use": in_use} | nodes_down(fanned))
    words = f"invalidated {', '.join(repr(tag) for tag in tags)}" + ("" if in_use else " (no entry carried them)")
    if fanned.down:
        raise partial(fanned, words)
    note(words)
