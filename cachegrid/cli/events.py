"""``cachegrid events [--prefix P]``: print a server's change stream.

Reads ``GET /events`` (docs/events.md) of the first ``--url`` and prints one
line per event: ``<event> <key or tag>`` (``*`` for everything), or with
``--json`` one JSON object per line (``id``, ``event`` and the event's
data). Heartbeats are not printed. It runs until Ctrl-C, the server ends the
stream, or ``--count`` events were printed; a stream silent for
``--idle`` seconds (no event, no heartbeat) is taken as lost.
"""

from __future__ import annotations

import http.client
import json
import ssl
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

import typer

from ..client.wire import tls_error
from .common import checked
from .status import ExitCode, exit_code_for, fail, out

app = typer.Typer()


def open_stream(
    url: str, token: str | None, prefixes: list[str], last_id: str | None, idle: float, ca_file: str | None = None
) -> Any:
    """The response of ``GET /events`` (200), or the command's failure."""
    parts = urlsplit(url)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":  # verified against --ca-file, or the system's CA bundle
        context = ssl.create_default_context(cafile=ca_file)
        connection = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=idle, context=context)
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=idle)
    headers = {"Accept": "text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if last_id:
        headers["Last-Event-ID"] = last_id
    query = urlencode([("prefix", prefix) for prefix in prefixes])
    try:
        connection.request("GET", (parts.path or "") + "/events" + (f"?{query}" if query else ""), headers=headers)
        response = connection.getresponse()
    except OSError as error:
        tls = tls_error(url, error) if isinstance(error, ssl.SSLError) else None
        raise fail(str(tls) if tls else f"{url}: {error}", ExitCode.UNAVAILABLE) from None
    if response.status != 200:
        try:
            message = json.loads(response.read())["message"]
        except (ValueError, KeyError, TypeError):
            message = response.reason
        raise fail(f"{message} (HTTP {response.status})", exit_code_for(response.status))
    return response


def events_of(response: Any) -> Any:
    """(id, event, data) of each event of the stream, until it ends."""
    fields: dict[str, str] = {}
    while True:
        line = response.readline()
        if not line:
            return
        text = line.decode().rstrip("\r\n")
        if text.startswith(":"):
            continue  # a heartbeat
        if text:
            name, _, value = text.partition(": ")
            fields[name] = value
            continue
        if "event" in fields:
            yield fields.get("id", ""), fields["event"], json.loads(fields.get("data") or "{}")
        fields = {}


@app.command("events")
def events(
    ctx: typer.Context,
    prefix: Annotated[
        list[str] | None, typer.Option("--prefix", help="Only keys starting with this (repeatable).")
    ] = None,
    count: Annotated[int | None, typer.Option(help="Stop after this many events.", show_default=False)] = None,
    last_event_id: Annotated[str | None, typer.Option(help="Resume after this event id.", show_default=False)] = None,
    idle: Annotated[float, typer.Option(help="Seconds without a heartbeat before the stream counts as lost.")] = 60,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per event.")] = False,
) -> None:
    """Print every change to the cache as it happens (GET /events)."""
    given, servers = checked(ctx)  # a usage error for a bad --url or --ca-file
    url = servers[0]
    response = open_stream(url, given.token, prefix or [], last_event_id, idle, given.ca_file)
    printed = 0
    try:
        for event_id, kind, data in events_of(response):
            if as_json or given.json:
                print(json.dumps({"id": event_id, "event": kind, **data}), flush=True)
            else:
                name = data.get("tag", data.get("key"))
                out.print(f"{kind} {'*' if name is None else name}", markup=False, highlight=False, soft_wrap=True)
            printed += 1
            if count is not None and printed >= count:
                return
    except TimeoutError:
        raise fail(f"{url}: no heartbeat for {idle:g} s: the stream is lost", ExitCode.UNAVAILABLE) from None
    except OSError as error:
        raise fail(f"{url}: {error}", ExitCode.UNAVAILABLE) from None
    finally:
        response.close()
