"""A small recording TCP proxy on 127.0.0.1, to see the exact bytes a real server sent to acs.

Two requests to a real server never get the same bytes back (ids, timestamps, timings differ),
so "--raw prints exactly what the server sent" can only be checked against the bytes of that
very response. `RecordingProxy(upstream_port)` listens on a free loopback port, forwards every
connection to the upstream, and keeps every read in both directions with its time.monotonic()
stamp. When either side closes, the other side is closed too (so a client that goes away, on
Ctrl-C, is seen by the server at once).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Flow:
    number: int
    upstream: list[tuple[float, bytes]] = field(default_factory=list)  # client -> server
    downstream: list[tuple[float, bytes]] = field(default_factory=list)  # server -> client
    closed: threading.Event = field(default_factory=threading.Event)

    @property
    def request_bytes(self) -> bytes:
        return b"".join(d for _, d in self.upstream)

    @property
    def response_bytes(self) -> bytes:
        return b"".join(d for _, d in self.downstream)

    def first_time(self, needle: bytes) -> float | None:
        """When the server->client bytes first contained `needle`."""
        seen = b""
        for t, d in list(self.downstream):
            seen += d
            if needle in seen:
                return t
        return None


class RecordingProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.bind(("127.0.0.1", 0))
        self._lsock.listen(16)
        self._lsock.settimeout(0.05)
        self.port = self._lsock.getsockname()[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.base_url = self.origin + "/v1"
        self.flows: list[Flow] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._lsock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            client.settimeout(None)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                flow = Flow(len(self.flows))
                self.flows.append(flow)
                self._socks += [client, server]
            done = threading.Event()
            for src, dst, sink in ((client, server, flow.upstream), (server, client, flow.downstream)):
                t = threading.Thread(target=self._pump, args=(src, dst, sink, flow, done), daemon=True)
                self._threads.append(t)
                t.start()

    def _pump(self, src: socket.socket, dst: socket.socket, sink: list, flow: Flow, done: threading.Event) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self._lock:
                    sink.append((time.monotonic(), data))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            # one side is gone: close both, so the other side learns at once
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            if done.is_set():
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.close()
                flow.closed.set()
            done.set()

    def wait_closed(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for flow in list(self.flows):
            if not flow.closed.wait(max(0.0, deadline - time.monotonic())):
                return False
        return True

    def close(self) -> None:
        self._stop.set()
        self._accept.join(5)
        with contextlib.suppress(OSError):
            self._lsock.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
        for t in self._threads:
            t.join(5)

    def __enter__(self) -> RecordingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class HttpResponse:
    status_line: str
    headers: list[tuple[str, str]]
    body: bytes  # de-chunked
    chunks: list[bytes] | None  # the HTTP/1.1 chunks when chunked
    terminated: bool = True  # chunked: the zero-size last chunk was received

    @property
    def status(self) -> int:
        return int(self.status_line.split(" ", 2)[1])

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


def parse_response(data: bytes) -> HttpResponse:
    """One HTTP/1.1 response as received (head, then a chunked, content-length or until-close
    body). A chunked body may lack its zero-size last chunk (``terminated`` is then False: the
    client closed the connection first, as acs does after `data: [DONE]`); any other shortfall
    raises ValueError."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("no end of the response head")
    lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    resp = HttpResponse(lines[0], headers, b"", None)
    if "chunked" in (resp.header("transfer-encoding") or "").lower():
        chunks = []
        pos = 0
        resp.terminated = False
        while b"\r\n" in rest[pos:]:  # a client that stopped reading at [DONE] may miss the end
            eol = rest.index(b"\r\n", pos)
            size = int(rest[pos:eol].split(b";")[0], 16)
            pos = eol + 2
            if size == 0:
                resp.terminated = True
                break
            if len(rest) < pos + size + 2:
                raise ValueError("a chunk is cut short")
            chunks.append(rest[pos : pos + size])
            pos += size + 2
        resp.chunks = chunks
        resp.body = b"".join(chunks)
    elif resp.header("content-length") is not None:
        n = int(resp.header("content-length") or 0)
        if len(rest) < n:
            raise ValueError("the body is shorter than its content-length")
        resp.body = rest[:n]
    else:
        resp.body = rest
    return resp
