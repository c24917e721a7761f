"""What the commands share: the global options (``Globals``, parsed once by
the root callback in main.py), the client made from them, the one place
where the client's errors become an exit code, JSON input, and how data is
printed.

Output follows one rule: data goes to stdout, messages to stderr. On a
terminal data is rendered with rich (tables, highlighted JSON); when stdout
is not a terminal it is plain text (one item or ``name  value`` per line);
with ``--json`` it is one JSON document, compact, on one line.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import typer
from rich.table import Table
from rich.text import Text

from ..client import NotFound, RequestError, SyncCacheGridClient, TLSError, Unauthorized, Unavailable
from ..client.api import tls_verify
from ..client.protocol import base_url
from ..client.ring import RINGS
from .status import ExitCode, err, exit_code_for, fail, out

DEFAULT_URL = "http://127.0.0.1:8080"

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document (as the global --json).")]
TtlOption = Annotated[float | None, typer.Option(help="Expire after this many seconds.", show_default=False)]


@dataclass(frozen=True)
class Globals:
    """The global options, as given (checked when a command connects)."""

    urls: list[str]
    token: str | None
    timeout: float
    json: bool
    replicas: int = 1
    ring: str = "ketama"
    sharding: bool = True
    ca_file: str | None = None  # the CA bundle for https servers (None: the system's)


def options(ctx: typer.Context) -> Globals:
    found = ctx.find_object(Globals)
    assert found is not None, "the root callback sets ctx.obj"
    return found


def wants_json(ctx: typer.Context, flag: bool) -> bool:
    return flag or options(ctx).json


URL_FORMS = "give http://HOST:PORT, https://HOST:PORT or HOST:PORT"
# A host name's characters (RFC 1123 labels, and "_" that some resolvers
# allow); an IPv6 address comes in brackets and is checked by ipaddress.
HOST_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?")


def hosts(urls: Iterable[str]) -> list[str]:
    """The ``--url`` values, split at commas, as base URLs; a usage error
    (red line, exit 2) for one that is not an http(s) URL of a host: a bad
    scheme, a malformed host or port. The client would fail on them later
    with a traceback, or with "no server answered" as if one were down."""
    found = []
    for given in urls:
        for part in given.split(","):
            if not part.strip():
                continue
            try:
                url = base_url(part)
            except ValueError:  # a scheme the client does not speak
                raise fail(f"--url {part.strip()!r}: {URL_FORMS}", ExitCode.USAGE) from None
            problem = url_problem(url)
            if problem:
                raise fail(f"--url {part.strip()!r}: {problem}", ExitCode.USAGE)
            found.append(url)
    if not found:
        raise fail("--url: give at least one server", ExitCode.USAGE)
    return found


def url_problem(url: str) -> str | None:
    """Why ``url`` (a base URL) cannot name a server, or None when it can."""
    if any(character.isspace() or not character.isprintable() for character in url):
        return f"a URL has no spaces or control characters; {URL_FORMS}"
    try:
        parts = urlsplit(url)  # ValueError for unbalanced brackets or a bad address in them
    except ValueError as error:
        return f"{error}; {URL_FORMS}"
    if parts.scheme not in ("http", "https"):
        return URL_FORMS
    try:
        port = parts.port  # ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        port = 0
    if port == 0:
        return "the port is not a number from 1 to 65535"
    host = parts.hostname
    if not host:
        return URL_FORMS
    if ":" in host:  # only an IPv6 address (in brackets) has a colon in it
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"{host!r} is not an IPv6 address"
    elif not HOST_NAME.fullmatch(host):
        return f"{host!r} is not a host name or address; {URL_FORMS}"
    if parts.query or parts.fragment:
        return f"a server's URL has no ?query or #fragment; {URL_FORMS}"
    return None


def node_name(url: str) -> str:
    """A node as a person reads it: ``host:port`` (and the path of a node
    behind a prefix), without the scheme, which is the same for every node.
    Distinct base URLs keep distinct names unless they differ only in scheme."""
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2] + parts.path.rstrip("/") if parts.netloc else url


def check_key(key: str) -> str:
    if not key:
        raise fail("a key is a non-empty string", ExitCode.USAGE)
    return key


def checked(ctx: typer.Context) -> tuple[Globals, list[str]]:
    """The global options, checked (a usage error for a bad one), and the servers."""
    given = options(ctx)
    servers = hosts(given.urls)
    if not given.timeout > 0:
        raise fail(f"--timeout {given.timeout}: more than 0 seconds", ExitCode.USAGE)
    if given.token is not None and not (given.token.isascii() and given.token.isprintable()):
        # requests would fail on it with a traceback: a header is printable ASCII
        raise fail("--token: printable ASCII characters only", ExitCode.USAGE)
    if given.ca_file is not None:
        try:
            tls_verify(given.ca_file, True)
        except ValueError as error:
            raise fail(f"--ca-file: {error}", ExitCode.USAGE) from None
    if given.replicas < 1:
        raise fail(f"--replicas {given.replicas}: at least 1", ExitCode.USAGE)
    if given.ring not in RINGS:
        raise fail(f"--ring {given.ring!r}: one of {', '.join(RINGS)}", ExitCode.USAGE)
    return given, servers


def is_cluster(ctx: typer.Context) -> bool:
    """Whether the --url servers are a sharded cluster (several nodes, each
    holding its own keys), not one server or copies of one cache."""
    given = options(ctx)
    return given.sharding and len(hosts(given.urls)) > 1


@contextmanager
def connect(ctx: typer.Context, name_down: bool = True) -> Iterator[SyncCacheGridClient]:
    """A client for the global options; the client's errors inside the block
    end the command with one red line and their exit code. In a cluster, a
    node that failed meanwhile, whose keys the next nodes of the ring stood
    in for, is named on stderr (unless ``name_down`` is off: for a command
    that names it itself)."""
    given, servers = checked(ctx)
    # Several --url are a cluster (keys placed by the ring), or with
    # --no-sharding copies of one cache. Each host once and one more try:
    # failover without making a user wait through the SDK's longer retry plan.
    client = SyncCacheGridClient(
        servers,
        timeout=given.timeout,
        max_retries=len(servers),
        auth_token=given.token,
        replicas=given.replicas,
        ring=given.ring,
        sharding=given.sharding,
        ca_file=given.ca_file,
    )
    with client_errors(given, servers), client:
        yield client
        failed = [host for host in client.hosts if client.pool.back_at(host)] if name_down else []
        if failed and given.sharding and len(servers) > 1:
            down = unreachable(given, failed) or dict.fromkeys(failed, "it failed")
            note(f"note: {missing_words(down)}; the next node of the ring stood in for it")


def one_node(given: Globals, url: str) -> SyncCacheGridClient:
    """A client of ``url`` alone, with the global options."""
    return SyncCacheGridClient(
        [url], timeout=given.timeout, max_retries=1, auth_token=given.token, ca_file=given.ca_file
    )


def reason_of(error: Unavailable) -> str:
    """Why a node gave no answer, in a few words."""
    reasons = [short_reason(reason) for reason in error.errors.values()]
    return reasons[0] if reasons else short_reason(str(error))


def unreachable(given: Globals, nodes: Iterable[str]) -> dict[str, str]:
    """Which of ``nodes`` do not answer now, and why (their health is asked, all at once)."""
    asked = list(dict.fromkeys(nodes))
    if not asked:
        return {}
    down: dict[str, str] = {}

    def probe(url: str) -> None:
        try:
            with one_node(given, url) as client:
                client.health()
        except Unavailable as error:
            down[url] = reason_of(error)

    with ThreadPoolExecutor(len(asked)) as pool:
        list(pool.map(probe, asked))
    return {url: down[url] for url in asked if url in down}


def missing_words(down: dict[str, str]) -> str:
    """Nodes that did not answer and why, in the words of the single-server
    errors: ``127.0.0.1:8002 did not answer (connection refused)``."""
    reasons = set(down.values())
    if len(reasons) == 1:
        verb = "did" if len(down) == 1 else "do"
        return f"{names(down)} {verb} not answer ({next(iter(reasons))})"
    return "; ".join(f"{node_name(url)} did not answer ({reason})" for url, reason in down.items())


def names(urls: Iterable[str]) -> str:
    return ", ".join(node_name(url) for url in urls)


@contextmanager
def client_errors(given: Globals, servers: list[str]) -> Iterator[None]:
    """The client's errors inside the block as one red line and their exit code."""
    try:
        yield
    except Unauthorized as error:
        if given.token:
            raise fail(
                f"the server refused the token (--token / CACHEGRID_AUTH_TOKEN): {error.message}", ExitCode.UNAUTHORIZED
            ) from None
        raise fail(
            "the server needs a token: give --token or set CACHEGRID_AUTH_TOKEN", ExitCode.UNAUTHORIZED
        ) from None
    except NotFound as error:
        raise fail(error.message, ExitCode.NOT_FOUND) from None
    except RequestError as error:
        raise fail(f"{error.message} (HTTP {error.status} {error.code})", exit_code_for(error.status)) from None
    except Unavailable as error:
        raise unavailable(error, servers) from None
    except TLSError as error:
        raise fail(f"{error}", ExitCode.UNAVAILABLE) from None


def unavailable(error: Unavailable, servers: list[str]) -> typer.Exit:
    """SERVER_ERROR when every host answered with a 5xx, UNAVAILABLE otherwise."""
    reasons = {host: short_reason(reason) for host, reason in error.errors.items()}
    if len(set(reasons.values())) == 1:
        detail = next(iter(reasons.values()))
    else:
        detail = "; ".join(f"{host}: {reason}" for host, reason in reasons.items()) or str(error)
    if "may or may not" in str(error):  # a non-idempotent call (incr/decr) whose answer was lost
        return fail(f"no complete answer, the change may or may not have been applied ({detail})", ExitCode.UNAVAILABLE)
    if reasons and all(reason.startswith("HTTP 5") for reason in reasons.values()):
        return fail(f"the server failed at {', '.join(reasons)}: {detail}", ExitCode.SERVER_ERROR)
    return fail(f"no CacheGrid server answered at {', '.join(servers)}: {detail}", ExitCode.UNAVAILABLE)


def short_reason(reason: str) -> str:
    """The SDK's per-host error (``NotSent: <requests' long message>``) in a few words."""
    lowered = reason.lower()
    for needle, short in (
        ("connection refused", "connection refused"),
        ("timed out", "timed out"),
        ("timeout", "timed out"),
        ("name or service not known", "unknown host"),
        ("nameresolutionerror", "unknown host"),
        ("no route to host", "no route to host"),
    ):
        if needle in lowered:
            return short
    return reason if len(reason) <= 160 else reason[:157] + "..."


# -- input ---------------------------------------------------------------------------


def loads(text: str) -> Any:
    """``text`` as JSON; ValueError when it is not JSON (NaN and Infinity
    included, which Python's parser accepts and JSON does not)."""
    return json.loads(text, parse_constant=_not_json)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def read_stdin() -> str:
    return typer.get_text_stream("stdin").read()


def read_bytes(source: str) -> bytes:
    """The bytes of FILE (stdin for -): a binary value; a red line when unreadable."""
    try:
        if source == "-":
            return typer.get_binary_stream("stdin").read()
        return Path(source).read_bytes()
    except OSError as error:
        raise fail(f"cannot read {source}: {error.strerror or error}", ExitCode.USAGE) from None


def write_bytes(target: str, data: bytes) -> None:
    """``data`` to FILE (stdout for -), as they are."""
    try:
        if target == "-":
            stream = typer.get_binary_stream("stdout")
            stream.write(data)
            stream.flush()
        else:
            Path(target).write_bytes(data)
    except OSError as error:
        raise fail(f"cannot write {target}: {error.strerror or error}", ExitCode.USAGE) from None


def binary_summary(value: bytes) -> str:
    """What is printed for a binary value instead of its bytes."""
    return f"binary value, {len(value):,} byte{'' if len(value) == 1 else 's'}"


def split_binary(items: dict[str, Any]) -> dict[str, Any]:
    """Found values as a JSON document, the server's batch format: JSON ones
    under "items", binary ones base64 under "items_base64" (when there are any)."""
    document: dict[str, Any] = {"items": {key: value for key, value in items.items() if not isinstance(value, bytes)}}
    binary = {key: base64.b64encode(value).decode("ascii") for key, value in items.items() if isinstance(value, bytes)}
    if binary:
        document["items_base64"] = binary
    return document


# -- printing ------------------------------------------------------------------------


def dumps(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False)


def print_json(document: Any) -> None:
    """One compact JSON document on stdout (--json)."""
    print(dumps(document), flush=True)


def print_value(value: Any) -> None:
    """A stored value: highlighted and indented on a terminal, one line otherwise."""
    if out.is_terminal:
        out.print_json(dumps(value))
    else:
        print_json(value)


def print_fields(
    rows: list[tuple[str, str]], title: str | None = None, justify: Literal["left", "right"] = "left"
) -> None:
    """A two-column table on a terminal (values ``justify``-ed: right for
    numbers); aligned ``name  value`` lines otherwise."""
    if not out.is_terminal:
        width = max((len(name) for name, _ in rows), default=0)
        for name, value in rows:
            print(f"{name.ljust(width)}  {value}")
        return
    table = Table(title=title, show_header=False, title_justify="left", min_width=len(title or ""))
    table.add_column(style="bold")
    table.add_column(overflow="fold", justify=justify)
    for name, value in rows:
        table.add_row(Text(name), Text(value))  # Text: a "[...]" in a key is not markup
    out.print(table)


def rate_text(per_second: float | None) -> str:
    """A rate as printed: ``-`` before there is one."""
    return "-" if per_second is None else f"{per_second:,.1f}"


def field_text(value: Any) -> str:
    """A field of a server document as text: strings bare, the rest as JSON."""
    return value if isinstance(value, str) else dumps(value)


def note(message: str) -> None:
    """A message for the user (not data): on stderr."""
    err.print(Text(message), soft_wrap=True)


def key_outcome(ctx: typer.Context, as_json: bool, key: str, field: str, done: bool, verb: str) -> None:
    """How a write to one existing key ends (delete, mark-stale): ``{"key",
    field}`` with --json, then NOT_FOUND when there was no such key, else a
    note that it was ``verb``."""
    if wants_json(ctx, as_json):
        print_json({"key": key, field: done})
    if not done:
        raise fail(f"no key {key!r}", ExitCode.NOT_FOUND)
    note(f"{verb} {key!r}")
