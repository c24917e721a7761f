"""A one-file Django project whose cache is CacheGrid: a page cached for
30 seconds (``cache_page``) and a visit counter (``cache.incr``, one atomic
operation on the server).

    make serve                                   # CacheGrid on 127.0.0.1:8080 (another terminal)
    .venv/bin/python examples/django_app.py runserver 8000
    curl http://127.0.0.1:8000/                  # again within 30 s: the same page, from the cache
    curl http://127.0.0.1:8000/visits

CACHEGRID_URL names another server (several, separated by commas: a
cluster) and CACHEGRID_AUTH_TOKEN its token, as for the command line.
"""

from __future__ import annotations

import os
import sys
import time

from django.conf import settings

settings.configure(
    DEBUG=True,
    ROOT_URLCONF=__name__,
    SECRET_KEY="an example, not a secret",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    CACHES={
        "default": {
            "BACKEND": "cachegrid.contrib.django.CacheGridCache",
            "LOCATION": os.environ.get("CACHEGRID_URL", "http://127.0.0.1:8080"),
            "KEY_PREFIX": "django-example",
            "TIMEOUT": 300,
            "OPTIONS": {"token": os.environ.get("CACHEGRID_AUTH_TOKEN"), "timeout": 2.0},
        }
    },
)

from django.core.cache import cache  # noqa: E402 (after the settings)
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.cache import cache_page  # noqa: E402


@cache_page(30)
def page(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"rendered_at": time.time()})


def visits(request: HttpRequest) -> JsonResponse:
    cache.add("visits", 0, timeout=None)  # only the first visit creates the counter
    return JsonResponse({"visits": cache.incr("visits")})


urlpatterns = [path("", page), path("visits", visits)]

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
