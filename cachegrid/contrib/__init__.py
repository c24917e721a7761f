"""CacheGrid as the cache of the frameworks Python applications already use.

- ``cachegrid.contrib.django``: ``CacheGridCache``, a Django cache backend;
- ``cachegrid.contrib.flask``: ``CacheGridCache``, a Flask-Caching (cachelib) backend;
- ``cachegrid.contrib.dogpile``: ``CacheGridBackend``, the dogpile.cache backend
  registered as ``"cachegrid"``.

Each is a thin adapter over ``SyncCacheGridClient``: what they share (the
client's options, how values and over-long keys are stored) is in
``common.py``. The framework each needs is an optional extra
(``pip install cachegrid[django]``, ``[flask]``, ``[dogpile]``); nothing here
is imported by the rest of CacheGrid.
"""
