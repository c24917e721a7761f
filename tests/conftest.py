from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CACHEGRID_* variable of the machine running the tests leaks into them."""
    for name in list(os.environ):
        if name.startswith("CACHEGRID_"):
            monkeypatch.delenv(name)
