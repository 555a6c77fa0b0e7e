"""The asyncio driver of a batch: N workers take requests from the streamed input, send each to
an endpoint the balancer picks (acs_cli.engine), retry what is worth retrying, and write each
result as one whole line the moment it is known.

Retries (up to --retries per request): no connection, a timeout, a stream cut or aborted by the
server, and HTTP 429, 502, 503 and 504, after exponential backoff with jitter or the server's
Retry-After (acs_cli.netrules); never another 4xx, a 500, an error the server reported inside a
stream, or an answer that is not a completion: those are written as failures at once.

A signal (Ctrl-C, SIGTERM, SIGHUP) cancels the requests in flight; everything that finished is
already written (with --ordered, what waited for an earlier request is written then), and the
run reports the signal.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from acs_cli import netrules
from acs_cli.batch.kinds import Answer
from acs_cli.batch.results import InOrder, ResultIds, result_line
from acs_cli.errors import AcsError, ConnectError, HTTPStatusError, IncompleteStream, TimedOut
from acs_cli.request import encode_body
from acs_cli.secrets import redact

if TYPE_CHECKING:
    from acs_cli.batch.balance import Balancer, Endpoint
    from acs_cli.batch.jobs import Job, Tally
    from acs_cli.batch.limits import Limits
    from acs_cli.connection import RequestRecord
    from acs_cli.terminal import Terminal

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def retry_reason(error: AcsError | None) -> str | None:
    """Why a failed attempt is worth another, or None when it is not."""
    if error is None:
        return None
    if isinstance(error, HTTPStatusError):
        return str(error.status_code) if netrules.retryable_status(error.status_code) else None
    if isinstance(error, (ConnectError, TimedOut)):
        return error.kind
    if isinstance(error, IncompleteStream):
        return "incomplete"
    return None


def failure_kind(status: int | None, error: AcsError | None) -> str:
    if status is not None and status >= 300:
        return f"http {status}"
    return error.kind if error is not None else "error"


def replica_failed(status: int | None, error: AcsError | None) -> bool:
    """Whether the answer says the endpoint is unwell (counts toward resting it)."""
    if status is not None and status >= 500:
        return True
    return isinstance(error, (ConnectError, TimedOut, IncompleteStream)) and not isinstance(error, HTTPStatusError)


def error_object(error: AcsError) -> dict[str, Any]:
    return {"code": error.kind, "message": redact(error.message)}


def error_body(record: RequestRecord) -> Any:
    """The server's body of a 4xx/5xx answer (as far as the engine read it): JSON when it is, else its text."""
    raw = record.error_body or b""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return raw.decode("utf-8", "replace")


class Runner:
    def __init__(
        self,
        balancer: Balancer,
        limits: Limits,
        write: Callable[[bytes, bool], None],
        *,
        concurrency: int,
        retries: int,
        ordered: bool,
        tally: Tally,
        term: Terminal | None = None,
    ) -> None:
        self.balancer = balancer
        self.limits = limits
        self.write = write  # (line, failed)
        self.concurrency = max(1, concurrency)
        self.retries = retries
        self.tally = tally
        self.term = term
        self.ids = ResultIds()
        self.in_order = InOrder(self._write_ordered, max(1024, 8 * self.concurrency)) if ordered else None
        self.advanced: asyncio.Event | None = None
        self.signal: int | None = None

    async def run(self, jobs: Iterator[Job], tick: Callable[[], None] | None = None) -> int | None:
        """Send every job; returns the signal that stopped the run, if one did."""
        loop = asyncio.get_running_loop()
        self.advanced = asyncio.Event()
        workers = [asyncio.ensure_future(self._worker(jobs)) for _ in range(self.concurrency)]
        main = asyncio.gather(*workers)
        installed = self._on_signals(loop, main)
        ticker = asyncio.ensure_future(self._tick(tick)) if tick is not None else None
        try:
            await main
        except asyncio.CancelledError:
            if self.signal is None:
                raise
        except BaseException:  # a worker failed (the output cannot be written, a bug): stop the others
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        finally:
            for signum, handler in installed.items():
                loop.remove_signal_handler(signum)
                if handler is not None:  # acs's own again (SIGTERM and SIGHUP end a run like Ctrl-C)
                    signal.signal(signum, handler)
            if ticker is not None:
                ticker.cancel()
            if self.in_order is not None:
                self.in_order.flush()
            for ep in self.balancer.endpoints:
                await ep.engine.aclose()
        return self.signal

    def _on_signals(self, loop: asyncio.AbstractEventLoop, main: asyncio.Future[Any]) -> dict[int, Any]:
        """Ctrl-C, SIGTERM and SIGHUP cancel the run (the handlers they had are given back)."""

        def stop(signum: int) -> None:
            if self.signal is None:
                self.signal = signum
                main.cancel()

        installed = {}
        for signum in SIGNALS:
            before = signal.getsignal(signum)
            if before is signal.SIG_IGN:
                continue  # ignored by whoever started acs (nohup): stays ignored
            try:
                loop.add_signal_handler(signum, stop, int(signum))
            except (ValueError, RuntimeError, NotImplementedError):
                continue  # not the main thread: the caller's KeyboardInterrupt still ends the run
            installed[int(signum)] = before
        return installed

    async def _tick(self, tick: Callable[[], None]) -> None:
        while True:
            tick()
            await asyncio.sleep(0.25)

    async def _worker(self, jobs: Iterator[Job]) -> None:
        for job in jobs:
            if self.in_order is not None:
                await self._room(job.seq)
            self.tally.in_flight += 1
            try:
                line, failed = await self._attempts(job)
            finally:
                self.tally.in_flight -= 1
            self._finish(job, line, failed)

    async def _room(self, seq: int) -> None:
        assert self.in_order is not None and self.advanced is not None
        while not self.in_order.room(seq):
            self.advanced.clear()
            await self.advanced.wait()

    async def _attempts(self, job: Job) -> tuple[bytes, bool]:
        attempt = 0
        while True:
            attempt += 1
            await self.limits.admit(job.tokens)
            ep = await self.balancer.acquire()
            answer = Answer(job.kind, job.choices, self.term)
            try:
                record = await ep.engine.request("POST", job.kind.path, self._payload(job, ep), answer)
            except BaseException:
                self.balancer.release(ep, False)
                raise
            error = answer.verdict(record.error)
            reason = retry_reason(error)
            wait = netrules.retry_after(error.retry_after) if isinstance(error, HTTPStatusError) else None
            self.balancer.release(ep, replica_failed(record.status, error), wait)
            if error is None or reason is None or attempt > self.retries:
                return self._result(job, answer, record, error)
            self.tally.retries[reason] += 1
            await asyncio.sleep(wait if wait is not None else netrules.backoff(attempt))

    @staticmethod
    def _payload(job: Job, ep: Endpoint) -> bytes:
        body = job.body if "model" in job.body or ep.model is None else {**job.body, "model": ep.model}
        return encode_body(body)

    def _result(self, job: Job, answer: Answer, record: RequestRecord, error: AcsError | None) -> tuple[bytes, bool]:
        status = record.status
        rid = self.ids.next()
        usage = answer.usage()
        if usage:
            prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
            self.tally.prompt_tokens += prompt if type(prompt) is int else 0
            self.tally.completion_tokens += completion if type(completion) is int else 0
            total = usage.get("total_tokens")
            self.limits.settle(job.tokens, total if type(total) is int else None)
        failed = error is not None
        if failed:
            self.tally.failures[failure_kind(status, error)] += 1
        if status is None:
            assert error is not None
            return result_line(rid, job.custom_id, None, None, None, error_object(error)), True
        if status >= 300:
            return result_line(rid, job.custom_id, status, answer.request_id, error_body(record), None), True
        body = answer.document()
        return result_line(rid, job.custom_id, status, answer.request_id, body, error_object(error) if error else None), failed

    def _finish(self, job: Job, line: bytes, failed: bool) -> None:
        if failed:
            self.tally.failed += 1
        else:
            self.tally.done += 1
        if self.in_order is None:
            self.write(line, failed)
            return
        self.in_order.put(job.seq, (line, failed))
        assert self.advanced is not None
        self.advanced.set()

    def _write_ordered(self, item: tuple[bytes, bool]) -> None:
        self.write(*item)
