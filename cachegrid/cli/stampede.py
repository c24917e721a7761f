"""``cachegrid lock`` and ``cachegrid mark-stale``: the stampede tools
(docs/stampedes.md) at the command line.

Thin adapters over the client. ``lock`` is the lock (lease) on a key, for
scripts that must not run twice at once: ``cachegrid lock KEY --ttl 60``
prints the token (exit 10, HELD, when another caller holds it),
``--release TOKEN`` releases it (exit 1, NOT_FOUND, when the token names no
lock: it ran out or was released), ``--status`` says whether it is held
(exit 10 when it is). ``mark-stale KEY`` invalidates a key without deleting
it (exit 1 when there is no such key).
"""

from __future__ import annotations

from typing import Annotated

import typer

from .common import JsonFlag, check_key, connect, key_outcome, note, print_json, wants_json
from .status import ExitCode, fail

app = typer.Typer()


@app.command()
def lock(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(metavar="KEY", help="The key the lock is on.", show_default=False)],
    ttl: Annotated[float, typer.Option(help="Seconds the lock lasts unless released first.")] = 60.0,
    release: Annotated[
        str | None,
        typer.Option("--release", metavar="TOKEN", show_default=False, help="Release the lock this token names."),
    ] = None,
    status: Annotated[bool, typer.Option("--status", help="Only say whether the lock is held.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Take the lock on KEY without waiting and print its token.

    Exit 10 (HELD) when another caller holds it. With --release TOKEN,
    release it; with --status, say whether it is held.
    """
    if release is not None and status:
        raise fail("--release and --status exclude each other", ExitCode.USAGE)
    check_key(key)
    with connect(ctx) as client:
        if status:
            held = client.lock_held(key)
            if wants_json(ctx, as_json):
                print_json({"key": key, "held": held})
            else:
                print("held" if held else "free")
            raise typer.Exit(int(ExitCode.HELD if held else ExitCode.OK))
        if release is not None:
            released = client.release_lock(key, release)
            if wants_json(ctx, as_json):
                print_json({"key": key, "released": released})
            if not released:
                raise fail(f"the token names no lock on {key!r} (it ran out, or was released)", ExitCode.NOT_FOUND)
            note(f"released the lock on {key!r}")
            return
        token = client.acquire_lock(key, ttl)
    if wants_json(ctx, as_json):
        print_json({"key": key, "token": token, "ttl": ttl})
    if token is None:
        raise fail(f"the lock on {key!r} is held by another caller", ExitCode.HELD)
    if not wants_json(ctx, as_json):
        print(token)
    note(f"locked {key!r} for {ttl:g} s; release with: cachegrid lock {key} --release {token}")


@app.command("mark-stale")
def mark_stale(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(metavar="KEY", help="The key.", show_default=False)],
    as_json: JsonFlag = False,
) -> None:
    """Mark KEY stale instead of deleting it: readers get the old value,
    marked stale, while one of them refreshes it.

    Exit 1 (NOT_FOUND) when there is no such key.
    """
    with connect(ctx) as client:
        marked = client.mark_stale(check_key(key))
    key_outcome(ctx, as_json, key, "stale", marked, "marked stale:")
