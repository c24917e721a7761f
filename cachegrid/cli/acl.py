"""``cachegrid acl token`` and ``cachegrid acl check``: make and check scoped tokens.

Both work on this machine, without a server (acl_file.py; docs/acl.md):
``token`` prints a new random token once, with the ``[[tokens]]`` table that
goes in the ACL file (its SHA-256 only: the file never holds the token);
``check`` reads a file as the server reads it and says what is wrong with it
in one line (exit 3, as for any other setting that cannot be used).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..acl_file import PERMISSIONS, AclError, new_token, read_acl, toml_entry
from .common import JsonFlag, print_json, wants_json
from .status import ExitCode, fail, out

app = typer.Typer(name="acl", help="Scoped tokens: make one, check an ACL file.", no_args_is_help=True)


@app.command("token")
def token(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The token's name (shown in logs and metrics).", show_default=False)],
    prefix: Annotated[
        list[str] | None, typer.Option("--prefix", help="A key prefix it may touch (repeatable; none: every key).")
    ] = None,
    permission: Annotated[
        list[str] | None,
        typer.Option("--permission", help=f"One of {', '.join(PERMISSIONS)} (repeatable; default read)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Print a new random token (once: it is stored nowhere) and its ACL entry."""
    secret = new_token()
    try:
        entry = toml_entry(name, secret, prefix or None, permission or ["read"])
    except AclError as error:
        raise fail(str(error), ExitCode.USAGE) from None
    if wants_json(ctx, as_json):
        print_json({"name": name, "token": secret, "entry": entry})
        return
    out.print(f"# token (shown once, give it to the client): {secret}", markup=False, highlight=False, soft_wrap=True)
    out.print(entry, markup=False, highlight=False, soft_wrap=True, end="")


@app.command("check")
def check(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The ACL file.", show_default=False)],
    as_json: JsonFlag = False,
) -> None:
    """Check an ACL file as the server would read it (exit 3 when it cannot be used)."""
    try:
        entries = read_acl(file)
    except AclError as error:
        raise fail(str(error), ExitCode.CONFIG) from None
    if wants_json(ctx, as_json):
        print_json(
            {
                "file": str(file),
                "tokens": [
                    {
                        "name": entry.name,
                        "permissions": sorted(entry.permissions),
                        "prefixes": None if entry.prefixes is None else list(entry.prefixes),
                    }
                    for entry in entries
                ],
            }
        )
        return
    out.print(f"{file}: {len(entries)} tokens, valid", markup=False, highlight=False, soft_wrap=True)
    for entry in entries:
        where = "every key" if entry.prefixes is None else ", ".join(entry.prefixes)
        out.print(
            f"  {entry.name}: {', '.join(sorted(entry.permissions))} on {where}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
