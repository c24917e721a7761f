"""A Flask app whose cache is CacheGrid, through Flask-Caching: a view
cached for 30 seconds, a memoized function and a visit counter.

    make serve                                   # CacheGrid on 127.0.0.1:8080 (another terminal)
    .venv/bin/flask --app examples/flask_app.py run --port 5000
    curl http://127.0.0.1:5000/                  # again within 30 s: the same page, from the cache
    curl http://127.0.0.1:5000/square/12
    curl http://127.0.0.1:5000/visits

CACHEGRID_URL names another server (several, separated by commas: a
cluster) and CACHEGRID_AUTH_TOKEN its token, as for the command line.
"""

from __future__ import annotations

import os
import time

from flask import Flask, jsonify
from flask_caching import Cache

app = Flask(__name__)
app.config.update(
    CACHE_TYPE="cachegrid.contrib.flask.CacheGridCache",
    CACHE_CACHEGRID_HOSTS=os.environ.get("CACHEGRID_URL", "http://127.0.0.1:8080"),
    CACHE_CACHEGRID_TOKEN=os.environ.get("CACHEGRID_AUTH_TOKEN"),
    CACHE_CACHEGRID_TIMEOUT=2.0,
    CACHE_KEY_PREFIX="flask-example:",
    CACHE_DEFAULT_TIMEOUT=300,
)
cache = Cache(app)


@app.route("/")
@cache.cached(timeout=30)
def page() -> object:
    return jsonify(rendered_at=time.time())


@cache.memoize(timeout=60)
def slow_square(n: int) -> dict[str, float]:
    time.sleep(0.5)  # the work the cache saves
    return {"n": n, "square": n * n, "computed_at": time.time()}


@app.route("/square/<int:n>")
def square(n: int) -> object:
    return jsonify(slow_square(n))


@app.route("/visits")
def visits() -> object:
    return jsonify(visits=cache.cache.inc("visits"))  # absent counts as 0: one atomic operation
