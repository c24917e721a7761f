"""The key/value commands: get, set, delete, incr, decr, ttl, keys, clear
and health (batch get/set are in batch.py).

Each is a thin adapter: parse the arguments, make one call (or one page
loop) through the client SDK (``common.connect``, which also turns the
client's errors into an exit code), render the answer (``common``'s
printers). Write commands confirm on stderr; with ``--json`` they print
the result as a JSON document on stdout.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterator
from itertools import islice
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ..client import NotFound
from ..client.protocol import encode
from .common import (
    JsonFlag,
    TtlOption,
    binary_summary,
    check_key,
    connect,
    field_text,
    hosts,
    is_cluster,
    key_outcome,
    loads,
    missing_words,
    node_name,
    note,
    options,
    print_fields,
    print_json,
    print_value,
    read_bytes,
    read_stdin,
    wants_json,
    write_bytes,
)
from .nodes import each_node, key_unavailable, nodes_down, on_each_node, partial
from .status import ExitCode, fail, out

KEYS_PAGE = 1000  # keys per /admin/keys request when listing
_MISSING = object()  # get's default: a stored null is a value, not a miss

KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="The key.", show_default=False)]

app = typer.Typer()


def parse_value(text: str) -> Any:
    """VALUE as JSON when it is JSON (42, true, null, [1], {"a": 1}, "text"),
    else the text itself as a string (hello: "hello")."""
    try:
        return loads(text)
    except ValueError:
        # echo adds a newline that is no part of the value
        return text.removesuffix("\n").removesuffix("\r")


def interactive() -> bool:
    """Whether a question can be asked (stdin is a terminal)."""
    return sys.stdin.isatty()


@app.command()
def get(
    ctx: typer.Context,
    key: KeyArg,
    as_json: JsonFlag = False,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write the value to FILE (- : stdout) as it is stored: a binary value's bytes, a JSON value's JSON.",
        ),
    ] = None,
) -> None:
    """Print the value under KEY as JSON.

    A binary value is not printed: a line says its size, --output writes its
    bytes, and --json prints {"key", "type": "binary", "size", "value_base64"}.
    Exit 1 (NOT_FOUND) when there is none; 4 (UNAVAILABLE) when the key's
    node in a cluster does not answer.
    """
    with connect(ctx) as client:
        value = client.get(check_key(key), _MISSING)
    if value is _MISSING:
        raise key_unavailable(ctx, key) or fail(f"no key {key!r}", ExitCode.NOT_FOUND)
    if output is not None:
        write_bytes(output, value if isinstance(value, bytes) else encode(value))
    elif isinstance(value, bytes):
        if wants_json(ctx, as_json):
            print_json(
                {
                    "key": key,
                    "type": "binary",
                    "size": len(value),
                    "value_base64": base64.b64encode(value).decode("ascii"),
                }
            )
        else:
            print(f"{binary_summary(value)} (--output FILE writes them, --output - to stdout)", flush=True)
    elif wants_json(ctx, as_json):
        print_json(value)
    else:
        print_value(value)


@app.command("set")
def set_(
    ctx: typer.Context,
    key: KeyArg,
    value: Annotated[
        str | None,
        typer.Argument(
            metavar="VALUE",
            show_default=False,
            help="JSON (42, true, [1, 2], '{\"a\": 1}', '\"42\"'); anything else is stored as a string. "
            "- reads it from stdin.",
        ),
    ] = None,
    from_file: Annotated[
        str | None,
        typer.Option(
            "--file",
            "-f",
            metavar="FILE",
            help="Store FILE's bytes as a binary value instead of VALUE (- reads them from stdin).",
        ),
    ] = None,
    ttl: TtlOption = None,
    nx: Annotated[bool, typer.Option("--nx", help="Only if KEY does not exist yet (else exit 8, NOT_STORED).")] = False,
    xx: Annotated[bool, typer.Option("--xx", help="Only if KEY exists already (else exit 8, NOT_STORED).")] = False,
    stale: Annotated[
        float | None,
        typer.Option(
            help="Seconds past the TTL the value may still be served, marked stale (needs --ttl).", show_default=False
        ),
    ] = None,
    tags: Annotated[
        str | None,
        typer.Option("--tags", help="Comma-separated tags for the entry (docs/tags.md).", show_default=False),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Store VALUE (or with --file, a file's bytes as a binary value) under KEY,
    optionally for --ttl seconds.

    With --nx or --xx, a write the condition refuses exits 8 (NOT_STORED).
    """
    if nx and xx:
        raise fail("--nx and --xx exclude each other", ExitCode.USAGE)
    if (value is None) == (from_file is None):
        raise fail("give VALUE or --file FILE (one of them)", ExitCode.USAGE)
    if from_file is not None:
        document: Any = read_bytes(from_file)
    else:
        document = parse_value(read_stdin() if value == "-" else str(value))
    with connect(ctx) as client:
        stored = client.set(
            check_key(key),
            document,
            ttl,
            only_if_absent=nx,
            only_if_present=xx,
            stale=stale,
            tags=None if tags is None else [tag for tag in tags.split(",") if tag],
        )
    if wants_json(ctx, as_json):
        print_json({"key": key, "stored": stored, "ttl": ttl})
    if not stored:
        reason = "it exists already (--nx)" if nx else "it does not exist (--xx)"
        raise fail(f"{key!r} not stored: {reason}", ExitCode.NOT_STORED)
    note(f"stored {key!r}" + ("" if ttl is None else f" for {ttl:g} s"))


@app.command()
def delete(
    ctx: typer.Context,
    key: Annotated[str | None, typer.Argument(metavar="KEY", help="The key.", show_default=False)] = None,
    pattern: Annotated[
        str | None,
        typer.Option(
            "--pattern",
            help="Delete every key matching this prefix or glob (*, ?, [...]) instead, on every node.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Delete KEY, or with --pattern every key matching P.

    Exit 1 (NOT_FOUND) when KEY did not exist; in a cluster, 4 (UNAVAILABLE)
    when KEY's node does not answer, 11 (PARTIAL) when a node does not
    answer --pattern.
    """
    if (key is None) == (pattern is None):
        raise fail("give either KEY or --pattern P", ExitCode.USAGE)
    if pattern is not None:
        fanned = on_each_node(ctx, lambda client: client.delete_pattern(pattern))
        deleted = sum(fanned.answers.values())
        if wants_json(ctx, as_json):
            print_json({"pattern": pattern, "deleted": deleted} | nodes_down(fanned))
        words = f"deleted {deleted:,} key{'' if deleted == 1 else 's'} matching {pattern!r}"
        if fanned.down:
            raise partial(fanned, words)
        note(words)
        return
    assert key is not None
    with connect(ctx) as client:
        deleted = client.delete(check_key(key))
    if not deleted and (end := key_unavailable(ctx, key)):
        raise end
    key_outcome(ctx, as_json, key, "deleted", deleted, "deleted")


ByOption = Annotated[int, typer.Option(help="The amount (may be negative).")]


@app.command()
def incr(ctx: typer.Context, key: KeyArg, by: ByOption = 1, as_json: JsonFlag = False) -> None:
    """Add --by to the integer under KEY; print the new value.

    A missing key counts as 0.
    """
    _count(ctx, key, by, as_json)


@app.command()
def decr(ctx: typer.Context, key: KeyArg, by: ByOption = 1, as_json: JsonFlag = False) -> None:
    """Subtract --by from the integer under KEY; print the new value.

    A missing key counts as 0.
    """
    _count(ctx, key, -by, as_json)


def _count(ctx: typer.Context, key: str, by: int, as_json: bool) -> None:
    with connect(ctx) as client:
        value = client.incr(check_key(key), by)
    print_json({"key": key, "value": value} if wants_json(ctx, as_json) else value)


@app.command()
def ttl(ctx: typer.Context, key: KeyArg, as_json: JsonFlag = False) -> None:
    """Print the seconds KEY has left before it expires.

    "none" (null with --json) when it never expires; exit 1 (NOT_FOUND) when
    it does not exist.
    """
    with connect(ctx) as client:
        try:
            seconds = client.ttl(check_key(key))
        except NotFound:
            raise key_unavailable(ctx, key) or fail(f"no key {key!r}", ExitCode.NOT_FOUND) from None
    if wants_json(ctx, as_json):
        print_json({"key": key, "ttl": seconds})
    else:
        print("none" if seconds is None else f"{seconds:.3f}".rstrip("0").rstrip("."))


@app.command()
def keys(
    ctx: typer.Context,
    pattern: Annotated[
        str | None, typer.Option(help="A glob (user:*) or, without * ? [, a prefix (user:).", show_default=False)
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            help="List at most this many keys. Default: every key, read page by page "
            f"({KEYS_PAGE} a request) through the server's cursor.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List the live keys.

    A table on a terminal, one key per line when piped, a JSON list with --json.
    In a cluster every node is asked; when one does not answer, what the
    others hold is listed and the command exits 11 (PARTIAL), naming it.
    """
    if limit is not None and limit < 1:
        raise fail(f"--limit {limit}: at least 1", ExitCode.USAGE)
    page_size = min(limit or KEYS_PAGE, KEYS_PAGE)
    if not is_cluster(ctx):
        with connect(ctx) as client:
            found = client.iter_keys(pattern or None, page_size=page_size)
            print_keys(ctx, as_json, found if limit is None else islice(found, limit))
        return
    fanned = each_node(ctx, lambda client: list(islice(client.iter_keys(pattern or None, page_size=page_size), limit)))
    merged = dict.fromkeys(name for listed in fanned.answers.values() for name in listed)  # replicas: once
    print_keys(ctx, as_json, islice(merged, limit))
    if fanned.down:
        raise partial(fanned, "listed the keys")


def print_keys(ctx: typer.Context, as_json: bool, found: Iterator[str]) -> None:
    if wants_json(ctx, as_json):
        print_json(list(found))
    elif out.is_terminal:
        listed = list(found)
        table = Table("key", caption=f"{len(listed):,} key{'' if len(listed) == 1 else 's'}", caption_justify="left")
        for name in listed:
            table.add_row(Text(name))
        out.print(table)
    else:
        for name in found:  # streamed: a long listing starts at once
            print(name)


@app.command()
def clear(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask. Needed when stdin is not a terminal.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Remove every key of the server.

    Asks first, unless --yes; without a terminal to ask on, --yes is needed.
    In a cluster every node is cleared; exit 11 (PARTIAL) when one does not answer.
    """
    if not yes:
        if not interactive():
            raise fail("clear removes every key: add --yes (stdin is not a terminal, so it cannot ask)", ExitCode.USAGE)
        servers = hosts(options(ctx).urls)
        where = ", ".join(servers) if is_cluster(ctx) else servers[0]
        if not typer.confirm(f"Remove every key of the cache at {where}?", default=False, err=True):
            note("nothing cleared")
            return
    fanned = on_each_node(ctx, lambda client: client.clear())
    cleared = sum(fanned.answers.values())
    if wants_json(ctx, as_json):
        print_json({"cleared": cleared} | nodes_down(fanned))
    words = f"cleared {cleared:,} key{'' if cleared == 1 else 's'}"
    if fanned.down:
        raise partial(fanned, words)
    note(words)


# -- health --------------------------------------------------------------------------


@app.command()
def health(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Print each server's health document; the exit code says if they are healthy.

    Exit 0 when every --url server is healthy, 7 (UNHEALTHY) when one
    answers that it is not or, of several, one does not answer, 4
    (UNAVAILABLE) when nothing answers. Needs no token: a container
    HEALTHCHECK can run it as is.
    """
    fanned = each_node(ctx, lambda client: client.health())
    if len(fanned.answers) + len(fanned.down) == 1:  # one server: its document
        url, document = next(iter(fanned.answers.items()))
        if wants_json(ctx, as_json):
            print_json(document)
        else:
            print_fields(
                [(name, field_text(value)) for name, value in document.items()], title=f"health of {node_name(url)}"
            )
        if document.get("status") != "healthy":
            raise fail(f"the server is unhealthy: {problems_of(document)}", ExitCode.UNHEALTHY)
        return
    sick = {url: doc for url, doc in fanned.answers.items() if doc.get("status") != "healthy"}
    if wants_json(ctx, as_json):
        nodes = {node_name(url): document for url, document in fanned.answers.items()}
        nodes.update({node_name(url): {"status": "down", "error": reason} for url, reason in fanned.down.items()})
        healthy = not sick and not fanned.down
        print_json({"status": "healthy" if healthy else "unhealthy", "nodes": nodes})
    else:
        rows = [
            (node_name(url), "healthy" if url not in sick else f"unhealthy: {problems_of(document)}")
            for url, document in fanned.answers.items()
        ]
        rows += [(node_name(url), f"down: {reason}") for url, reason in fanned.down.items()]
        print_fields(rows, title="health")
    problems = [f"{node_name(url)} is unhealthy ({problems_of(document)})" for url, document in sick.items()]
    if fanned.down:
        problems.append(missing_words(fanned.down))
    if problems:
        raise fail(f"not every node is healthy: {'; '.join(problems)}", ExitCode.UNHEALTHY)


def problems_of(document: dict[str, Any]) -> str:
    return "; ".join(document.get("problems") or []) or f"status {document.get('status')!r}"
