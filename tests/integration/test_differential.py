"""The same bytes to both workers and to reference parsers: a differential test.

Every case of the malformed-request table (test_worker_hardening.MALFORMED)
and of the well-formed edge cases below goes, unchanged, to the default
worker (CacheGrid's meinheld build), to the gthread worker, and in process
to h11, to llhttp (through httptools, where installed) and to gunicorn's own
parser. The workers must give the answer the table names, both the same;
where a reference reads a case otherwise than we do, the difference is
listed in ``INTENDED`` with its reason, and a listed difference that no
longer holds fails too, so the list stays true.

Then a seeded random run: requests of both tables mutated byte-wise (bounded
in count and time), each sent to the default worker; it fails on any mutant
that every reference refuses and the worker serves. The same mutants go to
both workers too, which must answer each alike (status and error name). docs/http-parsing.md
holds the table this module prints when run as a script
(``python -m tests.integration.test_differential``).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import h11
import pytest
from gunicorn.config import Config
from gunicorn.http.parser import RequestParser

from cachegrid.daemon.workers import meinheld_problem
from cachegrid.testing import ServerProcess as Server
from cachegrid.testing import running

from .test_worker_hardening import MALFORMED, PUT_SMUGGLED, send_raw

try:
    import httptools
except ImportError:  # an optional reference: the dev extra installs it
    httptools = None

# Well-formed edge cases: every worker serves them (the status named).
ACCEPTED = {
    "a plain GET": (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", 200),
    "an HTTP/1.0 GET": (b"GET /health HTTP/1.0\r\n\r\n", 200),
    "an empty line before the request line": (b"\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n", 200),
    "a length with leading zeros": (
        b'PUT /cache/edge HTTP/1.1\r\nHost: x\r\nContent-Length: 003\r\nContent-Type: application/json\r\n\r\n"a"',
        201,
    ),
    "whitespace around a length": (
        b'PUT /cache/edge HTTP/1.1\r\nHost: x\r\nContent-Length: \t3 \r\nContent-Type: application/json\r\n\r\n"a"',
        201,
    ),
    "a chunked body": (
        b"PUT /cache/edge HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
        b'1\r\n"\r\n2\r\na"\r\n0\r\n\r\n',
        201,
    ),
    "whitespace after chunked": (
        b"PUT /cache/edge HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked \r\nContent-Type: application/json\r\n\r\n"
        b'3\r\n"a"\r\n0\r\n\r\n',
        201,
    ),
    "chunked in capitals": (
        b"PUT /cache/edge HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: CHUNKED\r\nContent-Type: application/json\r\n\r\n"
        b'3\r\n"a"\r\n0\r\n\r\n',
        201,
    ),
    "a chunk extension": (
        b"PUT /cache/edge HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
        b'3;name=value\r\n"a"\r\n0\r\n\r\n',
        201,
    ),
    "a trailer": (
        b"PUT /cache/edge HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
        b'3\r\n"a"\r\n0\r\nX-Trailer: 1\r\n\r\n',
        201,
    ),
    "a quoted chunk extension": (
        b"PUT /cache/edge HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
        b'3;a="x:y;\\"z"\r\n"a"\r\n0\r\n\r\n',
        201,
    ),
    "whitespace around a chunk extension's equals sign": (
        b"PUT /cache/edge HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
        b'3;a = b\r\n"a"\r\n0\r\n\r\n',
        201,
    ),
    "a hexadecimal chunk size in capitals": (
        b"PUT /cache/edge HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
        b'0000A\r\n"abcdefgh"\r\n0\r\n\r\n',
        201,
    ),
    "obs-text in a header value": (b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: caf\xe9\r\n\r\n", 200),
    "a tab inside a header value": (b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\tb\r\n\r\n", 200),
    "an empty header value": (b"GET /health HTTP/1.1\r\nHost: x\r\nX-A:\r\n\r\n", 200),
    "a comma inside Host": (b"GET /health HTTP/1.1\r\nHost: a,b\r\n\r\n", 200),
    "a GET with a chunked body": (
        b"GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        200,
    ),
    "a write inside the chunked body of a GET": (
        b"GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(PUT_SMUGGLED), PUT_SMUGGLED),
        200,
    ),
    "two pipelined writes": (PUT_SMUGGLED.replace(b"smuggled", b"edge") * 2, 201),
}

# Where a reference reads a case otherwise than CacheGrid: case -> reference -> why.
LIMITS = "our limits on a head (8 KiB target, 100 fields, 8 KiB a field) are gunicorn's; the reference has none here"
LLHTTP_SPACES = "llhttp (as httptools builds it) is lenient about spaces in the request line; h11 and gunicorn refuse"
H11_CTL = "h11 allows control characters in a value; RFC 9110 section 5.5 does not, nor do llhttp and gunicorn"
H11_LF = "h11 takes a bare LF for a line end; RFC 9112 section 2.2 lets a server refuse it, as llhttp and gunicorn do"
SINGLE_VALUE = (
    "the reference joins a repeated field; RFC 9110 section 5.3 makes two of a single-value field an error,"
    " and the media type decides how a value is stored: refused, as gunicorn does"
)
ANY_METHOD = (
    "the reference takes any token for a method; meinheld's parser knows a fixed list (llhttp's is close to it),"
    " and a method read otherwise by a proxy in front is a smuggling sign: 400"
)
UNNAMED_METHOD = (
    "a method meinheld's parser reads but served as GET (patch 0029); we serve only the methods it names: 400"
)
H11_EXT = "h11 skips chunk extensions unread; llhttp and gunicorn refuse one out of RFC 9112's grammar (7.1.1)"
INTENDED: dict[str, dict[str, str]] = {
    "a transfer coding before chunked": {
        "gunicorn": "gunicorn hands the application a body still gzip-coded; we serve chunked alone (501)",
        "llhttp": "llhttp decodes the chunks and leaves the gzip coding on; we serve chunked alone (501)",
    },
    "chunked and a length": {"h11": "h11 lets chunked win (RFC 9112 6.3 allows it); we refuse it as a smuggling sign"},
    "a length and chunked": {"h11": "h11 lets chunked win (RFC 9112 6.3 allows it); we refuse it as a smuggling sign"},
    "two equal lengths": {"h11": "h11 folds equal duplicates into one (RFC 9110 allows it); we refuse any repeat"},
    "a list of lengths": {"h11": "h11 folds a list of equal lengths into one (RFC 9110 allows it); we refuse it"},
    "an obs-fold continuation line": {"h11": "h11 unfolds obs-fold; RFC 9112 section 5.2 lets a server refuse it"},
    "a control character inside a header value": {"h11": H11_CTL},
    "a DEL inside a header value": {"h11": H11_CTL},
    "bare LF line ends": {"h11": H11_LF},
    "a bare LF inside the headers": {"h11": H11_LF},
    "a method with a wrong third letter": {"h11": ANY_METHOD, "gunicorn": ANY_METHOD},
    "an unknown method": {"h11": ANY_METHOD, "gunicorn": ANY_METHOD},
    "a method meinheld read as GET": {
        "h11": UNNAMED_METHOD,
        "gunicorn": UNNAMED_METHOD,
        "llhttp": UNNAMED_METHOD,
    },
    "two spaces after the method": {"llhttp": LLHTTP_SPACES},
    "two spaces before the version": {"llhttp": LLHTTP_SPACES},
    "no version": {"llhttp": "llhttp serves HTTP/0.9 request lines; h11 and gunicorn refuse them, and so do we"},
    "HTTP/1.0 with chunked": {
        "h11": "h11 reads chunked under HTTP/1.0; RFC 9112 section 6.1 asks to treat it as faulty and close",
        "llhttp": "llhttp reads chunked under HTTP/1.0; RFC 9112 section 6.1 asks to treat it as faulty and close",
    },
    "HTTP/1.2": {
        "h11": "h11 serves any 1.x; we answer only 1.0 and 1.1 (505), as llhttp does",
        "gunicorn": "gunicorn serves any 1.x; we answer only 1.0 and 1.1 (505), as llhttp does",
    },
    "HTTP/2.0": {
        "h11": "h11 parses the request line of any version; we answer 505",
        "llhttp": "llhttp parses an HTTP/2.0 request line as HTTP/1; we answer 505",
    },
    "HTTP/0.9": {
        "h11": "h11 parses the request line of any version; we answer 505",
        "llhttp": "llhttp takes HTTP/0.9; we answer 505",
    },
    "a NUL inside a chunk extension": {"h11": "h11 skips chunk extensions unread; llhttp and gunicorn refuse a NUL"},
    "a colon inside a chunk extension": {"h11": H11_EXT},
    "a space inside a chunk extension's value": {"h11": H11_EXT},
    "whitespace at the end of a chunk extension": {"h11": H11_EXT},
    "whitespace around a chunk extension's equals sign": {
        "llhttp": "llhttp refuses the whitespace RFC 9112 (7.1.1) allows around ';' and '=', which gunicorn reads",
    },
    "a bare LF inside the trailers": {"h11": H11_LF},
    "two Host headers": {"llhttp": "llhttp leaves Host to the application; RFC 9112 section 3.2 asks for 400"},
    "two Content-Type headers": {
        "h11": SINGLE_VALUE,
        "llhttp": SINGLE_VALUE,
    },
    "a 100 KB header": {"h11": LIMITS, "llhttp": LIMITS},
    "10,000 headers": {"h11": LIMITS, "llhttp": LIMITS},
    "a 20 KB request target": {"h11": LIMITS, "llhttp": LIMITS},
    "an empty line before the request line": {
        "h11": "h11 refuses it; RFC 9112 section 2.2 asks a server to ignore at least one empty line there",
    },
    "no Host header": {
        "gunicorn": "gunicorn leaves Host to the application; RFC 9112 section 3.2 asks for 400",
        "llhttp": "llhttp leaves Host to the application; RFC 9112 section 3.2 asks for 400",
    },
    "a write pipelined behind a request without Host": {
        "gunicorn": "gunicorn serves HTTP/1.1 without Host; RFC 9112 section 3.2 asks for 400",
        "llhttp": "llhttp serves HTTP/1.1 without Host; RFC 9112 section 3.2 asks for 400",
    },
}


# -- the references, in process --------------------------------------------------


def h11_accepts(raw: bytes) -> bool:
    """Whether h11 reads a complete first request from ``raw`` (then EOF)."""
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(raw)
    closed = False
    try:
        while True:
            event = connection.next_event()
            if isinstance(event, h11.EndOfMessage):
                return True
            if event is h11.NEED_DATA:
                if closed:
                    return False
                connection.receive_data(b"")
                closed = True
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return False
    except h11.RemoteProtocolError:
        return False


class _Complete:
    """httptools' callbacks: whether one request was complete."""

    def __init__(self) -> None:
        self.done = False

    def on_message_complete(self) -> None:
        self.done = True


def llhttp_accepts(raw: bytes) -> bool:
    """Whether llhttp (httptools) reads a complete first request from ``raw``."""
    assert httptools is not None
    protocol = _Complete()
    parser = httptools.HttpRequestParser(protocol)
    try:
        parser.feed_data(raw)
    except httptools.HttpParserUpgrade:
        pass
    except httptools.HttpParserError:
        pass
    return protocol.done


def gunicorn_accepts(raw: bytes) -> bool:
    """Whether gunicorn's parser reads a complete first request from ``raw``."""
    parser = RequestParser(Config(), iter([raw]), ("127.0.0.1", 0))
    try:
        request = next(parser)
        reader = request.body.reader
        length = reader.length if reader.__class__.__name__ == "LengthReader" else None
        size = 0
        while data := request.body.read(65536):
            size += len(data)
        if length is not None and size < length:
            return False  # the body ended before its length
    except Exception:  # each of gunicorn's parse errors is its own class
        return False
    return True


REFERENCES: dict[str, Callable[[bytes], bool]] = {"h11": h11_accepts, "gunicorn": gunicorn_accepts}
if httptools is not None:
    REFERENCES["llhttp"] = llhttp_accepts

CASES: dict[str, tuple[bytes, int]] = {**MALFORMED, **ACCEPTED}


# -- the workers --------------------------------------------------------------------


def answer_of(server: Server, raw: bytes) -> tuple[int | None, str | None]:
    """The status and JSON error name of the first answer to ``raw`` (None, None: no answer)."""
    answer = send_raw(server, raw)
    if not answer.startswith(b"HTTP/"):
        return None, None
    status = int(answer.split(b" ", 2)[1])
    head, _, body = answer.partition(b"\r\n\r\n")
    try:
        error = json.loads(body[: int(_header(head, b"content-length") or len(body))]).get("error")
    except (ValueError, AttributeError):
        error = None
    return status, error


def _header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


@pytest.fixture(scope="module")
def workers() -> Iterator[dict[str, Server]]:
    """Both workers (the default first), or gthread alone where our meinheld build is not usable."""
    kinds = ["gthread"] if meinheld_problem() else ["meinheld", "gthread"]
    with ExitStack() as stack:
        yield {kind: stack.enter_context(running("--worker", kind, graceful=False)) for kind in kinds}


def test_every_listed_difference_is_real_and_every_other_verdict_agrees() -> None:
    for name, (raw, status) in CASES.items():
        for reference, accepts in REFERENCES.items():
            ours = status < 400
            reason = INTENDED.get(name, {}).get(reference)
            if reason is None:
                assert accepts(raw) == ours, f"{reference} {'accepts' if not ours else 'refuses'} {name!r}"
            else:
                assert accepts(raw) != ours, f"{name!r}: {reference} now agrees with us; drop: {reason}"


@pytest.mark.parametrize("case", list(CASES))
def test_both_workers_give_each_case_its_answer(workers: dict[str, Server], case: str) -> None:
    raw, expected = CASES[case]
    answers = {}
    for kind, server in workers.items():
        server.request("DELETE", "/cache/smuggled")
        server.request("DELETE", "/cache/edge")  # a new item each time: 201
        answers[kind] = answer_of(server, raw)
        assert server.request("GET", "/cache/smuggled")[0] == 404, f"{kind} stored a smuggled write"
    assert {status for status, _ in answers.values()} == {expected}, answers
    # The same error by name too: a client reads one answer whichever worker runs.
    assert len(set(answers.values())) == 1, f"the workers name the error differently: {answers}"


def mutants(seed: int, count: int) -> Iterator[bytes]:
    """``count`` byte-wise mutations of the tables' requests, from ``seed``."""
    rng = random.Random(seed)
    bases = [raw for raw, _ in CASES.values() if len(raw) < 4096]
    alphabet = [b"\r", b"\n", b"\r\n", b"\x00", b" ", b"\t", b":", b",", b";", b"0", b"9", b"f", b"-", b"\x7f", b"\xff"]
    words = [b"chunked", b"Content-Length: 3\r\n", b"Transfer-Encoding: chunked\r\n", b"HTTP/1.1", b"\r\n\r\n"]
    for _ in range(count):
        raw = bytearray(rng.choice(bases))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(raw) + 1)
            operation = rng.randrange(4)
            if operation == 0:
                raw[at:at] = rng.choice(alphabet)
            elif operation == 1 and raw:
                del raw[at : at + rng.randint(1, 3)]
            elif operation == 2 and at < len(raw):
                raw[at : at + 1] = rng.choice(alphabet)
            else:
                raw[at:at] = rng.choice(words)
        yield bytes(raw)


def served(status: int | None, error: str | None) -> bool:
    """Whether the request reached the application: an answer, and not one of
    the refusals that the HTTP layer writes (worker_errors's names)."""
    if status is None:
        return False
    return not (status in (400, 408, 411, 413, 414, 417, 431, 501, 505) and error in WORKER_ERRORS)


WORKER_ERRORS = frozenset(
    {
        "bad_request",
        "request_timeout",
        "length_required",
        "body_too_large",
        "uri_too_long",
        "expectation_failed",
        "header_fields_too_large",
        "unsupported_transfer_coding",
        "http_version_not_supported",
    }
)
RANDOM_SEEDS = (1, 2, 3)
MUTANTS_PER_SEED = 300
RANDOM_SECONDS = 30.0  # a bound, not a speed: the run stops early past it


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_the_default_worker_serves_no_mutant_that_every_reference_refuses(
    workers: dict[str, Server], seed: int
) -> None:
    server = next(iter(workers.values()))  # meinheld where usable: the default
    deadline = time.monotonic() + RANDOM_SECONDS
    accepted_alone = []
    for raw in mutants(seed, MUTANTS_PER_SEED):
        if time.monotonic() > deadline:
            break
        if any(accepts(raw) for accepts in REFERENCES.values()):
            continue
        try:
            status, error = answer_of(server, raw)
        except (TimeoutError, ConnectionError):
            status, error = None, None
        if served(status, error):
            accepted_alone.append((status, raw))
    assert server.request("GET", "/health")[0] == 200
    assert not accepted_alone, accepted_alone[:5]


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_both_workers_give_each_mutant_the_same_answer(workers: dict[str, Server], seed: int) -> None:
    """The same mutants to both workers: one status and one error name for
    each (a request wrong in two ways gets the refusal meinheld's parser
    reaches first under both)."""
    if len(workers) < 2:
        pytest.skip("our meinheld build is not usable here")
    deadline = time.monotonic() + RANDOM_SECONDS
    differ = []
    for raw in mutants(seed, MUTANTS_PER_SEED):
        if time.monotonic() > deadline:
            break
        answers = {}
        for kind, server in workers.items():
            try:
                answers[kind] = answer_of(server, raw)
            except (TimeoutError, ConnectionError):
                answers[kind] = (None, None)
        if len(set(answers.values())) > 1:
            differ.append((answers, raw))
    assert not differ, differ[:5]


def table(servers: dict[str, Server] | None = None) -> str:
    """The differential table, in Markdown: each case, our answer, each reference's verdict."""
    names = list(REFERENCES)
    lines = [
        "| case | CacheGrid | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for name, (raw, status) in CASES.items():
        verdicts = ["accept" if REFERENCES[ref](raw) else "reject" for ref in names]
        marked = [f"{v} *" if ref in INTENDED.get(name, {}) else v for v, ref in zip(verdicts, names, strict=True)]
        ours = f"{status}" if servers is None else " / ".join(str(answer_of(s, raw)[0]) for s in servers.values())
        lines.append(f"| {name} | {ours} | " + " | ".join(marked) + " |")
    return "\n".join(lines)


def _main() -> Any:
    print(table())


if __name__ == "__main__":
    _main()
