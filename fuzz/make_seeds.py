"""Writes the seed corpus, ``fuzz/seeds/``: ``python fuzz/make_seeds.py``.

The seeds are the raw requests of the tests: the table of malformed requests
that both workers must refuse alike (``MALFORMED`` in
tests/integration/test_worker_hardening.py, its oversized rows cut down to
what the fuzzers' 16 KiB inputs hold), the requests that the hostile-bytes
issue found accepted where h11, llhttp and gunicorn refuse them, and the
ordinary requests of the serving tests (a GET, a JSON PUT, pipelining,
chunked bodies, Expect, keep-alive). Each is written whole and, where it has
header lines, also cut just before every colon and inside every line end:
the splits that one-call harnesses never try. Files are named after the case.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fuzz import wire  # noqa: E402
from tests.integration.test_worker_hardening import MALFORMED  # noqa: E402

SEEDS = ROOT / "fuzz" / "seeds"
MAX_INPUT = 16 * 1024

PUT = b'PUT /cache/k HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n"a"'
ORDINARY = {
    "get": b"GET /cache/k HTTP/1.1\r\nHost: x\r\n\r\n",
    "get-health-close": b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "head": b"HEAD /cache/k HTTP/1.1\r\nHost: x\r\n\r\n",
    "put-json": PUT,
    "put-ttl-query": PUT.replace(b"/cache/k ", b"/cache/k?ttl=10&nx=1 "),
    "put-chunked": b"PUT /cache/c HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b'Transfer-Encoding: chunked\r\n\r\n3;ext=1\r\n"ab\r\n1\r\n"\r\n0\r\nX-Trailer: t\r\n\r\n',
    "put-expect": PUT.replace(b"Host: x\r\n", b"Host: x\r\nExpect: 100-continue\r\n"),
    "pipelined": PUT + b"GET /cache/k HTTP/1.1\r\nHost: x\r\n\r\nDELETE /cache/k HTTP/1.1\r\nHost: x\r\n\r\n",
    "http10-keepalive": b"GET /cache/k HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /health HTTP/1.0\r\n\r\n",
    "batch-get": b"POST /cache/batch/get HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b'Content-Length: 16\r\n\r\n{"keys":["a","b"]}'[:-2],
    "incr": b"POST /cache/n/incr?by=2 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    "encoded-path": b"GET /cache/a%2Fb%00c?x=%zz HTTP/1.1\r\nHost: x\r\n\r\n",
    "absolute-uri": b"GET http://x/cache/k HTTP/1.1\r\nHost: x\r\n\r\n",
    "options-star": b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    "upgrade": b"GET /cache/k HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    "connect": b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n",
}
# The hostile-bytes issue's table: accepted by the default worker when it was
# written, refused by h11, llhttp and gunicorn alike.
HOSTILE = {
    "header-without-colon": b"GET /cache/k HTTP/1.1\r\nHost: x\r\nFoo\r\nX-B: 2\r\n\r\n",
    "content-length-split-name": b"PUT /cache/k HTTP/1.1\r\nHost: x\r\nContent-\r\nLength: 40\r\n\r\n"
    b'PUT /cache/s HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"a"',
    "nul-in-value": b"GET /cache/k HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "empty-content-length": b"PUT /cache/k HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n",
    "version-1-10": b"GET /cache/k HTTP/1.10\r\nHost: x\r\n\r\n",
    "version-2-0": b"GET /cache/k HTTP/2.0\r\nHost: x\r\n\r\n",
    "obs-fold": b"GET /cache/k HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    "http10-chunked": b"PUT /cache/k HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
    b'3\r\n"a"\r\n0\r\n\r\nGET /cache/k HTTP/1.0\r\n\r\n',
    "space-before-colon": b"PUT /cache/k HTTP/1.1\r\nHost: x\r\nContent-Length : 0\r\n\r\n",
    "signed-length": b'PUT /cache/k HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\n"a"',
    "chunk-size-overflow": b"PUT /cache/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"ffffffffffffffffff1\r\na\r\n0\r\n\r\n",
}


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def cut_points(raw: bytes) -> list[int]:
    """Just before the colons of the first header lines, and between the CR
    and LF of the first line ends: at most seven cuts."""
    head = raw[: raw.find(b"\r\n\r\n") + 4] if b"\r\n\r\n" in raw else raw
    colons = [match.start() for match in re.finditer(rb":", head)][:4]
    line_ends = [match.start() + 1 for match in re.finditer(rb"\r\n", head)][:3]
    return sorted(set(colons + line_ends))[: wire.MAX_CUTS]


def main() -> int:
    SEEDS.mkdir(parents=True, exist_ok=True)
    cases = {f"ordinary-{name}": raw for name, raw in ORDINARY.items()}
    cases.update({f"hostile-{name}": raw for name, raw in HOSTILE.items()})
    cases.update({f"malformed-{slug(name)}": raw[:MAX_INPUT] for name, (raw, _) in MALFORMED.items()})
    written = 0
    for name, raw in sorted(cases.items()):
        (SEEDS / name).write_bytes(wire.encode(raw))
        written += 1
        cuts = [cut for cut in cut_points(raw) if cut <= 0xFFFF]
        if cuts:
            (SEEDS / f"{name}.cut").write_bytes(wire.encode(raw, cuts))
            written += 1
    print(f"wrote {written} seeds to {SEEDS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
