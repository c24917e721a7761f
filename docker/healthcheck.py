"""The container's health check: exit 0 when this node's ``GET /health`` answers 200.

The image copies it to ``/opt/cachegrid/healthcheck.py`` (its working
directory), so ``HEALTHCHECK CMD ["python", "healthcheck.py"]`` and the
compose files' ``test: ["CMD", "python", "healthcheck.py"]`` run it. It finds
the server the way the server finds its own address: the same settings
(``CACHEGRID_HOST``/``CACHEGRID_PORT``, the TOML file of ``CACHEGRID_CONFIG``
or ``etc/cachegrid.toml``), so a container started with another port is
checked on that port. ``/health`` needs no token. Anything but a 200 within
the timeout (a 503 from an unhealthy node, a refused connection, a hang)
exits 1 with one line saying what was seen, which ``docker inspect`` shows.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 4.0  # under the image's HEALTHCHECK --timeout of 5 s
# A server on every address is reached on loopback.
ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def health_url() -> str:
    from cachegrid.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as error:
        raise SystemExit(f"unhealthy: the settings do not load: {error}") from None
    host = ANY_ADDRESS.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}/health"


def main() -> int:
    url = health_url()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError as error:
        print(f"unhealthy: {url}: {error}")
        return 1
    print(f"{'healthy' if status == 200 else 'unhealthy'}: {url} answered {status}")
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
