"""The WSGI entry point for servers: ``gunicorn cachegrid.daemon.wsgi:app``."""
from __future__ import annotations

from cachegrid.daemon import create_app

app = create_app()
