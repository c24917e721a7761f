"""The frameworks' own test suites, as their projects publish them.

Django's, cachelib's and Flask-Caching's backend tests are in their source
distributions, not in their wheels. ``source_tree`` has pip download the
sdist of the installed version from the package index (once: it is kept in
.cache/test-suites/ at the top of the checkout) and unpacks the part the
tests need; nothing of it is copied into the repository.
``suite_unavailable`` turns a failed download into one failing test that
says why, instead of an error that stops the collection of everything.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from cachegrid.testing import ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "test-suites"
DOWNLOAD_TIMEOUT = 600.0


class SuiteUnavailable(RuntimeError):
    """The sdist could not be downloaded or unpacked."""


def source_tree(distribution: str, subdirectory: str) -> Path:
    """``subdirectory`` (e.g. ``tests``) of the sdist of the installed
    version of ``distribution``, unpacked; downloaded on first use."""
    version = importlib.metadata.version(distribution)
    target = CACHE / _normal(f"{distribution}-{version}") / subdirectory
    done = target.with_name(target.name + ".unpacked")
    if not done.exists():
        _unpack(_download(distribution, version), subdirectory, target)
        done.touch()
    return target


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name.lower())


def _download(distribution: str, version: str) -> Path:
    downloads = CACHE / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    prefix = _normal(f"{distribution}-{version}-")
    found = [path for path in downloads.glob("*.tar.gz") if _normal(path.name).startswith(prefix)]
    if found:
        return found[0]
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--no-binary",
        ":all:",
        f"{distribution}=={version}",
        "--dest",
        str(downloads),
    ]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as error:
        output = getattr(error, "stderr", "") or ""
        raise SuiteUnavailable(
            f"pip could not download the sdist of {distribution}=={version}: {error}\n{output[-2000:]}"
        ) from None
    found = [path for path in downloads.glob("*.tar.gz") if _normal(path.name).startswith(prefix)]
    if not found:
        raise SuiteUnavailable(f"pip downloaded no sdist of {distribution}=={version} into {downloads}")
    return found[0]


def _unpack(archive_path: Path, subdirectory: str, target: Path) -> None:
    """Unpack ``<top>/<subdirectory>/`` of the archive into ``target``."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with tarfile.open(archive_path) as archive:
        top = archive.getnames()[0].split("/")[0]
        inside = f"{top}/{subdirectory}/"
        for member in archive.getmembers():
            if member.name.startswith(inside) and (member.isfile() or member.isdir()):
                member.name = member.name[len(inside) :]
                archive.extract(member, target, filter="data")


def suite_unavailable(error: Exception) -> Callable[[], None]:
    """A test that fails with ``error``: what a suite module defines when
    its suite could not be had."""

    def test_the_suite_is_available() -> None:
        pytest.fail(str(error))

    return test_the_suite_is_available


class SuiteServer:
    """A CacheGrid server on a port chosen when the module is imported (the
    suites name their backend's location in class attributes), started by a
    fixture of the module that uses it."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        self.process: ServerProcess | None = None

    def start(self) -> ServerProcess:
        self.process = ServerProcess("--port", str(self.port), *self.args)
        try:
            self.process.wait_healthy()
        except BaseException:
            self.process.stop()
            raise
        return self.process

    def stop(self) -> None:
        """The module's fixture is done with it: killed at once."""
        if self.process is not None:
            self.process.kill()
            self.process = None
