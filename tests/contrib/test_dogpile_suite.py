"""dogpile.cache's own backend tests (``dogpile.testing.fixtures``, shipped
in its wheel) against the ``"cachegrid"`` backend on a real server, composed
as dogpile composes them for its Redis backend: the generic backend suite,
the serializer suite on top of it, and the mutex suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dogpile.testing.fixtures import _GenericBackendTestSuite, _GenericMutexTestSuite, _GenericSerializerTestSuite

from tests.contrib.suites import SuiteServer

pytestmark = pytest.mark.process
SERVER = SuiteServer()


@pytest.fixture(scope="module", autouse=True)
def _server() -> Iterator[None]:
    SERVER.start()
    yield
    SERVER.stop()


class _OnCacheGrid:
    backend = "cachegrid"  # by its entry point
    config_args = {"arguments": {"hosts": [SERVER.address], "timeout": 10.0}}


class TestCacheGridBackend(_OnCacheGrid, _GenericBackendTestSuite):
    """dogpile's generic backend tests."""


class TestCacheGridSerializer(_GenericSerializerTestSuite, TestCacheGridBackend):
    """The same, with the serializer suite's JSON (de)serializer on the region."""


class TestCacheGridMutex(_OnCacheGrid, _GenericMutexTestSuite):
    """dogpile's mutex tests, on the leases."""
