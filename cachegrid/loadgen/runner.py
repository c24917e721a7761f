"""The load generator's processes: ``run`` fills the keyspace, starts the
workers, follows them and merges what they measured.

One Python process saturates one core long before a server does, so the load
comes from several processes (``Plan.processes``, by default the number of
CPUs), each with its share of the connections and of the requests. They
connect, say they are ready, and start together on one event; at the end each
one sends back its ``WorkerResult`` and the parent merges them into a
``Report``. Ctrl-C reaches every process: the parent then raises the stop
flag, the workers finish and report, and the report covers what was measured
so far; a second Ctrl-C gives up on it.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections.abc import Callable
from typing import Any

from .calls import check, fill
from .errors import LoadError
from .plan import Plan, Target, budgets, split
from .results import Report, WorkerResult, merge
from .worker import IDLE_TIMEOUT, run_worker

START_TIMEOUT = 30.0  # seconds for the worker processes to connect and report ready


def _worker_main(
    target: Target,
    plan: Plan,
    connections: int,
    budget: int | None,
    index: int,
    pipe: Any,
    go: Any,
    start_time: Any,
    progress: Any,
    stop: Any,
) -> None:
    # Ctrl-C reaches the whole process group: the parent handles it by raising
    # the stop flag, so the workers finish and report what they measured.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A SIGTERM handler of the parent's (cachegrid loadtest turns it into
    # KeyboardInterrupt) is not for the workers: SIGTERM ends a worker.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def ready(problem: WorkerResult | None) -> None:
        pipe.send(("ready", problem))

    def wait_go() -> float | None:
        if not go.wait(START_TIMEOUT) or stop.value:
            return None
        return start_time.value

    try:
        result = run_worker(target, plan, connections, budget, index, ready, wait_go, progress, stop)
        pipe.send(("done", result))
    except BaseException as error:  # report, never die silently: the parent would wait for nothing
        pipe.send(("crashed", f"{type(error).__name__}: {error}"))
    finally:
        pipe.close()


def run(target: Target, plan: Plan, on_progress: Callable[[int, float], None] | None = None) -> Report:
    """Fill the keyspace, run the plan over ``plan.processes`` processes, merge.

    ``on_progress(requests done, seconds elapsed)`` is called about ten times a
    second from this process. Ctrl-C stops the load and reports what was
    measured so far. LoadError when the server cannot be used."""
    if plan.get_share > 0:
        fill(target, plan)
    else:
        check(target)
    processes = max(1, min(plan.processes, plan.concurrency))
    shares = split(plan.concurrency, processes)
    requests = budgets(plan, shares)
    # fork where there is one: the children need nothing but this package's
    # code and start at once; the parent has no threads yet at this point.
    methods = multiprocessing.get_all_start_methods()
    context: Any = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    go = context.Event()
    start_time = context.Value("d", 0.0, lock=False)
    progress = context.Array("q", processes, lock=False)
    stop = context.Value("b", 0, lock=False)
    workers = []
    pipes = []
    for index in range(processes):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_worker_main,
            name=f"cachegrid-loadtest-{index}",
            daemon=True,
            args=(target, plan, shares[index], requests[index], index, sender, go, start_time, progress, stop),
        )
        process.start()
        sender.close()
        workers.append(process)
        pipes.append(receiver)
    try:
        return _drive(target, plan, workers, pipes, go, start_time, progress, stop, on_progress)
    finally:
        stop.value = 1
        go.set()
        for process in workers:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        for pipe in pipes:
            pipe.close()


def _drive(
    target: Target,
    plan: Plan,
    workers: list[Any],
    pipes: list[Any],
    go: Any,
    start_time: Any,
    progress: Any,
    stop: Any,
    on_progress: Callable[[int, float], None] | None,
) -> Report:
    """Wait until every worker is connected, start them together, follow their
    progress, collect their results."""
    deadline = time.monotonic() + START_TIMEOUT
    for index, pipe in enumerate(pipes):  # all connected, or the first reason why not
        message = _receive(pipe, workers[index], deadline)
        if message[0] != "ready":
            raise LoadError(f"load worker {index} failed: {message[1]}")
        if message[1] is not None:
            raise LoadError(message[1].problem, None)
    start_time.value = time.monotonic()
    go.set()
    results: list[WorkerResult | None] = [None] * len(pipes)
    # The workers stop by themselves (budget, deadline, idle timeout); this is
    # only for one that hangs in spite of that: no progress for a long time.
    stalled_after = IDLE_TIMEOUT * 3
    last_count, last_change = -1, time.monotonic()
    interrupted = False
    while any(result is None for result in results):
        try:
            for index, pipe in enumerate(pipes):
                if results[index] is None and pipe.poll(0.1 / len(pipes)):
                    kind, payload = _receive(pipe, workers[index], time.monotonic() + stalled_after)
                    if kind != "done":
                        raise LoadError(f"load worker {index} failed: {payload}")
                    results[index] = payload
            count, now = sum(progress), time.monotonic()
            if on_progress is not None:
                on_progress(count, now - start_time.value)
            if count != last_count:
                last_count, last_change = count, now
            elif now - last_change > stalled_after:
                raise LoadError(f"the load workers made no progress for {stalled_after:g} s")
        except KeyboardInterrupt:
            if interrupted:  # a second Ctrl-C: give up on the results
                raise
            interrupted = True
            stop.value = 1
    return merge(target, plan, plan.concurrency, [r for r in results if r is not None])


def _receive(pipe: Any, process: Any, deadline: float) -> tuple[str, Any]:
    while not pipe.poll(0.05):
        if not process.is_alive() and not pipe.poll(0):
            return ("crashed", f"exited with code {process.exitcode}")
        if time.monotonic() > deadline:
            return ("crashed", "no answer in time")
    try:
        return pipe.recv()
    except EOFError:
        return ("crashed", f"exited with code {process.exitcode}")
