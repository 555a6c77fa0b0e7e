"""The engine bench's server: many concurrent vLLM-shaped streams from one epoll loop.

    python tests/bench/stream_server.py   # prints its port on stdout, serves until stdin closes

`POST /v1/completions` (keep-alive, any path) answers `max_tokens` frames, each frame its own
HTTP chunk and its own `send()`, written round-robin: one frame to each ready connection per
pass, so a client is never handed a whole stream in one read unless it falls behind (then its
reads coalesce frames, which the bench reports). Token texts and frames are tests/bench/server.py's,
so `expected_text(n)` is what every stream must yield. Non-blocking sockets, EPOLLOUT only for a
connection whose client is not reading: the loop never blocks on one slow client.

`GET /stats` answers this process's CPU seconds (user + system) so the bench can show that the
client, not the server, was the bottleneck.
"""

from __future__ import annotations

import json
import os
import resource
import select
import socket
import sys
import threading

from server import DONE, chunk, frame, prompt_tokens, token_text, usage_frame

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n"


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Conn:
    __slots__ = ("inbuf", "out", "pending", "pos", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = b""
        self.out: list[bytes] = []  # the writes of the current answer (shared, never changed)
        self.pos = 0  # the next one
        self.pending = b""  # what a partial send left of out[pos]


_frames_cache: dict[tuple[int, bool, int], list[bytes]] = {}


def writes_for(n: int, usage: bool, ptoks: int) -> list[bytes]:
    key = (n, usage, ptoks)
    if key not in _frames_cache:
        out = [HEAD] + [chunk(frame(token_text(i), "length" if i == n - 1 else None)) for i in range(n)]
        if usage:
            out.append(chunk(usage_frame(ptoks, n)))
        out.append(chunk(DONE) + b"0\r\n\r\n")
        _frames_cache[key] = out
    return _frames_cache[key]


def answer(conn: Conn) -> bool:
    """Parse complete requests from inbuf; True when one was queued."""
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
    if head[0].startswith("GET /stats"):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        data = json.dumps({"cpu": usage.ru_utime + usage.ru_stime}).encode()
        conn.out, conn.pos = [b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(data), data)], 0
        return True
    req = json.loads(body or b"{}")
    usage_wanted = bool((req.get("stream_options") or {}).get("include_usage"))
    prompt = req.get("prompt")
    conn.out = writes_for(int(req.get("max_tokens") or 16), usage_wanted, prompt_tokens(prompt if isinstance(prompt, str) else ""))
    conn.pos = 0
    return True


def serve(listener: socket.socket) -> None:  # one event loop, kept whole
    ep = select.epoll()
    ep.register(listener.fileno(), select.EPOLLIN)
    conns: dict[int, Conn] = {}
    active: list[Conn] = []
    IN, OUT = select.EPOLLIN, select.EPOLLIN | select.EPOLLOUT
    while True:
        for fd, events in ep.poll(0 if active else -1):
            if fd == listener.fileno():
                while True:
                    try:
                        sock, _ = listener.accept()
                    except BlockingIOError:
                        break
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conns[sock.fileno()] = Conn(sock)
                    ep.register(sock.fileno(), IN)
                continue
            conn = conns[fd]
            if events & select.EPOLLOUT:
                ep.modify(fd, IN)
                active.append(conn)
            if events & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                try:
                    data = conn.sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    ep.unregister(fd)
                    conn.sock.close()
                    del conns[fd]
                    if conn in active:
                        active.remove(conn)
                    continue
                conn.inbuf += data
                if not conn.out and answer(conn):
                    active.append(conn)
        still: list[Conn] = []
        for conn in active:  # one write per connection per pass
            if conn.sock.fileno() < 0:
                continue
            piece = conn.pending or conn.out[conn.pos]
            try:
                sent = conn.sock.send(piece)
            except (BlockingIOError, InterruptedError):
                ep.modify(conn.sock.fileno(), OUT)  # the client is not reading: wait for it
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
                if conn.inbuf and answer(conn):  # a pipelined next request
                    still.append(conn)
        active = still


def main() -> None:
    raise_nofile()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    listener.listen(16384)
    listener.setblocking(False)
    print(listener.getsockname()[1], flush=True)
    # the bench closes our stdin to stop us
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    serve(listener)


if __name__ == "__main__":
    main()
