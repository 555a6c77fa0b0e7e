"""A loopback completions server for the `acs batch` tests: its answer is a function of the
prompt (`answer_text`), it can fail on purpose (429 with Retry-After, 500, 503, 400, a stream cut
mid-body, a slow answer), and it counts every request it got, by prompt.

It is a route callable of tests/sse_server.py's ScriptedServer (real HTTP on 127.0.0.1).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tests.cliutil import COMPLETIONS
from tests.sse_server import RecordedRequest, Reply, ScriptedServer, usage_frame, vllm_frame


def answer_text(prompt: str) -> str:
    """What the server answers to a prompt (and so what a result must hold)."""
    return "re:" + prompt[::-1]


def completion_reply(prompt: str, **kw) -> Reply:
    text = answer_text(prompt)
    third = max(1, len(text) // 3)
    pieces = [text[:third], text[third : 2 * third], text[2 * third :]]
    segs = [vllm_frame(p) for p in pieces[:-1]] + [vllm_frame(pieces[-1], finish_reason="stop")]
    segs.append(usage_frame(len(prompt), 3))
    return Reply.sse(segs, **kw)


def chat_reply(prompt: str, **kw) -> Reply:
    """vLLM's chat stream: the role first, the answer in two pieces, finish, usage."""
    text = answer_text(prompt)

    def chunk(delta: dict, finish: str | None = None) -> dict:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}

    half = len(text) // 2
    usage = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [], "usage": {"prompt_tokens": 7, "total_tokens": 9, "completion_tokens": 2}}
    frames = [chunk({"role": "assistant", "content": ""}), chunk({"content": text[:half]}), chunk({"content": text[half:]}, "stop"), usage]
    return Reply.sse(frames, **kw)


Fault = Callable[[str, int], "Reply | None"]  # (prompt, attempt number) -> a failure to answer, or None


def http_error(status: int, message: str = "scripted failure", **kw) -> Reply:
    return Reply.json(status, {"error": {"message": message, "type": "scripted", "code": status}}, **kw)


def cut_reply(prompt: str) -> Reply:
    """A stream that stops mid-body: one frame, then the connection closes."""
    return Reply.sse([vllm_frame(answer_text(prompt)[:2])], done=False, end="abort")


class Completions:
    """The route: answers every prompt, after `fault` had its say; counts requests by prompt."""

    def __init__(self, fault: Fault | None = None, delay: float = 0.0, log: Path | None = None, attempts: Counter[str] | None = None) -> None:
        self.fault = fault
        self.delay = delay
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()  # what this server got
        self.attempts = attempts if attempts is not None else self.requests  # shared by several servers: attempt numbers across them
        self.bodies: list[dict] = []
        self.keep_bodies = log is None
        self.log = log.open("a") if log is not None else None

    def __call__(self, req: RecordedRequest) -> Reply:
        body = req.json()
        chat = "messages" in body
        prompt = body["messages"][-1]["content"] if chat else body["prompt"]
        with self.lock:
            self.requests[prompt] += 1
            if self.attempts is not self.requests:
                self.attempts[prompt] += 1
            attempt = self.attempts[prompt]
            if self.keep_bodies:
                self.bodies.append(body)
            if self.log is not None:
                self.log.write(json.dumps(prompt) + "\n")
                self.log.flush()
        reply = self.fault(prompt, attempt) if self.fault is not None else None
        if reply is not None:
            return reply
        return (chat_reply if chat else completion_reply)(prompt, first_delay=self.delay)

    def close(self) -> None:
        if self.log is not None:
            self.log.close()


def serve(fault: Fault | None = None, delay: float = 0.0, log: Path | None = None, attempts: Counter[str] | None = None) -> tuple[ScriptedServer, Completions]:
    server = ScriptedServer()
    route = Completions(fault, delay, log, attempts)
    server.route("POST", COMPLETIONS, route)
    server.route("POST", "/v1/chat/completions", route)
    return server, route


def read_results(path: Path) -> list[dict]:
    """Every line of an output, each parsed (a line that does not parse fails the test)."""
    return [json.loads(line) for line in path.read_bytes().splitlines()]
