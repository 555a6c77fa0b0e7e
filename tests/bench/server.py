"""A raw-socket loopback server for the benchmark: vLLM-shaped `POST /v1/completions` event streams.

Not a test and not a test fixture: `tests/bench/bench.py` starts one of these in its own process.

Routes (the prefix of the path picks the mode, so one base URL per mode works for every client):

- `GET  {prefix}/v1/models`       one model, `bench`
- `POST /v1/completions`          fast: the whole chunked body is built once per (frames, usage, prompt
                                  tokens), cached, and written with `sendall` in large slices, so the server
                                  is never the bottleneck; token texts cycle through `TOKENS`
- `POST /v1/chat/completions`     fast, as above, in vLLM's chat shape: a first chunk with only the role, then
                                  one `chat.completion.chunk` per token with `delta.content`
- `POST /paced/v1/completions`    paced: the headers, then one frame every `PACED_INTERVAL` s (the first
                                  after one interval), token i's text is ` [i]`
                                  (unique, so a reader can match it); `time.monotonic()` right after each
                                  frame's `sendall` is recorded in `BenchServer.paced_stamps`

Frames are vLLM's, byte for byte in shape: one HTTP chunk per `data: {...}\\n\\n` event, the last one with
`"finish_reason":"length"`, then (when the request asks `stream_options.include_usage`, as vLLM does) a
`"choices":[]` usage frame, then `data: [DONE]\\n\\n`. The number of frames is the request's `max_tokens`.

Run alone for manual poking: `python tests/bench/server.py [PORT]`.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time

MODEL = "bench"
ID = "cmpl-ae7c4833c82a33d6"
CREATED = 1767225600
# the fast mode's token cycle: varied lengths, one non-ASCII character (2 UTF-8 bytes)
TOKENS = (" the", " quick", " brown", " fox", " jumps", " over", " lazy", " café")
PACED_INTERVAL = 0.010
SLICE = 1 << 20  # bytes per sendall in fast mode

_HEAD = '{"id":"%s","object":"text_completion","created":%d,"model":"%s","choices":[{"index":0,"text":' % (
    ID,
    CREATED,
    MODEL,
)


def frame(text: str, finish: str | None = None) -> bytes:
    """One SSE event (`data: ...\\n\\n`) carrying one token, as vLLM writes it."""
    fin = "null" if finish is None else json.dumps(finish)
    body = (
        _HEAD
        + json.dumps(text, ensure_ascii=False)
        + ',"logprobs":null,"finish_reason":%s,"stop_reason":null,"prompt_token_ids":null,"token_ids":null}],"usage":null}'
        % fin
    )
    return b"data: " + body.encode() + b"\n\n"


_CHAT_HEAD = '{"id":"chat%s","object":"chat.completion.chunk","created":%d,"model":"%s","choices":[{"index":0,"delta":' % (ID, CREATED, MODEL)


def chat_frame(text: str, finish: str | None = None) -> bytes:
    """One chat SSE event carrying one token (`delta.content`), as vLLM writes it."""
    fin = "null" if finish is None else json.dumps(finish)
    body = _CHAT_HEAD + '{"content":%s},"logprobs":null,"finish_reason":%s,"stop_reason":null}]}' % (json.dumps(text, ensure_ascii=False), fin)
    return b"data: " + body.encode() + b"\n\n"


CHAT_ROLE = b"data: " + (_CHAT_HEAD + '{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}').encode() + b"\n\n"


def usage_frame(prompt_tokens: int, completion_tokens: int, chat: bool = False) -> bytes:
    body = (
        '{"id":"%s","object":"%s","created":%d,"model":"%s","choices":[],'
        '"usage":{"prompt_tokens":%d,"total_tokens":%d,"completion_tokens":%d,"prompt_tokens_details":null}}'
        % ("chat" + ID if chat else ID, "chat.completion.chunk" if chat else "text_completion", CREATED, MODEL, prompt_tokens, prompt_tokens + completion_tokens, completion_tokens)
    )
    return b"data: " + body.encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n" % len(data) + data + b"\r\n"


def prompt_tokens(prompt: str) -> int:
    return max(1, len(prompt.split()))


def token_text(i: int) -> str:
    return TOKENS[i % len(TOKENS)]


def expected_text(n: int) -> bytes:
    """What a correct client prints on stdout for an n-frame fast stream (UTF-8)."""
    cycle = "".join(TOKENS)
    full, rest = divmod(n, len(TOKENS))
    return (cycle * full + "".join(TOKENS[:rest])).encode()


def _stream_parts(n: int, usage: bool, ptoks: int, wrap, chat: bool = False) -> bytes:
    """The fast stream for n frames, each event passed through `wrap` (chunk() or identity)."""
    make = chat_frame if chat else frame
    cyc = [wrap(make(t)) for t in TOKENS]
    block = b"".join(cyc)
    parts: list[bytes] = [wrap(CHAT_ROLE)] if chat else []
    if n > 0:
        full, rest = divmod(n - 1, len(TOKENS))
        parts.append(block * full)
        parts.extend(cyc[:rest])
        parts.append(wrap(make(token_text(n - 1), "length")))
    if usage:
        parts.append(wrap(usage_frame(ptoks, n, chat)))
    parts.append(wrap(DONE))
    return b"".join(parts)


def expected_body(n: int, usage: bool = True, ptoks: int = 1, chat: bool = False) -> bytes:
    """The de-chunked response body of an n-frame fast stream: what `curl -N` / `acs --raw` print."""
    return _stream_parts(n, usage, ptoks, lambda b: b, chat)


RESPONSE_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream; charset=utf-8\r\n"
    b"transfer-encoding: chunked\r\n"
    b"server: acs-bench\r\n"
    b"\r\n"
)


class BenchServer:
    """Threaded raw-socket HTTP/1.1 server on 127.0.0.1 (random port unless given)."""

    def __init__(self, port: int = 0, paced_interval: float = PACED_INTERVAL) -> None:
        self.paced_interval = paced_interval
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._cache: dict[tuple[int, bool, int, bool], bytes] = {}
        self._cache_lock = threading.Lock()
        self._closed = False
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self.errors: list[str] = []
        self.requests: list[dict] = []  # decoded JSON bodies of POSTs, in order
        self.paced_stamps: list[list[float]] = []  # one list per paced request: monotonic time after frame i
        self._thread = threading.Thread(target=self._accept_loop, name="bench-accept", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def paced_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/paced/v1"

    def body(self, n: int, usage: bool = True, ptoks: int = 1, chat: bool = False) -> bytes:
        """The chunked fast-mode body (cached): build it before timing anything with `prepare`."""
        key = (n, usage, ptoks, chat)
        with self._cache_lock:
            data = self._cache.get(key)
            if data is None:
                data = _stream_parts(n, usage, ptoks, chunk, chat) + b"0\r\n\r\n"
                self._cache[key] = data
            return data

    prepare = body

    def drop_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    def close(self) -> None:
        self._closed = True
        try:
            self._sock.close()
        except OSError:
            pass
        with self._conns_lock:
            for c in list(self._conns):
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
        self._thread.join(timeout=2)

    # ------------------------------------------------------------------ internals

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._conns_lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name="bench-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0") or 0)
                while len(buf) < length:  # the full body before answering
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                body, buf = buf[:length], buf[length:]
                keep = self._route(conn, method, path.split("?", 1)[0], body)
                if not keep or headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, OSError):
            return  # the client left (killed on timeout, or stdout closed): not the server's fault
        except Exception as exc:  # a bug in the server: remember it, the bench reports it
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            with self._conns_lock:
                self._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    def _simple(self, conn: socket.socket, status: str, payload: dict) -> None:
        data = json.dumps(payload).encode()
        conn.sendall(
            b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % (status.encode(), len(data))
            + data
        )

    def _route(self, conn: socket.socket, method: str, path: str, body: bytes) -> bool:
        paced = path.startswith("/paced/")
        tail = path[len("/paced") :] if paced else path
        if method == "GET" and tail == "/v1/models":
            self._simple(
                conn,
                "200 OK",
                {"object": "list", "data": [{"id": MODEL, "object": "model", "created": CREATED, "owned_by": "bench"}]},
            )
            return True
        chat = tail == "/v1/chat/completions" and not paced
        if method == "POST" and (tail == "/v1/completions" or chat):
            try:
                req = json.loads(body or b"{}")
            except ValueError:
                self._simple(conn, "400 Bad Request", {"error": {"message": "body is not JSON"}})
                return True
            self.requests.append(req)
            n = int(req.get("max_tokens") or 16)
            usage = bool((req.get("stream_options") or {}).get("include_usage"))
            prompt = req.get("prompt") if not chat else (req.get("messages") or [{}])[-1].get("content")
            ptoks = prompt_tokens(prompt if isinstance(prompt, str) else "")
            if paced:
                self._paced(conn, n, usage, ptoks)
            else:
                data = self.body(n, usage, ptoks, chat)
                conn.sendall(RESPONSE_HEAD)
                view = memoryview(data)
                for i in range(0, len(data), SLICE):
                    conn.sendall(view[i : i + SLICE])
            return True
        self._simple(conn, "404 Not Found", {"error": {"message": f"no route {method} {path}"}})
        return True

    def _paced(self, conn: socket.socket, n: int, usage: bool, ptoks: int) -> None:
        stamps: list[float] = []
        self.paced_stamps.append(stamps)
        conn.sendall(RESPONSE_HEAD)
        start = time.monotonic()
        frames = [chunk(frame(f" [{i}]", "length" if i == n - 1 else None)) for i in range(n)]
        for i, data in enumerate(frames):  # frame i at start + (i+1) intervals: the first one is not glued to the headers
            delay = start + (i + 1) * self.paced_interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            conn.sendall(data)
            stamps.append(time.monotonic())
        tail = (chunk(usage_frame(ptoks, n)) if usage else b"") + chunk(DONE) + b"0\r\n\r\n"
        conn.sendall(tail)


def main() -> None:
    srv = BenchServer(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(f"fast:  {srv.base}\npaced: {srv.paced_base}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        srv.close()


if __name__ == "__main__":
    main()
