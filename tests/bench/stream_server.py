"""The engine bench's server: many concurrent vLLM-shaped streams from one epoll loop.

    python tests/bench/stream_server.py [PORT] [--tick-ms T]   # prints its port, serves until stdin closes

`POST /v1/completions` (keep-alive, any path) answers `max_tokens` frames, each frame its own HTTP
chunk. Two modes, chosen per request:

- full speed (the default): each frame its own `send()`, written round-robin, one frame to each
  ready connection per pass of the loop, as fast as the loop goes; a client that falls behind gets
  several frames per read (the bench reports frames per read).
- paced (`"paced": true` in the request body, e.g. `acs complete --param paced=true`): the head at
  once, then ONE frame per stream per tick of a global clock: every tick writes the next frame of
  every paced stream (the last frame carries `[DONE]` and the body's end). The tick is
  `--tick-ms` (default 10), or a request's `"tick_ms"`, or `POST /tick` with `{"ms": T}` (0: every
  pass of the loop); ticks are due at fixed times, so a late tick is caught up, and a tick more
  than two ticks late gives up the missed ones and counts them (`skipped`: the server could not
  keep the pace). A client that keeps up gets each frame in its own socket read.

Token texts and frames are tests/bench/server.py's, so `expected_text(n)` is what every stream must
yield. Non-blocking sockets, EPOLLOUT only for a full-speed connection whose client is not reading:
the loop never blocks on one slow client (a paced stream keeps what the socket refused and sends
it before its next frame).

`GET /stats` (and `POST /tick`) answer this process's counters, so the bench can show that the
client, not the server, was measured: `cpu` (user + system seconds), `t` (time.perf_counter(),
CLOCK_MONOTONIC, comparable across processes), `busy` (seconds spent writing ticks and handling
events, i.e. not waiting; its share of a window is the server's load whether or not it spins),
`written` (paced frames written), `ticks`, `skipped`, `late`, `streams` (paced streams open),
`tick_ms`.
The last 2 ms before a tick are waited for by polling (see SPIN), so at ticks under 2 ms (100
streams at 50,000 frames/s, one stream at any rate over 500) the server's CPU share is 100% by
construction: `busy` is the figure to read; `late` is the sum of the ticks' delays past their due
times.
"""

from __future__ import annotations

import json
import os
import resource
import select
import socket
import sys
import threading
from time import perf_counter

from server import DONE, chunk, frame, prompt_tokens, token_text, usage_frame

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n"
# The last stretch before a tick is waited for by polling epoll: a timed wait ends ~25 µs late on a
# busy machine, but on an idle VM the vCPU halts and waking it takes up to milliseconds (measured:
# over 5% of 0.5 ms ticks missed at one stream). Polling keeps the server's core awake.
SPIN = 0.002


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Conn:
    __slots__ = ("inbuf", "out", "paced", "pending", "pos", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = b""
        self.out: list[bytes] = []  # the writes of the current answer (shared, never changed)
        self.pos = 0  # the next one
        self.pending = b""  # what a partial send left
        self.paced = False


_frames_cache: dict[tuple[int, bool, int, bool], list[bytes]] = {}


def writes_for(n: int, usage: bool, ptoks: int, paced: bool) -> list[bytes]:
    """The answer's writes: the head, one per frame, the usage frame, [DONE] and the end. Paced, the
    head is written at once and every later write is one tick's frame, so the tail rides on the
    last frame."""
    key = (n, usage, ptoks, paced)
    if key not in _frames_cache:
        out = [HEAD] + [chunk(frame(token_text(i), "length" if i == n - 1 else None)) for i in range(n)]
        if usage:
            out.append(chunk(usage_frame(ptoks, n)))
        out.append(chunk(DONE) + b"0\r\n\r\n")
        if paced and n:
            out[n:] = [b"".join(out[n:])]
        _frames_cache[key] = out
    return _frames_cache[key]


def send_some(sock: socket.socket, piece: bytes) -> bytes:
    """Send what the socket takes now; return the rest."""
    try:
        return piece[sock.send(piece) :]
    except (BlockingIOError, InterruptedError):
        return piece
    except OSError:
        return b""  # the peer is gone: its EPOLLHUP will close the connection


class Pacer:
    """The global clock of paced streams and the counters /stats reports."""

    def __init__(self, tick_ms: float) -> None:
        self.interval = tick_ms / 1000
        self.due = perf_counter()
        self.streams: list[Conn] = []
        self.written = self.ticks = self.skipped = 0
        self.busy = self.late = 0.0

    def set_tick(self, ms: float) -> None:
        self.interval = max(0.0, ms / 1000)
        self.due = min(self.due, perf_counter() + self.interval)

    def stats(self) -> dict:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {"cpu": usage.ru_utime + usage.ru_stime, "t": perf_counter(), "busy": self.busy, "written": self.written,
                "ticks": self.ticks, "skipped": self.skipped, "late": self.late, "streams": len(self.streams), "tick_ms": 1000 * self.interval}

    def start(self, conn: Conn) -> None:
        """A paced answer: its head now, its frames on the ticks."""
        conn.paced = True
        conn.pos = 1
        if not self.streams:  # the clock was idle: its next tick is one interval away
            self.due = perf_counter() + self.interval
        conn.pending = send_some(conn.sock, conn.out[0])
        self.streams.append(conn)

    def tick(self, now: float) -> list[Conn]:
        """Write the next frame of every paced stream; return the streams that ended."""
        late = now - self.due
        self.late += late
        if self.interval and late > 2 * self.interval:
            missed = int(late / self.interval)
            self.skipped += missed
            self.due += missed * self.interval
        self.due = self.due + self.interval if self.interval else now
        self.ticks += 1
        still: list[Conn] = []
        ended: list[Conn] = []
        written = 0
        for conn in self.streams:  # the hot loop: one send per stream, little else
            out, pos, piece = conn.out, conn.pos, conn.pending
            if pos < len(out):
                piece = piece + out[pos] if piece else out[pos]
                conn.pos = pos = pos + 1
                written += 1
            if piece:
                conn.pending = send_some(conn.sock, piece)
            if pos < len(out) or conn.pending:
                still.append(conn)
            else:
                ended.append(conn)
        self.written += written
        self.streams = still
        return ended


class Server:
    def __init__(self, listener: socket.socket, tick_ms: float) -> None:
        self.listener = listener
        self.ep = select.epoll()
        self.ep.register(listener.fileno(), select.EPOLLIN)
        self.conns: dict[int, Conn] = {}
        self.active: list[Conn] = []  # full-speed answers in progress
        self.pacer = Pacer(tick_ms)

    def answer(self, conn: Conn) -> bool:
        """Parse one complete request from inbuf and start its answer; True when it is a full-speed
        one (the caller queues it; the pacer holds paced ones)."""
        end = conn.inbuf.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = conn.inbuf[:end].decode("latin-1").split("\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(conn.inbuf) < end + 4 + length:
            return False
        body, conn.inbuf = conn.inbuf[end + 4 : end + 4 + length], conn.inbuf[end + 4 + length :]
        req = json.loads(body or b"{}")
        conn.pos, conn.paced = 0, False
        if head[0].startswith(("GET /stats", "POST /tick")):
            if head[0].startswith("POST /tick"):
                self.pacer.set_tick(float(req["ms"]))
            data = json.dumps(self.pacer.stats()).encode()
            conn.out = [b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(data), data)]
        else:
            usage_wanted = bool((req.get("stream_options") or {}).get("include_usage"))
            prompt = req.get("prompt")
            ptoks = prompt_tokens(prompt if isinstance(prompt, str) else "")
            paced = bool(req.get("paced"))
            conn.out = writes_for(int(req.get("max_tokens") or 16), usage_wanted, ptoks, paced)
            if paced:
                if "tick_ms" in req:
                    self.pacer.set_tick(float(req["tick_ms"]))
                self.pacer.start(conn)
                return False
        return True

    def accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.conns[sock.fileno()] = Conn(sock)
            self.ep.register(sock.fileno(), select.EPOLLIN)

    def readable(self, fd: int, conn: Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.ep.unregister(fd)
            conn.sock.close()
            del self.conns[fd]
            if conn in self.active:
                self.active.remove(conn)
            if conn.paced and conn in self.pacer.streams:
                self.pacer.streams.remove(conn)
            return
        conn.inbuf += data
        if not conn.out and self.answer(conn):
            self.active.append(conn)

    def serve(self) -> None:
        pacer = self.pacer
        while True:
            events = self.poll()
            start = perf_counter()
            for fd, mask in events:
                if fd == self.listener.fileno():
                    self.accept()
                    continue
                conn = self.conns[fd]
                if mask & select.EPOLLOUT:
                    self.ep.modify(fd, select.EPOLLIN)
                    self.active.append(conn)
                if mask & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                    self.readable(fd, conn)
            if self.active:
                self.full_speed_pass()
            now = perf_counter()
            if pacer.streams and now >= pacer.due:
                for conn in pacer.tick(now):
                    self.ended(conn)
                pacer.busy += perf_counter() - start
            elif events:
                pacer.busy += now - start

    def poll(self) -> list[tuple[int, int]]:
        """The events ready now, waiting (if nothing is to be written) until the next tick at most:
        select waits on the epoll descriptor (epoll's own timeout counts whole milliseconds) until
        SPIN before the tick, then epoll is polled until the tick is due."""
        if self.active:
            return self.ep.poll(0)
        if not self.pacer.streams:
            return self.ep.poll(-1)
        left = self.pacer.due - perf_counter()
        if left > SPIN and not select.select([self.ep.fileno()], [], [], left - SPIN)[0]:
            return []
        return self.ep.poll(0)

    def ended(self, conn: Conn) -> None:
        conn.out, conn.pos, conn.paced = [], 0, False
        if conn.inbuf and self.answer(conn):  # a pipelined next request
            self.active.append(conn)

    def full_speed_pass(self) -> None:
        still: list[Conn] = []
        for conn in self.active:  # one write per connection per pass
            if conn.sock.fileno() < 0:
                continue
            piece = conn.pending or conn.out[conn.pos]
            try:
                sent = conn.sock.send(piece)
            except (BlockingIOError, InterruptedError):
                self.ep.modify(conn.sock.fileno(), select.EPOLLIN | select.EPOLLOUT)  # the client is not reading: wait for it
                continue
            except OSError:
                continue
            if sent < len(piece):
                conn.pending = piece[sent:]
                still.append(conn)
                continue
            conn.pending = b""
            conn.pos += 1
            if conn.pos < len(conn.out):
                still.append(conn)
            else:
                conn.out, conn.pos = [], 0
                if conn.inbuf and self.answer(conn):  # a pipelined next request
                    still.append(conn)
        self.active = still


def fine_timers() -> None:
    """Timed waits end within a microsecond of their time, not Linux's default 50 µs slack."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(29, 1000, 0, 0, 0)  # PR_SET_TIMERSLACK, in ns
    except (OSError, AttributeError):
        pass  # not Linux: ticks are a little later, the counters still tell


def main() -> None:
    raise_nofile()
    fine_timers()
    args = sys.argv[1:]
    tick_ms = 10.0
    if "--tick-ms" in args:
        i = args.index("--tick-ms")
        tick_ms = float(args[i + 1])
        del args[i : i + 2]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(args[0]) if args else 0))
    listener.listen(16384)
    listener.setblocking(False)
    print(listener.getsockname()[1], flush=True)
    # the bench closes our stdin to stop us
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    Server(listener, tick_ms).serve()


if __name__ == "__main__":
    main()
