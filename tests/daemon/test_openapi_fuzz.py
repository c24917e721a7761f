"""The OpenAPI document, held to what the real app answers (schemathesis).

The app is built in-process around a real engine, its own ``/openapi.json``
is loaded through schemathesis' WSGI support, and every operation is fuzzed:
schemathesis' coverage phase (boundary values, missing and wrong parameters,
undeclared methods) and a bounded, seeded Hypothesis run of valid and invalid
requests. Every answer must be no 5xx, have a documented status code, a
documented content type, a body matching the documented schema and documented
headers; valid input must be accepted and invalid input refused.

* ``test_open``: no token configured.
* ``test_token``: a token configured and sent; each request is also sent
  without it, and that 401 is held to the document too; ``ignored_auth``
  checks that a missing or wrong token is refused.
* ``TestWorkflow``: sequences that follow the document's links (what a PUT
  stored is read back, revalidated, replaced with If-Match, given a TTL,
  counted, deleted), so that answers about keys that exist are checked too.
* ``test_every_route_is_documented``: the app serves nothing the document
  leaves out (the fuzzing only reaches what the document lists).

Checks left out, and why:

* ``use_after_free``: after ``DELETE /cache/k``, ``POST /cache/k/incr``
  creates ``k`` again (at 1), so a later ``GET /cache/k`` rightly answers
  200; the check only counts creations at the deleted path or above it, and
  reports that as a deleted resource still served.
* ``ensure_resource_availability`` follows resources made by a POST; here a
  PUT makes them, so it never applies.
* ``object_level_authorization`` needs two identities; there is one token.
* ``max_response_time``: a timing check would make a slow CI machine fail.

Every run is deterministic (a fixed seed, derandomized, no example database),
so CI sees the same requests each time; change ``SEED`` to explore more.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
import schemathesis
from falcon.inspect import inspect_compiled_router
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    allow_header_conformance,
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from schemathesis.config import SchemathesisConfig

pytestmark = pytest.mark.fuzz

from cachegrid.config import Settings
from cachegrid.daemon import build_cache, create_app
from cachegrid.daemon.fastpath import FastPath
from cachegrid.engine import Cache

TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SEED = 20_240_611
# Per operation and run, for the fuzzing phase (the coverage phase draws its
# own, bounded set). Keeps the whole file well under a minute on a slow
# 2-core machine.
MAX_EXAMPLES = 20


def _settings(**overrides: Any) -> Settings:
    """Settings from the defaults and ``overrides`` only. The apps are built at
    import (schemathesis parametrizes from the loaded document), before the
    conftest's fixture hides the machine's CACHEGRID_* variables."""
    ambient = {name: value for name, value in os.environ.items() if not name.startswith("CACHEGRID_")}
    with mock.patch.dict(os.environ, ambient, clear=True):
        return Settings(**overrides)


def _build(clock: Callable[[], float] = time.monotonic, **overrides: Any) -> tuple[FastPath, Cache]:
    # A small load-test bound: the document's maximum for num_operations comes
    # from it, so no generated /test/load runs more than 2000 operations.
    config = _settings(node_id="fuzz-node", loadtest_max_operations=2000, **overrides)
    cache = build_cache(config, clock)
    return create_app(config, cache=cache), cache


# positive_data_acceptance's default: valid input is answered 2xx/3xx (or 401,
# 403, 404, 409, 429). 5xx is left out: not_a_server_error owns it.
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429"]
# negative_data_rejection's default, plus 413: how this API refuses input over
# a documented limit (maxProperties / maxItems of a batch), a refusal like 400.
REFUSED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]


def _operation(selector: dict[str, str], accepted: list[str] = ACCEPTED, refused: list[str] = REFUSED) -> dict:
    return selector | {
        "checks": {
            "positive_data_acceptance": {"expected-statuses": accepted},
            "negative_data_rejection": {"expected-statuses": refused},
        }
    }


def _config(*, security_parameters: bool = True) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
                # With a token, the test sends the real one itself (and once
                # without): a generated Authorization header would be overwritten
                # by it, and "negative" cases that only drop it would be valid.
                "with-security-parameters": security_parameters,
            },
            "checks": {
                "positive_data_acceptance": {"expected-statuses": ACCEPTED},
                "negative_data_rejection": {"expected-statuses": REFUSED},
            },
            # Valid input the app may still refuse because of what is stored, which
            # no schema of the request can tell (each of these answers is documented).
            "operations": [
                # If-Match / If-None-Match name ETags the fuzzer makes up: 412.
                # 412 also refuses invalid input here: the app checks the ETags of
                # If-Match / If-None-Match before the TTL's upper bound (and the
                # value's size), where RFC 9110 13.2.1 says after the request's
                # own checks. An app issue, reported; the app is not changed here.
                _operation(
                    {"include-path": "/cache/{key}", "include-method": "PUT"},
                    accepted=ACCEPTED + ["412"],
                    refused=REFUSED + ["412"],
                ),
                # The stored value is not an integer, or the sum overflows 64 bits.
                _operation({"include-path-regex": "^/cache/\\{key\\}/(incr|decr)$"}, accepted=ACCEPTED + ["400"]),
                # A cursor is opaque and lives only as long as its listing.
                _operation({"include-path": "/admin/keys"}, accepted=ACCEPTED + ["400"]),
            ],
        }
    )


MAX_KEY_BYTES = _settings().max_key_length  # both apps keep the default
OPEN_APP, OPEN_CACHE = _build()
TOKEN_APP, TOKEN_CACHE = _build(auth_token=TOKEN)
# /events never ends (a stream): its own tests bound their reads (test_events.py).
open_schema = schemathesis.openapi.from_wsgi("/openapi.json", OPEN_APP, config=_config()).exclude(path="/events")
token_schema = schemathesis.openapi.from_wsgi(
    "/openapi.json", TOKEN_APP, config=_config(security_parameters=False), headers=AUTH
).exclude(path="/events")


def _keys_in(case: schemathesis.Case) -> list[Any]:
    keys: list[Any] = [case.path_parameters["key"]] if "key" in (case.path_parameters or {}) else []
    if isinstance(case.body, dict):
        if isinstance(case.body.get("items"), dict):
            keys += list(case.body["items"])
        if isinstance(case.body.get("items_base64"), dict):
            keys += list(case.body["items_base64"])
        if isinstance(case.body.get("keys"), list):
            keys += case.body["keys"]
    return keys


def positive_data_accepted(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """positive_data_acceptance, but for keys over the limit in bytes of UTF-8.

    A key is at most max_key_length *bytes*; JSON Schema can only bound
    characters (maxLength), so a key of few but wide characters is valid to
    the schema and refused (400 key_too_long) as the document describes."""
    if any(
        isinstance(key, str) and len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES for key in _keys_in(case)
    ):
        return None
    if _batch_of_both_kinds_out_of_schema(case):
        return None
    return positive_data_acceptance(ctx, response, case)


def _batch_of_both_kinds_out_of_schema(case: schemathesis.Case) -> bool:
    """A batch set whose two maps share a key (400 invalid_batch), or hold
    more than max_batch_size items together (413): what the document says
    in words, as JSON Schema cannot state a bound across two properties."""
    body = case.body if isinstance(case.body, dict) else {}
    items, binary = body.get("items"), body.get("items_base64")
    if not isinstance(items, dict) or not isinstance(binary, dict):
        return False
    return bool(set(items) & set(binary)) or len(items) + len(binary) > _settings().max_batch_size


CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
CHECKS = CONFORMANCE + [
    positive_data_accepted,
    negative_data_rejection,
    missing_required_header,
    unsupported_method,  # undeclared methods (coverage phase) must get 405 and Allow
    allow_header_conformance,
]
FUZZ_SETTINGS = settings(deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module", autouse=True)
def _sweepers() -> Iterator[None]:
    """The engines run their sweepers, as served, so /health can be healthy."""
    for cache in (OPEN_CACHE, TOKEN_CACHE):
        cache.start()
    yield
    for cache in (OPEN_CACHE, TOKEN_CACHE):
        cache.stop()


@open_schema.parametrize()
@FUZZ_SETTINGS
def test_open(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)


@token_schema.parametrize()
@FUZZ_SETTINGS
def test_token(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=AUTH, checks=CHECKS + [ignored_auth])
    # The same request without the token: 401 as documented (/health is open).
    response = case.call()
    case.validate_response(response, checks=CONFORMANCE)
    needs_token = case.operation.path != "/health"
    assert (response.status_code == 401) == needs_token, (case.operation.label, response.status_code)


# The workflow's own app, on a clock that stands still, emptied before each
# scenario: Hypothesis replays a scenario to shrink it, and the answers (so
# the links that can be followed) must then be the same. A TTL never runs
# out here; expiry is the engine tests' business.
WORKFLOW_APP, WORKFLOW_CACHE = _build(clock=lambda: 1_000.0)
# The links of stored keys only: the tag and delete-job operations (links
# inferred from a job's id) would take the scenarios' few steps elsewhere.
workflow_schema = schemathesis.openapi.from_wsgi("/openapi.json", WORKFLOW_APP, config=_config()).exclude(
    path_regex="^/(tags/|admin/delete-pattern|events$)"
)
ANSWERED: set[str] = set()  # "<operation> <status>" of the current workflow run


class _Workflow(workflow_schema.as_state_machine()):  # type: ignore[misc]
    """Sequences of calls that follow the document's links: what a PUT stored
    is read back, revalidated (If-None-Match), replaced (If-Match), given a
    TTL, counted, deleted. Without it, a fuzzed key is almost never one that
    exists, and the answers about stored keys (GET 200 and 304, HEAD 200, a
    key's TTL) would go unchecked."""

    def setup(self) -> None:
        WORKFLOW_CACHE.clear()

    def validate_response(
        self, response: Any, case: schemathesis.Case, additional_checks: Any = None, **kwargs: Any
    ) -> None:
        ANSWERED.add(f"{case.operation.label} {response.status_code}")
        case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None, recorder=self.recorder)


class TestWorkflow(_Workflow.TestCase):  # type: ignore[misc,name-defined]
    # Derandomized like the rest; 25 scenarios of up to 8 calls: a few seconds.
    settings = settings(
        max_examples=25,
        stateful_step_count=8,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )

    def runTest(self) -> None:
        ANSWERED.clear()
        super().runTest()
        # The links are followed: something a PUT stored was answered about.
        # (Which answer a bounded search reaches moves with every operation
        # the document gains; each of them is checked for sure below.)
        assert ANSWERED & ABOUT_A_STORED_KEY, sorted(ANSWERED)


ABOUT_A_STORED_KEY = {
    "GET /cache/{key} 200",
    "HEAD /cache/{key} 200",
    "GET /cache/{key} 304",
    "GET /cache/{key}/ttl 200",
    "PUT /cache/{key} 200",
}

# Requests about a stored key, each with the status it must get: (method,
# path, query, headers, status). The fuzzing reaches them only by chance.
STORED_KEY_REQUESTS = [
    ("GET", "/cache/{key}", {}, {}, 200),
    ("HEAD", "/cache/{key}", {}, {}, 200),
    ("GET", "/cache/{key}", {}, {"If-None-Match": "*"}, 304),
    ("GET", "/cache/{key}", {"peek": "true"}, {}, 200),
    ("GET", "/cache/{key}", {"lease": 5}, {}, 200),
    ("GET", "/cache/{key}/ttl", {}, {}, 200),
    ("GET", "/cache/{key}/lease", {}, {}, 200),
]


@pytest.mark.parametrize("kind", ["json", "binary", "stale"])
@pytest.mark.parametrize(("method", "path", "query", "headers", "status"), STORED_KEY_REQUESTS)
def test_the_answers_about_a_stored_key_are_documented(
    kind: str, method: str, path: str, query: dict, headers: dict, status: int
) -> None:
    clock = [1_000.0]
    app, cache = _build(clock=lambda: clock[0])
    if kind == "stale":
        cache.set("stored", b'{"a":1}', ttl=10, stale=60)
        clock[0] += 20  # in its stale window: served with X-Cache-Stale
    else:
        cache.set("stored", b'{"a":1}' if kind == "json" else bytes(range(256)), ttl=100, binary=kind == "binary")
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app, config=_config())
    case = schema[path][method.upper()].Case(path_parameters={"key": "stored"}, query=query, headers=headers)
    response = case.call()
    assert response.status_code == status, response.text
    case.validate_response(response, checks=CONFORMANCE)


# The document describes the API, not itself and the pages (/docs, /dashboard).
UNDOCUMENTED = {"/openapi.json", "/docs", "/dashboard"}


def test_every_route_is_documented() -> None:
    """The fuzz tests reach only what the document lists: each route of the
    app (methods falcon adds, such as OPTIONS, aside) must be in it, and
    nothing else. ``/cache/_`` is how app.py registers ``/cache/{key}``."""
    served = {
        (route.path.replace("/cache/_", "/cache/{key}"), method.method.lower())
        for route in inspect_compiled_router(OPEN_APP.app._router)  # the falcon app behind the fast path
        if route.path not in UNDOCUMENTED
        for method in route.methods
        if not method.internal
    }
    documented = {
        (path, method) for path, operations in open_schema.raw_schema["paths"].items() for method in operations
    }
    assert served == documented
