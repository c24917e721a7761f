"""The ``cachegrid`` command line (typer + rich).

Where things live, one module per command or command group (typer's "One
File Per Command"): each owns its ``typer.Typer()`` and ``main.py`` composes
them; nothing imports ``main`` back.

- ``main.py``: the root app, the global options (``--url``, ``--token``,
  ``--timeout``, ``--json``) and the entry point ``main``;
- ``status.py``: the exit codes (``ExitCode``), ``fail`` (one red line on
  stderr), the two consoles, and the HTTP status -> exit code translation;
- ``common.py``: what the commands share: ``Globals``, the client made from
  them (``connect``, where the client's errors become exit codes), JSON input
  and the printers;
- ``commands.py``: get, set, delete, incr, decr, ttl, keys, clear, health;
- ``batch.py``: batch get, batch set;
- ``stats_view.py``: stats and its live view (``--watch``);
- ``config_show.py``: config show;
- ``loadtest.py``: loadtest, a thin adapter over ``cachegrid.loadgen``;
- ``serve.py``: serve, the only command that imports the daemon.
"""

from __future__ import annotations

from .main import app, main

__all__ = ["app", "main"]
