"""The fast path (cachegrid/daemon/fastpath.py) answers exactly what falcon answers.

Every request of the table goes to the falcon app behind ``FastPath`` and
then to ``FastPath`` itself, on the same cache: the status line, the header
list (names, values, order) and the body must be the same, and so must the
change each makes to the engine's counters (hits, misses, stale hits). The
table also says which requests the fast path must answer itself, so that
it cannot quietly hand everything to falcon. Each request is sent as
gunicorn's workers and CacheGrid's meinheld send it (``RAW_URI``, the target
as sent) and as a server that gives only the decoded path.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest

from cachegrid.config import Settings
from cachegrid.daemon import build_cache, create_app
from cachegrid.daemon.body import encode
from cachegrid.daemon.compression import gzip_bytes
from cachegrid.daemon.fastpath import FastPath, put_answer
from cachegrid.engine import Cache, WriteOptions
from cachegrid.testing import FakeClock

TOKEN = "secret"
MAX_KEY = 40
UNICODE = "%D0%BA%D0%BB%D1%8E%D1%87"  # ключ

# (method, target as sent, headers, whether the fast path answers it)
REQUESTS: list[tuple[str, str, dict[str, str], bool]] = [
    ("GET", "/cache/user:42", {}, True),
    ("HEAD", "/cache/user:42", {}, True),
    ("GET", "/cache/missing", {}, True),
    ("HEAD", "/cache/missing", {}, True),
    ("GET", "/cache/ttl:1", {}, True),
    ("GET", "/cache/tagged", {}, True),
    ("GET", "/cache/tagged:ttl", {}, True),
    ("GET", "/cache/bin", {}, True),
    ("HEAD", "/cache/bin", {}, True),
    ("GET", "/cache/bin:empty", {}, True),
    ("GET", "/cache/stale", {}, True),
    ("GET", "/cache/stale:fresh", {}, True),
    ("GET", "/cache/gone", {}, True),  # expired
    ("GET", "/cache/user:42?", {}, True),  # an empty query is no query
    ("GET", "/cache/user:42#frag", {}, True),
    ("GET", "/cache/a%20b", {}, True),
    ("GET", "/cache/100%25", {}, True),
    ("GET", "/cache/" + "k" * MAX_KEY, {}, True),
    ("GET", "/cache/batch", {}, True),  # a key: only batch/get and the others are reserved
    ("GET", "/cache/user:42/", {}, True),  # a key that ends in /: a miss
    ("GET", "/cache/bin", {"Accept": "*/*"}, True),
    ("GET", "/cache/bin", {"Accept": "application/octet-stream"}, True),
    ("GET", "/cache/bin", {"Accept": ""}, True),
    ("GET", "/cache/user:42", {"Accept": "*/*", "User-Agent": "x", "Connection": "keep-alive"}, True),
    # values held compressed (compression.py): gzip or identity by Accept-Encoding
    ("GET", "/cache/zip", {}, True),
    ("HEAD", "/cache/zip", {}, True),
    ("GET", "/cache/zip", {"Accept-Encoding": "gzip"}, True),
    ("HEAD", "/cache/zip", {"Accept-Encoding": "gzip, deflate, br"}, True),
    ("GET", "/cache/zip", {"Accept-Encoding": "gzip;q=0"}, True),
    ("GET", "/cache/zip", {"Accept-Encoding": "*"}, True),
    ("GET", "/cache/zip", {"Accept-Encoding": "*;q=0.5, gzip;q=0"}, True),
    ("GET", "/cache/zip", {"Accept-Encoding": "identity"}, True),
    ("GET", "/cache/zip:bin", {"Accept-Encoding": "x-gzip"}, True),
    ("GET", "/cache/zip:bin", {}, True),
    ("GET", "/cache/zip:ttl", {"Accept-Encoding": "gzip"}, True),
    ("GET", "/cache/zip:ttl", {}, True),
    ("GET", "/cache/user:42", {"Accept-Encoding": "gzip"}, True),  # held as sent: never compressed here
    # falcon's
    ("GET", "/cache/bin", {"Accept": "application/json"}, False),  # 406
    ("GET", "/cache/user:42", {"Accept": "text/html, */*;q=0.8"}, False),
    ("GET", "/cache/user:42", {"If-None-Match": "*"}, False),
    ("GET", "/cache/user:42", {"If-None-Match": '"nope-1"'}, False),
    ("GET", "/cache/zip", {"If-None-Match": '"nope-1"', "Accept-Encoding": "gzip"}, False),
    ("GET", "/cache/zip?peek=true", {"Accept-Encoding": "gzip"}, False),
    ("GET", "/cache/zip?peek=true", {}, False),
    ("GET", "/cache/user:42?peek=true", {}, False),
    ("GET", "/cache/user:42?lease=5", {}, False),
    ("GET", "/cache/user:42?x=1", {}, False),
    ("HEAD", "/cache/missing?peek=1", {}, False),
    ("GET", "/cache/" + UNICODE, {}, None),  # meinheld-style: a non-ASCII path is falcon's
    ("GET", "/cache/a%2Fb", {}, True),  # decoded: a/b, the same key
    ("GET", "/cache/a/b", {}, True),
    ("GET", "/cache/%FF", {}, None),  # raw: not UTF-8, 400; decoded: falcon's replacement
    ("GET", "/cache/", {}, False),  # empty key: 400
    ("GET", "/cache/" + "k" * (MAX_KEY + 1), {}, False),  # too long: 400
    ("GET", "/cache/new%0Aline", {}, True),  # any character is a key's
    ("GET", "/cache/" + "%D0%BA" * 25, {}, False),  # 25 characters, 50 bytes: too long, 400
    ("GET", "/cache/user:42/ttl", {}, False),
    ("GET", "/cache/user:42/lease", {}, False),
    ("GET", "/cache/batch/get", {}, False),
    ("GET", "/cache", {}, False),
    ("GET", "/nothing/here", {}, False),  # (/health and /stats hold times: not compared)
    ("GET", "/cachex/user:42", {}, False),
    ("POST", "/cache/user:42", {}, False),
    ("DELETE", "/cache/nothing", {}, False),
    ("OPTIONS", "/cache/user:42", {}, False),
    ("get", "/cache/user:42", {}, False),
]


JSON = {"Content-Type": "application/json"}
ZIPPED = gzip.compress(b'{"zipped":"' + b"z" * 200 + b'"}')
# (target, headers, body, whether the fast path answers it); Content-Length is the body's
PUTS: list[tuple[str, dict[str, str], bytes | None, bool]] = [
    ("/cache/new:1", JSON, b'{"name": "Bob", "tags": [1, 2.5, null]}', True),
    ("/cache/new:1", JSON, b'{"name":"Bob"}', True),  # replaces: 200
    ("/cache/user:42", {}, b'"no content type"', True),
    ("/cache/new:2", {"Content-Type": "application/json; charset=utf-8"}, b"[1]", True),
    ("/cache/new:3?ttl=60", JSON, b"3", True),
    ("/cache/new:4?ttl=999999999", JSON, b"4", True),
    ("/cache/big", JSON, b"123456789012345678901234567890", True),  # beyond 64 bits: kept exactly
    ("/cache/bom", JSON, b"\xef\xbb\xbf[1]", True),
    ("/cache/unicode", JSON, '"ключ \\ud83d\\ude00"'.encode(), True),
    ("/cache/too:large", JSON, b'"' + b"x" * 400 + b'"', True),  # the engine's 413, counted
    ("/cache/zip:new", JSON, b'"' + b"ab" * 120 + b'"', True),  # over compress_threshold: held compressed
    ("/cache/zip:random", JSON, b'"' + bytes(range(65, 91)) * 9 + b'"', True),  # saves too little? either way
    ("/cache/zip:gz", JSON | {"Content-Encoding": "gzip"}, ZIPPED, False),  # a compressed body: falcon's
    ("/cache/zip:br", JSON | {"Content-Encoding": "br"}, b"1", False),  # 415
    ("/cache/zip:lie", JSON | {"Content-Encoding": "gzip"}, b"1", False),  # 400
    ("/cache/" + UNICODE, JSON, b"1", None),
    ("/cache/a%2Fb", JSON, b"2", True),
    ("/cache/new%0Aline", JSON, b"3", True),
    # falcon's
    ("/cache/" + "k" * (MAX_KEY + 1), JSON, b"1", False),  # the engine refuses the key (and counts it)
    ("/cache/", JSON, b"1", False),
    ("/cache/x?ttl=0", JSON, b"1", False),
    ("/cache/x?ttl=1.5", JSON, b"1", False),
    ("/cache/x?ttl=1e3", JSON, b"1", False),
    ("/cache/x?ttl=abc", JSON, b"1", False),
    ("/cache/x?ttl=9999999999", JSON, b"1", False),
    ("/cache/x?ttl=99999999999", JSON, b"1", False),
    ("/cache/x?ttl=60&tags=a,b", JSON, b"1", False),
    ("/cache/x?ttl=5&stale=5", JSON, b"1", False),
    ("/cache/x?tags=", JSON, b"1", False),
    ("/cache/x", {"Content-Type": "text/plain"}, b"1", False),
    ("/cache/x", {"Content-Type": "application/octet-stream"}, b"\x00", False),
    ("/cache/x", {"Content-Type": "application/xml"}, b"<x/>", False),
    ("/cache/x", JSON | {"If-None-Match": "*"}, b"1", False),
    ("/cache/x", JSON | {"If-Match": "*"}, b"1", False),
    ("/cache/x", JSON | {"X-Cache-Lease": "nope"}, b"1", False),
    ("/cache/x", JSON | {"Accept": "application/json"}, b"1", False),
    ("/cache/x", JSON, b"{not json", False),  # read, then handed to falcon with the same bytes
    ("/cache/x", JSON, b"NaN", False),
    ("/cache/x", JSON, b"", False),
    ("/cache/x", JSON, None, False),  # no Content-Length: read to the limit
    ("/cache/x", JSON, b"[" + b"1," * 600 + b"1]", False),  # over max_body_size
    ("/cache/x/ttl", JSON, b"1", False),
    ("/cache/batch/set", JSON, b'{"items": {}}', False),
]


def fill(cache: Cache, clock: FakeClock) -> None:
    cache.set("user:42", b'{"name":"Alice","age":30}')
    cache.set("ttl:1", b"[1,2]", 30.0)
    cache.set("tagged", b'"t"', tags=["a", "b"])
    cache.set("tagged:ttl", b'"t"', 12.5, tags=["b"])
    cache.set("bin", bytes(range(256)), binary=True)
    cache.set("bin:empty", b"", binary=True)
    cache.set("stale", b"1", 5.0, stale=60.0)
    cache.set("stale:fresh", b"1", 50.0, stale=60.0)
    cache.set("gone", b"1", 1.0)
    cache.set("a b", b"1")
    cache.set("100%", b"1")
    cache.set("ключ", b'"unicode"')
    cache.set("a/b", b'"slash"')
    cache.set("k" * MAX_KEY, b"1")
    cache.set("batch", b'"not reserved"')
    zip_json = b'["' + b"abc" * 80 + b'"]'
    cache.write("zip", gzip_bytes(zip_json), options=WriteOptions(original_size=len(zip_json)))
    cache.write("zip:bin", gzip_bytes(b"\x00" * 250), options=WriteOptions(binary=True, original_size=250))
    options = WriteOptions(tags=["a"], original_size=len(zip_json))
    cache.write("zip:ttl", gzip_bytes(zip_json), 30.0, options=options)
    clock.tick(10.0)  # "stale" in its window, "gone" gone


def environ(method: str, target: str, headers: dict[str, str], raw: bool, body: bytes | None = b"") -> dict[str, Any]:
    path, _, query = target.partition("#")[0].partition("?")
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),  # PEP 3333: bytes tunnelled as latin-1
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body or b""),
        "wsgi.errors": sys.stderr,
    }
    if raw:
        env["RAW_URI"] = target
    if body is not None and method in ("PUT", "POST"):
        env["CONTENT_LENGTH"] = str(len(body))
    for name, value in headers.items():
        name = name.upper().replace("-", "_")
        env[name if name == "CONTENT_TYPE" else "HTTP_" + name] = value
    return env


def call(app: Any, env: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    answer: list[Any] = []
    body: Iterable[bytes] = app(env, lambda status, headers, exc_info=None: answer.append((status, headers)))
    return answer[0][0], list(answer[0][1]), b"".join(body)


def counters(cache: Cache) -> dict[str, int]:
    """The engine's counters (the ratios derived from them left out)."""
    return {name: value for name, value in cache.stats().items() if type(value) is int}


class Spy:
    """The falcon app, counting the requests handed to it."""

    def __init__(self, app: Any) -> None:
        self.app, self.calls = app, 0

    def __call__(self, env: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.calls += 1
        return self.app(env, start_response)


def make(token: str | None, acl_file: Path | None = None) -> tuple[FastPath, Any, Cache]:
    clock = FakeClock()
    settings = Settings(
        node_id="test-node",
        max_key_length=MAX_KEY,
        auth_token=token,
        max_value_size=300,
        max_body_size=1024,
        acl_file=acl_file,
        compress_threshold=64,
    )
    cache = build_cache(settings, clock)
    fast = create_app(settings, cache=cache)
    fill(cache, clock)
    return fast, fast.app, cache


def twins(token: str | None, acl_file: Path | None = None) -> tuple[tuple[FastPath, Cache], tuple[FastPath, Cache]]:
    """Two apps on two caches filled alike, with the same ETag epoch."""
    (one, _, first), (other, _, second) = make(token, acl_file), make(token, acl_file)
    other.etag_of.__self__.epoch = one.etag_of.__self__.epoch  # type: ignore[attr-defined]
    return (one, first), (other, second)


AUTHS = [
    (None, {}, True),
    (TOKEN, {"Authorization": f"Bearer {TOKEN}"}, True),
    (TOKEN, {"Authorization": "Bearer wrong"}, False),
    (TOKEN, {"Authorization": f"bearer {TOKEN}"}, False),
    (TOKEN, {}, False),
    (None, {"Authorization": "Bearer whatever"}, True),
]


@pytest.mark.parametrize("raw", [True, False], ids=["raw-uri", "decoded-path"])
@pytest.mark.parametrize(("token", "auth", "auth_passes"), AUTHS)
def test_the_fast_path_answers_what_falcon_answers(
    raw: bool, token: str | None, auth: dict[str, str], auth_passes: bool
) -> None:
    (plain, plain_cache), (fast, fast_cache) = twins(token)
    falcon_app = plain.app  # the first cache's requests all go to falcon, the second's to the fast path
    spy = fast.app = Spy(fast.app)
    requests = [(method, target, headers, b"", fast) for method, target, headers, fast in REQUESTS]
    writes = [("PUT", target, headers, body, fast) for target, headers, body, fast in PUTS]
    taken = 0
    for method, target, headers, body, fast_expected in requests + writes + requests:
        expected = call(falcon_app, environ(method, target, auth | headers, raw, body))
        calls = spy.calls
        got = call(fast, environ(method, target, auth | headers, raw, body))
        assert got == expected, (method, target, headers, body)
        assert counters(fast_cache) == counters(plain_cache), (method, target, headers, body)
        answered_here = spy.calls == calls
        if fast_expected is None:  # a percent-encoded key outside ASCII or '/': fast only with the raw path
            fast_expected = raw and "%FF" not in target
        assert answered_here == (fast_expected and auth_passes), (method, target, headers, body)
        taken += answered_here
    assert taken or not auth_passes


# An ACL (daemon/acl.py) of three tokens, plus auth_token as a fourth with every right.
ACL_TOKENS = {
    "all": ("tok-all", None, ["read", "write"]),
    "user": ("tok-user", ["user:", "new:"], ["read", "write"]),
    "reader": ("tok-reader", None, ["read"]),
    "scraper": ("tok-scraper", None, ["metrics"]),
}


def acl_file(directory: Path) -> Path:
    path = directory / "acl.toml"
    tables = []
    for name, (token, prefixes, permissions) in ACL_TOKENS.items():
        digest = hashlib.sha256(token.encode()).hexdigest()
        tables.append(
            f'[[tokens]]\nname = "{name}"\nsha256 = "{digest}"\npermissions = {permissions!r}'.replace("'", '"')
        )
        if prefixes is not None:
            tables[-1] += "\nprefixes = " + repr(prefixes).replace("'", '"')
    path.write_text("\n\n".join(tables) + "\n")
    return path


ACL_AUTHS = [
    *((name, {"Authorization": f"Bearer {token}"}) for name, (token, _, _) in ACL_TOKENS.items()),
    ("auth_token", {"Authorization": f"Bearer {TOKEN}"}),
    (None, {"Authorization": "Bearer wrong"}),
    (None, {}),
]


@pytest.mark.parametrize("raw", [True, False], ids=["raw-uri", "decoded-path"])
@pytest.mark.parametrize(("name", "auth"), ACL_AUTHS, ids=[name or "none" for name, _ in ACL_AUTHS])
def test_with_an_acl_the_fast_path_answers_what_falcon_answers(
    raw: bool, name: str | None, auth: dict[str, str], tmp_path: Path
) -> None:
    """The same answers (401, 403 and the rest) and counters under an ACL; the
    fast path answers only what the token may do, and all of that it can."""
    (plain, plain_cache), (fast, fast_cache) = twins(TOKEN, acl_file(tmp_path))
    falcon_app = plain.app
    spy = fast.app = Spy(fast.app)
    requests = [(method, target, headers, b"", fast) for method, target, headers, fast in REQUESTS]
    writes = [("PUT", target, headers, body, fast) for target, headers, body, fast in PUTS]
    for method, target, headers, body, fast_expected in requests + writes + requests:
        expected = call(falcon_app, environ(method, target, auth | headers, raw, body))
        calls = spy.calls
        got = call(fast, environ(method, target, auth | headers, raw, body))
        assert got == expected, (method, target, headers, body)
        assert counters(fast_cache) == counters(plain_cache), (method, target, headers, body)
        answered_here = spy.calls == calls
        if name is None or name == "scraper":
            # (OPTIONS lists the methods of a route: falcon answers it to any known token.)
            assert not answered_here and (expected[0] >= "400" or method == "OPTIONS"), (method, target)
        elif name in ("reader",) and method == "PUT":
            assert not answered_here and expected[0] >= "400", target
        elif name == "user" and answered_here:
            assert target.startswith(("/cache/user:", "/cache/new:")), target
        elif name in ("all", "auth_token") and fast_expected is not None:
            assert answered_here == fast_expected, (method, target, headers, body)


def test_the_table_sees_every_kind_of_answer() -> None:
    """The statuses and headers the comparison above is meant to cover are
    really among its answers."""
    fast, _, _ = make(TOKEN)
    statuses, names = set(), set()
    for method, target, headers, _fast in REQUESTS:
        status, head, _ = call(fast, environ(method, target, headers | {"Authorization": f"Bearer {TOKEN}"}, True))
        statuses.add(status)
        names.update(name for name, _ in head)
    for target, headers, body, _fast in PUTS:
        statuses.add(call(fast, environ("PUT", target, headers | {"Authorization": f"Bearer {TOKEN}"}, True, body))[0])
    statuses.add(call(fast, environ("GET", "/cache/user:42", {}, True))[0])
    for status in ("200 OK", "304 Not Modified", "400 Bad Request", "401 Unauthorized", "404 Not Found"):
        assert status in statuses
    assert {"201 Created", "405 Method Not Allowed", "406 Not Acceptable", "409 Conflict"} <= statuses
    assert {"413 Content Too Large", "415 Unsupported Media Type"} <= statuses
    assert {"etag", "x-cache-tags", "x-cache-stale", "x-cache-fresh", "x-cache-ttl", "x-cache-type"} <= names


def test_if_none_match_of_the_current_etag_is_falcon_s_304() -> None:
    fast, falcon_app, _ = make(None)
    etag = dict(call(fast, environ("GET", "/cache/user:42", {}, True))[1])["etag"]
    answer = call(fast, environ("GET", "/cache/user:42", {"If-None-Match": etag}, True))
    assert answer[0] == "304 Not Modified" and answer[2] == b""
    assert answer == call(falcon_app, environ("GET", "/cache/user:42", {"If-None-Match": etag}, True))


def test_an_absolute_form_target_is_read_as_its_path() -> None:
    fast, falcon_app, _ = make(None)
    spy = fast.app = Spy(falcon_app)
    env = environ("GET", "/cache/user:42", {}, True)
    env["RAW_URI"] = "http://127.0.0.1:8080/cache/user:42"
    assert call(fast, dict(env)) == call(falcon_app, dict(env)) and spy.calls == 0


class CutShort(io.BytesIO):
    """A body the server cannot deliver: its read fails, as gunicorn's does
    for a body cut short."""

    def read(self, size: int | None = -1) -> bytes:
        raise ValueError("the client went away")


def test_a_body_that_cannot_be_read_gets_falcon_s_answer() -> None:
    (plain, _), (fast, _) = twins(None)
    spy = fast.app = Spy(fast.app)
    answers = []
    for app in (plain.app, fast):
        env = environ("PUT", "/cache/cut", JSON, True, b"[1,2]")
        env["wsgi.input"] = CutShort()
        answers.append(call(app, env))
    assert answers[0] == answers[1] and answers[0][0] == "400 Bad Request" and spy.calls == 1
    assert b"invalid_body" in answers[0][2]


def test_a_full_cache_s_refusal_is_the_same() -> None:
    apps = []
    for _ in range(2):
        settings = Settings(node_id="test-node", eviction_policy="noeviction", max_size=1)
        cache = build_cache(settings, FakeClock())
        apps.append((create_app(settings, cache=cache), cache))
    (plain, plain_cache), (fast, fast_cache) = apps
    fast.etag_of.__self__.epoch = plain.etag_of.__self__.epoch  # type: ignore[attr-defined]
    for target in ("/cache/one", "/cache/two", "/cache/one?ttl=5"):
        expected = call(plain.app, environ("PUT", target, JSON, True, b"1"))
        assert call(fast, environ("PUT", target, JSON, True, b"1")) == expected
        assert counters(fast_cache) == counters(plain_cache)
    assert expected[0] == "200 OK" and b"cache_full" in call(fast, environ("PUT", "/cache/two", {}, True, b"1"))[2]


def test_a_failure_of_the_server_s_own_is_falcon_s_500(monkeypatch: pytest.MonkeyPatch) -> None:
    (plain, plain_cache), (fast, fast_cache) = twins(None)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    for cache in (plain_cache, fast_cache):
        monkeypatch.setattr(cache, "get_entry", broken)
        monkeypatch.setattr(cache, "set", broken)
    spy = fast.app = Spy(fast.app)
    for method, body in (("GET", b""), ("PUT", b"1")):
        expected = call(plain.app, environ(method, "/cache/user:42", JSON, True, body))
        assert call(fast, environ(method, "/cache/user:42", JSON, True, body)) == expected
        assert expected[0] == "500 Internal Server Error" and b"internal_error" in expected[2]
    assert spy.calls == 0


@pytest.mark.parametrize("key", ["user:42", 'a"b\\c', "\x01tab\t", "ü€", "k" * 250])
@pytest.mark.parametrize("ttl", [None, 1, 999_999_999])
@pytest.mark.parametrize("created", [True, False])
def test_a_plain_puts_prepared_answer_is_what_encode_writes(key: str, ttl: int | None, created: bool) -> None:
    assert put_answer(key, ttl, created) == encode({"key": key, "ttl": ttl, "created": created})
