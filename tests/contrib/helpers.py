"""Helpers of the backends' own tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cachegrid.client import SyncCacheGridClient
from cachegrid.client.protocol import item_path
from cachegrid.testing import ServerProcess


@contextmanager
def sent(client: SyncCacheGridClient) -> Iterator[list[tuple[str, str]]]:
    """The (method, path) of each request ``client`` sends in the block; the
    requests go to their server as always."""
    log: list[tuple[str, str]] = []
    send = client._send

    def logged(host: str, call: Any) -> Any:
        log.append((call.method, call.path))
        return send(host, call)

    client._send = logged  # type: ignore[method-assign]
    try:
        yield log
    finally:
        del client._send


def raw_entry(server: ServerProcess, key: str) -> tuple[int, str, bytes]:
    """What the server holds under ``key``: status, Content-Type, body."""
    status, headers, body = server.request("GET", item_path(key))
    return status, headers.get("content-type", ""), body


def server_keys(server: ServerProcess) -> list[str]:
    return json.loads(server.request("GET", "/admin/keys?limit=1000")[2])["keys"]
