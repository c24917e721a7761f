"""cachelib's and Flask-Caching's own backend tests (from the sdists of the
installed versions, see suites.py) against the Flask-Caching backend on a
real server, composed as each project composes them for its Redis cache:

- cachelib's ``CommonTests``, ``ClearTests``, ``HasTests``,
  ``DeleteManyWithPrefixTests`` and ``SerializerTests``, driven by a
  ``cache_factory`` that each of the projects' modules defines for its
  backend (here, as for Redis: without and with a key prefix, the server
  emptied first);
- Flask-Caching's ``GenericCacheTests``, driven by ``make_cache``.

cachelib's test modules import their conftest for its sample data, and it
imports ``xprocess`` (to start Redis or memcached, which none of these tests
does): where that package is not installed, an empty stand-in is."""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cachegrid.contrib.flask import CacheGridCache
from tests.contrib.suites import SuiteServer, SuiteUnavailable, source_tree, suite_unavailable

pytestmark = pytest.mark.process
SERVER = SuiteServer()


def _load(name: str, path: Any) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", autouse=True)
def _server() -> Iterator[None]:
    SERVER.start()
    yield
    SERVER.stop()


def _new_cache(**kwargs: Any) -> CacheGridCache:
    cache = CacheGridCache(SERVER.address, **kwargs)
    cache.client.clear()  # as the Redis factories flush the database
    return cache


try:
    CACHELIB = source_tree("cachelib", "tests")
    FLASK_CACHING = source_tree("Flask-Caching", "tests")
except SuiteUnavailable as error:
    test_flask_suites = suite_unavailable(error)
else:
    try:
        import xprocess  # noqa: F401
    except ImportError:
        sys.modules["xprocess"] = types.SimpleNamespace(ProcessStarter=object)  # type: ignore[assignment]
    sys.path.insert(0, str(CACHELIB))  # its modules import "conftest", "common", ... by those names
    from clear import ClearTests
    from common import CommonTests
    from delete_many_with_prefix import DeleteManyWithPrefixTests
    from has import HasTests
    from serializer import SerializerTests

    generic = _load("flask_caching_suite_backend_cache", FLASK_CACHING / "test_backend_cache.py")

    @pytest.fixture(params=[None, "test-key-prefix:"], ids=["no_key_prefix", "with_key_prefix"])
    def cache_factory(request: pytest.FixtureRequest) -> None:
        def factory(self: Any, *args: Any, **kwargs: Any) -> CacheGridCache:
            kwargs.setdefault("key_prefix", request.param)
            return _new_cache(**kwargs)

        request.cls.cache_factory = factory

    @pytest.mark.usefixtures("cache_factory")
    class TestCachelibSuite(CommonTests, ClearTests, HasTests, DeleteManyWithPrefixTests, SerializerTests):
        """cachelib's generic backend tests."""

    class TestFlaskCachingSuite(generic.GenericCacheTests):
        """Flask-Caching's generic backend tests."""

        _can_use_fast_sleep = False  # a real server's clock: the suite sleeps for real

        @pytest.fixture
        def make_cache(self) -> Callable[..., CacheGridCache]:
            return _new_cache

    @pytest.fixture
    def clock() -> None:
        """The suite's ``sleep`` asks for its conftest's fake clock, which only
        its in-process caches use; with ``_can_use_fast_sleep = False`` it is not used."""
