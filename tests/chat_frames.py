"""Chat stream chunks as servers send them, for the chat tests.

`chunk()` builds one `chat.completion.chunk` in vLLM's shape (`id`, `object`, `created`, `model`,
`choices: [{index, delta, logprobs, finish_reason, stop_reason}]`); `role_chunk()` the first
chunk that carries only the role; `call()` one tool-call fragment; `usage_chunk()` the aggregate
`choices: []` chunk; `answer_chunks()` a whole simple answer. Servers differ in the details these
take as arguments: the first chunk's `content` (`""` vLLM, null llama-server, missing OpenAI),
the reasoning field's name (`reasoning_content` or `reasoning`).
"""

from __future__ import annotations

import json
from typing import Any

CHAT = "/v1/chat/completions"
ID = "chatcmpl-3f6c2b9d0a7e41c8"
MODEL = "Qwen/Qwen3-0.6B"
MISSING = object()


def chunk(
    delta: dict[str, Any] | None = None,
    *,
    index: int = 0,
    finish: str | None = None,
    logprobs: Any = None,
    stop_reason: Any = None,
    choices: list[dict[str, Any]] | None = None,
    usage: Any = MISSING,
) -> dict[str, Any]:
    """One chunk; `choices` replaces the single choice built from the other arguments."""
    if choices is None:
        choices = [{"index": index, "delta": delta if delta is not None else {}, "logprobs": logprobs, "finish_reason": finish, "stop_reason": stop_reason}]
    out: dict[str, Any] = {"id": ID, "object": "chat.completion.chunk", "created": 1767225600, "model": MODEL, "choices": choices}
    if usage is not MISSING:
        out["usage"] = usage
    return out


def choice(delta: dict[str, Any], index: int = 0, finish: str | None = None) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}


def role_chunk(index: int = 0, content: Any = "") -> dict[str, Any]:
    """The first chunk: the role only (`content` "" as vLLM, None as llama-server, MISSING as OpenAI)."""
    delta: dict[str, Any] = {"role": "assistant"}
    if content is not MISSING:
        delta["content"] = content
    return chunk(delta, index=index)


def content(text: str, index: int = 0, finish: str | None = None) -> dict[str, Any]:
    return chunk({"content": text}, index=index, finish=finish)


def reasoning(text: str, index: int = 0, field: str = "reasoning_content") -> dict[str, Any]:
    return chunk({field: text}, index=index)


def call(number: int, id: str | None = None, name: str | None = None, arguments: str | None = None) -> dict[str, Any]:
    """One tool-call fragment; the first of a call has its id, type and name."""
    fragment: dict[str, Any] = {"index": number}
    function: dict[str, Any] = {}
    if id is not None:
        fragment["id"] = id
        fragment["type"] = "function"
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    fragment["function"] = function
    return fragment


def calls(*fragments: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return chunk({"tool_calls": list(fragments)}, index=index)


def finish(reason: str = "stop", index: int = 0) -> dict[str, Any]:
    return chunk({}, index=index, finish=reason)


def usage_chunk(prompt: int, completion: int) -> dict[str, Any]:
    return chunk(choices=[], usage={"prompt_tokens": prompt, "total_tokens": prompt + completion, "completion_tokens": completion})


def answer_chunks(texts: list[str], reason: str = "stop", usage: tuple[int, int] | None = (7, -1)) -> list[dict[str, Any]]:
    """A role chunk, one chunk per text, a finish chunk, and the usage chunk (completion tokens
    = len(texts) when -1)."""
    out = [role_chunk(), *(content(t) for t in texts), finish(reason)]
    if usage is not None:
        out.append(usage_chunk(usage[0], len(texts) if usage[1] == -1 else usage[1]))
    return out


def sse(chunks: list[Any], done: bool = True) -> bytes:
    """The event-stream body of these chunks (a str chunk is sent as its data line verbatim)."""
    out = []
    for c in chunks:
        data = c if isinstance(c, str) else json.dumps(c, separators=(",", ":"), ensure_ascii=False)
        out.append(f"data: {data}\n\n".encode())
    if done:
        out.append(b"data: [DONE]\n\n")
    return b"".join(out)
