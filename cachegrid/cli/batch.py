"""``cachegrid batch get`` and ``batch set``: many keys in one request.

Thin adapters like the single-key commands (commands.py): ``batch get``
prints the items it found and exits NOT_FOUND when any key is missing;
``batch set`` stores a JSON object of items, all or none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from .common import (
    JsonFlag,
    TtlOption,
    binary_summary,
    check_key,
    checked,
    connect,
    dumps,
    loads,
    missing_words,
    note,
    print_json,
    read_stdin,
    split_binary,
    unreachable,
    wants_json,
)
from .nodes import owners
from .status import ExitCode, fail, out

app = typer.Typer(name="batch", help="Read or write many keys in one request.", no_args_is_help=True)


@app.command("get")
def batch_get(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(metavar="KEY...", help="The keys.", show_default=False)],
    as_json: JsonFlag = False,
) -> None:
    """Print the values of the KEYs that exist.

    A table on a terminal, "KEY<tab>VALUE-AS-JSON" lines when piped,
    {"items": {...}, "missing": [...]} with --json (binary values: their size
    instead, and base64 under "items_base64" with --json). Exit 1
    (NOT_FOUND) when any KEY is missing. In a cluster, a missing KEY whose
    node does not answer is unknown, not missing: exit 11 (PARTIAL), and
    "unknown": [...] with --json.
    """
    with connect(ctx, name_down=False) as client:
        items = client.get_multi([check_key(name) for name in names])
    missing = [name for name in dict.fromkeys(names) if name not in items]
    placed = owners(ctx, missing) if missing else {}
    down = unreachable(checked(ctx)[0], [url for urls in placed.values() for url in urls])
    unknown = [name for name in missing if any(url in down for url in placed.get(name, []))]
    missing = [name for name in missing if name not in unknown]
    if wants_json(ctx, as_json):
        print_json({**split_binary(items), "missing": missing} | ({"unknown": unknown} if unknown else {}))
    elif out.is_terminal:
        table = Table("key", "value")
        for name, value in items.items():
            table.add_row(Text(name), Text(_shown(value)))
        out.print(table)
    else:
        for name, value in items.items():
            print(f"{name}\t{_shown(value)}")
    if unknown:
        also = f"; {len(missing)} not found: {', '.join(map(repr, missing))}" if missing else ""
        raise fail(
            f"partial result: {len(unknown)} of the keys unknown ({', '.join(map(repr, unknown))}): "
            f"their node {missing_words(down)}{also}",
            ExitCode.PARTIAL,
        )
    if missing:
        raise fail(f"{len(missing)} of the keys not found: {', '.join(map(repr, missing))}", ExitCode.NOT_FOUND)


def _shown(value: Any) -> str:
    return f"<{binary_summary(value)}>" if isinstance(value, bytes) else dumps(value)


@app.command("set")
def batch_set(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            metavar="FILE|-",
            show_default=False,
            help='A JSON object of items, {"key": value, ...}; - reads it from stdin.',
        ),
    ],
    ttl: TtlOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Store every item of a JSON object (all or none), optionally for --ttl seconds."""
    items = read_items(source)
    with connect(ctx) as client:
        stored = client.set_multi(items, ttl)
    if wants_json(ctx, as_json):
        print_json({"stored": stored, "ttl": ttl})
    note(f"stored {stored:,} item{'' if stored == 1 else 's'}" + ("" if ttl is None else f" for {ttl:g} s"))


def read_items(source: str) -> dict[str, Any]:
    """The JSON object of FILE (or stdin for -); a red line when it is not one."""
    name = "stdin" if source == "-" else source
    try:
        text = read_stdin() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise fail(f"cannot read {name}: {reason}", ExitCode.USAGE) from None
    try:
        items = loads(text)
    except ValueError as error:
        raise fail(f"{name} is not valid JSON: {error}", ExitCode.USAGE) from None
    if not isinstance(items, dict):
        raise fail(
            f'{name}: give a JSON object of items, {{"key": value, ...}}, not {type(items).__name__}', ExitCode.USAGE
        )
    return items
