"""The asyncio engine against real loopback servers: exact text for 1, 100 and 1,000 concurrent
streams, keep-alive reuse, timeouts, cut streams, malformed heads and HTTP errors as typed records.

`StreamServer` is an asyncio server in a thread of its own: every frame is its own HTTP chunk and
its own write, and it counts the connections it accepted. Exact hostile bytes come from the raw
socket servers of tests/test_transport.py's kind (`LoopbackListener`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Self

import pytest

from acs_cli import http1
from acs_cli import loop as engine_loop
from acs_cli.engine import Engine, RequestRecord
from acs_cli.errors import (
    ConfigError,
    ConnectError,
    HTTPStatusError,
    IncompleteStream,
    ProtocolError,
    TimedOut,
)
from tests.cliutil import ExactAnswers, LoopbackListener, closed_port


def frame_text(stream: int, i: int) -> str:
    return f" s{stream}t{i}"


class StreamServer:
    """POST /v1/completions with {"stream": k, "frames": n, "mode": ...}: n SSE frames, one chunk
    and one write each. Modes: "ok", "cut" (closes mid-body), "stall" (stops after 2 frames),
    "gzip" (the whole stream gzip-compressed), "error" (429 JSON), "redirect" (302)."""

    def __init__(self) -> None:
        self.accepted = 0
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self._ready.wait(5)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=2048))
        self.port = self.server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                req = json.loads(await reader.readexactly(length)) if length else {}
                if not await self._answer(writer, req):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, req: dict) -> bool:
        mode = req.get("mode", "ok")
        if mode == "error":
            body = b'{"error":{"message":"slow down","type":"rate_limit"}}'
            writer.write(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            return True
        if mode == "redirect":
            writer.write(b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere/v1\r\nContent-Length: 0\r\n\r\n")
            return True
        frames = [b"data: %s\n\n" % json.dumps({"text": frame_text(req["stream"], i)}).encode() for i in range(req["frames"])]
        frames.append(b"data: [DONE]\n\n")
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
        if mode == "gzip":
            frames = [gzip.compress(b"".join(frames))]
            head += b"Content-Encoding: gzip\r\n"
        writer.write(head + b"\r\n")
        for i, data in enumerate(frames):
            if mode == "cut" and i == 2:
                writer.transport.abort()
                return False
            if mode == "stall" and i == 2:
                await asyncio.sleep(30)
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        return True

    async def _shutdown(self) -> None:
        self.server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TextConsumer:
    """Joins the "text" of every data frame; stops at [DONE]."""

    def __init__(self) -> None:
        self.buf = b""
        self.texts: list[str] = []
        self.head: http1.Head | None = None
        self.ended = 0
        self.done = False

    def on_head(self, head: http1.Head, now: float) -> None:
        self.head = head

    def on_data(self, data: bytes, now: float) -> bool:
        self.buf += data
        *events, self.buf = self.buf.split(b"\n\n")
        for event in events:
            payload = event[len(b"data: ") :]
            if payload == b"[DONE]":
                self.done = True
                return True
            self.texts.append(json.loads(payload)["text"])
        return False

    def on_end(self, now: float) -> None:
        self.ended += 1


@pytest.fixture(scope="module")
def streams():
    with StreamServer() as srv:
        yield srv


LOOPS = {"engine loop": engine_loop.run, "asyncio loop": asyncio.run}
_runner = asyncio.run


@pytest.fixture(autouse=True, params=sorted(LOOPS))
def loop_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test runs on the engine's own loop (plain TCP through its SocketTransport) and on
    asyncio's (its transports, as under uvloop)."""
    global _runner
    _runner = LOOPS[request.param]
    yield request.param
    _runner = asyncio.run


def run(coro):
    return _runner(coro)


async def _many(base: str, n: int, frames: int, **kw) -> tuple[list[RequestRecord], list[TextConsumer], Engine]:
    consumers = [TextConsumer() for _ in range(n)]
    async with Engine(base, proxy=None, **kw) as engine:
        records = await asyncio.gather(
            *(engine.request("POST", "completions", json.dumps({"stream": k, "frames": frames}).encode(), consumers[k]) for k in range(n))
        )
    return list(records), consumers, engine


@pytest.mark.parametrize("kernel_times", [False, True])
@pytest.mark.parametrize("n", [1, 100, 1000])
def test_concurrent_streams_arrive_exact(streams: StreamServer, n: int, kernel_times: bool) -> None:
    records, consumers, _ = run(_many(streams.base_url, n, 20, kernel_times=kernel_times))
    for k, (record, consumer) in enumerate(zip(records, consumers)):
        assert record.error is None, record.error
        assert record.status == 200 and consumer.done and consumer.ended == 1
        assert consumer.texts == [frame_text(k, i) for i in range(20)]
        assert record.scheduled <= record.sent <= record.headers <= record.first_byte <= record.last_byte


def test_sequential_requests_reuse_one_connection(streams: StreamServer) -> None:
    async def go() -> tuple[list[RequestRecord], Engine]:
        async with Engine(streams.base_url, proxy=None) as engine:
            out = []
            for k in range(5):
                out.append(await engine.request("POST", "completions", json.dumps({"stream": k, "frames": 3}).encode(), TextConsumer()))
                await asyncio.sleep(0.01)  # the terminator after [DONE] is drained meanwhile
            return out, engine

    before = streams.accepted
    records, engine = run(go())
    assert all(r.error is None for r in records)
    assert engine.connections_opened == 1 and streams.accepted - before == 1


def test_a_connection_limit_queues_requests_on_few_connections(streams: StreamServer) -> None:
    records, consumers, engine = run(_many(streams.base_url, 50, 5, max_connections=4))
    assert all(r.error is None for r in records) and all(c.done for c in consumers)
    assert engine.connections_opened <= 4


def test_a_stream_cut_mid_body_is_incomplete_with_its_text_delivered(streams: StreamServer) -> None:
    consumer = TextConsumer()

    async def go() -> RequestRecord:
        async with Engine(streams.base_url, proxy=None) as engine:
            return await engine.request("POST", "completions", json.dumps({"stream": 0, "frames": 5, "mode": "cut"}).encode(), consumer)

    record = run(go())
    assert isinstance(record.error, IncompleteStream) and record.error.status == 10
    assert consumer.texts == [frame_text(0, 0), frame_text(0, 1)] and consumer.ended == 1


def test_a_stalled_stream_times_out_between_reads(streams: StreamServer) -> None:
    async def go() -> RequestRecord:
        async with Engine(streams.base_url, proxy=None, timeout=0.5) as engine:
            return await engine.request("POST", "completions", json.dumps({"stream": 0, "frames": 5, "mode": "stall"}).encode(), TextConsumer())

    started = time.monotonic()
    record = run(go())
    assert isinstance(record.error, TimedOut) and "between two reads" in record.error.message
    assert 0.5 <= time.monotonic() - started < 3


def test_max_time_bounds_the_whole_request(streams: StreamServer) -> None:
    async def go() -> RequestRecord:
        async with Engine(streams.base_url, proxy=None, timeout=10, max_time=0.5) as engine:
            return await engine.request("POST", "completions", json.dumps({"stream": 0, "frames": 5, "mode": "stall"}).encode(), TextConsumer())

    started = time.monotonic()
    record = run(go())
    assert isinstance(record.error, TimedOut) and "max_time" in record.error.message
    assert time.monotonic() - started < 3


def test_a_compressed_stream_is_decoded_for_the_consumer(streams: StreamServer) -> None:
    consumer = TextConsumer()

    async def go() -> RequestRecord:
        async with Engine(streams.base_url, proxy=None) as engine:
            return await engine.request("POST", "completions", json.dumps({"stream": 3, "frames": 30, "mode": "gzip"}).encode(), consumer)

    assert run(go()).error is None
    assert consumer.texts == [frame_text(3, i) for i in range(30)]


@pytest.mark.parametrize("mode, status, exit_status, words", [("error", 429, 7, "slow down"), ("redirect", 302, 7, "302")])
def test_http_errors_are_typed_records(streams: StreamServer, mode: str, status: int, exit_status: int, words: str) -> None:
    async def go() -> RequestRecord:
        async with Engine(streams.base_url, proxy=None) as engine:
            return await engine.request("POST", "completions", json.dumps({"mode": mode}).encode(), TextConsumer())

    record = run(go())
    assert isinstance(record.error, HTTPStatusError) and record.status == status
    assert record.error.status == exit_status and words in record.error.message
    if mode == "error":
        assert record.error.retry_after == "3"
    else:
        assert "http://elsewhere/v1" in (record.error.hint or "")


@pytest.mark.parametrize("kernel_times", [False, True])
def test_connection_refused_is_a_connect_error(kernel_times: bool) -> None:
    async def go() -> RequestRecord:
        async with Engine(f"http://127.0.0.1:{closed_port()}/v1", proxy=None, kernel_times=kernel_times) as engine:
            return await engine.request("GET", "models")

    record = run(go())
    assert isinstance(record.error, ConnectError) and record.error.status == 4




def _one(base: str, body: bytes = b"{}", **kw) -> tuple[RequestRecord, TextConsumer]:
    consumer = TextConsumer()

    async def go() -> RequestRecord:
        async with Engine(base, proxy=None, **kw) as engine:
            return await engine.request("POST", "completions", body, consumer)

    return run(go()), consumer


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_malformed_responses_are_protocol_errors(answer: bytes) -> None:
    with ExactAnswers(answer, linger=0.5) as srv:  # the answer alone must be enough to fail on
        record, _ = _one(srv.base_url)
    assert isinstance(record.error, ProtocolError) and record.error.status == 11


def test_a_bare_lf_head_before_a_crlf_stream_keeps_every_frame() -> None:
    body = b"data: {\"text\": \"a\"}\r\n\r\ndata: [DONE]\r\n\r\n".replace(b"\r\n", b"\n")
    answer = b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    with ExactAnswers(answer) as srv:
        record, consumer = _one(srv.base_url)
    assert record.error is None and consumer.texts == ["a"]


def test_a_head_trickled_byte_by_byte_times_out_as_a_whole() -> None:
    head = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 100 + b"\r\n\r\n"
    with ExactAnswers(*(bytes([b]) for b in head), pause=0.05) as srv:
        started = time.monotonic()
        record, _ = _one(srv.base_url, timeout=0.5)
    assert isinstance(record.error, TimedOut) and "head" in record.error.message
    assert time.monotonic() - started < 2.5


def test_no_answer_at_all_is_a_connect_error() -> None:
    with ExactAnswers() as srv:
        record, _ = _one(srv.base_url)
    assert isinstance(record.error, ConnectError)


def test_a_stale_pooled_connection_is_replaced() -> None:
    from tests.test_transport import ClosesIdle

    async def go() -> list[RequestRecord]:
        async with Engine(srv.base_url, proxy=None) as engine:
            first = await engine.request("GET", "models")
            await asyncio.sleep(0.05)
            return [first, await engine.request("GET", "models")]

    with ClosesIdle() as srv:
        records = run(go())
        assert [r.error for r in records] == [None, None] and [r.status for r in records] == [200, 200]
        assert srv.accepted == 2


def test_proxies_the_engine_cannot_use_are_configuration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "https://127.0.0.1:9")
    with pytest.raises(ConfigError, match="http:// proxies only"):
        Engine("https://api.example.test/v1")
    monkeypatch.setenv("HTTP_PROXY", "socks5://127.0.0.1:9")
    with pytest.raises(ConfigError):
        Engine("http://api.example.test/v1")
    monkeypatch.setenv("HTTP_PROXY", "ftp://127.0.0.1:9")
    with pytest.raises(ConfigError, match="unsupported scheme"):
        Engine("http://api.example.test/v1")


def test_an_http_proxy_gets_the_absolute_url(server) -> None:
    from tests.cliutil import text_reply

    upstream = "http://upstream.invalid:8000/v1"
    server.route("POST", f"{upstream}/completions", text_reply([" via"]))

    async def go() -> RequestRecord:
        async with Engine(upstream, proxy=f"http://127.0.0.1:{server.port}") as engine:
            return await engine.request("POST", "completions", b"{}")

    record = run(go())
    assert record.error is None and record.status == 200
    assert server.requests[0].target == f"{upstream}/completions"


# --------------------------------------------------------------------------- TLS and CONNECT


@pytest.fixture
def https_streams(streams: StreamServer, tmp_path, monkeypatch: pytest.MonkeyPatch):
    from tests.test_doctor_tls import TLSFront, make_certificate

    cert, key = make_certificate(tmp_path, 30)
    front = TLSFront(cert, key, streams.port)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    yield front
    front.close()


class ConnectProxy(LoopbackListener):
    """An http:// proxy that only tunnels: CONNECT host:port, 200, then bytes both ways."""

    threaded = True

    def __init__(self) -> None:
        self.asked: list[bytes] = []
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            line = head.split(b"\r\n", 1)[0]
            self.asked.append(line)
            host, _, port = line.split(b" ")[1].rpartition(b":")
            with socket.create_connection((host.decode(), int(port))) as upstream:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                threading.Thread(target=self._pump, args=(upstream, conn), daemon=True).start()
                self._pump(conn, upstream)
                with contextlib.suppress(OSError):  # the client left: wake the other direction's recv
                    upstream.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _https(base: str, n: int = 3, **kw) -> tuple[list[RequestRecord], list[TextConsumer]]:
    consumers = [TextConsumer() for _ in range(n)]

    async def go() -> list[RequestRecord]:
        async with Engine(base, **kw) as engine:
            body = [json.dumps({"stream": k, "frames": 10}).encode() for k in range(n)]
            return list(await asyncio.gather(*(engine.request("POST", "completions", body[k], consumers[k]) for k in range(n))))

    return run(go()), consumers


@pytest.mark.parametrize("kernel_times", [False, True])
def test_https_streams_with_the_ca_from_ssl_cert_file(https_streams, kernel_times: bool) -> None:
    records, consumers = _https(https_streams.base_url, proxy=None, kernel_times=kernel_times)
    assert [r.error for r in records] == [None] * 3
    assert [c.texts for c in consumers] == [[frame_text(k, i) for i in range(10)] for k in range(3)]


def test_an_untrusted_certificate_is_a_connect_error(https_streams, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE")
    records, _ = _https(https_streams.base_url, n=1, proxy=None)
    assert isinstance(records[0].error, ConnectError) and "TLS" in records[0].error.message


@pytest.mark.parametrize("kernel_times", [False, True])
def test_https_through_an_http_proxy_uses_a_connect_tunnel(https_streams, kernel_times: bool) -> None:
    with ConnectProxy() as proxy:
        records, consumers = _https(https_streams.base_url, proxy=f"http://127.0.0.1:{proxy.port}", kernel_times=kernel_times)
        assert [r.error for r in records] == [None] * 3
        assert [c.texts for c in consumers] == [[frame_text(k, i) for i in range(10)] for k in range(3)]
        assert proxy.asked and all(line == b"CONNECT 127.0.0.1:%d HTTP/1.1" % https_streams.port for line in proxy.asked)


class Arrivals:
    """Notes the time the engine gives each read; the first read of all holds the loop 0.3 s, as a
    busy client would, while the other stream's bytes are already waiting."""

    held = False

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_head(self, head: http1.Head, now: float) -> None:
        self.times.append(now)
        if not Arrivals.held:
            Arrivals.held = True
            time.sleep(0.3)

    def on_data(self, data: bytes, now: float) -> bool:
        return False

    def on_end(self, now: float) -> None:
        pass


@pytest.mark.parametrize("kernel_times", [False, True])
def test_a_read_is_timed_when_it_arrived_not_when_its_turn_came(kernel_times: bool, loop_kind: str) -> None:
    """Two answers reach the client while its loop is busy, so one wait for events reports both;
    the one handled second waits 0.3 s behind the first and still gets the same time. With
    kernel_times that time is when the kernel received them, inside the busy stretch."""
    body = b'data: {"choices":[{"index":0,"text":"x"}]}\n\n'
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        asked = threading.Event()

        def serve() -> None:
            conns = [listener.accept()[0] for _ in range(2)]
            for conn in conns:
                conn.recv(65536)
            asked.set()
            time.sleep(0.1)  # the client's loop is blocked by now (below)
            for conn in conns:
                conn.sendall(answer)
            time.sleep(1)
            for conn in conns:
                conn.close()

        server = threading.Thread(target=serve, daemon=True)
        server.start()

        busy_until: list[float] = []

        async def go() -> tuple[list[RequestRecord], float]:
            async with Engine(f"http://127.0.0.1:{port}/v1", proxy=None, kernel_times=kernel_times) as engine:
                sent = asyncio.gather(*(engine.request("POST", "completions", b"{}", consumer) for consumer in consumers))
                while not asked.is_set():  # both requests are out
                    await asyncio.sleep(0.005)
                busy = time.perf_counter()
                time.sleep(0.4)  # a busy loop: both answers arrive meanwhile
                busy_until.extend([busy, time.perf_counter()])
                records = await sent
                return list(records), time.perf_counter()

        consumers = [Arrivals(), Arrivals()]
        Arrivals.held = False
        records, after = run(go())
        server.join(5)
    first, second = sorted(t for c in consumers for t in c.times)
    assert all(r.error is None for r in records)
    if loop_kind == "asyncio loop" and not kernel_times:  # what the engine's loop is for
        assert second - first >= 0.25, "without the engine's loop a read is stamped when its turn comes"
        return
    assert second - first < 0.1, "the second answer was stamped when its turn came, not when it arrived"
    assert all(r.headers is not None and r.headers <= after for r in records)
    start, end = busy_until
    if kernel_times:
        assert start < first <= second < end, "kernel times fall inside the busy stretch the answers came in"
    else:
        assert end <= first, "the loop learned of the answers when the busy stretch ended"


# --------------------------------------------------------------------------- the engine's loop


async def _idle_connection(engine: Engine):
    """The engine's one idle connection, once the body's end after [DONE] has been read (the
    request returns at [DONE])."""
    for _ in range(500):
        idle = [c for pool in engine._pools.values() for c in pool.idle]
        if idle:
            (conn,) = idle
            return conn
        await asyncio.sleep(0.01)
    raise AssertionError("no connection went back to the pool")


def test_plain_tcp_on_the_engine_loop_reads_through_its_socket_transport(streams: StreamServer, loop_kind: str) -> None:
    async def go() -> tuple[RequestRecord, object]:
        async with Engine(streams.base_url, proxy=None) as engine:
            record = await engine.request("POST", "completions", json.dumps({"stream": 0, "frames": 3}).encode(), TextConsumer())
            conn = await _idle_connection(engine)
            return record, conn.transport

    record, transport = run(go())
    assert record.error is None
    assert isinstance(transport, engine_loop.SocketTransport) == (loop_kind == "engine loop")


def test_https_keeps_asyncios_tls_transport(https_streams) -> None:
    async def go() -> object:
        async with Engine(https_streams.base_url, proxy=None) as engine:
            record = await engine.request("POST", "completions", json.dumps({"stream": 0, "frames": 3}).encode(), TextConsumer())
            assert record.error is None
            conn = await _idle_connection(engine)
            return conn.transport

    transport = run(go())
    assert transport is not None and not isinstance(transport, engine_loop.SocketTransport)


class SlowReader(LoopbackListener):
    """Reads nothing for 0.3 s (a large request fills the socket meanwhile), then the whole
    request; answers its body's length and SHA-256 as one event."""

    threaded = True

    def handle(self, conn: socket.socket) -> None:
        import hashlib

        with conn:
            time.sleep(0.3)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")).split(b":")[1])
            while len(body) < length:
                body += conn.recv(1 << 20)
            event = b'data: {"text": "%d %s"}\n\n' % (len(body), hashlib.sha256(body).hexdigest().encode())
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(event), event))


def test_a_request_larger_than_the_socket_takes_is_sent_whole() -> None:
    import hashlib

    body = bytes(range(256)) * (64 * 1024)  # 16 MiB
    with SlowReader() as srv:
        record, consumer = _one(srv.base_url, body=body, timeout=10)
    assert record.error is None
    assert consumer.texts == [f"{len(body)} {hashlib.sha256(body).hexdigest()}"]


class EndsBadly:
    """A consumer whose on_end raises."""

    ends = 0

    def on_head(self, head: http1.Head, now: float) -> None:
        pass

    def on_data(self, data: bytes, now: float) -> bool:
        return False

    def on_end(self, now: float) -> None:
        self.ends += 1
        raise RuntimeError("sink broke")


def test_a_consumer_that_raises_at_the_end_fails_its_request() -> None:
    """The request ends with the consumer's error, at once, instead of waiting for an end that has
    been (and the engine's loop does not call the failed protocol again and again at EOF)."""
    consumer = EndsBadly()
    with ExactAnswers(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nhello") as srv:

        async def go() -> BaseException | None:
            async with Engine(srv.base_url, proxy=None, timeout=5) as engine:
                try:
                    await asyncio.wait_for(engine.request("POST", "completions", b"{}", consumer), 3)
                except RuntimeError as exc:
                    return exc
            return None

        started = time.monotonic()
        error = run(go())
    assert str(error) == "sink broke" and consumer.ends == 1
    assert time.monotonic() - started < 2.5


def test_a_request_cancelled_while_its_end_waits_leaves_no_error_behind() -> None:
    """The answer's end (the server's close) is already there when the request is cancelled: the
    connection still ends its body, and nothing is set on the cancelled request."""
    from acs_cli.consumer import CompletionConsumer

    body = b'data: {"id":"x","choices":[{"index":0,"text":"hi"}]}\n\n'
    seen: list[object] = []
    with ExactAnswers(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n" + body, linger=0.2) as srv:

        async def go() -> None:
            asyncio.get_running_loop().set_exception_handler(lambda _, context: seen.append(context.get("exception")))
            consumer = CompletionConsumer()
            async with Engine(srv.base_url, proxy=None) as engine:
                task = asyncio.ensure_future(engine.request("POST", "completions", b"{}", consumer))
                while consumer.first_text is None:
                    await asyncio.sleep(0.01)
                task.cancel()
                time.sleep(0.4)  # the close arrives before the loop waits again
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await asyncio.sleep(0.05)

        run(go())
    assert seen == []
