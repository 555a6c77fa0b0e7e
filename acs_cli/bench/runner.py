"""The asyncio driver of one worker: a closed or open loop of requests on the engine, each timed
into a Sample, with the client's own health (CPU, event-loop lag) measured alongside.

A plan is plain data (it crosses to worker processes and Ray tasks by pickle). Every worker
computes the same schedule from the seed and takes its share: request i of an open loop goes to
worker i mod W at its precomputed time; a closed loop's concurrency and requests are split. Times
are kept relative to the schedule's zero, which several workers agree on by wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import random
import resource
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from acs_cli.bench.metrics import INTERRUPTED, Sample
from acs_cli.bench.schedule import Level, Stop, arrivals, split
from acs_cli.bench.workload import Workload
from acs_cli.completion_state import CompletionState
from acs_cli.consumer import CompletionConsumer
from acs_cli.errors import AcsError

LAG_PERIOD = 0.01  # the event-loop lag probe sleeps this long and notes how late it woke
LAG_KEPT = 20_000  # lag samples kept (a reservoir beyond that)
WARMUP_BASE = 1 << 40  # warmup requests draw their prompts from indices no measured request uses
RAMP_STEP = 0.0002  # seconds between the start of two closed-loop slots (1,000 slots: 0.2 s)
TICK = 0.25  # seconds between progress reports to the live display
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "text/event-stream"}


@dataclass
class Plan:
    """What one worker runs: plain data."""

    base_url: str
    headers: dict[str, str]
    timeout: float
    workload: Workload
    level: Level
    stop: Stop
    arrival: str = "constant"
    burstiness: float = 1.0
    seed: int = 0
    choices: int = 1
    worker: int = 0
    workers: int = 1
    start_wall: float | None = None  # time.time() of the schedule's zero (several workers)
    warmup: int = 0


@dataclass
class WorkerResult:
    samples: list[Sample]
    cpu: float  # seconds of CPU this worker's process used during the run
    wall: float  # seconds from the schedule's zero to the last request's end
    loop_lag: list[float]  # seconds late, sampled every LAG_PERIOD
    interrupted: bool = False
    worker: int = 0


@dataclass
class Progress:
    """Running counts for the live display (read from another thread or sent by a worker)."""

    started: int = 0
    done: int = 0
    failed: int = 0
    output_tokens: int = 0
    ttft: deque = field(default_factory=lambda: deque(maxlen=512))
    itl: deque = field(default_factory=lambda: deque(maxlen=2048))

    def snapshot(self) -> dict[str, Any]:
        return {"started": self.started, "done": self.done, "failed": self.failed, "output_tokens": self.output_tokens,
                "ttft": list(self.ttft), "itl": list(self.itl)}


def raise_open_files() -> None:
    """A thousand streams need a thousand sockets: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Worker:
    """Runs one plan on one event loop; `stop()` (Ctrl-C) ends it early with what it has."""

    def __init__(self, plan: Plan, progress: Progress | None = None, before_start: Callable[[], float | None] | None = None,
                 tick: Callable[[Worker], None] | None = None) -> None:
        """before_start: called after the warmup, returns the wall-clock start (worker processes
        agree on it with their parent); tick: called every TICK seconds during the run."""
        self.plan = plan
        self.before_start = before_start
        self.tick = tick
        self.progress = progress or Progress()
        self.samples: list[Sample] = []
        self.zero = 0.0
        self.stopping = asyncio.Event()
        self.interrupted = False
        self.engine: Any = None
        self.lag: list[float] = []

    async def run(self) -> WorkerResult:
        from acs_cli.engine import Engine  # the engine (and httpx) loads in a worker, not for `acs bench compare`

        plan = self.plan
        raise_open_files()
        with self._signals():
            async with Engine(plan.base_url, plan.headers, timeout=plan.timeout, kernel_times=True) as self.engine:
                if plan.warmup:
                    await self._closed(self._warmup_indices(), self._warmup_slots(), None, keep=False)
                if self.before_start is not None:
                    plan.start_wall = self.before_start()
                gc.collect()
                gc.freeze()  # what exists now is never scanned again: no full collection stalls the streams' timing
                await self._wait_for_start()
                cpu0 = cpu_seconds()
                probe = asyncio.create_task(self._probe_lag())
                ticker = asyncio.create_task(self._ticks()) if self.tick is not None else None
                try:
                    if plan.level.rate is not None:
                        await self._open()
                    else:
                        await self._closed(self._indices(), self._slots(), self._deadline(), keep=True)
                finally:
                    probe.cancel()
                    if ticker is not None:
                        ticker.cancel()
                cpu = cpu_seconds() - cpu0
                gc.unfreeze()
        ends = [s.end for s in self.samples if s.end is not None]
        return WorkerResult(self.samples, cpu, max(ends, default=0.0), self.lag, self.interrupted, plan.worker)

    def stop(self) -> None:
        self.interrupted = True
        self.stopping.set()

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """Ctrl-C and SIGTERM stop the run; the samples so far are the result."""
        loop = asyncio.get_running_loop()
        added = []
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                    loop.add_signal_handler(signum, self.stop)
                    added.append(signum)
        try:
            yield
        finally:
            for signum in added:
                loop.remove_signal_handler(signum)

    # ------------------------------------------------------------------ the schedule's share

    def _indices(self) -> Iterator[int]:
        plan = self.plan
        mine = itertools.count(plan.worker, plan.workers)
        if plan.stop.requests is None:
            return mine
        return itertools.islice(mine, split(plan.stop.requests, plan.workers)[plan.worker])

    def _slots(self) -> int:
        return max(1, split(self.plan.level.concurrency or 1, self.plan.workers)[self.plan.worker])

    def _warmup_indices(self) -> Iterator[int]:
        return iter(range(WARMUP_BASE, WARMUP_BASE + split(self.plan.warmup, self.plan.workers)[self.plan.worker]))

    def _warmup_slots(self) -> int:
        level = self.plan.level
        return self._slots() if level.rate is None else max(1, min(level.max_concurrency or 8, self.plan.warmup))

    def _deadline(self) -> float | None:
        return None if self.plan.stop.duration is None else self.zero + self.plan.stop.duration

    async def _wait_for_start(self) -> None:
        start_wall = self.plan.start_wall
        delay = 0.0 if start_wall is None else max(0.0, start_wall - time.time())
        self.zero = perf_counter() + delay
        if delay:
            await asyncio.sleep(delay)

    # ------------------------------------------------------------------ the loops

    async def _closed(self, indices: Iterator[int], slots: int, deadline: float | None, keep: bool) -> None:
        async def slot(k: int) -> None:
            if k:  # slots open RAMP_STEP apart: a thousand connections opened in one loop turn would stall every stream's timing
                await asyncio.sleep(k * RAMP_STEP)
            for i in indices:  # one iterator shared by the slots: each index once
                now = perf_counter()
                if self.stopping.is_set() or (deadline is not None and now >= deadline):
                    return
                await self._one(i, now, None, keep)

        await self._until_stopped([asyncio.ensure_future(slot(k)) for k in range(slots)])

    async def _open(self) -> None:
        plan, level = self.plan, self.plan.level
        assert level.rate is not None
        times = arrivals(level.rate, plan.arrival, plan.burstiness, plan.stop, random.Random(plan.seed))
        cap = None
        if level.max_concurrency:
            cap = asyncio.Semaphore(max(1, split(level.max_concurrency, plan.workers)[plan.worker]))
        tasks: list[asyncio.Future[None]] = []
        stopped = asyncio.ensure_future(self.stopping.wait())
        for i in range(plan.worker, len(times), plan.workers):
            due = self.zero + times[i]
            delay = due - perf_counter()
            if delay > 0:
                await asyncio.wait([stopped], timeout=delay)
            if self.stopping.is_set():
                break
            tasks.append(asyncio.ensure_future(self._one(i, due, cap, True)))
        stopped.cancel()
        await self._until_stopped(tasks)

    async def _until_stopped(self, tasks: list[asyncio.Future[None]]) -> None:
        """Wait for the tasks; on stop() cancel them (each records itself as interrupted)."""
        if not tasks:
            return
        stopped: asyncio.Future[Any] = asyncio.ensure_future(self.stopping.wait())
        pending: set[asyncio.Future[Any]] = set(tasks)
        while pending and not self.stopping.is_set():
            _, pending = await asyncio.wait(pending | {stopped}, return_when=asyncio.FIRST_COMPLETED)
            pending.discard(stopped)
        stopped.cancel()
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _one(self, i: int, scheduled: float, cap: asyncio.Semaphore | None, keep: bool) -> None:
        dispatched = perf_counter()
        body, in_tokens, in_source, max_tokens = self.plan.workload.request(i)
        consumer = CompletionConsumer(CompletionState(self.plan.choices))
        progress = self.progress
        progress.started += 1
        record: Any = None
        try:
            if cap is None:
                record = await self.engine.request("POST", "completions", body, consumer, scheduled=scheduled, headers=JSON_HEADERS)
            else:
                async with cap:
                    record = await self.engine.request("POST", "completions", body, consumer, scheduled=scheduled, headers=JSON_HEADERS)
        except asyncio.CancelledError:
            pass  # stop(): recorded as interrupted below
        except Exception as exc:  # a failure inside acs is counted, never dropped; the message names it
            record = _client_failure(exc, scheduled)
        sample = self._sample(i, scheduled, dispatched, record, consumer, in_tokens, in_source, max_tokens)
        if not keep:
            return
        self.samples.append(sample)
        if sample.ok:
            progress.done += 1
            progress.output_tokens += sample.output_tokens
            if sample.first_token is not None and sample.sent is not None:
                progress.ttft.append(sample.first_token - sample.sent)
            progress.itl.extend(sample.itl[-64:])
        elif sample.error_kind != INTERRUPTED:
            progress.failed += 1

    def _sample(self, i: int, scheduled: float, dispatched: float, record: Any, consumer: CompletionConsumer,
                in_tokens: int | None, in_source: str, max_tokens: int | None) -> Sample:
        zero = self.zero
        s = Sample(index=i, scheduled=scheduled - zero, dispatched=dispatched - zero, worker=self.plan.worker, max_tokens=max_tokens,
                   input_tokens=in_tokens, input_source=in_source)
        if record is None:  # cancelled by stop(): not the server's failure
            s.error_kind, s.error, s.end = INTERRUPTED, "interrupted before the request ended", perf_counter() - zero
            return s
        rel: Callable[[float | None], float | None] = lambda t: None if t is None else t - zero  # noqa: E731
        s.sent, s.status = rel(record.sent), record.status
        s.end = rel(record.last_byte) if record.last_byte is not None and record.error is None else perf_counter() - zero
        times = consumer.frame_times
        if times:
            s.first_token, s.last_token = times[0] - zero, times[-1] - zero
            s.itl = [b - a for a, b in zip(times, times[1:], strict=False)]
        state = consumer.state
        s.id = state.id
        error = consumer.verdict(record.error)
        if error is not None:
            s.error_kind, s.error, s.exit_status = error.kind, error.message, int(error.status)
        usage = state.usage if isinstance(state.usage, dict) else {}
        completion, prompt = usage.get("completion_tokens"), usage.get("prompt_tokens")
        if type(completion) is int:
            s.output_tokens, s.output_source = completion, "usage"
        else:
            s.output_tokens = len(times)
        if type(prompt) is int:
            s.input_tokens, s.input_source = prompt, "usage"
        return s

    @property
    def in_flight(self) -> int:
        p = self.progress
        return p.started - p.done - p.failed

    async def _ticks(self) -> None:
        assert self.tick is not None
        while True:
            await asyncio.sleep(TICK)
            self.tick(self)

    async def _probe_lag(self) -> None:
        rng = random.Random(0)
        seen = 0
        while True:
            t = perf_counter()
            await asyncio.sleep(LAG_PERIOD)
            late = perf_counter() - t - LAG_PERIOD
            seen += 1
            if len(self.lag) < LAG_KEPT:
                self.lag.append(late)
            else:
                j = rng.randrange(seen)
                if j < LAG_KEPT:
                    self.lag[j] = late


def _client_failure(exc: Exception, scheduled: float) -> Any:
    from acs_cli.engine import RequestRecord

    error = AcsError(f"inside acs: {type(exc).__name__}: {exc}", "this is a bug in acs; please report it")
    error.kind = "client"
    return RequestRecord(scheduled=scheduled, error=error)


def run_plan(plan: Plan, before_start: Callable[[], float | None] | None = None, tick: Callable[[Worker], None] | None = None) -> WorkerResult:
    """Run a plan on a fresh event loop (one process's worker, a worker process, a Ray task)."""

    async def main() -> WorkerResult:
        return await Worker(plan, before_start=before_start, tick=tick).run()

    from acs_cli.engine import run as engine_run

    return engine_run(main())
