"""CacheGrid's HTTP daemon: a falcon WSGI app around the engine, and how it is served.

Where things live:

- the app: ``app.py`` (``create_app``: routes, auth, error mapping, all in
  one place), ``fastpath.py`` (what ``create_app`` returns: the plain GET,
  HEAD and PUT of a key answered before falcon, byte for byte as falcon
  answers them), one resource module per URL family (``items.py`` for
  ``/cache/{key}`` and its ``ttl``/``incr``/``decr``, ``batch.py``,
  ``admin.py`` for stats, health and keys, ``engine_load_test.py`` for
  ``/test/load``, ``metrics.py``, ``openapi/``), ``resources.py`` their
  base, ``body.py`` request bodies and parameters, ``routing.py`` keys in
  paths, ``errors.py`` engine errors to HTTP, ``cache_factory.py`` the
  served cache from the settings;
- the serving: ``server.py`` (gunicorn, one worker), ``workers.py`` (which
  worker and why), ``meinheld_worker.py`` and ``gthread_worker.py`` (the two
  worker classes), ``accesslog.py`` (the batched access log), ``wsgi.py``
  (``app`` for plain gunicorn).
"""

from __future__ import annotations

from .app import create_app
from .cache_factory import build_cache

__all__ = ["build_cache", "create_app"]
