"""Warm by default: where ``cachegrid serve`` keeps its snapshots when the
settings do not say.

As Redis saves by default, a node started with no snapshot setting keeps
one, so a worker crash or a restart reloads its data instead of starting
empty. The file is ``config.default_snapshot_path``'s (under systemd's
``$STATE_DIRECTORY``, else the user's XDG state directory), named after the
node, which is ``host:port`` by default and so differs between the nodes of
one machine. Its directory is created here, in the master before the worker
forks, readable by the owner only (0700; the snapshot file itself is written
0600). Where that cannot be done (no home, a read-only file system) the
server starts cold, as before, and says so in one line: a cache that cannot
keep its data still serves. ``snapshot_path = ""`` (``--no-snapshot``) turns
snapshots off; a path given is used as it is.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from ..config import Settings, default_snapshot_path, snapshots_by_default

log = logging.getLogger("cachegrid.server")


def with_default_snapshot(settings: Settings, environ: Mapping[str, str] = os.environ) -> Settings:
    """``settings`` with the default snapshot file when ``snapshot_path`` is
    unset and that file can be used; else ``settings`` as they are."""
    if not snapshots_by_default(settings):
        return settings
    path = default_snapshot_path(settings.node_id, environ)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a directory")
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise PermissionError(f"{path.parent} is not writable")
    except (OSError, RuntimeError) as error:  # RuntimeError: Path.home() without a home
        log.warning(
            "starting cold, without snapshots: the default snapshot file %s cannot be used (%s); "
            "set snapshot_path, or --no-snapshot to say so",
            path,
            error,
        )
        return settings
    log.info("snapshots in %s (the default; --no-snapshot turns them off)", path)
    return settings.model_copy(update={"snapshot_path": path})
