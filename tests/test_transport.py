"""The HTTP/1.1 transport against hand-written response bytes: every framing, every malformation.

Each test serves exact bytes from a raw loopback socket and reads them through an httpx Client
using acs's FastTransport, the way acs does.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
import zlib
from collections.abc import Iterator

import httpx
import pytest

from acs_cli.transport import (
    FastTransport,
    MalformedResponseError,
    content_encoded,
    wire_bytes,
)
from tests.cliutil import ExactAnswers, LoopbackListener
from tests.sse_server import Reply


class RawServer:
    """Answers one request with the given byte segments (a pause between each), then closes."""

    def __init__(self, segments: list[bytes], pause: float = 0.01, close: bool = True) -> None:
        self.segments = segments
        self.pause = pause
        self.close_after = close
        self.request = b""
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1/completions"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:  # closed before any client came (the test never connected)
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            while b"\r\n\r\n" not in self.request:
                self.request += conn.recv(65536)
            head, _, body = self.request.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            while len(body) < length:
                body += conn.recv(65536)
            self.request = head + b"\r\n\r\n" + body
            try:
                for seg in self.segments:
                    conn.sendall(seg)
                    time.sleep(self.pause)
                if not self.close_after:
                    time.sleep(5)
            except OSError:
                pass

    def stop(self) -> None:
        self.sock.close()


@pytest.fixture
def raw_server() -> Iterator[type[RawServer]]:
    servers: list[RawServer] = []

    def make(*args: object, **kw: object) -> RawServer:
        srv = RawServer(*args, **kw)  # type: ignore[arg-type]
        servers.append(srv)
        return srv

    yield make  # type: ignore[misc]
    for srv in servers:
        srv.stop()


def fetch(url: str, read_timeout: float = 5.0) -> tuple[httpx.Response, list[bytes]]:
    with httpx.Client(transport=FastTransport(), timeout=httpx.Timeout(read_timeout, connect=5.0)) as client:
        request = client.build_request("POST", url, content=b'{"prompt":"hi"}', headers={"Content-Type": "application/json"})
        response = client.send(request, stream=True)
        try:
            blocks = list(response.iter_raw())
        finally:
            response.close()
    return response, blocks


HEAD_CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_request_is_sent_as_http11_with_its_body(raw_server) -> None:
    srv = raw_server([HEAD_CHUNKED + b"0\r\n\r\n"])
    fetch(srv.url)
    assert srv.request.startswith(b"POST /v1/completions HTTP/1.1\r\n")
    assert b"\r\nhost: 127.0.0.1:" in srv.request.lower()
    assert srv.request.endswith(b'\r\n\r\n{"prompt":"hi"}')


def test_chunked_body_is_decoded_exactly(raw_server) -> None:
    srv = raw_server([HEAD_CHUNKED, b"5\r\nhello\r\n", b"6\r\n world\r\n", b"0\r\n\r\n"])
    response, blocks = fetch(srv.url)
    assert response.status_code == 200
    assert b"".join(blocks) == b"hello world"


def test_chunk_extensions_trailers_and_upper_case_hex(raw_server) -> None:
    body = b"A;name=value\r\n0123456789\r\n1 \r\n!\r\n0\r\nX-Trailer: yes\r\n\r\n"
    srv = raw_server([HEAD_CHUNKED + body])
    _, blocks = fetch(srv.url)
    assert b"".join(blocks) == b"0123456789!"


@pytest.mark.parametrize("cut", [1, 2, 3, 7, 8, 9])
def test_chunk_framing_split_anywhere(raw_server, cut: int) -> None:
    stream = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    srv = raw_server([HEAD_CHUNKED, stream[:cut], stream[cut:]])
    _, blocks = fetch(srv.url)
    assert b"".join(blocks) == b"hello world"


def test_a_large_chunk_arrives_in_pieces_as_it_comes(raw_server) -> None:
    data = b"x" * 300_000
    payload = b"%x\r\n" % len(data) + data + b"\r\n0\r\n\r\n"
    srv = raw_server([HEAD_CHUNKED] + [payload[i : i + 50_000] for i in range(0, len(payload), 50_000)])
    _, blocks = fetch(srv.url)
    assert b"".join(blocks) == data
    assert len(blocks) > 1  # handed over as it arrived, not held until the whole chunk is in


def test_all_chunks_of_one_read_come_as_one_block(raw_server) -> None:
    frames = b"".join(b"3\r\nabc\r\n" for _ in range(100))
    srv = raw_server([HEAD_CHUNKED + frames + b"0\r\n\r\n"])
    _, blocks = fetch(srv.url)
    assert b"".join(blocks) == b"abc" * 100
    assert len(blocks) < 10


@pytest.mark.parametrize("size", [b"zz", b"-5", b"", b"5 5"])
def test_malformed_chunk_size_is_a_protocol_error(raw_server, size: bytes) -> None:
    srv = raw_server([HEAD_CHUNKED + size + b"\r\nhello\r\n0\r\n\r\n"])
    with pytest.raises(httpx.RemoteProtocolError):
        fetch(srv.url)


def test_chunk_data_without_its_crlf_is_a_protocol_error(raw_server) -> None:
    srv = raw_server([HEAD_CHUNKED + b"5\r\nhelloXX0\r\n\r\n"])
    with pytest.raises(httpx.RemoteProtocolError):
        fetch(srv.url)


def test_connection_closed_mid_chunked_body(raw_server) -> None:
    srv = raw_server([HEAD_CHUNKED, b"5\r\nhello\r\n"])
    with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
        fetch(srv.url)


def test_content_length_body(raw_server) -> None:
    srv = raw_server([b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello", b" world"], close=False)
    _, blocks = fetch(srv.url)
    assert b"".join(blocks) == b"hello world"


def test_content_length_body_cut_short(raw_server) -> None:
    srv = raw_server([b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nhello"])
    with pytest.raises(httpx.RemoteProtocolError):
        fetch(srv.url)


def test_body_delimited_by_close(raw_server) -> None:
    srv = raw_server([b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n", b"data: a\n\n", b"data: b\n\n"])
    _, blocks = fetch(srv.url)
    assert b"".join(blocks) == b"data: a\n\ndata: b\n\n"


def test_interim_100_continue_is_skipped(raw_server) -> None:
    srv = raw_server([b"HTTP/1.1 100 Continue\r\n\r\n", HEAD_CHUNKED + b"2\r\nok\r\n0\r\n\r\n"])
    response, blocks = fetch(srv.url)
    assert response.status_code == 200 and b"".join(blocks) == b"ok"


def test_headers_keep_their_case_and_order(raw_server) -> None:
    srv = raw_server([b"HTTP/1.1 200 OK\r\nX-Accel-Buffering: no\r\nContent-Type: text/event-stream\r\nContent-Length: 0\r\n\r\n"])
    response, _ = fetch(srv.url)
    assert response.headers.raw[0] == (b"X-Accel-Buffering", b"no")
    assert response.reason_phrase == "OK" and response.http_version == "HTTP/1.1"


def test_headers_larger_than_64_kib_are_refused(raw_server) -> None:
    huge = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Filler-%d: %s\r\n" % (i, b"y" * 1000) for i in range(200))
    srv = raw_server([huge[i : i + 16384] for i in range(0, len(huge), 16384)], close=False)
    started = time.monotonic()
    with pytest.raises(httpx.RemoteProtocolError, match="64 KiB"):
        fetch(srv.url)
    assert time.monotonic() - started < 3


def test_no_answer_at_all(raw_server) -> None:
    srv = raw_server([])
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        fetch(srv.url)


def test_malformed_status_line(raw_server) -> None:
    srv = raw_server([b"SPDY/9 what\r\n\r\n"])
    with pytest.raises(httpx.RemoteProtocolError, match="status line"):
        fetch(srv.url)


def test_read_timeout_between_chunks(raw_server) -> None:
    srv = raw_server([HEAD_CHUNKED, b"5\r\nhello\r\n"], close=False)
    with pytest.raises(httpx.ReadTimeout):
        fetch(srv.url, read_timeout=0.5)


def test_connection_refused_is_a_connect_error() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(httpx.ConnectError):
        fetch(f"http://127.0.0.1:{port}/v1/completions")


@pytest.mark.parametrize("value", [b"a\r\nX-Evil: 1", b"a\nb", b"a\x00b"])
def test_a_header_value_with_a_line_break_is_never_sent(raw_server, value: bytes) -> None:
    srv = raw_server([HEAD_CHUNKED + b"0\r\n\r\n"])
    with httpx.Client(transport=FastTransport()) as client:
        request = client.build_request("GET", srv.url)
        request.headers["Authorization"] = value.decode("latin-1")
        with pytest.raises(httpx.LocalProtocolError) as caught:
            client.send(request)
    assert value.decode("latin-1") not in str(caught.value)


# --------------------------------------------------------------------------- hostile heads

CRLF_STREAM = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\nContent-Type: text/event-stream\nTransfer-Encoding: chunked\n\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\nTransfer-Encoding: chunked\r\n\n",
        b"HTTP/1.1 200 OK\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\n\r\n",
    ],
)
def test_a_bare_lf_head_before_a_crlf_body_loses_nothing(raw_server, head: bytes) -> None:
    srv = raw_server([head + CRLF_STREAM])
    response, blocks = fetch(srv.url)
    assert response.headers["content-type"] == "text/event-stream"
    assert b"".join(blocks) == b"hello world"


MALFORMED_HEADS = [
    b"HTTP/1.1 20 OK\r\n\r\n",
    b"HTTP/2 200 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n folded-first\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    b"<html>not http</html>",
]


@pytest.mark.parametrize("head", MALFORMED_HEADS)
def test_a_malformed_head_raises_the_malformed_response_error(raw_server, head: bytes) -> None:
    srv = raw_server([head], close=False)
    started = time.monotonic()
    with pytest.raises(MalformedResponseError):
        fetch(srv.url)
    assert time.monotonic() - started < 3  # at once, not at the read timeout


@pytest.mark.parametrize("body", [b"zz\r\nhello\r\n0\r\n\r\n", b"5\r\nhelloXX", b"0\r\n" + b"X-T: " + b"y" * 20000 + b"\r\n\r\n"])
def test_malformed_chunk_framing_raises_the_malformed_response_error(raw_server, body: bytes) -> None:
    srv = raw_server([HEAD_CHUNKED + body], close=False)
    with pytest.raises(MalformedResponseError):
        fetch(srv.url)


def test_a_head_trickled_byte_by_byte_cannot_outlast_the_read_timeout(raw_server) -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"y" * 200 + b"\r\n\r\n"
    srv = raw_server([bytes([b]) for b in head], pause=0.05)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        fetch(srv.url, read_timeout=0.5)
    assert time.monotonic() - started < 2.5  # each byte came in time; the head as a whole did not


def test_slow_endless_interim_answers_cannot_outlast_the_read_timeout(raw_server) -> None:
    srv = raw_server([b"HTTP/1.1 100 Continue\r\n\r\n"] * 12, pause=0.2)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        fetch(srv.url, read_timeout=0.7)
    assert time.monotonic() - started < 2.5


def test_fast_endless_interim_answers_are_a_protocol_error(raw_server) -> None:
    srv = raw_server([b"HTTP/1.1 100 Continue\r\n\r\n" * 40], close=False)
    with pytest.raises(MalformedResponseError, match="interim"):
        fetch(srv.url)


def test_framing_reads_alone_do_not_restart_the_read_timeout(raw_server) -> None:
    # a chunk-size line trickled byte by byte carries no payload: the wait is bounded as a whole
    srv = raw_server([HEAD_CHUNKED, b"5\r\nhello\r\n"] + [b"1"] * 40, pause=0.05, close=False)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        fetch(srv.url, read_timeout=0.5)
    assert time.monotonic() - started < 2.0


# --------------------------------------------------------------------------- early answers


class EarlyAnswer(LoopbackListener):
    """Reads the request head only, answers at once, then (with `close`) closes without reading
    the body, as a server refusing a too-large or unauthorised request does."""

    def __init__(self, answer: bytes, close: bool) -> None:
        self.answer = answer
        self.close_after = close
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            conn.sendall(self.answer)
            if not self.close_after:  # keep the connection open (not reading the body on purpose) until the client goes
                conn.settimeout(3)
                with contextlib.suppress(OSError):
                    while conn.recv(1 << 20):
                        pass


@pytest.mark.parametrize("close", [True, False])
@pytest.mark.parametrize("status", [b"401 Unauthorized", b"413 Content Too Large"])
def test_an_answer_sent_while_the_request_body_is_still_going_out_is_read(close: bool, status: bytes) -> None:
    message = b'{"error":{"message":"go away"}}'
    answer = b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(message) + message
    with EarlyAnswer(answer, close) as srv, httpx.Client(transport=FastTransport(), timeout=httpx.Timeout(5.0)) as client:
        response = client.post(srv.base_url + "/completions", content=b"x" * (8 << 20))
    assert response.status_code == int(status[:3]) and response.content == message


# --------------------------------------------------------------------------- keep-alive


def test_sequential_requests_share_one_connection(server) -> None:
    server.route("GET", "/v1/models", Reply.json(200, {"data": [{"id": "m"}]}))
    server.route("POST", "/v1/completions", Reply.sse([b"data: x\n\n"]))
    transport = FastTransport()
    with httpx.Client(transport=transport) as client:
        assert client.get(server.url("/v1/models")).json() == {"data": [{"id": "m"}]}
        with client.stream("POST", server.url("/v1/completions"), content=b"{}") as response:
            assert b"".join(response.iter_raw()) == b"data: x\n\ndata: [DONE]\n\n"
        client.get(server.url("/v1/models"))
    assert [r.connection for r in server.requests] == [1, 1, 1]
    assert transport.connections_opened == 1


def test_the_model_lookup_and_the_completion_use_one_connection(server) -> None:
    from tests.cliutil import text_reply
    from tests.helpers import run_acs

    server.route("GET", "/v1/models", Reply.json(200, {"data": [{"id": "only"}]}))
    server.route("POST", "/v1/completions", text_reply([" one", " connection"]))
    r = run_acs(["complete", "hi"], env={"ACS_API_BASE": server.base_url})
    assert r.returncode == 0, r.stderr
    assert r.stdout == " one connection"
    assert [(q.method, q.connection) for q in server.requests] == [("GET", 1), ("POST", 1)]


@pytest.mark.parametrize(
    "reply",
    [
        Reply.json(200, {"a": 1}, headers=[("content-type", "application/json"), ("connection", "close")]),
        Reply.json(200, {"a": 1}, keep_alive=False),
        Reply(segments=[b"data: x\n\n"], end="close"),
    ],
)
def test_a_connection_the_server_closes_is_not_reused(server, reply: Reply) -> None:
    server.route("GET", "/v1/models", reply)
    transport = FastTransport()
    with httpx.Client(transport=transport) as client:
        client.get(server.url("/v1/models")).read()
        client.get(server.url("/v1/models")).read()
    assert transport.connections_opened == 2


def test_a_body_not_read_to_its_end_closes_its_connection(server) -> None:
    server.route("POST", "/v1/completions", Reply.sse([b"data: x\n\n"] * 50, delay=0.01))
    transport = FastTransport()
    with httpx.Client(transport=transport) as client:
        with client.stream("POST", server.url("/v1/completions"), content=b"{}") as response:
            next(response.iter_raw())
        assert server.wait_for_disconnect(5)
        with client.stream("POST", server.url("/v1/completions"), content=b"{}") as response:
            response.read()
    assert transport.connections_opened == 2


class ClosesIdle(LoopbackListener):
    """Answers the first request on each connection with a keep-alive response, then drops the
    connection unanswered at the next request: a stale pooled connection. With `always`, every
    connection is dropped at once, unanswered."""

    threaded = True

    def __init__(self, always: bool = False) -> None:
        self.always = always
        self.accepted = 0
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        self.accepted += 1
        with conn:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            if self.always:
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            try:
                conn.recv(4096)  # the next request on this connection: dropped unanswered
            except OSError:
                pass


def test_a_stale_pooled_connection_is_replaced_transparently() -> None:
    with ClosesIdle() as srv:
        transport = FastTransport()
        with httpx.Client(transport=transport) as client:
            assert client.get(srv.base_url + "/models").content == b"ok"
            assert client.post(srv.base_url + "/completions", content=b"{}").content == b"ok"
        assert srv.accepted == 2


def test_a_fresh_connection_that_fails_is_not_retried() -> None:
    with (
        ClosesIdle(always=True) as srv,
        httpx.Client(transport=FastTransport()) as client,
        pytest.raises(httpx.RemoteProtocolError, match="without sending a response"),
    ):
        client.get(srv.base_url + "/models")
    assert srv.accepted == 1


# --------------------------------------------------------------------------- content codings

SSE = b"".join(b"data: {\"text\": \"token %d\"}\n\n" % i for i in range(200))


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
@pytest.mark.parametrize("size", [1, 7, 64])
def test_a_compressed_stream_is_decoded_and_the_wire_bytes_stay_available(raw_server, coding: str, size: int) -> None:
    data = gzip.compress(SSE) if coding == "gzip" else zlib.compress(SSE)
    head = HEAD_CHUNKED.replace(b"\r\n\r\n", f"\r\nContent-Encoding: {coding}\r\n\r\n".encode())
    body = b"".join(b"%x\r\n" % len(data[i : i + size]) + data[i : i + size] + b"\r\n" for i in range(0, len(data), size))
    srv = raw_server([head + body + b"0\r\n\r\n"])
    _, blocks = fetch(srv.url)
    assert b"".join(blocks) == SSE
    srv2 = raw_server([head + body + b"0\r\n\r\n"])
    with httpx.Client(transport=FastTransport()) as client, client.stream("POST", srv2.url, content=b"{}") as response:
        assert content_encoded(response)
        assert b"".join(wire_bytes(response)) == data


# --------------------------------------------------------------------------- through acs




def acs(base: str, *args: str, input: bytes | None = None):
    from tests.helpers import run_acs

    return run_acs(["complete", "-m", "m", *args], env={"ACS_API_BASE": base}, input=input)


@pytest.mark.parametrize("head", [MALFORMED_HEADS[0], MALFORMED_HEADS[4], MALFORMED_HEADS[7], MALFORMED_HEADS[-1]])
def test_acs_reports_a_malformed_head_as_a_protocol_error_without_retrying(head: bytes) -> None:
    from tests.cliutil import assert_failure

    with ExactAnswers(head) as srv:
        r = acs(srv.base_url, "--retries", "2", "hi")
        message, hint = assert_failure(r, 11)
        assert "malformed HTTP response" in message and hint
        assert srv.accepted == 1


def test_acs_keeps_every_frame_after_a_bare_lf_head() -> None:
    from tests.cliutil import frames

    body = b"".join(frames([" one", " two"])) + b"data: [DONE]\n\n"
    stream = body.replace(b"\n", b"\r\n")
    answer = b"HTTP/1.1 200 OK\nContent-Type: text/event-stream\nTransfer-Encoding: chunked\n\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(stream), stream)
    with ExactAnswers(answer) as srv:
        r = acs(srv.base_url, "hi")
    assert r.returncode == 0, r.stderr
    assert r.stdout == " one two"


def test_acs_decodes_a_compressed_event_stream() -> None:
    from tests.cliutil import frames

    data = gzip.compress(b"".join(frames([" squeezed", " text"])) + b"data: [DONE]\n\n")
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
    pieces = b"".join(b"%x\r\n%s\r\n" % (len(data[i : i + 5]), data[i : i + 5]) for i in range(0, len(data), 5))
    with ExactAnswers(head + pieces + b"0\r\n\r\n") as srv:
        r = acs(srv.base_url, "hi")
    assert r.returncode == 0, r.stderr
    assert r.stdout == " squeezed text"


@pytest.mark.parametrize("status, exit_status", [(b"413 Content Too Large", 7), (b"401 Unauthorized", 6)])
@pytest.mark.parametrize("close", [True, False])
def test_acs_shows_an_answer_sent_before_the_request_was_read(status: bytes, exit_status: int, close: bool) -> None:
    from tests.cliutil import assert_failure

    message = b'{"error":{"message":"refused before reading the prompt","type":"invalid_request_error"}}'
    answer = b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(message), message)
    with EarlyAnswer(answer, close=close) as srv:
        r = acs(srv.base_url, input=b"word " * 1_000_000)
    shown, _ = assert_failure(r, exit_status)
    assert status[:3].decode() in shown and "refused before reading the prompt" in shown
