"""An asyncio engine for many concurrent streams, on the same HTTP/1.1 decoders as the sync client.

The engine is network and timing only. Each request hands its body to a `StreamConsumer` (the
completion parser sits in one) and comes back as a `RequestRecord` of times and a typed outcome.
A connection is an `asyncio.Protocol`: `data_received` feeds acs_cli.http1's head parser and body
decoders and calls the consumer directly, so a read costs one callback, not a task wake-up and a
buffer copy as a StreamReader would. Connections are kept per origin and reused (keep-alive).

Timing (`timeout`, as `--timeout`): the head must arrive within it after the request was sent
(all of it: a head trickled byte by byte or endless 1xx answers cannot stretch the wait), then the
gap between two reads that carry body bytes may not exceed it. `max_time` bounds a whole request.
Connecting (and TLS) is bounded by `connect_timeout` (10 s). There are no retries here (the
schedulers above decide; acs_cli.netrules has the policy) and no redirects: a 3xx is an HTTP error.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Protocol, Self
from urllib.parse import urlsplit

from acs_cli import http1, netrules
from acs_cli.api import ERROR_BODY_LIMIT, status_error
from acs_cli.errors import (
    AcsError,
    ConfigError,
    ConnectError,
    IncompleteStream,
    ProtocolError,
    TimeoutError_,
)


class StreamConsumer(Protocol):
    def on_head(self, head: http1.Head, now: float) -> None: ...

    def on_data(self, data: bytes, now: float) -> bool: ...  # decoded body bytes of one read; True = stop

    def on_end(self, now: float) -> None: ...


@dataclass(slots=True)
class RequestRecord:
    """One request's times (time.perf_counter() seconds) and outcome.

    sent: the request was written; headers: the final head was parsed; first_byte / last_byte: the
    first and last body bytes arrived; error: a typed AcsError (connect 4, timeout 5, HTTP status,
    incomplete 10, protocol 11) or None."""

    scheduled: float | None = None
    sent: float | None = None
    headers: float | None = None
    first_byte: float | None = None
    last_byte: float | None = None
    status: int | None = None
    error: AcsError | None = None
    attempts: int = 1


RECEIVE_BUFFER = 256 * 1024  # one read's worth, shared by every connection of an engine
DRAIN_LIMIT = 64 * 1024  # body bytes read past a consumer's stop to keep the connection; more closes it
_PROTOCOL_HINT = "the server (or a proxy in front of it) does not speak HTTP/1.1 correctly; check the URL's port"


class _Stale(Exception):
    """A reused connection closed before any byte of the answer: send again on a fresh one."""


class _Exchange:
    """One request on one connection: the state that `_Connection.data_received` drives."""

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
        self.codec: http1.ContentDecoder | None = None
        self.error_body: bytearray | None = None
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.stopped = False  # the consumer has had enough: the rest is read and dropped
        self.dropped = 0
        self.last_data = 0.0
        self.deadline: float | None = None  # max_time, as a perf_counter() time
        self.timer: asyncio.TimerHandle | None = None


class _Connection(asyncio.BufferedProtocol):
    """One keep-alive connection; `exchange` is the request it is carrying, if any.

    A buffered protocol: asyncio reads into the engine's one receive buffer (callbacks never
    overlap) and only the bytes read are copied out. With a plain Protocol asyncio allocates 256 KiB
    per read, which measured here as page faults and system time: 6.7 µs per frame before, for a
    consumer that does nothing."""

    def __init__(self, engine: Engine, origin: tuple[str, str, int]) -> None:
        self.engine = engine
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.exchange: _Exchange | None = None
        self.closed = False
        self.reusable = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.engine.receive_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self.engine.receive_buffer[:nbytes].tobytes())

    def send(self, ex: _Exchange, payload: bytes) -> None:
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
        now = perf_counter()
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
        except Exception as exc:  # noqa: BLE001 (a consumer's bug goes to the caller of request())
            self.fail(ex, exc)

    def _head(self, ex: _Exchange, head: http1.Head, now: float) -> http1.BodyDecoder:
        ex.head, ex.parser = head, None
        ex.record.headers, ex.record.status = now, head.status
        ex.framing = http1.body_decoder(head)
        ex.last_data = now
        ex.codec = http1.content_decoder(head) if self.engine.decode else None
        if head.status >= 300:
            ex.error_body = bytearray()
        if ex.consumer is not None:
            ex.consumer.on_head(head, now)
        return ex.framing

    def _payload(self, ex: _Exchange, payload: bytes, now: float) -> None:
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

    def _stop(self, ex: _Exchange, now: float) -> None:
        """The record is complete; the connection reads the rest of the body (up to DRAIN_LIMIT,
        within the timeout) so that it can be reused."""
        self._complete(ex, now)
        ex.stopped = True

    def _finish(self, ex: _Exchange, now: float) -> None:
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

    def _complete(self, ex: _Exchange, now: float) -> None:
        if ex.error_body is not None and ex.head is not None:
            ex.record.error = self.engine.status_error(ex.head, ex.url, bytes(ex.error_body))
        if ex.consumer is not None:
            ex.consumer.on_end(now)
        ex.future.set_result(None)

    def fail(self, ex: _Exchange, error: BaseException) -> None:
        """The exchange ends in an error (or, once the record is complete, just ends)."""
        if ex.timer is not None:
            ex.timer.cancel()
        if not ex.future.done():
            if ex.head is not None and ex.consumer is not None:
                ex.consumer.on_end(perf_counter())
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
            self.fail(ex, _Stale() if stale else self.engine.closed_before_answer(ex.url))
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


class _Pool:
    __slots__ = ("idle", "open", "waiters")

    def __init__(self) -> None:
        self.idle: list[_Connection] = []
        self.open = 0
        self.waiters: deque[asyncio.Future[_Connection | None]] = deque()


class Engine:
    """Requests to one server, many at once, over a keep-alive pool; use `async with` or `aclose()`."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        *,
        timeout: float = 60.0,
        max_time: float | None = None,
        connect_timeout: float = netrules.CONNECT_TIMEOUT,
        max_connections: int | None = None,
        decode: bool = True,
        proxy: str | None = "environment",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """max_connections bounds the connections per origin (None: as many as requests in
        flight); decode=False hands consumers the body as the server encoded it (--raw); proxy is
        taken from the environment unless given (None: connect directly)."""
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"not an http(s) URL: {base_url!r}", "pass a URL such as http://127.0.0.1:8000/v1")
        self.base_url = base_url.rstrip("/")
        self.origin_text = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._base_path = parts.path.rstrip("/")
        host_header = parts.netloc.rpartition("@")[2]
        fixed = {"Host": host_header, "User-Agent": "acs", "Accept-Encoding": "identity", **(headers or {})}
        self._headers = [(k.encode("latin-1"), str(v).encode("latin-1")) for k, v in fixed.items()]
        self.has_key = any(k.lower() == "authorization" for k in fixed)
        self.timeout = timeout
        self.max_time = max_time
        self.connect_timeout = connect_timeout
        self.max_connections = max_connections
        self.decode = decode
        self._ssl = ssl_context
        self._absolute = False  # through an http:// proxy the target is the absolute URL
        self._origin = ("https" if self._https else "http", self._host, self._port)
        self._proxy_for(base_url if proxy == "environment" else None, proxy if proxy != "environment" else None)
        self._pools: dict[tuple[str, str, int], _Pool] = {}
        self.connections_opened = 0
        self.receive_buffer = memoryview(bytearray(RECEIVE_BUFFER))

    def _proxy_for(self, env_url: str | None, given: str | None) -> None:
        proxy = netrules.proxy_url(env_url) if env_url else given
        if not proxy:
            return
        netrules.check_proxy(proxy)
        parts = urlsplit(proxy)
        if self._https or parts.scheme != "http":
            raise ConfigError(
                f"the engine cannot reach {self.origin_text} through the proxy {netrules.shown_proxy(proxy)} yet"
                " (it speaks to http:// proxies for http:// servers only)",
                "bypass the proxy for this host with NO_PROXY, or use an http:// server behind an http:// proxy",
            )
        self._origin = ("http", parts.hostname or "", parts.port or 80)
        self._absolute = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for pool in self._pools.values():
            for conn in pool.idle:
                conn.close()
            pool.idle.clear()
        await asyncio.sleep(0)  # let the transports close

    # ------------------------------------------------------------------ requests

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        consumer: StreamConsumer | None = None,
        scheduled: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> RequestRecord:
        """Send one request and feed its body to the consumer; never raises an AcsError: the
        record carries it."""
        record = RequestRecord(scheduled=perf_counter() if scheduled is None else scheduled)
        target_path = f"{self._base_path}/{path.lstrip('/')}"
        url = self.origin_text + target_path
        target = (url if self._absolute else target_path).encode("latin-1")
        extra = [(k.encode("latin-1"), str(v).encode("latin-1")) for k, v in (headers or {}).items()]
        if body or method.upper() in ("POST", "PUT", "PATCH"):
            extra.append((b"Content-Length", str(len(body)).encode()))
        try:
            payload = http1.encode_request(method.upper(), target, self._headers + extra, body)
        except http1.InvalidRequestHeader as exc:
            record.error = ConfigError(str(exc), "remove the line break from the header's value")
            return record
        start = record.scheduled if record.scheduled is not None else perf_counter()
        deadline = None if self.max_time is None else start + self.max_time
        try:
            await self._exchange(method, url, payload, consumer, record, deadline)
        except AcsError as exc:
            record.error = exc
        return record

    async def _exchange(
        self, method: str, url: str, payload: bytes, consumer: StreamConsumer | None, record: RequestRecord, deadline: float | None
    ) -> None:
        fresh = False
        while True:
            conn, reused = await self._acquire(fresh)
            ex = _Exchange(method.upper(), url, consumer, record, reused)
            ex.deadline = deadline
            conn.send(ex, payload)
            try:
                await ex.future
                return
            except _Stale:
                fresh = True  # the server had closed the idle connection: once more, on a new one
            except BaseException:
                conn.close()  # cancelled, or failed: the connection is not left half-read
                raise

    # ------------------------------------------------------------------ the pool

    async def _acquire(self, fresh: bool) -> tuple[_Connection, bool]:
        pool = self._pools.get(self._origin)
        if pool is None:
            pool = self._pools[self._origin] = _Pool()
        while True:
            while pool.idle and not fresh:
                conn = pool.idle.pop()
                if not conn.closed and conn.reusable:
                    return conn, True
            if self.max_connections is None or pool.open < self.max_connections:
                pool.open += 1
                try:
                    return await self._connect(), False
                except BaseException:
                    pool.open -= 1
                    self._wake(pool, None)
                    raise
            waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
            pool.waiters.append(waiter)
            handed = await waiter
            if handed is not None:
                return handed, True

    def release(self, conn: _Connection) -> None:
        """A connection whose exchange ended: to a waiting request, to the idle list, or closed."""
        pool = self._pools[conn.origin]
        if conn.reusable and not conn.closed:
            if not self._wake(pool, conn):
                pool.idle.append(conn)
        else:
            conn.close()

    def forget(self, conn: _Connection) -> None:
        """A connection closed: its place in the pool goes to a waiting request."""
        pool = self._pools.get(conn.origin)
        if pool is None:
            return
        pool.open -= 1
        self._wake(pool, None)

    @staticmethod
    def _wake(pool: _Pool, conn: _Connection | None) -> bool:
        while pool.waiters:
            waiter = pool.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, host, port = self._origin
        tls = None
        if self._https:
            tls = self._ssl or netrules.ssl_context()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(self, self._origin), host, port, ssl=tls, server_hostname=host if tls else None),
                self.connect_timeout,
            )
        except TimeoutError:
            raise TimeoutError_(
                f"connecting to {self.origin_text} timed out after {self.connect_timeout:g} s",
                "check that the server is up and reachable from here (firewall, VPN, the port in the URL)",
            ) from None
        except ssl.SSLError as exc:
            raise ConnectError(
                f"TLS failed with {self.origin_text}: {exc.reason or exc}",
                "check the server's certificate; SSL_CERT_FILE can point at a custom CA bundle",
            ) from None
        except OSError as exc:
            raise ConnectError(
                f"cannot connect to {self.origin_text}: {exc.strerror or exc}",
                "start the server, or point the base URL at one",
            ) from None
        self.connections_opened += 1
        return conn

    # ------------------------------------------------------------------ time and errors

    def arm(self, conn: _Connection, ex: _Exchange) -> None:
        delay = self.timeout if ex.deadline is None else min(self.timeout, ex.deadline - perf_counter())
        ex.timer = asyncio.get_running_loop().call_later(max(0.0, delay), self._check, conn, ex)

    def _check(self, conn: _Connection, ex: _Exchange) -> None:
        """One timer per exchange, moved forward lazily: reads only note the time of the last data."""
        ex.timer = None
        if conn.exchange is not ex:
            return
        now = perf_counter()
        if ex.future.done():  # draining after the consumer stopped: give up on reuse
            if now - ex.last_data >= self.timeout:
                conn.exchange = None
                conn.close()
                return
        elif ex.deadline is not None and now >= ex.deadline:
            conn.fail(ex, TimeoutError_(
                f"the request to {ex.url} took longer than {self.max_time:g} s (max_time)",
                "raise the whole-request limit, or ask for fewer tokens",
            ))
            return
        elif now - ex.last_data >= self.timeout:
            conn.fail(ex, self._timed_out(ex))
            return
        due = ex.last_data + self.timeout
        if ex.deadline is not None and not ex.future.done():
            due = min(due, ex.deadline)
        ex.timer = asyncio.get_running_loop().call_later(max(0.0, due - now), self._check, conn, ex)

    def _timed_out(self, ex: _Exchange) -> TimeoutError_:
        if ex.framing is None:
            return TimeoutError_(
                f"no response from {self.origin_text} within {self.timeout:g} s (waiting for the head)",
                "the server may be busy or queueing; raise the timeout",
            )
        return TimeoutError_(
            f"no data from {self.origin_text} for {self.timeout:g} s (between two reads)",
            "the text so far is kept; raise the timeout if the server is just slow",
        )

    def status_error(self, head: http1.Head, url: str, body: bytes) -> AcsError:
        error = status_error(
            head.status,
            head.reason.decode("latin-1"),
            url,
            body,
            retry_after=(head.get(b"retry-after") or b"").decode("latin-1") or None,
            base=self.base_url,
            has_key=self.has_key,
        )
        if 300 <= head.status < 400:
            location = (head.get(b"location") or b"").decode("latin-1")
            error.hint = f"the engine does not follow redirects: point the base URL at {location or 'the new location'}"
        return error

    def closed_before_answer(self, url: str) -> ConnectError:
        return ConnectError(
            f"the connection to {self.origin_text} closed before a response to {url}",
            "the server or a proxy closed the connection; check the server's log and retry",
        )

    def cut_mid_body(self, url: str) -> IncompleteStream:
        return IncompleteStream(
            f"incomplete stream: the connection to {self.origin_text} closed mid-body",
            "the data so far was delivered; check for a proxy or server that cuts long responses",
        )
