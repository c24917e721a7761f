"""Both clients and compression, against real servers (docs/compression.md):
large JSON and binary values go up gzip-compressed and come down as held,
byte for byte; only to a node that said it reads gzip (an older server, which
never says it, gets plain bodies); the near cache keeps decoded values; and
read repair copies a compressed value to the replica that missed it; and a
gzip bomb from a hostile server is stopped at the client's limit (over
https:// too)."""

from __future__ import annotations

import asyncio
import gzip
import http.server
import json
import ssl
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cachegrid.client import (
    AnswerTooLarge,
    CacheGridClient,
    NearCache,
    SyncCacheGridClient,
    transport_aio,
    transport_sync,
)
from cachegrid.client import coding as client_coding
from cachegrid.client.protocol import Answer, Call, item_path
from cachegrid.testing import ServerProcess, running
from tests.fixtures import LocalHost
from tests.integration.test_tls import OPENSSL, make_ca, make_server_certificate

pytestmark = pytest.mark.process

USERS = [{"id": n, "name": f"user {n}", "email": f"user{n}@example.com", "city": "Lisbon"} for n in range(100)]
DOCUMENT = json.dumps(USERS, separators=(",", ":")).encode()
BINARY = b"".join(n.to_bytes(4, "big") * 8 for n in range(2000))  # 64 KB that compresses well


@pytest.fixture(scope="module")
def servers() -> Iterator[list[ServerProcess]]:
    with running(graceful=False) as first, running(graceful=False) as second:
        yield [first, second]


@pytest.fixture
def server(servers: list[ServerProcess]) -> ServerProcess:
    servers[0].request("DELETE", "/cache?confirm=true")
    return servers[0]


Sent = list[tuple[str, str, dict[str, str], bytes]]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Sent:
    """Every request the lean transports send: method, path, headers, body."""
    seen: Sent = []
    sync_send, aio_send = transport_sync.Lane.send, transport_aio.AioLane.send

    def record(lane: Any, call: Call) -> None:
        seen.append((call.method, call.path, dict(call.headers or {}), call.body or b""))

    def spy_sync(lane: transport_sync.Lane, call: Call) -> Answer:
        record(lane, call)
        return sync_send(lane, call)

    async def spy_aio(lane: transport_aio.AioLane, call: Call) -> Answer:
        record(lane, call)
        return await aio_send(lane, call)

    sync_quick = transport_sync.Lane.quick

    def spy_quick(lane: transport_sync.Lane, data: bytes) -> Answer | None:
        # The sync client's quick path (sync.py) hands the lane the request's
        # bytes: recorded as the Call would be (its path without the query).
        head, _, body = data.partition(b"\r\n\r\n")
        line, *fields = head.decode("latin-1").split("\r\n")
        method, target, _ = line.split(" ")
        seen.append((method, target.partition("?")[0], dict(field.split(": ", 1) for field in fields), body))
        return sync_quick(lane, data)

    monkeypatch.setattr(transport_sync.Lane, "send", spy_sync)
    monkeypatch.setattr(transport_sync.Lane, "quick", spy_quick)
    monkeypatch.setattr(transport_aio.AioLane, "send", spy_aio)
    return seen


def coding(headers: dict[str, str]) -> str | None:
    return next((value for name, value in headers.items() if name.lower() == "content-encoding"), None)


def sizes(server: ServerProcess, key: str) -> dict[str, int]:
    return json.loads(server.request("GET", "/admin/keys")[2])["sizes"][key]


def url(server: ServerProcess) -> str:
    return f"{server.host}:{server.port}"


def test_sync_large_values_go_up_and_come_down_compressed(server: ServerProcess, sent: Sent) -> None:
    client = SyncCacheGridClient([url(server)])
    assert client.set("first", USERS)  # the node has not said yet that it reads gzip: sent plain
    assert coding(sent[-1][2]) is None and sent[-1][3] == DOCUMENT
    assert client.set("users", USERS) and client.set("bytes", BINARY)
    for (method, _, headers, body), value in zip(sent[-2:], (DOCUMENT, BINARY), strict=True):
        assert method == "PUT" and coding(headers) == "gzip" and len(body) < 0.3 * len(value)
    assert gzip.decompress(sent[-2][3]) == DOCUMENT and gzip.decompress(sent[-1][3]) == BINARY
    # Held compressed (as sent), served as held, decoded by the client.
    assert sizes(server, "users") == {"stored_bytes": len(sent[-2][3]), "original_bytes": len(DOCUMENT)}
    assert sizes(server, "bytes")["stored_bytes"] < len(BINARY) // 10
    assert client.get("users") == USERS and client.get("bytes") == BINARY
    status, headers, body = server.request("GET", "/cache/users", headers={"Accept-Encoding": "gzip"})
    assert headers["content-encoding"] == "gzip" and gzip.decompress(body) == DOCUMENT
    # A batch set goes compressed too; a large batch get comes back compressed.
    assert client.set_multi({"many:json": USERS, "many:bytes": BINARY}) == 2
    assert coding(sent[-1][2]) == "gzip"
    assert client.get_multi(["many:json", "many:bytes", "users"]) == {
        "many:json": USERS,
        "many:bytes": BINARY,
        "users": USERS,
    }
    # get_or_set's write (under its lease) goes compressed too.
    assert client.get_or_set("computed", lambda: USERS, ttl=60) == USERS
    assert [coding(headers) for method, _, headers, _ in sent if method == "PUT"][-1] == "gzip"
    assert client.get("computed") == USERS and sizes(server, "computed")["stored_bytes"] < 0.3 * len(DOCUMENT)
    # A small value is sent plain.
    assert client.set("small", {"n": 1}) and coding(sent[-1][2]) is None
    client.close()


def test_async_large_values_go_up_and_come_down_compressed(server: ServerProcess, sent: Sent) -> None:
    async def run() -> list[Any]:
        client = CacheGridClient([url(server)])
        try:
            await client.set("warm", 1)  # a small write: the node says it reads gzip
            await client.set("users", USERS)
            await client.set("bytes", BINARY)
            await client.set_multi({"many:json": USERS})
            return [
                await client.get("users"),
                await client.get("bytes"),
                await client.get_multi(["many:json", "users"]),
            ]
        finally:
            await client.close()

    users, data, many = asyncio.run(run())
    assert users == USERS and data == BINARY and many == {"many:json": USERS, "users": USERS}
    assert [coding(headers) for _, _, headers, _ in sent[:4]] == [None, "gzip", "gzip", "gzip"]
    assert sizes(server, "users")["stored_bytes"] < 0.3 * len(DOCUMENT)


def test_exists_of_a_value_held_compressed(server: ServerProcess) -> None:
    # A HEAD of it is answered with Content-Encoding: gzip and no body: nothing to decode.
    client = SyncCacheGridClient([url(server)])
    assert client.set("users", USERS) and sizes(server, "users")["stored_bytes"] < 0.3 * len(DOCUMENT)
    assert client.exists("users") is True and client.exists("nobody") is False
    client.close()

    async def run() -> tuple[bool, bool]:
        client = CacheGridClient([url(server)])
        try:
            return await client.exists("users"), await client.exists("nobody")
        finally:
            await client.close()

    assert asyncio.run(run()) == (True, False)


def test_a_client_threshold_of_zero_never_compresses(server: ServerProcess, sent: Sent) -> None:
    client = SyncCacheGridClient([url(server)], compress_threshold=0)
    client.set("warm", 1)
    client.set("users", USERS)
    assert coding(sent[-1][2]) is None and sent[-1][3] == DOCUMENT
    assert client.get("users") == USERS  # held compressed by the server all the same
    with pytest.raises(ValueError, match="compress_threshold"):
        SyncCacheGridClient([url(server)], compress_threshold=-1)


def test_a_server_with_compression_off_still_reads_gzip_uploads(sent: Sent) -> None:
    with running(env={"CACHEGRID_COMPRESS_THRESHOLD": "0"}, graceful=False) as off:
        client = SyncCacheGridClient([url(off)])
        client.set("warm", 1)
        assert client.set("users", USERS) and client.set("bytes", BINARY)
        assert coding(sent[-1][2]) == "gzip"
        assert client.get("users") == USERS and client.get("bytes") == BINARY
        assert sizes(off, "users")["stored_bytes"] == len(DOCUMENT)  # held as it reads: plain
        client.close()


class OlderServer(LocalHost):
    """A server from before compression, as far as writes go: it stores what
    it is sent and answers without Accept-Encoding (never saying it reads
    gzip). It keeps each request's Content-Encoding and body."""

    def __init__(self) -> None:
        self.uploads: list[tuple[str | None, bytes]] = []
        older = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                older.uploads.append((self.headers.get("Content-Encoding"), body))
                if self.command == "PUT":
                    status, answer = 201, b'{"key":"k","ttl":null,"created":true}'
                else:
                    status, answer = 200, b'{"stored":1,"ttl":null}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_PUT = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.serve(Handler)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_an_older_server_gets_plain_uploads(kind: str) -> None:
    older = OlderServer()
    try:
        if kind == "sync":
            client = SyncCacheGridClient([older.host])
            for value in (1, USERS, BINARY, USERS):
                client.set("k", value)
            client.set_multi({"a": USERS, "b": BINARY})
            client.close()
        else:

            async def run() -> None:
                client = CacheGridClient([older.host])
                for value in (1, USERS, BINARY, USERS):
                    await client.set("k", value)
                await client.set_multi({"a": USERS, "b": BINARY})
                await client.close()

            asyncio.run(run())
    finally:
        older.close()
    assert len(older.uploads) == 5
    assert all(coding is None for coding, _ in older.uploads)
    assert older.uploads[1][1] == DOCUMENT and older.uploads[2][1] == BINARY


def test_the_near_cache_keeps_decoded_values(server: ServerProcess) -> None:
    writer = SyncCacheGridClient([url(server)])
    writer.set("warm", 1)
    writer.set("users", USERS)
    writer.set("bytes", BINARY)
    near = NearCache(max_ttl=30.0)
    client = SyncCacheGridClient([url(server)], near_cache=near)
    try:
        for key, value in (("users", USERS), ("bytes", BINARY)):
            for _ in range(500):  # the first reads open the change stream; then one is kept
                assert client.get(key) == value
                if key in near._entries:
                    break
            held = near._entries[key][0]
            assert held == (DOCUMENT if key == "users" else BINARY)
            hits = near.stats()["hits"]
            assert client.get(key) == value and near.stats()["hits"] == hits + 1
    finally:
        near.close()
        client.close()
        writer.close()


def test_read_repair_copies_a_compressed_value(servers: list[ServerProcess], sent: Sent) -> None:
    for node in servers:
        node.request("DELETE", "/cache?confirm=true")
    client = SyncCacheGridClient([url(node) for node in servers], replicas=2)
    by_url = {node.url: node for node in servers}
    key = "repaired:users"
    first, second = (by_url[host] for host in client.node_for(key))
    client.set("warm", 1)  # both replicas: each says it reads gzip
    # Only the second replica holds the value (written there alone, compressed).
    raw = gzip.compress(DOCUMENT)
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    assert second.request("PUT", item_path(key) + "?ttl=600", raw=raw, headers=headers)[0] == 201
    assert client.get(key) == USERS  # a miss on the first replica, a hit on the second, repaired
    copies = [(headers, body) for method, path, headers, body in sent if method == "PUT" and path == item_path(key)]
    assert len(copies) == 1 and coding(copies[0][0]) == "gzip"
    assert gzip.decompress(copies[0][1]) == DOCUMENT
    status, answer_headers, body = first.request("GET", item_path(key))
    assert (status, body) == (200, DOCUMENT) and 500 < float(answer_headers["x-cache-ttl"]) <= 600
    assert sizes(first, key)["stored_bytes"] < 0.3 * len(DOCUMENT)
    client.close()


def test_a_node_answering_without_the_header_is_forgotten(server: ServerProcess) -> None:
    client = SyncCacheGridClient([url(server)])
    client.set("warm", 1)
    host = client.hosts[0]
    assert client.uploads.accepts(host)
    client.uploads.learn(host, Answer(201, b"{}", {"Content-Type": "application/json"}))  # an older server's
    assert not client.uploads.accepts(host)
    client.uploads.learn(host, Answer(412, b"{}", {}))  # no success: says nothing
    client.set("warm", 2)
    assert client.uploads.accepts(host)
    client.close()


class BombServer(LocalHost):
    """A hostile server: every GET is answered with a gzip body of 64 KB that
    inflates to 64 MiB of zeros, labelled Content-Encoding: gzip."""

    BOMB = gzip.compress(bytes(64 * 1024 * 1024), compresslevel=9)

    def __init__(self) -> None:
        self.requests = 0
        bomb = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                bomb.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(BombServer.BOMB)))
                self.end_headers()
                self.wfile.write(BombServer.BOMB)

            def log_message(self, *args: object) -> None:
                pass

        self.serve(Handler)


def tls_bomb(directory: Path) -> tuple[BombServer, str, Path]:
    """A ``BombServer`` behind TLS (a certificate of a CA made here): the
    server, its https:// URL, and the CA's bundle."""
    ca = make_ca(directory, "ca")
    cert, key = make_server_certificate(directory, "ca")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    bomb = BombServer()
    bomb.server.socket = context.wrap_socket(bomb.server.socket, server_side=True)
    return bomb, f"https://{bomb.host}", ca


@pytest.mark.parametrize("kind", ["sync", "async", "sync-https", "async-https"])
def test_a_gzip_bomb_is_stopped_at_the_clients_limit(
    kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Over http:// (the lean transports) and https:// (requests, httpx) alike."""
    limit = 1024 * 1024
    monkeypatch.setattr(client_coding, "MAX_INFLATED_SIZE", limit)
    ca: Path | None = None
    if kind.endswith("https"):
        if OPENSSL is None:
            pytest.skip("openssl is not installed (apt-get install openssl)")
        bomb, host, ca = tls_bomb(tmp_path)
    else:
        bomb = BombServer()
        host = bomb.host
    tracemalloc.start()
    try:
        with pytest.raises(AnswerTooLarge) as raised:
            if kind.startswith("sync"):
                client = SyncCacheGridClient([host], ca_file=ca)
                try:
                    client.get("k")
                finally:
                    client.close()
            else:

                async def run() -> None:
                    client = CacheGridClient([host], ca_file=ca)
                    try:
                        await client.get("k")
                    finally:
                        await client.close()

                asyncio.run(run())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        bomb.close()
    assert raised.value.limit == limit and "MAX_INFLATED_SIZE" in str(raised.value)
    assert bomb.requests == 1  # not retried: the same server would send the same bomb
    # The bomb's 64 KB, the limit and a byte, the client's own: far from 64 MiB.
    assert peak < 4 * limit
