"""The ceiling of the HTTP benchmark: a falcon hello-world app served exactly like CacheGrid.

Run it on demand (``benchmarks/http_bench.py`` starts it)::

    .venv/bin/python benchmarks/hello_app.py --port P --worker meinheld|gthread [--threads N]

One route, ``/hello``, answers a constant JSON body, the same 25 bytes a
CacheGrid GET of the benchmark's value answers, to a GET and to a PUT (which
reads the request body first, as a CacheGrid PUT must). Everything around the app is
CacheGrid's own: the settings are loaded the same way (so ``CACHEGRID_*``
apply alike) and the server is started through ``cachegrid.daemon.server.serve``
itself -- the same gunicorn options (one worker, the same worker class and
threads, the same logger class and access log on stderr, the same timeouts and
keep-alive) and, for meinheld, the project's ``MeinheldWorker`` with the same
body limit. Only ``CacheGridServer.load`` is replaced, so that the worker loads
this app instead of CacheGrid's. Whatever CacheGrid's figures lose against this
app is then the cost of CacheGrid's own code, not of the server around it.

``benchmarks/fast_default.py`` also serves it under plain gunicorn with
meinheld's stock worker and no CacheGrid at all (``gunicorn -k
meinheld.gmeinheld.MeinheldWorker 'hello_app:create_app()'``), in an
environment where CacheGrid is not installed: so nothing but falcon is
imported at module level.
"""

from __future__ import annotations

import argparse
from typing import Any

import falcon

BODY = b'{"name":"Alice","age":30}'


class Hello:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = BODY

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.bounded_stream.read()
        resp.content_type = falcon.MEDIA_JSON
        resp.data = BODY


def create_app() -> falcon.App:
    app = falcon.App()
    app.add_route("/hello", Hello())
    return app


def _load(self: Any) -> falcon.App:
    # Runs in the worker after the fork, like CacheGridServer.load.
    return create_app()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--worker", choices=("meinheld", "gthread"), required=True)
    parser.add_argument(
        "--threads", type=int, default=None, help="threads of the gthread worker (default: CacheGrid's)"
    )
    args = parser.parse_args()

    from cachegrid.config import load_settings
    from cachegrid.daemon import server

    settings = load_settings(host=args.host, port=args.port, worker=args.worker, threads=args.threads)
    # serve() itself runs, so nothing about the server can drift from CacheGrid's;
    # only the app that the worker loads is this one.
    server.CacheGridServer.load = _load  # type: ignore[method-assign]
    server.serve(settings)


if __name__ == "__main__":
    main()
