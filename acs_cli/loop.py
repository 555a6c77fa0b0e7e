"""The engine's event loop and its socket transport (acs_cli/engine.py runs its requests on them).

`run` is asyncio.run on an `EngineLoop`: asyncio's selector loop that notes when each wait for
events returned (a read's arrival time) and runs the reads of plain TCP connections where the
events are handled, without a Handle in the ready queue for each. A `SocketTransport` is that
connection's transport: it reads into the connection's buffer and calls the connection's
`buffer_updated`, two Python calls from the event to the connection where asyncio's takes six.
Measured at 1,000 paced streams of one frame per read and 25,000 frames/s, three runs each way:
25.5 to 25.9 µs of client CPU a frame against 26.5 to 27.0 µs with asyncio's transports.

TLS, CONNECT tunnels, and any other loop (uvloop through an event loop policy) use asyncio's own
transports; the connection (acs_cli/connection.py) is the same protocol either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import selectors
import socket
import struct
import time
from collections.abc import Callable, Coroutine
from time import perf_counter
from typing import Any, TypeVar

T = TypeVar("T")

_EVENT_READ, _EVENT_WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run for an engine workload: on an EngineLoop (unless another event loop policy,
    such as uvloop's, was chosen), with the garbage collector tuned for it.

    Every frame allocates a few short-lived dicts and lists (freed by reference counting: they
    hold no cycles), so the young generation fills fast; with thousands of live connections each
    of its collections also walks every survivor. During the run collections are made rarer and
    what existed before is frozen out of them (measured: about 15% less CPU per frame at 1,000
    streams)."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 1_000)
    factory = EngineLoop if type(asyncio.get_event_loop_policy()) is asyncio.DefaultEventLoopPolicy else None
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(main)
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


class _ArrivalSelector(selectors.DefaultSelector):
    """The event loop's selector, noting when each wait for events returned. The reads it reported
    run in that same pass of the loop, so their bytes had arrived by then: that is a read's time,
    not when its callback got its turn. With hundreds of streams ready at once the last one's
    frames would otherwise be stamped milliseconds late, as if the server had been slow (measured:
    ITL error p99 4.7 ms at 100 streams and 4,000 frames/s). Engine(kernel_times=True), which
    acs bench uses, takes the kernel's receive time instead, where it can. Bytes that
    came in while a read waited for its turn are read with it and share its time, as they share
    one read."""

    def __init__(self) -> None:
        super().__init__()
        self.returned = perf_counter()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(timeout)
        self.returned = perf_counter()
        return ready


class _DirectReader(asyncio.Handle):
    """A reader the loop calls where it handles the events (asyncio's other paths, such as
    remove_reader, see an ordinary Handle)."""

    __slots__ = ()


# what EngineLoop takes over from asyncio's selector loop: private, and unchanged from 3.4 to 3.13;
# where they are missing the engine uses asyncio's transports (EngineLoop.direct is False)
_LOOP_INTERNALS = ("_process_events", "_selector", "_add_callback", "_remove_reader", "_remove_writer")


class EngineLoop(asyncio.SelectorEventLoop):
    """asyncio's selector loop with an _ArrivalSelector, and direct readers: `add_direct_reader`'s
    callback runs as soon as its socket is reported readable, in `_process_events`, instead of a
    Handle queued for the ready pass (one read of every stream of a busy engine goes this way)."""

    def __init__(self) -> None:
        self.arrivals = _ArrivalSelector()
        super().__init__(self.arrivals)
        self.direct = all(hasattr(self, name) for name in _LOOP_INTERNALS)

    def add_direct_reader(self, fd: int, callback: Callable[[], None]) -> None:
        self._check_closed()  # type: ignore[attr-defined]
        handle = _DirectReader(callback, (), self, None)
        try:
            key = self._selector.get_key(fd)  # type: ignore[attr-defined]
        except KeyError:
            self._selector.register(fd, _EVENT_READ, (handle, None))  # type: ignore[attr-defined]
        else:
            reader, writer = key.data
            self._selector.modify(fd, key.events | _EVENT_READ, (handle, writer))  # type: ignore[attr-defined]
            if reader is not None:
                reader.cancel()

    # asyncio's own, except that the _DirectReaders are called here, after the walk over the
    # events (their code may close a socket and open another under the same number, which a stale
    # key later in the walk would then unregister)
    def _process_events(self, event_list: list[tuple[selectors.SelectorKey, int]]) -> None:
        if not self.direct:
            super()._process_events(event_list)  # type: ignore[misc]
            return
        direct = []
        for key, mask in event_list:
            reader, writer = key.data
            if mask & _EVENT_READ and reader is not None:
                if reader._cancelled:
                    self._remove_reader(key.fileobj)  # type: ignore[attr-defined]
                elif type(reader) is _DirectReader:
                    direct.append(reader)
                else:
                    self._add_callback(reader)  # type: ignore[attr-defined]
            if mask & _EVENT_WRITE and writer is not None:
                if writer._cancelled:
                    self._remove_writer(key.fileobj)  # type: ignore[attr-defined]
                else:
                    self._add_callback(writer)  # type: ignore[attr-defined]
        for reader in direct:
            if reader._cancelled:  # closed by a reader before it
                continue
            try:
                reader._callback()  # type: ignore[attr-defined]
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self.call_exception_handler({"message": "Exception in a socket's reader", "exception": exc, "handle": reader})


def read_clock() -> Callable[[], float]:
    """When the read in hand arrived: from an EngineLoop's selector, else the time now."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return perf_counter
    if isinstance(loop, EngineLoop):
        arrivals = loop.arrivals
        return lambda: arrivals.returned
    return perf_counter


def direct_loop() -> EngineLoop | None:
    """The running loop if plain TCP connections can use a SocketTransport on it."""
    loop = asyncio.get_running_loop()
    return loop if isinstance(loop, EngineLoop) and loop.direct else None


class SocketTransport(asyncio.Transport):
    """A plain TCP connection's transport on an EngineLoop, for a BufferedProtocol whose buffer is
    the same for every read (an engine Connection's): each readable event is one `recv_into` and
    one `buffer_updated`. Requests are written at once; what the socket does not take waits for
    it to be writable. `close` drops unsent bytes (the engine closes a connection only to give it
    up) and the protocol's `connection_lost` follows in the next pass, as with asyncio's."""

    def __init__(self, loop: EngineLoop, sock: socket.socket, protocol: asyncio.BufferedProtocol) -> None:
        super().__init__()
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._buffer = protocol.get_buffer(-1)
        self._pending = bytearray()
        self._closed = False
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        protocol.connection_made(self)
        loop.add_direct_reader(self._fd, self._readable)

    def _readable(self) -> None:
        try:
            n = self._sock.recv_into(self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lose(exc)
            return
        try:
            if n:
                self._protocol.buffer_updated(n)
                return
            self._protocol.eof_received()
        except BaseException as exc:  # the protocol failed: closed, as asyncio's transports do (the loop reports it)
            self._lose(exc if isinstance(exc, Exception) else None)
            raise
        self._lose(None)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            return
        if not self._pending:
            n = self._send(data)
            if n is None or n == len(data):
                return
            data = memoryview(data)[n:]
            self._loop.add_writer(self._fd, self._writable)
        self._pending += data

    def _writable(self) -> None:
        n = self._send(self._pending)
        if n is None:
            return
        del self._pending[:n]
        if not self._pending:
            self._loop.remove_writer(self._fd)

    def _send(self, data: bytes | bytearray | memoryview) -> int | None:
        """The bytes the socket took (0 when it is full); None when it failed (then closed)."""
        try:
            return self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            self._lose(exc)
            return None

    def _lose(self, exc: Exception | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop._remove_reader(self._fd)  # type: ignore[attr-defined]
        if self._pending:
            self._loop.remove_writer(self._fd)
            self._pending.clear()
        self._sock.close()
        self._loop.call_soon(self._protocol.connection_lost, exc)

    def close(self) -> None:
        self._lose(None)

    def abort(self) -> None:
        self._lose(None)

    def is_closing(self) -> bool:
        return self._closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return self._sock
        with contextlib.suppress(OSError):
            if name == "peername":
                return self._sock.getpeername()
            if name == "sockname":
                return self._sock.getsockname()
        return default


_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; the name is missing from some builds
_TIMESPEC = struct.Struct("qq")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)


class StampedSocket(socket.socket):
    """A TCP socket whose reads note when the kernel received their bytes (SO_TIMESTAMPNS), on
    time.perf_counter()'s clock: a client that is busy or not scheduled when a frame comes in
    does not make the frame look late. Transports read a BufferedProtocol's data with `recv_into`.
    Measured against the timed loopback server at 100 streams: ITL error p99 0.1 to 0.17 ms with
    these times, 2.9 to 4.7 ms with the time of the read, in the same runs."""

    arrived = 0.0

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        n, ancillary, _, _ = self.recvmsg_into([memoryview(buffer)[:nbytes] if nbytes else buffer], _ANCILLARY, flags)
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
                sec, nsec = _TIMESPEC.unpack_from(data)
                self.arrived = perf_counter() - (time.time() - (sec + nsec * 1e-9))
                return n
        self.arrived = perf_counter()
        return n


async def dial(loop: asyncio.AbstractEventLoop, host: str, port: int, stamped: bool) -> socket.socket:
    """A connected non-blocking TCP socket, tried address by address as create_connection would;
    `stamped`: a StampedSocket with kernel receive times switched on where the system has them."""
    error: OSError = OSError(f"no address for {host}")
    for family, kind, proto, _, address in await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = StampedSocket(family, kind, proto) if stamped else socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            if stamped:
                with contextlib.suppress(OSError):  # no kernel times here: reads are timed as they are handled
                    sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            await loop.sock_connect(sock, address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
    raise error
