"""One connection of the engine (acs_cli/engine.py): an asyncio protocol that feeds each read to
acs_cli.http1's head parser and body decoder and hands the body to the request's consumer, with
no task wake-up or buffer copy per read. The engine owns the pool, the timers and the wording of
errors; this module owns what happens on the wire."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Protocol

from acs_cli import codings, http1
from acs_cli.body import ERROR_BODY_LIMIT
from acs_cli.errors import AcsError, ConnectError, IncompleteStream, ProtocolError


class EngineSide(Protocol):
    """What a connection asks of its engine (acs_cli.engine.Engine): the shared receive buffer and
    read clock, the pool and the timers, and the wording of errors."""

    origin_text: str
    decode: bool
    receive_buffer: memoryview
    read_time: Callable[[], float]

    def arm(self, conn: Connection, ex: Exchange) -> None: ...

    def release(self, conn: Connection) -> None: ...

    def forget(self, conn: Connection) -> None: ...

    def status_error(self, head: http1.Head, url: str, body: bytes) -> AcsError: ...

    def closed_before_answer(self, url: str) -> ConnectError: ...

    def cut_mid_body(self, url: str) -> IncompleteStream: ...


class StreamConsumer(Protocol):
    """What a request's body goes to. on_head: every final head (error statuses too); on_data: the
    body of a 2xx answer, content-decoded, one call per read, True to stop (the rest is read and
    dropped so the connection can be reused); on_end: once, after on_head, however the request
    ended (the record says how). `now` is when the read arrived, on time.perf_counter()'s clock
    (Engine.read_time)."""

    def on_head(self, head: http1.Head, now: float) -> None: ...

    def on_data(self, data: bytes, now: float) -> bool: ...  # decoded body bytes of one read; True = stop

    def on_end(self, now: float) -> None: ...


@dataclass(slots=True)
class RequestRecord:
    """One request's times (time.perf_counter() seconds) and outcome.

    sent: the request was written; headers: the final head was parsed; first_byte / last_byte: the
    first and last body bytes arrived; error: a typed AcsError (connect 4, timeout 5, HTTP status,
    incomplete 10, protocol 11) or None. attempts stays 1: the engine does not retry (a keep-alive
    connection found closed before any byte of the answer is replaced, which is not a retry)."""

    scheduled: float | None = None
    sent: float | None = None
    headers: float | None = None
    first_byte: float | None = None
    last_byte: float | None = None
    status: int | None = None
    error: AcsError | None = None
    attempts: int = 1
    error_body: bytes | None = None  # a 4xx/5xx answer's body as far as it was read (acs batch records it)


RECEIVE_BUFFER = 256 * 1024  # one read's worth, shared by every connection of an engine
DRAIN_LIMIT = 64 * 1024  # body bytes read past a consumer's stop to keep the connection; more closes it
_PROTOCOL_HINT = "the server (or a proxy in front of it) does not speak HTTP/1.1 correctly; check the URL's port"


class StaleConnection(Exception):
    """A reused connection closed before any byte of the answer: send again on a fresh one."""


class Exchange:
    """One request on one connection: the state that `Connection.data_received` drives."""

    __slots__ = (
        "codec", "consumer", "deadline", "dropped", "error_body", "framing", "future", "head",
        "last_data", "parser", "record", "reused", "stopped", "timer", "url",
    )

    def __init__(self, method: str, url: str, consumer: StreamConsumer | None, record: RequestRecord, reused: bool) -> None:
        self.url = url
        self.consumer = consumer
        self.record = record
        self.reused = reused
        self.parser: http1.HeadParser | None = http1.HeadParser(method)
        self.head: http1.Head | None = None
        self.framing: http1.BodyDecoder | None = None
        self.codec: codings.ContentDecoder | None = None
        self.error_body: bytearray | None = None
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.stopped = False  # the consumer has had enough: the rest is read and dropped
        self.dropped = 0
        self.last_data = 0.0
        self.deadline: float | None = None  # max_time, as a perf_counter() time
        self.timer: asyncio.TimerHandle | None = None


class Connection(asyncio.BufferedProtocol):
    """One keep-alive connection; `exchange` is the request it is carrying, if any.

    A buffered protocol: asyncio reads into the engine's one receive buffer (callbacks never
    overlap) and only the bytes read are copied out. With a plain Protocol asyncio allocates 256 KiB
    per read, which measured here as page faults and system time: 6.7 µs per frame before, for a
    consumer that does nothing."""

    def __init__(self, engine: EngineSide, origin: tuple[str, str, int], clock: Callable[[], float] | None = None) -> None:
        """clock: when the read in hand arrived (the socket's kernel receive time when the engine
        stamps reads; else the engine's read_time)."""
        self.engine = engine
        self.origin = origin
        self.clock = clock or engine.read_time
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self.closed = False
        self.reusable = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.engine.receive_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self.engine.receive_buffer[:nbytes].tobytes())

    def send(self, ex: Exchange, payload: bytes) -> None:
        self.exchange = ex
        assert self.transport is not None
        self.transport.write(payload)
        ex.record.sent = ex.last_data = perf_counter()
        self.engine.arm(self, ex)

    # The per-read path: it runs once per socket read of every stream, so it does little.
    def data_received(self, data: bytes) -> None:
        ex = self.exchange
        if ex is None:
            self.reusable = False  # bytes nobody asked for: this connection is not trusted again
            return
        now = self.clock()
        if now < ex.last_data:  # a kernel time can precede the stamp taken after the send returned
            now = ex.last_data
        try:
            framing = ex.framing
            if framing is None:
                assert ex.parser is not None
                head = ex.parser.feed(data)
                if head is None:
                    return
                data = ex.parser.rest
                framing = self._head(ex, head, now)
            payload = framing.feed(data) if data else b""
            if payload:
                self._payload(ex, payload, now)
            if framing.done:
                self._finish(ex, now)
        except http1.MalformedResponse as exc:
            self.fail(ex, ProtocolError(f"malformed HTTP response from {self.engine.origin_text}: {exc}", _PROTOCOL_HINT))
        except Exception as exc:
            self.fail(ex, exc)

    def _head(self, ex: Exchange, head: http1.Head, now: float) -> http1.BodyDecoder:
        ex.head, ex.parser = head, None
        ex.record.headers, ex.record.status = now, head.status
        ex.framing = http1.body_decoder(head)
        ex.last_data = now
        ex.codec = codings.content_decoder(head) if self.engine.decode else None
        if head.status >= 300:
            ex.error_body = bytearray()
        if ex.consumer is not None:
            ex.consumer.on_head(head, now)
        return ex.framing

    def _payload(self, ex: Exchange, payload: bytes, now: float) -> None:
        ex.last_data = now
        if ex.stopped:
            ex.dropped += len(payload)
            if ex.dropped > DRAIN_LIMIT:
                self.close()
            return
        record = ex.record
        if record.first_byte is None:
            record.first_byte = now
        record.last_byte = now
        pieces = ex.codec.decode(payload) if ex.codec is not None else (payload,)
        if ex.error_body is not None:
            for piece in pieces:
                ex.error_body += piece[: ERROR_BODY_LIMIT - len(ex.error_body)]
            if len(ex.error_body) >= ERROR_BODY_LIMIT:
                self._stop(ex, now)
            return
        if ex.consumer is None:
            return
        for piece in pieces:
            if ex.consumer.on_data(piece, now):
                self._stop(ex, now)
                return

    def _stop(self, ex: Exchange, now: float) -> None:
        """The record is complete; the connection reads the rest of the body (up to DRAIN_LIMIT,
        within the timeout) so that it can be reused."""
        self._complete(ex, now)
        ex.stopped = True

    def _finish(self, ex: Exchange, now: float) -> None:
        """The body reached its framed end."""
        if not ex.stopped:
            if ex.codec is not None and ex.consumer is not None and ex.error_body is None:
                tail = ex.codec.flush()
                if tail:
                    ex.consumer.on_data(tail, now)
            self._complete(ex, now)
        framing = ex.framing
        assert framing is not None and ex.head is not None
        if framing.leftover or not ex.head.keep_alive:
            self.reusable = False
        if ex.timer is not None:
            ex.timer.cancel()
        self.exchange = None
        self.engine.release(self)

    def _complete(self, ex: Exchange, now: float) -> None:
        if ex.error_body is not None and ex.head is not None:
            ex.record.error_body = bytes(ex.error_body)
            ex.record.error = self.engine.status_error(ex.head, ex.url, ex.record.error_body)
        failed = self._end(ex, now)
        if not ex.future.done():  # a cancelled request's connection can still end its body
            if failed is None:
                ex.future.set_result(None)
            else:
                ex.future.set_exception(failed)

    @staticmethod
    def _end(ex: Exchange, now: float) -> Exception | None:
        """The consumer's on_end; what it raised, if anything, fails the request (rather than
        leaving it waiting for an end that has been)."""
        if ex.consumer is None:
            return None
        try:
            ex.consumer.on_end(now)
        except Exception as exc:
            return exc
        return None

    def fail(self, ex: Exchange, error: BaseException) -> None:
        """The exchange ends in an error (or, once the record is complete, just ends)."""
        if ex.timer is not None:
            ex.timer.cancel()
        if not ex.future.done():
            if ex.head is not None:
                self._end(ex, perf_counter())  # the request's own error is the one it ends with
            ex.future.set_exception(error)
        self.exchange = None
        self.close()

    def eof_received(self) -> bool | None:
        self._lost()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost()
        if not self.closed:
            self.closed = True
        self.engine.forget(self)

    def _lost(self) -> None:
        self.reusable = False
        ex = self.exchange
        if ex is None:
            return
        if ex.framing is None:
            stale = ex.reused and ex.parser is not None and not ex.parser.received
            self.fail(ex, StaleConnection() if stale else self.engine.closed_before_answer(ex.url))
            return
        try:
            ex.framing.eof()
        except http1.IncompleteBody:
            self.fail(ex, self.engine.cut_mid_body(ex.url))
            return
        self._finish(ex, perf_counter())

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()


class TunnelSetup(asyncio.Protocol):
    """The CONNECT exchange with an http:// proxy before TLS to the server starts on the same socket."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = http1.HeadParser("CONNECT")
        self.head: asyncio.Future[http1.Head] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    async def open(self, target: tuple[str, int]) -> http1.Head:
        host = f"[{target[0]}]" if ":" in target[0] else target[0]
        authority = f"{host}:{target[1]}".encode("idna")
        assert self.transport is not None
        self.transport.write(http1.encode_request("CONNECT", authority, [(b"Host", authority)]))
        return await self.head

    def data_received(self, data: bytes) -> None:
        if self.head.done():
            return
        try:
            head = self.parser.feed(data)
        except http1.MalformedResponse as exc:
            self.head.set_exception(exc)
            return
        if head is not None:
            if self.parser.rest:  # the server must speak first in TLS: bytes here are the proxy's mistake
                self.head.set_exception(http1.MalformedResponse("bytes after the proxy's answer to CONNECT"))
            else:
                self.head.set_result(head)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            self.head.set_exception(ConnectionResetError("the proxy closed the connection during CONNECT"))
