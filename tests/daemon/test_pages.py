"""The pages a browser opens (/dashboard, /docs), the document they read
(/openapi.json) and the peek the key browser uses, through falcon's
TestClient over the real app. tests/browser opens the same pages in
Chromium."""

from __future__ import annotations

import fnmatch
import hashlib
import re
import tomllib
from pathlib import Path

import pytest
from falcon import testing
from openapi_spec_validator import validate

from cachegrid.daemon.dashboard import PAGE, STATIC_DIRECTORY

from .test_api import MakeClient, assert_error, put

PAGES = ("/dashboard", "/docs")
ASSET = re.compile(r'(?:src|href)="([^"]+)"')


def assets(page: str) -> list[str]:
    return ASSET.findall(page)


@pytest.mark.parametrize("token", [None, "s3cret"])
def test_the_document_is_valid_openapi_3_1_with_a_bearer_scheme(make_client: MakeClient, token: str | None) -> None:
    client, _ = make_client(auth_token=token)
    document = client.simulate_get("/openapi.json").json
    validate(document)  # raises on anything the OpenAPI 3.1 schema refuses
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert document["security"] == ([{"bearer": []}] if token else [])
    assert document["paths"]["/health"]["get"]["security"] == []
    peek = [p for p in document["paths"]["/cache/{key}"]["get"]["parameters"] if p["name"] == "peek"]
    assert peek and peek[0]["in"] == "query"


def test_pages_and_every_file_they_load_need_no_token(make_client: MakeClient) -> None:
    client, _ = make_client(auth_token="s3cret")
    for path in PAGES:
        page = client.simulate_get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), path
        files = assets(page.text)
        assert files, path
        for asset in files:
            if asset.startswith("data:") or asset == "/docs":
                continue
            assert asset.startswith("/"), f"{path} loads {asset} from elsewhere"
            assert client.simulate_get(asset).status_code == 200, asset
    assert client.simulate_get("/openapi.json").status_code == 200
    # The pages' own API calls do need it.
    assert_error(client.simulate_get("/stats"), 401, "unauthorized")
    assert client.simulate_get("/stats", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_the_dashboard_is_told_whether_a_token_is_needed(make_client: MakeClient) -> None:
    open_client, _ = make_client()
    guarded, _ = make_client(auth_token="s3cret")
    assert 'data-token-required="false"' in open_client.simulate_get("/dashboard").text
    page = guarded.simulate_get("/dashboard").text
    assert 'data-token-required="true"' in page
    assert "s3cret" not in page


def test_the_dashboard_is_told_what_the_token_may_do(make_client: MakeClient, tmp_path: Path) -> None:
    """``GET /dashboard?access=1``: the presented token's name, permissions
    and prefixes as the ACL decides them; 401 without a known token; every
    permission without an ACL (auth_token alone: for that token only)."""
    acl = tmp_path / "acl.toml"
    lines = []
    for name, token, extra in (
        ("ro", "t-ro", 'prefixes = ["app:", "web:"]\npermissions = ["read"]'),
        ("scraper", "t-scraper", 'permissions = ["metrics"]'),
    ):
        digest = hashlib.sha256(token.encode()).hexdigest()
        lines.append(f'[[tokens]]\nname = "{name}"\nsha256 = "{digest}"\n{extra}\n')
    acl.write_text("\n".join(lines))
    client, _ = make_client(acl_file=str(acl), auth_token="master")

    def access(token: str | None) -> testing.Result:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return client.simulate_get("/dashboard", params={"access": "1"}, headers=headers)

    assert access("t-ro").json == {"token": "ro", "permissions": ["read"], "prefixes": ["app:", "web:"]}
    assert access("t-scraper").json == {"token": "scraper", "permissions": ["metrics"], "prefixes": None}
    everything = ["read", "write", "admin", "metrics"]
    assert access("master").json == {"token": "auth_token", "permissions": everything, "prefixes": None}
    for refused in (None, "t-wrong"):
        answer = access(refused)
        assert_error(answer, 401, "unauthorized")
        assert "t-ro" not in answer.text and "master" not in answer.text
    assert access("t-ro").headers["cache-control"] == "no-store"
    assert client.simulate_get("/dashboard").headers["content-type"].startswith("text/html")  # the page as before

    guarded, _ = make_client(auth_token="s3cret")
    assert (
        guarded.simulate_get("/dashboard", params={"access": "1"}, headers={"Authorization": "Bearer s3cret"}).json[
            "permissions"
        ]
        == everything
    )
    assert_error(guarded.simulate_get("/dashboard", params={"access": "1"}), 401, "unauthorized")
    open_client, _ = make_client()
    assert open_client.simulate_get("/dashboard", params={"access": "1"}).json == {
        "token": None,
        "permissions": everything,
        "prefixes": None,
    }


def test_the_pages_name_no_other_host(make_client: MakeClient) -> None:
    client, _ = make_client()
    for path in ("/dashboard", "/docs", "/static/dashboard.js", "/static/dashboard.css", "/static/docs.js"):
        text = client.simulate_get(path).text
        assert not re.search(r"https?://", text), path


def test_stats_name_the_worker_and_none_in_process(client: testing.TestClient) -> None:
    assert client.simulate_get("/stats").json["worker"] is None


# -- GET /cache/{key}?peek=true -----------------------------------------------------


def _counts(client: testing.TestClient) -> tuple[int, int]:
    stats = client.simulate_get("/stats").json
    return stats["hits"], stats["misses"]


def test_a_peek_answers_like_get_and_counts_no_hit_or_miss(client: testing.TestClient) -> None:
    put(client, "user:42", {"name": "Alice"}, query_string="ttl=60")
    got = client.simulate_get("/cache/user:42")
    before = _counts(client)
    peeked = client.simulate_get("/cache/user:42", query_string="peek=true")
    assert peeked.status_code == 200 and peeked.json == {"name": "Alice"}
    assert peeked.headers["etag"] == got.headers["etag"]
    assert float(peeked.headers["x-cache-ttl"]) == pytest.approx(60)
    assert client.simulate_head("/cache/user:42", query_string="peek=1").status_code == 200
    assert_error(client.simulate_get("/cache/absent", query_string="peek=true"), 404, "not_found")
    assert _counts(client) == before
    client.simulate_get("/cache/user:42", query_string="peek=false")  # not a peek: a hit
    assert _counts(client) == (before[0] + 1, before[1])


def test_a_peek_with_a_bad_value_is_400(client: testing.TestClient) -> None:
    put(client, "k", 1)
    body = assert_error(client.simulate_get("/cache/k", query_string="peek=yes"), 400, "invalid_parameter")
    assert "peek" in body["message"]


@pytest.mark.parametrize("read", ["peek=true", ""])
def test_a_peek_leaves_the_key_where_it_was_in_the_eviction_order(make_client: MakeClient, read: str) -> None:
    client, _ = make_client(max_size=2, eviction_policy="lru")
    put(client, "a", 1)
    put(client, "b", 2)
    client.simulate_get("/cache/a", query_string=read)  # a plain read makes a the most recent
    put(client, "c", 3)  # LRU evicts the least recent
    evicted = "a" if read else "b"
    assert client.simulate_get(f"/cache/{evicted}", query_string="peek=true").status_code == 404
    kept = "b" if read else "a"
    assert client.simulate_get(f"/cache/{kept}", query_string="peek=true").status_code == 200


def test_every_file_of_the_pages_is_declared_package_data() -> None:
    """`pip install .` (not only an editable install) carries every file the
    pages load: pyproject.toml's package-data globs cover static/."""
    root = Path(__file__).resolve().parents[2]
    package_data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    globs = package_data["cachegrid.daemon"]
    package = PAGE.parent
    files = [PAGE.name, *(path.relative_to(package).as_posix() for path in Path(STATIC_DIRECTORY).iterdir())]
    assert len(files) > 1
    for name in files:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in globs), f"{name} is not package data"
