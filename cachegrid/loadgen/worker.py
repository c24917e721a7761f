"""One worker process's share of the load: its connections and its loop.

The loop is a ``selectors`` loop over the worker's connections
(``client.Client``), which only dispatches: a writable socket to the
connection's ``write_handler``, a readable one to its ``read_handler``. About
ten times a second it also reports the count done to the parent, looks at the
parent's stop flag and checks the idle timeout.

Every loop is bounded: by the request budget or the deadline, by the stop
flag the parent raises on Ctrl-C, and by an idle timeout when the server stops
answering (the requests still in flight then count as timeouts), and it ends
when no connection is left.
"""

from __future__ import annotations

import random
import selectors
import time
from collections.abc import Callable
from typing import Any

from .client import Load
from .plan import Plan, Target
from .results import WorkerResult
from .wire import Requests, request_mix

IDLE_TIMEOUT = 10.0  # seconds without any response before requests in flight count as timeouts
REPORT_EVERY = 0.1  # seconds between a worker's progress updates


def run_worker(
    target: Target,
    plan: Plan,
    connections: int,
    budget: int | None,
    index: int,
    ready: Callable[[WorkerResult | None], None],
    wait_go: Callable[[], float | None],
    progress: Any,
    stop: Any,
) -> WorkerResult:
    """One process's share of the load: ``connections`` connections and
    ``budget`` requests (None: until the deadline). ``ready(problem)`` is
    called once connected; ``wait_go()`` returns the shared start time (or None
    to give up); ``progress[index]`` gets the count done; ``stop.value`` set
    means stop sending."""
    rng = random.Random(None if plan.seed is None else plan.seed * 1000 + index)
    load = Load(target, plan, budget, request_mix(Requests(target, plan), plan, rng))
    try:
        for _ in range(connections):
            load.open()
    except OSError as error:
        load.close()
        problem = WorkerResult(problem=f"cannot connect to {target.url}: {error.strerror or error}")
        ready(problem)
        return problem
    ready(None)
    start = wait_go()
    if start is None:
        load.close()
        return WorkerResult()
    try:
        return _run(load, plan, start, index, progress, stop)
    finally:
        load.close()


def _run(load: Load, plan: Plan, start: float, index: int, progress: Any, stop: Any) -> WorkerResult:
    clock = time.perf_counter
    if plan.duration is not None:
        # The deadline is on the shared monotonic clock; the loop runs on perf_counter.
        load.stop_at = start + plan.duration + clock() - time.monotonic()
    cpu_before = time.process_time()
    started = time.monotonic()
    now = clock()
    for client in list(load.clients):  # a copy: a connection that fails at once is replaced (appended)
        client.issue(plan.pipeline, now)
    load.last_answer = now
    next_report = now + REPORT_EVERY
    select = load.selector.select
    write_event = selectors.EVENT_WRITE
    read_event = selectors.EVENT_READ
    while True:
        if load.sending and (load.remaining == 0 or (load.stop_at is not None and now >= load.stop_at)):
            load.sending = False
        if not load.sending and load.in_flight == 0:
            break
        if not load.alive:
            break
        events = select(REPORT_EVERY)
        now = clock()
        for key, mask in events:
            client = key.data
            if client.dead:
                continue
            if mask & write_event and client.pending:
                client.write_handler()
                if client.dead:
                    continue
            if mask & read_event:
                client.read_handler(now)
        if now >= next_report:
            next_report = now + REPORT_EVERY
            progress[index] = load.done
            if stop.value:
                load.sending = False
            if load.in_flight and now - load.last_answer > IDLE_TIMEOUT:
                for client in load.clients:
                    if not client.dead and client.sent:
                        client.lose("timeout")
                        client.close()
                load.sending = False
    finished = time.monotonic()
    # A worker can end with requests it never got to send (every connection
    # closed); they are not counted: requests are what was sent or failed.
    progress[index] = load.done
    return WorkerResult(
        requests=load.done,
        gets=load.gets,
        sets=load.sets,
        keys=load.keys,
        errors=load.errors,
        histogram=load.histogram,
        max_us=load.max_us,
        started=started,
        finished=finished,
        cpu_seconds=time.process_time() - cpu_before,
    )
