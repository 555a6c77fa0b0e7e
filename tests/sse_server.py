"""A scripted HTTP/1.1 server on loopback that replays responses byte-exactly.

Each `Reply` says what goes on the wire: status line, headers, body segments and how the body
ends. Every segment is written with its own ``sendall`` (as its own HTTP/1.1 chunk when the body
is chunked) on a TCP_NODELAY socket, so a client reading the stream sees separate reads.
The server runs in background threads (one per connection), keeps connections alive between
requests, and records every request, every segment write and every client disconnect it notices.
"""

from __future__ import annotations

import json as _json
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Union

from .scenarios import scenario_segments

__all__ = [
    "Reply",
    "RecordedRequest",
    "ScriptedServer",
    "vllm_frame",
    "usage_frame",
    "DONE",
]

END_MODES = ("chunked", "length", "abort", "hang", "close")

DONE = b"data: [DONE]\n\n"

# Identity used by vllm_frame(): a frame of vLLM v0.11.1 up to PR #40537 (key order id, object,
# created, model, choices, usage; compact JSON; `"usage":null` on every token frame).
VLLM_ID = "cmpl-ae7c4833c82a33d6"
VLLM_CREATED = 1767225600
VLLM_MODEL = "meta-llama/Llama-3.1-8B"


def _compact(obj: Any) -> bytes:
    return _json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def vllm_frame(
    text: str,
    index: int = 0,
    finish_reason: str | None = None,
    stop_reason: int | str | None = None,
    logprobs: dict | None = None,
    usage: dict | None = None,
    *,
    model: str = VLLM_MODEL,
    id: str = VLLM_ID,
) -> bytes:
    """One vLLM token frame, byte-identical to what vLLM v0.11.1+ sends (ends in ``\\n\\n``): a choice's
    keys are index, text, logprobs, finish_reason, stop_reason, prompt_token_ids, token_ids."""
    choice = {
        "index": index,
        "text": text,
        "logprobs": logprobs,
        "finish_reason": finish_reason,
        "stop_reason": stop_reason,
        "prompt_token_ids": None,
        "token_ids": None,
    }
    obj = {
        "id": id,
        "object": "text_completion",
        "created": VLLM_CREATED,
        "model": model,
        "choices": [choice],
        "usage": usage,
    }
    return b"data: " + _compact(obj) + b"\n\n"


def usage_frame(prompt_tokens: int, completion_tokens: int, *, model: str = VLLM_MODEL, id: str = VLLM_ID) -> bytes:
    """vLLM's final include_usage frame (``choices: []``, key order prompt, total, completion)."""
    obj = {
        "id": id,
        "object": "text_completion",
        "created": VLLM_CREATED,
        "model": model,
        "choices": [],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens,
        },
    }
    return b"data: " + _compact(obj) + b"\n\n"


@dataclass
class Reply:
    """One scripted HTTP response.

    end:
      "chunked"  chunked body, then the ``0\\r\\n\\r\\n`` terminator; the connection then stays
                 open for the next request unless ``keep_alive`` is False or the request said
                 ``connection: close``.
      "length"   ``content-length`` framing (sum of the segments); keep-alive as above.
      "abort"    chunked body, then the socket is closed WITHOUT the terminator.
      "hang"     chunked body, then nothing more: the socket stays open until the client
                 closes it (recorded in ``ScriptedServer.disconnects``) or the server closes.
      "close"    no framing header (``connection: close`` is added); the body ends when the
                 server closes the socket.
    The framing header (transfer-encoding / content-length) is added by the server and must
    not be in ``headers``. ``delay`` is slept before every segment after the first;
    ``first_delay`` before the status line. With ``one_byte_chunks`` every byte of every
    segment becomes its own segment (and ``delay`` applies between bytes).
    """

    status: int = 200
    reason: str = "OK"
    headers: list[tuple[str, str]] = field(
        default_factory=lambda: [("content-type", "text/event-stream; charset=utf-8")]
    )
    segments: list[bytes] = field(default_factory=list)
    end: str = "chunked"
    delay: float = 0.0
    first_delay: float = 0.0
    one_byte_chunks: bool = False
    keep_alive: bool = True

    def __post_init__(self) -> None:
        if self.end not in END_MODES:
            raise ValueError(f"end must be one of {END_MODES}, not {self.end!r}")
        self.segments = [s.encode("utf-8") if isinstance(s, str) else bytes(s) for s in self.segments]
        self.headers = [(str(k), str(v)) for k, v in self.headers]
        for k, _ in self.headers:
            if k.lower() in ("transfer-encoding", "content-length"):
                raise ValueError(f"{k} is derived from `end`; do not set it in headers")

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_scenario(cls, sc: dict, **kw: Any) -> Reply:
        """A Reply serving a scenario from tests/fixtures/wire_scenarios.json exactly."""
        args: dict[str, Any] = dict(
            status=sc["status"],
            reason=sc["reason"],
            headers=[tuple(h) for h in sc["headers"]],
            segments=scenario_segments(sc),
            end=sc["end"],
            one_byte_chunks=sc.get("one_byte_chunks", False),
        )
        args.update(kw)
        return cls(**args)

    @classmethod
    def sse(cls, frames: list[Union[bytes, str, dict]], *, done: bool = True, **kw: Any) -> Reply:
        """A 200 text/event-stream reply with one segment per frame.

        A dict becomes ``data: <compact JSON>\\n\\n``. A str/bytes that already ends in a blank
        line (``\\n\\n``, ``\\r\\n\\r\\n`` or ``\\r\\r``) is sent verbatim; any other str/bytes is
        wrapped as ``data: <it>\\n\\n`` (so ``"[DONE]"`` works). ``done=True`` (the default, as
        vLLM always sends it) appends ``data: [DONE]\\n\\n``.
        """
        segs: list[bytes] = []
        for f in frames:
            if isinstance(f, (dict, list)):
                segs.append(b"data: " + _compact(f) + b"\n\n")
                continue
            b = f.encode("utf-8") if isinstance(f, str) else bytes(f)
            if b.endswith((b"\n\n", b"\r\n\r\n", b"\r\r")):
                segs.append(b)
            else:
                segs.append(b"data: " + b + b"\n\n")
        if done:
            segs.append(DONE)
        return cls(segments=segs, **kw)

    @classmethod
    def json(cls, status: int, obj_or_bytes: Any, **kw: Any) -> Reply:
        """A JSON reply (compact JSON for objects, bytes as given) framed by content-length."""
        body = obj_or_bytes if isinstance(obj_or_bytes, (bytes, bytearray)) else _compact(obj_or_bytes)
        kw.setdefault("reason", _phrase(status))
        kw.setdefault("headers", [("content-type", "application/json")])
        kw.setdefault("end", "length")
        return cls(status=status, segments=[bytes(body)], **kw)

    def body(self) -> bytes:
        """The body bytes a client should receive (without HTTP framing)."""
        return b"".join(self.segments)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


@dataclass
class RecordedRequest:
    method: str
    target: str  # the request-target as sent, including any query string
    path: str  # target without the query string
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    index: int  # position in ScriptedServer.requests
    connection: int  # connection number (same number = same keep-alive connection)
    time: float  # time.monotonic() when the request was fully read

    def json(self) -> Any:
        return _json.loads(self.body)


RouteTarget = Union[Reply, list, Callable[[RecordedRequest], Reply]]


class _ClientGone(Exception):
    pass


class _Stopping(Exception):
    pass


class _Conn:
    def __init__(self, sock: socket.socket, number: int) -> None:
        self.sock = sock
        self.number = number
        self.buf = b""


class ScriptedServer:
    """Loopback HTTP/1.1 server answering routed requests with scripted `Reply` objects."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((host, 0))
        self._lsock.listen(64)
        self.host = host
        self.port: int = self._lsock.getsockname()[1]
        self.base_url = f"http://{host}:{self.port}/v1"
        self.origin = f"http://{host}:{self.port}"
        self.requests: list[RecordedRequest] = []
        self.disconnects: list[float] = []
        # (request index, time.monotonic()) just before each body segment is written
        self.segment_times: list[tuple[int, float]] = []
        self.errors: list[str] = []  # exceptions raised by callable routes, as text
        self._routes: dict[tuple[str, str], list] = {}
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._nconn = 0
        self._accept_thread = threading.Thread(target=self._accept_loop, name="scripted-accept", daemon=True)
        self._accept_thread.start()

    # ------------------------------------------------------------------ public API
    def route(self, method: str, path: str, reply: RouteTarget) -> None:
        """Answer ``method path`` (method ``"*"`` = any) with a Reply, a list of Replies
        (successive requests get successive replies; the last one repeats) or a callable."""
        if isinstance(reply, list):
            if not reply:
                raise ValueError("empty reply list")
            state: list = ["list", list(reply), 0]
        elif isinstance(reply, Reply):
            state = ["one", reply]
        elif callable(reply):
            state = ["call", reply]
        else:
            raise TypeError(f"cannot route to {reply!r}")
        with self._lock:
            self._routes[(method.upper(), path)] = state

    def url(self, path: str) -> str:
        """Absolute URL for a server path such as ``/v1/completions``."""
        return self.origin + path

    def wait_for_disconnect(self, timeout: float, count: int = 1) -> bool:
        """Wait until at least ``count`` client disconnects have been noticed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.disconnects) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def wait_for_requests(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        try:
            self._lsock.shutdown(socket.SHUT_RDWR)  # wakes the accept loop's select on Linux
        except OSError:
            pass
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._accept_thread.join(timeout=5)
        try:
            self._lsock.close()
        except OSError:
            pass
        for t in list(self._threads):
            t.join(timeout=5)

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([self._lsock], [], [], 0.05)
            except (OSError, ValueError):
                return
            if not r:
                continue
            try:
                sock, _ = self._lsock.accept()
            except OSError:
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._nconn += 1
                conn = _Conn(sock, self._nconn)
                self._conns.add(sock)
            t = threading.Thread(target=self._serve_conn, args=(conn,), name=f"scripted-conn-{conn.number}", daemon=True)
            self._threads.append(t)
            t.start()

    def _serve_conn(self, conn: _Conn) -> None:
        try:
            while not self._stop.is_set():
                req = self._read_request(conn)
                if req is None:
                    return
                reply = self._pick_reply(req)
                keep = self._send_reply(conn, req, reply)
                if not keep:
                    return
        except (_ClientGone, _Stopping, OSError):
            return
        finally:
            with self._lock:
                self._conns.discard(conn.sock)
            try:
                conn.sock.close()
            except OSError:
                pass

    # --- reading
    def _recv_some(self, conn: _Conn) -> bytes:
        """Block (polling the stop flag) until some bytes arrive; b"" on EOF."""
        while True:
            if self._stop.is_set():
                raise _Stopping
            r, _, _ = select.select([conn.sock], [], [], 0.05)
            if r:
                try:
                    return conn.sock.recv(65536)
                except ConnectionError:
                    return b""

    def _read_request(self, conn: _Conn) -> RecordedRequest | None:
        while b"\r\n\r\n" not in conn.buf:
            data = self._recv_some(conn)
            if not data:
                return None
            conn.buf += data
            if len(conn.buf) > 1 << 20:
                return None
        head, conn.buf = conn.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = (lines[0].split(" ", 2) + ["", ""])[:3]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line or ":" not in line:
                continue
            k, v = line.split(":", 1)
            k, v = k.strip().lower(), v.strip()
            headers[k] = f"{headers[k]}, {v}" if k in headers else v
        if headers.get("expect", "").lower() == "100-continue":
            self._sendall(conn, b"HTTP/1.1 100 Continue\r\n\r\n", None)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked_body(conn)
        else:
            n = int(headers.get("content-length", "0") or 0)
            while len(conn.buf) < n:
                data = self._recv_some(conn)
                if not data:
                    return None
                conn.buf += data
            body, conn.buf = conn.buf[:n], conn.buf[n:]
        with self._cond:
            req = RecordedRequest(
                method=method.upper(),
                target=target,
                path=target.split("?", 1)[0],
                headers=headers,
                body=body,
                index=len(self.requests),
                connection=conn.number,
                time=time.monotonic(),
            )
            self.requests.append(req)
            self._cond.notify_all()
        return req

    def _read_line(self, conn: _Conn) -> bytes:
        while b"\r\n" not in conn.buf:
            data = self._recv_some(conn)
            if not data:
                raise _ClientGone
            conn.buf += data
        line, conn.buf = conn.buf.split(b"\r\n", 1)
        return line

    def _read_chunked_body(self, conn: _Conn) -> bytes:
        body = b""
        while True:
            size = int(self._read_line(conn).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self._read_line(conn):  # trailers, up to the blank line
                    pass
                return body
            while len(conn.buf) < size + 2:
                data = self._recv_some(conn)
                if not data:
                    raise _ClientGone
                conn.buf += data
            body += conn.buf[:size]
            conn.buf = conn.buf[size + 2 :]

    # --- routing
    def _pick_reply(self, req: RecordedRequest) -> Reply:
        with self._lock:
            state = self._routes.get((req.method, req.path)) or self._routes.get(("*", req.path))
            if state is None:
                return Reply.json(
                    404,
                    {
                        "error": {
                            "message": f"no route for {req.method} {req.path}",
                            "type": "NotFoundError",
                            "param": None,
                            "code": 404,
                        }
                    },
                )
            kind = state[0]
            if kind == "one":
                return state[1]
            if kind == "list":
                replies, i = state[1], state[2]
                state[2] = i + 1
                return replies[min(i, len(replies) - 1)]
            fn = state[1]
        try:
            reply = fn(req)
            if not isinstance(reply, Reply):
                raise TypeError(f"route callable returned {reply!r}, not a Reply")
            return reply
        except Exception as exc:  # surface test bugs instead of hanging the client
            import traceback

            text = traceback.format_exc()
            with self._lock:
                self.errors.append(text)
            return Reply(
                status=500,
                reason="Internal Server Error",
                headers=[("content-type", "text/plain; charset=utf-8")],
                segments=[f"route callable failed: {exc!r}".encode()],
                end="length",
            )

    # --- writing
    def _note_disconnect(self) -> None:
        with self._cond:
            self.disconnects.append(time.monotonic())
            self._cond.notify_all()

    def _sendall(self, conn: _Conn, data: bytes, req: RecordedRequest | None) -> None:
        if self._stop.is_set():
            raise _Stopping
        try:
            conn.sock.sendall(data)
        except OSError:
            if self._stop.is_set():
                raise _Stopping
            self._note_disconnect()
            raise _ClientGone

    def _peer_closed(self, conn: _Conn) -> bool:
        """True if the client has closed its end (a readable socket with nothing to read)."""
        try:
            data = conn.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        return data == b""

    def _pause(self, conn: _Conn, seconds: float) -> None:
        """Sleep, but notice (and record) a client that closes the connection meanwhile."""
        deadline = time.monotonic() + seconds
        watching = True
        while True:
            if self._stop.is_set():
                raise _Stopping
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if not watching:
                time.sleep(min(remaining, 0.05))
                continue
            r, _, _ = select.select([conn.sock], [], [], min(remaining, 0.05))
            if r:
                if self._peer_closed(conn):
                    self._note_disconnect()
                    raise _ClientGone
                watching = False  # the client sent data early (pipelining); leave it for later

    def _hang(self, conn: _Conn) -> None:
        while True:
            if self._stop.is_set():
                raise _Stopping
            r, _, _ = select.select([conn.sock], [], [], 0.05)
            if not r:
                continue
            if self._peer_closed(conn):
                self._note_disconnect()
                raise _ClientGone
            try:  # unexpected client bytes while hanging: drop them, keep hanging
                conn.sock.recv(65536)
            except OSError:
                self._note_disconnect()
                raise _ClientGone

    def _send_reply(self, conn: _Conn, req: RecordedRequest, reply: Reply) -> bool:
        """Write the reply; return True if the connection may serve another request."""
        segments = reply.segments
        if reply.one_byte_chunks:
            segments = [bytes([b]) for seg in segments for b in seg]
        head = [f"HTTP/1.1 {reply.status} {reply.reason}"]
        head += [f"{k}: {v}" for k, v in reply.headers]
        names = {k.lower() for k, _ in reply.headers}
        chunked = reply.end in ("chunked", "abort", "hang")
        if chunked:
            head.append("transfer-encoding: chunked")
        elif reply.end == "length":
            head.append(f"content-length: {sum(len(s) for s in segments)}")
        keep = (
            reply.end in ("chunked", "length")
            and reply.keep_alive
            and req.headers.get("connection", "").lower() != "close"
            and ("connection", "close") not in {(k.lower(), v.lower()) for k, v in reply.headers}
        )
        if reply.end == "close" or (not keep and reply.end in ("chunked", "length")):
            if "connection" not in names:
                head.append("connection: close")
        if reply.first_delay:
            self._pause(conn, reply.first_delay)
        self._sendall(conn, ("\r\n".join(head) + "\r\n\r\n").encode("latin-1"), req)
        for i, seg in enumerate(segments):
            if i and reply.delay:
                self._pause(conn, reply.delay)
            if chunked:
                if not seg:
                    continue  # an empty chunk would be the terminator
                data = b"%x\r\n" % len(seg) + seg + b"\r\n"
            else:
                data = seg
            with self._lock:  # recorded before the write so a client never sees data first
                self.segment_times.append((req.index, time.monotonic()))
            self._sendall(conn, data, req)
        if reply.end in ("chunked",):
            self._sendall(conn, b"0\r\n\r\n", req)
        elif reply.end == "hang":
            self._hang(conn)
            return False
        if reply.end in ("abort", "close"):
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return False
        return keep
