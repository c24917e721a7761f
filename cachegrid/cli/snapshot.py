"""``cachegrid snapshot``: start a background snapshot on the server, or
(``--status``) show the last one and the load at start.

A thin adapter over the client's ``snapshot()`` and ``snapshot_status()``
(POST and GET /admin/snapshot). ``--wait`` polls the state until the
snapshot has ended and fails (exit 6) when it failed.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from .common import JsonFlag, connect, print_fields, print_json, wants_json
from .status import ExitCode, fail

app = typer.Typer()
POLL_SECONDS = 0.2


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def rows(state: dict[str, Any]) -> list[tuple[str, str]]:
    """The state as (name, value) rows: the pure part of the rendering."""
    if not state.get("enabled"):
        return [("snapshots", "off (set snapshot_path / CACHEGRID_SNAPSHOT_PATH on the server)")]
    last, loaded = state["last"], state["loaded"]
    interval = state["interval_seconds"]
    found = [
        ("path", state["path"]),
        ("interval", f"{interval:g} s" if interval else "only at shutdown"),
        ("running", f"yes, since {when(state['running_since'])}" if state["running"] else "no"),
        ("written / failed", f"{state['written']} / {state['failed']}"),
        ("last result", last["result"] + (f" ({last['trigger']})" if last["trigger"] else "")),
    ]
    if last["result"] != "none":
        found += [("last started", when(last["started_at"])), ("last duration", f"{last['duration_seconds']:.3f} s")]
    if last["result"] == "ok":
        found += [("last entries", f"{last['entries']:,}"), ("last size", f"{last['bytes']:,} bytes")]
    if last["error"]:
        found.append(("last error", last["error"]))
    found.append(
        (
            "loaded at start",
            {"none": "nothing (no file)", "failed": f"failed: {loaded['error']}"}.get(
                loaded["result"],
                f"{loaded['entries']:,} entries in {loaded['duration_seconds']:.2f} s "
                f"({loaded['expired']:,} expired while down, {loaded['left_out']:,} over the limits)",
            ),
        )
    )
    if loaded.get("moved_to"):
        found.append(("bad file kept as", loaded["moved_to"]))
    return found


@app.command()
def snapshot(
    ctx: typer.Context,
    status: Annotated[bool, typer.Option("--status", help="Show the state; start nothing.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the snapshot has been written.")] = False,
    wait_timeout: Annotated[float, typer.Option(help="Seconds --wait waits at most.")] = 600.0,
    as_json: JsonFlag = False,
) -> None:
    """Write a snapshot of the server's cache now, in the background.

    With --status, show the last snapshot (time, duration, entries, bytes,
    result) and what was loaded at start instead.
    """
    with connect(ctx) as client:
        if status:
            state = client.snapshot_status()
        else:
            state = client.snapshot()
            deadline = time.monotonic() + wait_timeout
            while wait and state["running"]:
                if time.monotonic() > deadline:
                    raise fail(f"the snapshot was still running after {wait_timeout:g} s", ExitCode.UNAVAILABLE)
                time.sleep(POLL_SECONDS)
                state = client.snapshot_status()
    if wants_json(ctx, as_json):
        print_json(state)
    else:
        print_fields(rows(state), title="snapshot")
    if wait and state["last"]["result"] == "failed":
        raise fail(f"the snapshot failed: {state['last']['error']}", ExitCode.SERVER_ERROR)
