"""The batch bench's server: many short completions a second from one epoll loop.

    python tests/bench/batch_server.py   # prints its port on stdout, serves until stdin closes

`POST /v1/completions` (keep-alive) answers `max_tokens` tokens whose text is a function of the
prompt (`answer_text`), so a client's results can be checked line by line: with `"stream": true`
a vLLM-shaped event stream (one HTTP chunk per frame, then the usage frame when asked, then
[DONE]); otherwise the non-streaming `text_completion` object. Each answer goes out in one
send: the batch bench measures many short requests, not one long stream.

`GET /stats` answers this process's CPU seconds, so the bench can show the server was not the
bottleneck.
"""

from __future__ import annotations

import json
import os
import resource
import select
import socket
import sys
import threading

MODEL = "bench"


def answer_text(prompt: str, max_tokens: int) -> str:
    return prompt[::-1] + " x" * max(0, max_tokens - 1)


def _frame(obj: dict) -> bytes:
    data = b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


def streamed(prompt: str, max_tokens: int, usage: bool) -> bytes:
    pieces = [prompt[::-1]] + [" x"] * max(0, max_tokens - 1)
    out = [b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"]
    for i, piece in enumerate(pieces):
        finish = "length" if i == len(pieces) - 1 else None
        choice = {"index": 0, "text": piece, "logprobs": None, "finish_reason": finish, "stop_reason": None}
        out.append(_frame({"id": "cmpl-b", "object": "text_completion", "created": 1, "model": MODEL, "choices": [choice], "usage": None}))
    if usage:
        tokens = {"prompt_tokens": len(prompt) // 4 + 1, "total_tokens": len(prompt) // 4 + 1 + len(pieces), "completion_tokens": len(pieces)}
        out.append(_frame({"id": "cmpl-b", "object": "text_completion", "created": 1, "model": MODEL, "choices": [], "usage": tokens}))
    out.append(b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
    return b"".join(out)


def document(prompt: str, max_tokens: int) -> bytes:
    text = answer_text(prompt, max_tokens)
    usage = {"prompt_tokens": len(prompt) // 4 + 1, "total_tokens": len(prompt) // 4 + 1 + max_tokens, "completion_tokens": max_tokens}
    choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "length", "stop_reason": None}
    body = json.dumps({"id": "cmpl-b", "object": "text_completion", "created": 1, "model": MODEL, "choices": [choice], "usage": usage}).encode()
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


def respond(head: bytes, body: bytes) -> bytes:
    if head.startswith(b"GET /stats"):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        data = json.dumps({"cpu": usage.ru_utime + usage.ru_stime}).encode()
        return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(data), data)
    req = json.loads(body or b"{}")
    prompt = req.get("prompt") if isinstance(req.get("prompt"), str) else ""
    max_tokens = int(req.get("max_tokens") or 16)
    if req.get("stream"):
        return streamed(prompt, max_tokens, bool((req.get("stream_options") or {}).get("include_usage")))
    return document(prompt, max_tokens)


def take_requests(buf: bytearray) -> list[bytes]:
    """Answers to the whole requests at the front of buf (removed from it)."""
    answers = []
    while True:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return answers
        head = bytes(buf[:end])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(buf) < end + 4 + length:
            return answers
        body = bytes(buf[end + 4 : end + 4 + length])
        del buf[: end + 4 + length]
        answers.append(respond(head, body))


def serve(listener: socket.socket) -> None:  # one event loop, kept whole
    ep = select.epoll()
    ep.register(listener.fileno(), select.EPOLLIN)
    conns: dict[int, tuple[socket.socket, bytearray, bytearray]] = {}
    while True:
        for fd, events in ep.poll():
            if fd == listener.fileno():
                while True:
                    try:
                        sock, _ = listener.accept()
                    except BlockingIOError:
                        break
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conns[sock.fileno()] = (sock, bytearray(), bytearray())
                    ep.register(sock.fileno(), select.EPOLLIN)
                continue
            sock, inbuf, outbuf = conns[fd]
            if events & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                try:
                    data = sock.recv(262144)
                except (BlockingIOError, InterruptedError):
                    data = None
                except OSError:
                    data = b""
                if data == b"":
                    ep.unregister(fd)
                    sock.close()
                    del conns[fd]
                    continue
                if data:
                    inbuf += data
                    for answer in take_requests(inbuf):
                        outbuf += answer
            if outbuf:
                try:
                    sent = sock.send(outbuf)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError:
                    sent = len(outbuf)
                del outbuf[:sent]
                ep.modify(fd, select.EPOLLIN | (select.EPOLLOUT if outbuf else 0))


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    listener.listen(4096)
    listener.setblocking(False)
    print(listener.getsockname()[1], flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()  # the bench closes our stdin to stop us
    serve(listener)


if __name__ == "__main__":
    main()
