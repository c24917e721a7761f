"""Django's own cache backend tests, ``BaseCacheTests`` of Django's
tests/cache/tests.py (from the sdist of the installed Django, see
suites.py), against ``CacheGridCache`` on a real server, as Django runs
them for its own backends: a ``TestCase`` subclass, the caches configured
by the suite's ``caches_setting_for_tests``. The cull caches are left out as
Django's Redis tests leave them out (``exclude={"cull", "zero_cull"}``:
CacheGrid evicts by its own policy, not by MAX_ENTRIES), so the three cull
tests skip with Django's "Culling isn't implemented."; every other test
runs and passes."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from tests.contrib.suites import SuiteServer, SuiteUnavailable, source_tree, suite_unavailable

pytestmark = pytest.mark.process
SERVER = SuiteServer()
EXCLUDED = {"cull", "zero_cull"}  # as Django's RedisCacheTests


def _configure_django() -> None:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "cache"],
            SECRET_KEY="cachegrid-suite",
            USE_TZ=True,
            MIDDLEWARE=[],
            DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        )
        django.setup()


try:
    SUITE = source_tree("Django", "tests/cache")
except SuiteUnavailable as error:
    test_django_suite = suite_unavailable(error)
else:
    sys.path.insert(0, str(SUITE.parent))  # the suite is the package "cache", as in Django's tests/
    _configure_django()
    import django.test
    from cache.tests import BaseCacheTests, caches_setting_for_tests

    @django.test.override_settings(
        CACHES=caches_setting_for_tests(
            base={"BACKEND": "cachegrid.contrib.django.CacheGridCache", "LOCATION": SERVER.url}, exclude=EXCLUDED
        )
    )
    class CacheGridCacheTests(BaseCacheTests, django.test.TestCase):
        """Every test of BaseCacheTests, on CacheGrid."""


@pytest.fixture(scope="module", autouse=True)
def _server_and_test_database() -> Iterator[None]:
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    SERVER.start()
    setup_test_environment()
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)
        teardown_test_environment()
        SERVER.stop()
