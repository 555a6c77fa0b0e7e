"""A loopback completions server, in a process of its own, that records when it wrote each frame.

    python tests/timed_server.py [--gap MS] [--frames N] [--first MS]   # prints its port; stdin closing stops it

`POST /v1/completions` (keep-alive) answers a vLLM-shaped event stream with id `cmpl-<n>`: at once
an empty-text frame (which is not a token: a client must not time it), then `max_tokens` text
frames (at most `--frames`, default 16) the first one `--first` ms after the request (0: a random
delay up to one gap, so thousands of streams do not write in step), then one every `--gap` ms,
each its own HTTP chunk and its own send() on a TCP_NODELAY socket; then the usage frame and
[DONE]. One epoll loop and a timer heap; time.perf_counter() (CLOCK_MONOTONIC, the clock acs
uses, shared by every process on the machine) is taken when a request was parsed and right after
each text frame's send() returned. `GET /log` answers {id: {"received": t, "writes": [t, ...], "due": [t, ...]}} (due: when each
write was meant to happen: how late the server itself was shows how busy the machine is)
and forgets them; `GET /v1/models` names one model, `timed`. A request's time is when the kernel
received its last bytes (SO_TIMESTAMPNS), so the server's own delay in reading it is not counted.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import os
import random
import resource
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from time import perf_counter

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def frame(rid: str, text: str, finish: str | None = None) -> bytes:
    obj = {"id": rid, "object": "text_completion", "created": 0, "model": "timed",
           "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}], "usage": None}
    return chunk(b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n")


def arrival(ancillary: list) -> float:
    """When the kernel received the bytes just read (SO_TIMESTAMPNS, wall clock), on perf_counter's
    clock: the server's own delay in reading a request is not counted against the client."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            return perf_counter() - (time.time() - (sec + nsec / 1e9))
    return perf_counter()


def answer(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


class TimedServer:
    def __init__(self, gap: float, frames: int, first: float) -> None:
        self.gap, self.frames, self.first = gap, frames, first
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
        self.listener.setblocking(False)
        self.ep = select.epoll()
        self.ep.register(self.listener.fileno(), select.EPOLLIN)
        self.conns: dict[int, list] = {}  # fd -> [socket, inbuf]
        self.timers: list[tuple[float, int, int, str, int, int]] = []  # (due, seq, fd, id, step, total)
        self.log: dict[str, dict] = {}
        self.count = 0
        self.seq = 0
        self.rng = random.Random(0)

    def serve(self) -> None:
        while True:
            timeout = max(0.0, self.timers[0][0] - perf_counter()) if self.timers else -1
            for fd, _ in self.ep.poll(timeout):
                if fd == self.listener.fileno():
                    self.accept()
                else:
                    self.read(fd)
            now = perf_counter()
            while self.timers and self.timers[0][0] <= now:
                entry = heapq.heappop(self.timers)
                self.step(entry[0], *entry[2:])

    def accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(True)  # read only when epoll says so; sendall never waits for long
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            self.conns[sock.fileno()] = [sock, b"", 0.0]
            self.ep.register(sock.fileno(), select.EPOLLIN)

    def read(self, fd: int) -> None:
        conn = self.conns[fd]
        try:
            data, ancillary, _, _ = conn[0].recvmsg(65536, 64)
        except OSError:
            data, ancillary = b"", []
        conn[2] = arrival(ancillary)
        if not data:
            self.ep.unregister(fd)
            conn[0].close()
            del self.conns[fd]
            return
        conn[1] += data
        while True:
            end = conn[1].find(b"\r\n\r\n")
            if end < 0:
                return
            head = conn[1][:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(conn[1]) < end + 4 + length:
                return
            body, conn[1] = conn[1][end + 4 : end + 4 + length], conn[1][end + 4 + length :]
            self.request(fd, conn[0], head.split(" ", 2)[1], body, conn[2])

    def request(self, fd: int, sock: socket.socket, path: str, body: bytes, received: float) -> None:
        if path == "/log":
            log, self.log = self.log, {}
            sock.sendall(answer(json.dumps(log).encode()))
            return
        if path.endswith("/models"):
            sock.sendall(answer(b'{"object":"list","data":[{"id":"timed","object":"model"}]}'))
            return
        req = json.loads(body or b"{}")
        total = min(self.frames, int(req.get("max_tokens") or self.frames))
        self.count += 1
        rid = f"cmpl-{self.count}"
        self.log[rid] = {"received": received, "writes": [], "due": []}
        sock.sendall(HEAD + frame(rid, ""))  # a frame without text: no token
        first = self.first if self.first > 0 else self.rng.uniform(0.001, self.gap)
        self.schedule(received + first, fd, rid, 0, total)

    def schedule(self, due: float, fd: int, rid: str, step: int, total: int) -> None:
        self.seq += 1
        heapq.heappush(self.timers, (due, self.seq, fd, rid, step, total))

    def step(self, due: float, fd: int, rid: str, step: int, total: int) -> None:
        conn = self.conns.get(fd)
        if conn is None:
            return
        sock = conn[0]
        last = step == total - 1
        data = frame(rid, f" t{step}", "length" if last else None)
        if last:
            usage = {"id": rid, "object": "text_completion", "created": 0, "model": "timed", "choices": [],
                     "usage": {"prompt_tokens": 3, "total_tokens": 3 + total, "completion_tokens": total}}
            data += chunk(b"data: " + json.dumps(usage).encode() + b"\n\n") + chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"
        try:
            sock.sendall(data)  # blocking (frames are small: a send never waits unless the client stopped reading)
        except OSError:
            return
        self.log[rid]["writes"].append(perf_counter())
        self.log[rid]["due"].append(due)
        if not last:
            self.schedule(self.log[rid]["writes"][-1] + self.gap, fd, rid, step + 1, total)


@contextlib.contextmanager
def running(*args: str) -> Iterator[str]:
    """This server in a process of its own, with these flags: its origin, until the block ends."""
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{int(proc.stdout.readline())}"
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)


def fetch_log(origin: str, timeout: float = 30) -> dict:
    """GET /log: when each request since the last call arrived and its frames were written."""
    with urllib.request.urlopen(origin + "/log", timeout=timeout) as r:
        return json.loads(r.read())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--gap", type=float, default=10.0, help="ms between text frames")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--first", type=float, default=0.0, help="ms to the first text frame (0: random up to a gap)")
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = TimedServer(args.gap / 1000, args.frames, args.first / 1000)
    print(server.listener.getsockname()[1], flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    server.serve()


if __name__ == "__main__":
    main()
