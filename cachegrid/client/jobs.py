"""Node-wide jobs the server runs in the background: delete by pattern.

``POST /admin/delete-pattern`` answers 202 with a job at once; the job
deletes page by page on the server, and ``GET /admin/delete-pattern/{id}``
tells how far it got. ``delete_pattern_plan`` starts the job on each node
(every node of a cluster: a pattern's keys may be on any) and polls them,
waiting between polls with backoff (the wait is a step of the plan, so the
sync client sleeps and the async one awaits), until every job is done or
``wait`` seconds have passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .errors import TimeoutUnavailable
from .protocol import Call, Plan, delete_job_call, delete_pattern_call, unavailable
from .retry import HostPool

POLL_START = 0.02  # seconds before the first poll
POLL_MAX = 0.5


def _answers(pool: HostPool, sends: list[tuple[str, Call]], outcomes: list[Any], what: str) -> dict[str, Any]:
    """The parsed answers by host; Unavailable when a node did not answer
    (a 4xx raises its RequestError, as everywhere)."""
    errors: dict[str, str] = {}
    answers = {
        host: call.parse(answer.status, answer.body)
        for (host, call), answer in zip(sends, pool.tally(sends, outcomes, errors))
        if answer is not None
    }
    if errors:
        raise unavailable(f"{what}: " + "; ".join(f"{host}: {error}" for host, error in errors.items()), errors)
    return answers


def delete_pattern_plan(
    pool: HostPool, hosts: list[str], pattern: str, wait: float, clock: Callable[[], float] = time.monotonic
) -> Plan:
    """Start a delete job for ``pattern`` on each of ``hosts`` and wait for
    them all; returns how many keys they deleted together."""
    start = delete_pattern_call(pattern)
    sends = [(host, start) for host in hosts]
    jobs = _answers(pool, sends, (yield 0.0, sends), f"delete_pattern({pattern!r}) did not start")
    deadline = clock() + wait
    delay = POLL_START
    while not all(job["done"] for job in jobs.values()):
        if clock() + delay > deadline:
            raise TimeoutUnavailable(
                f"delete_pattern({pattern!r}) is not done after {wait} s (it goes on on the server)",
                {
                    host: f"job {job['id']}: {job['deleted']} deleted so far"
                    for host, job in jobs.items()
                    if not job["done"]
                },
            )
        sends = [(host, delete_job_call(job["id"])) for host, job in jobs.items() if not job["done"]]
        jobs.update(_answers(pool, sends, (yield delay, sends), f"delete_pattern({pattern!r}) status"))
        delay = min(delay * 2, POLL_MAX)
    failed = {host: job["error"] for host, job in jobs.items() if job.get("error")}
    if failed:
        raise unavailable(f"delete_pattern({pattern!r}) failed on {len(failed)} node(s)", failed)
    return sum(job["deleted"] for job in jobs.values())
