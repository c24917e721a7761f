"""A URL that does not lead to CacheGrid is an error, never a miss; a scheme
the client does not speak and a TTL that is no number are refused at once."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator

import pytest

from cachegrid.client import CacheGridClient, NotFound, RequestError, SyncCacheGridClient
from cachegrid.testing import ServerProcess as Server
from tests.client.callers import address


class NotCacheGrid(http.server.BaseHTTPRequestHandler):
    """Another web server: a plain 404 page for every path."""

    def do_GET(self) -> None:
        body = b"<html><body>404 Not Found</body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def other_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotCacheGrid)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_wrong_path_is_an_error_not_a_miss(live: Server, key: str) -> None:
    right = SyncCacheGridClient([address(live)])
    right.set(key, "v")
    wrong = SyncCacheGridClient([f"http://{address(live)}/some/path"])
    for read in (
        lambda: wrong.get(key),
        lambda: wrong.get("absent-key"),
        lambda: wrong.ttl(key),
        lambda: wrong.set(key, 1),
    ):
        with pytest.raises(RequestError, match="check the path of the server's URL") as raised:
            read()
        assert not isinstance(raised.value, NotFound) and raised.value.status == 404
    with pytest.raises(RequestError, match="without naming a key"):
        asyncio.run(CacheGridClient([f"http://{address(live)}/some/path"]).get(key))
    assert right.get("absent-key", "default") == "default"  # a real miss is still a miss


def test_another_servers_404_is_an_error(other_server: str) -> None:
    with pytest.raises(RequestError, match="without naming a key") as raised:
        SyncCacheGridClient([other_server]).get("k")
    assert "404 Not Found" in str(raised.value)


def test_a_scheme_the_client_does_not_speak_is_refused() -> None:
    for host in ("ftp://127.0.0.1:8080", "file:///tmp/x"):
        with pytest.raises(ValueError, match="http:// or https://"):
            SyncCacheGridClient([host])
        with pytest.raises(ValueError, match="http:// or https://"):
            CacheGridClient([host])


@pytest.mark.parametrize("ttl", ["abc", "60", b"1", [1], True])
def test_a_ttl_that_is_no_number_is_refused_before_sending(ttl: object) -> None:
    client = SyncCacheGridClient(["127.0.0.1:1"])  # nothing is sent: nothing listens there
    with pytest.raises(ValueError, match=r"ttl must be a number of seconds, not " + repr(ttl).replace("[", r"\[")):
        client.set("k", 1, ttl=ttl)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl must be a number of seconds"):
        client.touch("k", ttl)  # type: ignore[arg-type]
