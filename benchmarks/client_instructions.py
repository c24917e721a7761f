"""Instructions one client call costs, counted by callgrind, with no server.

The sync client's lane is given a stand-in socket that answers every request
at once with the bytes a CacheGrid server (meinheld) sends for it: so only
the client's own work is counted, from the method call to its result (the
request built and "sent", the answer framed and read). The script runs
itself under ``valgrind --tool=callgrind`` twice, with few and with many
calls, and prints the difference per call: start-up and the first call's
one-time work drop out.

    python benchmarks/client_instructions.py            # get and set
    python benchmarks/client_instructions.py --ops get  # one of them
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from typing import Any

GET_ANSWER = (
    b"HTTP/1.1 200 OK\r\nServer: meinheld\r\nDate: Mon, 07 Dec 2026 06:28:58 GMT\r\n"
    b'etag: "c83402cf-1"\r\nx-cache-type: json\r\ncontent-type: application/json\r\n'
    b'content-length: 37\r\nConnection: Keep-Alive\r\n\r\n{"id":1,"name":"Ada","email":"a@b.c"}'
)
SET_ANSWER = (
    b"HTTP/1.1 201 Created\r\nServer: meinheld\r\nDate: Mon, 07 Dec 2026 06:28:58 GMT\r\n"
    b'etag: "c83402cf-1"\r\naccept-encoding: gzip\r\ncontent-type: application/json\r\n'
    b'content-length: 42\r\nConnection: Keep-Alive\r\n\r\n{"key":"user:1","ttl":null,"created":true}'
)
VALUE = {"id": 1, "name": "Ada", "email": "a@b.c"}


class StandIn:
    """What the lane uses of a socket: the answer to each request, at once."""

    def __init__(self) -> None:
        self._answer = b""

    def sendall(self, data: bytes) -> None:
        self._answer = GET_ANSWER if data.startswith(b"GET") else SET_ANSWER

    def recv(self, size: int) -> bytes:
        answer, self._answer = self._answer, b""
        return answer

    def close(self) -> None:
        pass


def run(op: str, calls: int) -> None:
    from cachegrid.client import SyncCacheGridClient, transport_sync

    transport_sync.Lane._connect = lambda self: StandIn()  # type: ignore[assignment,method-assign,return-value]
    client = SyncCacheGridClient(["127.0.0.1:1"])
    call: Any = (lambda: client.get("user:1")) if op == "get" else (lambda: client.set("user:1", VALUE))
    assert call() in (VALUE, True)
    for _ in range(calls):
        call()


def counted(op: str, calls: int) -> int:
    with tempfile.TemporaryDirectory() as directory:
        done = subprocess.run(
            [
                *("valgrind", "--tool=callgrind", f"--callgrind-out-file={directory}/out"),
                *(sys.executable, __file__, "--inside", op, "--calls", str(calls)),
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
    found = re.search(r"Collected : (\d+)", done.stderr)
    assert found, done.stderr[-2000:]
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", nargs="+", default=["get", "set"], choices=["get", "set"])
    parser.add_argument("--calls", type=int, default=1000, help="the difference between the two runs")
    parser.add_argument("--inside", choices=["get", "set"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        run(args.inside, args.calls)
        return
    for op in args.ops:
        few, many = counted(op, 100), counted(op, 100 + args.calls)
        print(f"sync {op}: {(many - few) / args.calls:,.0f} instructions per call")


if __name__ == "__main__":
    main()
