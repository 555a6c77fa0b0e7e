"""Where a level's plans run: in this process, in N worker processes (`--workers N`), or as Ray
tasks on an existing cluster (`--ray ADDRESS|auto`). Each returns every worker's WorkerResult;
the caller merges the samples (percentiles come from the merged samples, never averaged).

Worker processes agree on a start: each does its warmup, says it is ready, and is told the wall
clock time of the schedule's zero. Ctrl-C reaches them too (the terminal signals the whole
process group; SIGTERM to acs is passed on): each stops and sends what it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from acs_cli.bench.live import Display, merge
from acs_cli.bench.runner import Plan, Worker, WorkerResult, run_plan
from acs_cli.errors import AcsError, ConfigError

START_LEAD = 0.2  # seconds between the go and the schedule's zero: the message reaches every worker first
RAY_START_LEAD = 2.0  # Ray tasks may take longer to be scheduled
RESULT_WAIT = 30.0  # after Ctrl-C, how long the workers get to send what they have


class Interrupted(Exception):
    """The run was stopped (Ctrl-C); `results` holds what the workers sent."""

    def __init__(self, results: list[WorkerResult]) -> None:
        super().__init__("interrupted")
        self.results = results


def run_inline(plan: Plan, display: Display) -> list[WorkerResult]:
    """One worker on this process's event loop, the display drawn from it."""
    tick = (lambda worker: display.update(worker.progress.snapshot())) if display.active else None
    return [run_plan(plan, tick=tick)]


# ---------------------------------------------------------------------------- processes


def _child(plan: Plan, conn: Any) -> None:
    """A worker process: warmup, ready, wait for the go, run, send the result."""
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def before_start() -> float | None:
        conn.send(("ready", None))
        return conn.recv()

    def tick(worker: Worker) -> None:
        with contextlib.suppress(OSError):
            conn.send(("progress", worker.progress.snapshot()))

    try:
        result = run_plan(plan, before_start=before_start, tick=tick)
    except KeyboardInterrupt:
        return
    except AcsError as exc:
        conn.send(("error", exc))
        return
    conn.send(("result", result))


def run_processes(plans: Sequence[Plan], display: Display) -> list[WorkerResult]:
    import multiprocessing
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads or loops inherited
    conns, procs = [], []
    for plan in plans:
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=_child, args=(plan, theirs), daemon=True)
        proc.start()
        theirs.close()
        conns.append(ours)
        procs.append(proc)
    results: dict[int, WorkerResult] = {}
    snaps: dict[int, dict[str, Any]] = {}
    ready: set[int] = set()
    interrupted = False
    deadline: float | None = None
    try:
        while len(results) < len(conns):
            try:
                _collect(conns, wait, results, snaps, ready, display)
                if len(ready) == len(conns):
                    start = time.time() + START_LEAD
                    for c in conns:
                        c.send(start)
                    ready.add(-1)  # sent once
                if deadline is not None and time.monotonic() > deadline:
                    break
            except KeyboardInterrupt:
                interrupted = True
                deadline = time.monotonic() + RESULT_WAIT
                for proc in procs:
                    if proc.pid is not None and proc.is_alive():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(proc.pid, signal.SIGINT)
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
    ordered = [results[i] for i in sorted(results)]
    if interrupted or any(r.interrupted for r in ordered):
        raise Interrupted(ordered)
    return ordered


def _collect(conns: list[Any], wait: Any, results: dict[int, WorkerResult], snaps: dict[int, dict[str, Any]], ready: set[int], display: Display) -> None:
    """Read what the workers sent within a quarter second; a worker that died is an error."""
    for conn in wait([c for i, c in enumerate(conns) if i not in results], timeout=0.25):
        i = conns.index(conn)
        try:
            kind, value = conn.recv()
        except EOFError:
            raise AcsError(f"worker process {i} ended without a result", "see its message above; rerun with fewer --workers") from None
        if kind == "ready":
            ready.add(i)
        elif kind == "progress":
            snaps[i] = value
        elif kind == "error":
            raise value
        else:
            results[i] = value
    display.update(merge(list(snaps.values())))


# ---------------------------------------------------------------------------- Ray


def _ray_task(plan: Plan) -> WorkerResult:
    return run_plan(plan)


def _ray_ping() -> float:
    return time.time()


def run_ray(plans: Sequence[Plan], address: str, display: Display) -> list[WorkerResult]:
    """The plans as Ray tasks (one CPU each) on the cluster at `address` (`auto`: the one this
    machine belongs to, or RAY_ADDRESS; `local`: a Ray instance started for this run and stopped
    after it, with a CPU per worker)."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray, which is not installed", "pip install 'acs-cli[ray]'") from None
    # a local instance stays on loopback (Ray would otherwise pick this machine's network address)
    local: dict[str, Any] = {"num_cpus": len(plans), "object_store_memory": 80 * 1024 * 1024, "include_dashboard": False,
                             "_node_ip_address": "127.0.0.1"}
    try:
        if address == "local":
            ray.init(log_to_driver=False, logging_level=40, **local)
        else:
            ray.init(address=address, log_to_driver=False, logging_level=40)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"cannot join the Ray cluster at {address}: {exc}", "start one with `ray start --head`, or give its address") from None
    try:
        task = ray.remote(num_cpus=1)(_ray_task)
        ping = ray.remote(num_cpus=1)(_ray_ping)
        ray.get([ping.remote() for _ in plans])  # the workers exist before the clock starts
        start = time.time() + RAY_START_LEAD
        refs = [task.remote(replace(plan, start_wall=start)) for plan in plans]
        pending = list(refs)
        try:
            while pending:
                _, pending = ray.wait(pending, num_returns=len(pending), timeout=0.25)
                display.update({"started": 0, "done": 0, "failed": 0, "output_tokens": 0, "ttft": [], "itl": []})
        except KeyboardInterrupt:
            for ref in refs:
                ray.cancel(ref)
            raise Interrupted([]) from None
        return list(ray.get(refs))
    finally:
        ray.shutdown()


def run_plans(plans: Sequence[Plan], ray_address: str | None, display: Display) -> list[WorkerResult]:
    if ray_address:
        return run_ray(plans, ray_address, display)
    if len(plans) > 1:
        return run_processes(plans, display)
    with contextlib.suppress(RuntimeError):
        asyncio.get_running_loop()
        raise AcsError("acs bench cannot run inside a running event loop", "run it as a command")
    results = run_inline(plans[0], display)
    if results[0].interrupted:
        raise Interrupted(results)
    return results
