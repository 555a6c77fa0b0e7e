"""An asyncio engine for many concurrent streams, on the same HTTP/1.1 decoders as the sync client.

The engine is network and timing only. Each request hands its body to a `StreamConsumer` (the
completion parser sits in one) and comes back as a `RequestRecord` of times and a typed outcome.
A connection (acs_cli/connection.py) is an asyncio protocol that feeds acs_cli.http1's head parser
and body decoders and calls the consumer directly, so a read costs one callback, not a task
wake-up and a buffer copy as a StreamReader would. Connections are kept per origin and reused.

Timing (`timeout`, as `--timeout`): the head must arrive within it after the request was sent
(all of it: a head trickled byte by byte or endless 1xx answers cannot stretch the wait), then the
gap between two reads that carry body bytes may not exceed it. `max_time` bounds a whole request.
Connecting (and TLS) is bounded by `connect_timeout` (10 s). There are no retries here (the
schedulers above decide; acs_cli.netrules has the policy) and no redirects: a 3xx is an HTTP error.
A proxy from the environment (or given) must be http://: an http:// server is asked through it in
absolute form, an https:// server through a CONNECT tunnel; other proxies are a ConfigError.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from collections.abc import Mapping
from time import perf_counter
from typing import Any, Self
from urllib.parse import urlsplit

from acs_cli import __version__, http1, netrules
from acs_cli.api import status_error
from acs_cli.connection import (
    RECEIVE_BUFFER,
    Connection,
    Exchange,
    RequestRecord,
    StaleConnection,
    StreamConsumer,
    TunnelSetup,
)
from acs_cli.errors import (
    AcsError,
    ConfigError,
    ConnectError,
    IncompleteStream,
    TimedOut,
)
from acs_cli.loop import SocketTransport, StampedSocket, dial, direct_loop, read_clock, run

__all__ = ["Engine", "RequestRecord", "StreamConsumer", "run"]
_PROXY_HINT = "check the proxy in HTTPS_PROXY / ALL_PROXY, or bypass it with NO_PROXY"


class _Pool:
    __slots__ = ("idle", "open", "waiters")

    def __init__(self) -> None:
        self.idle: list[Connection] = []
        self.open = 0
        self.waiters: deque[asyncio.Future[Connection | None]] = deque()


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
        kernel_times: bool = False,
    ) -> None:
        """max_connections bounds the connections per origin (None: as many as requests in
        flight); decode=False hands consumers the body as the server encoded it (--raw); proxy is
        taken from the environment unless given (None: connect directly); kernel_times: each read
        is timed when the kernel received it (a system call's worth more per read; acs bench),
        else when the event loop learned of it."""
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
        fixed = {"Host": host_header, "User-Agent": f"acs/{__version__}", "Accept-Encoding": "identity", **(headers or {})}
        self._headers = [(k.encode("latin-1"), str(v).encode("latin-1")) for k, v in fixed.items()]
        self.has_key = any(k.lower() == "authorization" for k in fixed)
        self.timeout = timeout
        self.max_time = max_time
        self.connect_timeout = connect_timeout
        self.max_connections = max_connections
        self.decode = decode
        self._ssl = ssl_context
        self._absolute = False  # through an http:// proxy to an http:// server, the target is the whole URL
        self._tunnel: tuple[str, int] | None = None  # to an https:// server, a CONNECT tunnel through the proxy
        self._origin = ("https" if self._https else "http", self._host, self._port)  # the pool's key
        self._dial = (self._host, self._port)  # where the TCP connection goes
        self._proxy_for(base_url if proxy == "environment" else None, proxy if proxy != "environment" else None)
        self._pools: dict[tuple[str, str, int], _Pool] = {}
        self.connections_opened = 0
        self.receive_buffer = memoryview(bytearray(RECEIVE_BUFFER))
        self.read_time = read_clock()  # when the read being handled arrived (connection.py)
        self.kernel_times = kernel_times and hasattr(socket.socket, "recvmsg_into")

    def _proxy_for(self, env_url: str | None, given: str | None) -> None:
        proxy = netrules.proxy_url(env_url) if env_url else given
        if not proxy:
            return
        netrules.check_proxy(proxy)
        parts = urlsplit(proxy)
        if parts.scheme != "http":
            raise ConfigError(
                f"the engine cannot use the proxy {netrules.shown_proxy(proxy)}: it speaks to http:// proxies only",
                "use an http:// proxy in HTTPS_PROXY / HTTP_PROXY / ALL_PROXY, or bypass it with NO_PROXY",
            )
        self._dial = (parts.hostname or "", parts.port or 80)
        if self._https:
            self._tunnel = (self._host, self._port)
        else:
            self._origin = ("http", *self._dial)
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
            ex = Exchange(method.upper(), url, consumer, record, reused)
            ex.deadline = deadline
            conn.send(ex, payload)
            try:
                await ex.future
                return
            except StaleConnection:
                fresh = True  # the server had closed the idle connection: once more, on a new one
            except BaseException:
                conn.close()  # cancelled, or failed: the connection is not left half-read
                raise

    # ------------------------------------------------------------------ the pool

    async def _acquire(self, fresh: bool) -> tuple[Connection, bool]:
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
            waiter: asyncio.Future[Connection | None] = asyncio.get_running_loop().create_future()
            pool.waiters.append(waiter)
            handed = await waiter
            if handed is not None:
                return handed, True

    def release(self, conn: Connection) -> None:
        """A connection whose exchange ended: to a waiting request, to the idle list, or closed."""
        pool = self._pools[conn.origin]
        if conn.reusable and not conn.closed:
            if not self._wake(pool, conn):
                pool.idle.append(conn)
        else:
            conn.close()

    def forget(self, conn: Connection) -> None:
        """A connection closed: its place in the pool goes to a waiting request."""
        pool = self._pools.get(conn.origin)
        if pool is None:
            return
        pool.open -= 1
        self._wake(pool, None)

    @staticmethod
    def _wake(pool: _Pool, conn: Connection | None) -> bool:
        while pool.waiters:
            waiter = pool.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    async def _connect(self) -> Connection:
        try:
            conn = await asyncio.wait_for(self._open(), self.connect_timeout)
        except TimeoutError:
            raise TimedOut(
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

    async def _open(self) -> Connection:
        loop = asyncio.get_running_loop()
        tls = (self._ssl or netrules.ssl_context()) if self._https else None
        direct = direct_loop() if tls is None else None
        sock = await dial(loop, *self._dial, stamped=self.kernel_times) if self.kernel_times or direct else None
        clock = (lambda: sock.arrived) if isinstance(sock, StampedSocket) else None
        if direct is not None and sock is not None:  # plain TCP on the engine's loop: its own transport
            conn = Connection(self, self._origin, clock)
            try:
                SocketTransport(direct, sock, conn)
            except BaseException:
                sock.close()
                raise
            return conn
        dial_to: dict[str, Any] = {"sock": sock} if sock is not None else {"host": self._dial[0], "port": self._dial[1]}
        if self._tunnel is None:
            _, conn = await loop.create_connection(
                lambda: Connection(self, self._origin, clock), ssl=tls, server_hostname=self._host if tls else None, **dial_to
            )
            return conn
        transport, setup = await loop.create_connection(TunnelSetup, **dial_to)
        try:
            head = await setup.open(self._tunnel)
        except http1.MalformedResponse as exc:
            transport.close()
            raise ConnectError(f"the proxy at {self._dial[0]}:{self._dial[1]} answered CONNECT wrongly: {exc}", _PROXY_HINT) from None
        if not 200 <= head.status < 300:
            transport.close()
            raise ConnectError(
                f"the proxy at {self._dial[0]}:{self._dial[1]} refused a tunnel to {self.origin_text}: HTTP {head.status}", _PROXY_HINT
            )
        conn = Connection(self, self._origin, clock)
        tls_transport = await loop.start_tls(transport, conn, tls, server_hostname=self._host)  # type: ignore[arg-type]
        if tls_transport is None:
            raise ConnectError(f"TLS through the proxy to {self.origin_text} did not start", _PROXY_HINT)
        conn.connection_made(tls_transport)
        return conn

    # ------------------------------------------------------------------ time and errors

    def arm(self, conn: Connection, ex: Exchange) -> None:
        delay = self.timeout if ex.deadline is None else min(self.timeout, ex.deadline - perf_counter())
        ex.timer = asyncio.get_running_loop().call_later(max(0.0, delay), self._check, conn, ex)

    def _check(self, conn: Connection, ex: Exchange) -> None:
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
            conn.fail(ex, TimedOut(
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

    def _timed_out(self, ex: Exchange) -> TimedOut:
        if ex.framing is None:
            return TimedOut(
                f"no response from {self.origin_text} within {self.timeout:g} s (waiting for the head)",
                "the server may be busy or queueing; raise the timeout",
            )
        return TimedOut(
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
