"""``cachegrid config show``: the settings ``cachegrid serve`` would start with
here, and where each comes from.

It reads this machine's sources exactly as ``serve`` does (``load_settings``:
the environment, then the TOML file, then the defaults), without a server:
it shows a configuration, not what a running server uses. The auth token is
never printed, only whether it is set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr
from rich.table import Table
from rich.text import Text

from ..config import ConfigError, Settings, config_file, env_var, load_settings, read_table, setting_sources
from .common import JsonFlag, field_text, print_json, wants_json
from .status import ExitCode, fail, out

MASK = "********"

app = typer.Typer(name="config", help="The server's settings.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    config_path: Annotated[
        Path | None,
        typer.Option(
            "--config",
            show_default=False,
            help="TOML file (default: $CACHEGRID_CONFIG, else etc/cachegrid.toml if present).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Print the effective server settings and where each comes from.

    What `cachegrid serve` would use here: each setting from its environment
    variable, the config file or the default. The auth token is masked.
    """
    try:
        settings = load_settings(config_path)
        path = config_file(config_path)
        sources = setting_sources(path, read_table(path) if path is not None else {}, {})
    except ConfigError as error:
        raise fail(str(error), ExitCode.CONFIG) from None
    values = {name: shown(getattr(settings, name)) for name in Settings.model_fields}
    if wants_json(ctx, as_json):
        print_json(
            {
                "config_file": None if path is None else str(path),
                "settings": {
                    name: {"value": value, "source": sources[name], "env": env_var(name)}
                    for name, value in values.items()
                },
            }
        )
        return
    rows = [(name, "" if value is None else field_text(value), sources[name]) for name, value in values.items()]
    if not out.is_terminal:
        widths = [max(len(row[column]) for row in rows) for column in (0, 1)]
        for name, value, source in rows:
            print(f"{name.ljust(widths[0])}  {value.ljust(widths[1])}  {source}")
        return
    table = Table("setting", "value", "source", title=f"config file: {path or 'none'}", title_justify="left")
    for name, value, source in rows:
        table.add_row(Text(name, style="bold"), Text(value), Text(source, style="dim" if source == "default" else ""))
    out.print(table)


def shown(value: Any) -> Any:
    """A setting as printed: a secret masked, everything else as is."""
    if isinstance(value, SecretStr):
        return MASK
    return value
