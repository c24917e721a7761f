"""What the framework backends share (cachegrid/contrib/common.py): keys
the server would refuse as too long, which values are stored as JSON and
which as bytes, the patterns of key prefixes, the client's options."""

from __future__ import annotations

import hashlib
import pickle

import pytest

from cachegrid.contrib.common import (
    INT64_MAX,
    INT64_MIN,
    MAX_TTL,
    check_key_length,
    from_server,
    make_client,
    prefix_pattern,
    server_key,
    server_ttl,
    split_hosts,
    to_server,
)
from cachegrid.engine.scan import key_matcher


def test_a_key_that_fits_is_itself() -> None:
    assert server_key("a" * 250) == "a" * 250
    assert server_key("ключ") == "ключ"


def test_a_long_key_is_its_start_and_a_hash_exactly_as_long_as_the_limit() -> None:
    key = ":1:" + "a" * 300
    stored = server_key(key)
    assert len(stored.encode()) == 250
    assert stored.startswith(":1:aaaa")
    assert stored.endswith("#" + hashlib.sha256(key.encode()).hexdigest())


def test_long_keys_that_share_their_start_stay_distinct() -> None:
    assert server_key("a" * 300 + "1") != server_key("a" * 300 + "2")


def test_a_long_key_is_never_cut_inside_a_character() -> None:
    for length in range(180, 200):
        key = "x" * length + "清" * 40
        stored = server_key(key)
        assert len(stored.encode("utf-8")) <= 250
        assert stored.split("#")[0] == key[: len(stored.split("#")[0])]


def test_a_smaller_limit_is_kept_and_one_without_room_for_the_hash_is_refused() -> None:
    assert len(server_key("k" * 100, 80)) == 80
    assert check_key_length(66) == 66
    for wrong in (65, 0, True, "250"):
        with pytest.raises(ValueError, match="max_key_length"):
            check_key_length(wrong)  # type: ignore[arg-type]


def test_counters_are_stored_as_json_and_everything_else_serialized() -> None:
    for number in (0, -7, INT64_MIN, INT64_MAX):
        assert to_server(number, pickle.dumps) == number
    for value in (True, False, INT64_MAX + 1, INT64_MIN - 1, 1.5, "text", None, b"raw", {"a": 1}):
        stored = to_server(value, pickle.dumps)
        assert isinstance(stored, bytes) and pickle.loads(stored) == value


def test_a_serializer_that_gives_no_bytes_is_an_error() -> None:
    with pytest.raises(TypeError, match="not bytes"):
        to_server("x", lambda value: None)


def test_bytes_are_deserialized_and_json_values_come_back_as_they_are() -> None:
    assert from_server(pickle.dumps({"a": [1]}), pickle.loads) == {"a": [1]}
    assert from_server(42, pickle.loads) == 42
    assert from_server("written as JSON", pickle.loads) == "written as JSON"


def test_ttls_are_capped_at_the_longest_the_server_takes() -> None:
    assert server_ttl(3600) == 3600 and isinstance(server_ttl(3600.0), int)
    assert server_ttl(0.25) == 0.25
    assert server_ttl(10**12) == MAX_TTL


@pytest.mark.parametrize("prefix", ["app:", "a*b:", "x?y[z]:"])
def test_a_prefix_pattern_matches_exactly_the_keys_with_that_prefix(prefix: str) -> None:
    matches = key_matcher(prefix_pattern(prefix))
    assert matches(prefix + "key") and matches(prefix)
    assert not matches("other:" + prefix + "key")
    assert not matches(prefix.replace(":", "-") + "key")


def test_hosts_are_one_string_separated_by_commas_or_semicolons_or_a_list() -> None:
    assert split_hosts("http://a:1") == ["http://a:1"]
    assert split_hosts("a:1, b:2;c:3") == ["a:1", "b:2", "c:3"]
    assert split_hosts(["a:1", "b:2"]) == ["a:1", "b:2"]
    with pytest.raises(ValueError, match="no CacheGrid host"):
        split_hosts(" ;, ")


def test_client_options_token_is_the_auth_token() -> None:
    client = make_client("a:1", {"token": "secret", "timeout": 1.5, "replicas": 2})
    assert client.auth_token == "secret" and client.timeout == 1.5
    with pytest.raises(ValueError, match="two names"):
        make_client("a:1", {"token": "one", "auth_token": "other"})


def test_an_unknown_client_option_is_named() -> None:
    with pytest.raises(TypeError, match="unknown CacheGrid option.*: tokn .*known: .*token"):
        make_client("a:1", {"tokn": "x"})


def test_the_backends_limits_are_the_servers() -> None:
    # contrib speaks only the HTTP contract (it cannot import the engine), so
    # its copies of the server's limits are held to the engine's here.
    from cachegrid import engine

    assert (INT64_MIN, INT64_MAX, MAX_TTL) == (engine.INT64_MIN, engine.INT64_MAX, engine.MAX_TTL)


def test_the_tls_options_reach_the_client_of_every_backend() -> None:
    """``ca_file`` and ``verify`` pass through to the client (Django's
    OPTIONS, Flask's CACHE_OPTIONS and CACHE_CACHEGRID_CA_FILE, dogpile's
    arguments all go through make_client)."""
    pytest.importorskip("dogpile.cache")
    from cachegrid.contrib.dogpile import CacheGridBackend

    assert make_client("https://127.0.0.1:1", {"ca_file": __file__}).verify == __file__
    assert make_client("https://127.0.0.1:1", {"verify": False}).verify is False
    assert make_client("https://127.0.0.1:1", {}).verify is True
    backend = CacheGridBackend({"hosts": ["https://127.0.0.1:1"], "ca_file": __file__})
    assert backend.client.verify == __file__
    with pytest.raises(ValueError, match="no readable file"):
        make_client("https://127.0.0.1:1", {"ca_file": "/nonexistent/ca.pem"})
