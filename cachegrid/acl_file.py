"""The ACL file: scoped bearer tokens, read and checked (docs/acl.md).

A TOML file holds one ``[[tokens]]`` table per token::

    [[tokens]]
    name = "web"                     # shown in logs and metrics, never the token
    sha256 = "9f2c..."               # hex SHA-256 of the token; the token is never stored
    prefixes = ["web:", "session:"]  # the keys it may touch; left out: every key
    permissions = ["read", "write"]  # any of read, write, admin, metrics

This module only reads and checks such a file and makes new tokens; it knows
nothing of HTTP, so that ``cachegrid acl check`` and ``cachegrid acl token``
run without the daemon. The daemon's decisions are in daemon/acl.py.
Every problem is one line naming the token (by its name, or its position
when it has none) and what is wrong with it.
"""

from __future__ import annotations

import hashlib
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PERMISSIONS = ("read", "write", "admin", "metrics")
_FIELDS = frozenset({"name", "sha256", "prefixes", "permissions"})
_HEX = frozenset("0123456789abcdef")


class AclError(ValueError):
    """An ACL file that cannot be used; the message is one line."""


@dataclass(frozen=True)
class TokenEntry:
    """One token of the file: its name, the SHA-256 digest of the token (raw
    bytes), its prefixes (None: every key) and its permissions."""

    name: str
    digest: bytes
    prefixes: tuple[str, ...] | None
    permissions: frozenset[str]


def token_digest(token: str) -> bytes:
    """The SHA-256 digest of a presented token, as the file's ``sha256`` holds it (raw)."""
    return hashlib.sha256(token.encode()).digest()


def read_acl(path: str | Path) -> list[TokenEntry]:
    """The tokens of the file at ``path``; AclError with one line otherwise."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise AclError(f"cannot read the ACL file {str(path)!r}: {error}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise AclError(f"the ACL file {str(path)!r} is not TOML: {error}") from None
    return parse_acl(document, str(path))


def parse_acl(document: dict[str, Any], origin: str = "the ACL file") -> list[TokenEntry]:
    """The tokens of a parsed ACL document, checked."""
    unknown = sorted(set(document) - {"tokens"})
    if unknown:
        raise AclError(f"{origin}: unknown top-level key {unknown[0]!r}; tokens go in [[tokens]] tables")
    tables = document.get("tokens", [])
    if not isinstance(tables, list) or not all(isinstance(table, dict) for table in tables):
        raise AclError(f"{origin}: tokens must be [[tokens]] tables")
    entries: list[TokenEntry] = []
    names: set[str] = set()
    digests: set[bytes] = set()
    for number, table in enumerate(tables, 1):
        entry = _entry(table, number)
        if entry.name in names:
            raise AclError(f"{origin}: token {entry.name!r}: the name is used twice")
        if entry.digest in digests:
            raise AclError(f"{origin}: token {entry.name!r}: the same sha256 as an earlier token")
        names.add(entry.name)
        digests.add(entry.digest)
        entries.append(entry)
    return entries


def _entry(table: dict[str, Any], number: int) -> TokenEntry:
    name = table.get("name")
    label = f"token {name!r}" if isinstance(name, str) and name else f"token #{number}"
    unknown = sorted(set(table) - _FIELDS)
    if unknown:
        raise AclError(f"{label}: unknown field {unknown[0]!r}; known: name, sha256, prefixes, permissions")
    if not isinstance(name, str) or not name or not name.isprintable() or len(name) > 64:
        raise AclError(f"{label}: name must be a printable string of 1 to 64 characters")
    digest = table.get("sha256")
    if not isinstance(digest, str) or len(digest) != 64 or not set(digest.lower()) <= _HEX:
        raise AclError(f"{label}: sha256 must be the 64 hex digits of the token's SHA-256")
    prefixes = table.get("prefixes")
    if prefixes is not None:
        if not isinstance(prefixes, list) or not prefixes or not all(isinstance(p, str) and p for p in prefixes):
            raise AclError(f"{label}: prefixes must be a list of non-empty strings (leave it out for every key)")
        prefixes = tuple(dict.fromkeys(prefixes))
    permissions = table.get("permissions")
    if not isinstance(permissions, list) or not permissions or not all(isinstance(p, str) for p in permissions):
        raise AclError(f"{label}: permissions must be a non-empty list of {', '.join(PERMISSIONS)}")
    wrong = [p for p in permissions if p not in PERMISSIONS]
    if wrong:
        raise AclError(f"{label}: unknown permission {wrong[0]!r}; known: {', '.join(PERMISSIONS)}")
    return TokenEntry(name, bytes.fromhex(digest), prefixes, frozenset(permissions))


def new_token() -> str:
    """A new random token: 32 bytes from the OS's generator, URL-safe text."""
    return secrets.token_urlsafe(32)


def toml_entry(name: str, token: str, prefixes: list[str] | None, permissions: list[str]) -> str:
    """The ``[[tokens]]`` table of ``token`` (its hash only), checked as the server checks it."""

    def quoted(values: list[str]) -> str:
        return "[" + ", ".join(_toml_string(value) for value in values) + "]"

    lines = ["[[tokens]]", f"name = {_toml_string(name)}", f'sha256 = "{token_digest(token).hex()}"']
    if prefixes:
        lines.append(f"prefixes = {quoted(prefixes)}")
    lines.append(f"permissions = {quoted(permissions)}")
    text = "\n".join(lines) + "\n"
    parse_acl(tomllib.loads(text))  # the same rules as a file the server reads
    return text


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in escaped) + '"'
