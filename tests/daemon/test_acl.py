"""The ACL file and its decisions, in process (cachegrid/acl_file.py,
cachegrid/daemon/acl.py, ``cachegrid acl``); tests/integration/test_acl.py
drives a real server."""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cachegrid.acl_file import AclError, parse_acl, read_acl, toml_entry
from cachegrid.cli.main import app as cli
from cachegrid.config import Settings
from cachegrid.daemon import acl as acl_module
from cachegrid.daemon.acl import RULES, Acl
from cachegrid.daemon.openapi import build_document


def entry(name: str = "web", token: str = "t", **fields: object) -> str:
    lines = ["[[tokens]]", f'name = "{name}"', f'sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"']
    fields.setdefault("permissions", ["read"])
    lines += [f"{key} = {value!r}".replace("'", '"') for key, value in fields.items()]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[tokens]]\nsha256 = 'x'\n", "token #1: name must be"),
        (entry(permissions=["fly"]), "token 'web': unknown permission 'fly'"),
        (entry(permissions=[]), "token 'web': permissions must be"),
        (entry(prefixes=[]), "token 'web': prefixes must be"),
        (entry(prefixes=[""]), "token 'web': prefixes must be"),
        (entry(colour="red"), "token 'web': unknown field 'colour'"),
        ('[[tokens]]\nname = "web"\nsha256 = "abc"\npermissions = ["read"]\n', "token 'web': sha256 must be"),
        (entry() + entry(token="u"), "token 'web': the name is used twice"),
        (entry() + entry(name="other"), "token 'other': the same sha256"),
        ("users = 1\n", "unknown top-level key 'users'"),
        ("tokens = 1\n", "tokens must be [[tokens]] tables"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_token(text: str, message: str) -> None:
    with pytest.raises(AclError) as raised:
        parse_acl(tomllib.loads(text))
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_file_that_is_not_toml_or_missing(tmp_path: Path) -> None:
    path = tmp_path / "acl.toml"
    path.write_text("[[tokens]\n")
    with pytest.raises(AclError, match="is not TOML"):
        read_acl(path)
    with pytest.raises(AclError, match="cannot read"):
        read_acl(tmp_path / "none.toml")


def test_identify_finds_each_token_and_auth_token_too(tmp_path: Path) -> None:
    path = tmp_path / "acl.toml"
    path.write_text(entry("a", "ta", prefixes=["a:"], permissions=["read", "write"]) + entry("b", "tb"))
    acl = Acl(path, "master")
    assert acl.identify("Bearer ta").name == "a"  # type: ignore[union-attr]
    assert acl.identify("Bearer tb").name == "b"  # type: ignore[union-attr]
    everything = acl.identify("Bearer master")
    assert everything is not None and everything.name == "auth_token" and everything.prefixes is None
    assert everything.permissions == {"read", "write", "admin", "metrics"}
    for wrong in ("Bearer tc", "bearer ta", "ta", "", None, "Bearer "):
        assert acl.identify(wrong) is None
    grant = acl.identify("Bearer ta")
    assert grant is not None and grant.allows("write", "a:1") and not grant.allows("write", "b:1")
    assert not grant.allows("admin")


def test_a_token_is_found_by_its_digest_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One SHA-256 and one lookup by the digest, whichever entry matches (the
    first, the last, none): the token itself is compared with nothing."""
    path = tmp_path / "acl.toml"
    path.write_text("".join(entry(f"n{i}", f"t{i}") for i in range(10)))
    acl = Acl(path)
    assert set(acl.table) == {hashlib.sha256(f"t{i}".encode()).digest() for i in range(10)}
    hashed: list[str] = []
    real = acl_module.token_digest

    def counting(token: str) -> bytes:
        hashed.append(token)
        return real(token)

    monkeypatch.setattr(acl_module, "token_digest", counting)
    found = [acl.identify(f"Bearer {token}") for token in ("t0", "t9", "unknown")]
    assert [grant.name if grant else None for grant in found] == ["n0", "n9", None]
    assert hashed == ["t0", "t9", "unknown"]


def test_a_change_is_read_and_a_broken_file_keeps_the_last_good_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "acl.toml"
    path.write_text(entry("a", "ta"))
    acl = Acl(path)
    path.write_text(entry("a", "ta") + entry("b", "tb"))
    os.utime(path, ns=(1, 1))
    assert acl.identify("Bearer tb") is None  # looked at at most once a second
    monkeypatch.setattr(acl, "next_check", 0.0)
    assert acl.identify("Bearer tb") is not None
    path.write_text(entry("a", "ta", permissions=["nope"]))
    monkeypatch.setattr(acl, "next_check", 0.0)
    with caplog.at_level(logging.ERROR, "cachegrid.daemon.acl"):
        assert acl.identify("Bearer tb") is not None
    assert "unknown permission 'nope'" in caplog.text and len(caplog.records) == 1


def test_every_documented_route_has_a_rule() -> None:
    """A route added to the app (and so to the document: test_openapi_fuzz)
    without a rule in acl.RULES fails here; without one it needs admin."""
    document = build_document(Settings(node_id="n"))
    open_paths = {"/health"}
    missing = [
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method in operations
        if path not in open_paths and method.upper() not in RULES.get(path, {})
    ]
    assert missing == []


def test_acl_token_prints_a_token_once_and_an_entry_that_checks(tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(
        cli, ["acl", "token", "web", "--prefix", "web:", "--permission", "read", "--permission", "write"]
    )
    assert done.exit_code == 0, done.output
    first, _, table = done.output.partition("\n")
    token = first.rsplit(" ", 1)[1]
    assert token not in table and hashlib.sha256(token.encode()).hexdigest() in table
    path = tmp_path / "acl.toml"
    path.write_text(table)
    checked = runner.invoke(cli, ["acl", "check", str(path)])
    assert checked.exit_code == 0 and "web: read, write on web:" in checked.output
    path.write_text(table.replace("read", "reed"))
    refused = runner.invoke(cli, ["acl", "check", str(path)])
    assert refused.exit_code == 3 and "unknown permission 'reed'" in refused.output
    assert runner.invoke(cli, ["acl", "token", "x", "--permission", "fly"]).exit_code == 2


def test_toml_entry_escapes_what_it_quotes() -> None:
    text = toml_entry('we"b', "tok", ["a\\b", "c\n"], ["read"])
    (parsed,) = parse_acl(tomllib.loads(text))
    assert parsed.name == 'we"b' and parsed.prefixes == ("a\\b", "c\n")


def test_the_per_token_counters_lose_no_update_under_threads(tmp_path: Path) -> None:
    """Many threads counting the same token's requests and denials the way
    the middleware and the fast path do (``counters[i] += 1``), with the
    interpreter switching threads as often as it can: the totals in
    /metrics are exact, and carry over a reload of the file."""
    path = tmp_path / "acl.toml"
    path.write_text(entry("web", "secret"))
    acl = Acl(path)
    grant = acl.identify("Bearer secret")
    assert grant is not None
    threads, rounds = 8, 20_000

    def count() -> None:
        for _ in range(rounds):
            grant.counters[0] += 1
            grant.counters[1] += 1

    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        workers = [threading.Thread(target=count) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(switching)
    assert acl.counters["web"].totals() == (threads * rounds, threads * rounds)
    path.write_text(entry("web", "secret", permissions=["read", "write"]))
    acl.seen = None  # as if the file's time had changed
    acl.reload_if_changed()
    again = acl.identify("Bearer secret")
    assert again is not None and again is not grant
    again.counters[0] += 1
    metrics = {metric.name: metric.samples for metric in acl_module.AclCollector(acl).collect()}
    assert [sample.value for sample in metrics["cachegrid_acl_requests"]] == [threads * rounds + 1]
    assert [sample.value for sample in metrics["cachegrid_acl_denials"]] == [threads * rounds]
