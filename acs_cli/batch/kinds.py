"""What a request line asks for, and the answer object built from its stream.

A `RequestKind` is everything `acs batch` needs to know about one endpoint: the `url` a batch line
names, the path under the base URL, how to check a body's prompt part (`prompt` here, `messages`
for chat) and estimate its tokens, how many choices an answer holds, the parser state that reads
its stream (CompletionState, or a sibling class with the same interface) and how the records
become the non-streaming answer the batch output holds. Completions are the one kind today; chat
plugs in with its own state class and document builder, and until then a chat line is refused
with a clear message (`PENDING`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from acs_cli.completion_state import CompletionState
from acs_cli.consumer import CompletionConsumer
from acs_cli.request import choices_in
from acs_cli.sinks import Discard
from acs_cli.sinks.json import JsonSink

if TYPE_CHECKING:
    from acs_cli.terminal import Terminal


@dataclass(frozen=True)
class RequestKind:
    name: str
    url: str  # as a batch line names it
    path: str  # under the base URL (which ends in /v1)
    check: Callable[[dict[str, Any]], list[str]]  # what is wrong with a body's prompt part (the rest is common)
    prompt_tokens: Callable[[dict[str, Any]], tuple[int, int]]  # (estimated prompt tokens, prompts held)
    choices: Callable[[dict[str, Any]], int]  # the choices an answer to this body holds
    make_state: Callable[[int], Any]  # choices expected -> a parser state (CompletionState's interface)
    document: Callable[[Answer], dict[str, Any]]  # the non-streaming answer object


class Answer(CompletionConsumer):
    """The completion parser as an engine consumer (acs_cli.consumer) with a collecting sink, and
    the response's request id. The collector is --json's (JsonSink over Discard): it keeps each
    choice's text and logprobs; nothing here parses again."""

    __slots__ = ("collected", "created", "request_id")

    def __init__(self, kind: RequestKind, choices: int, term: Terminal | None) -> None:
        self.collected = JsonSink(Discard(), term, None, False)  # type: ignore[arg-type]  # term is only used by end()
        super().__init__(kind.make_state(choices), self.collected, keep_times=False)
        self.request_id: str | None = None
        self.created = int(time.time())

    def on_head(self, head: Any, now: float) -> None:
        value = head.get(b"x-request-id")
        if value:
            self.request_id = value.decode("latin-1")
        super().on_head(head, now)

    def usage(self) -> dict[str, Any] | None:
        usage = self.state.usage
        return usage if isinstance(usage, dict) else None


def completion_document(answer: Answer) -> dict[str, Any]:
    """The `text_completion` object a non-streaming request would have answered."""
    state = answer.state
    texts, logprobs = answer.collected.texts, answer.collected.logprobs
    choices = [
        {
            "index": c.index,
            "text": "".join(texts.get(c.index, ())),
            "logprobs": logprobs.get(c.index),
            "finish_reason": c.finish_reason,
            "stop_reason": c.stop_reason,
        }
        for c in state.ordered()
    ]
    return {
        "id": state.id,
        "object": "text_completion",
        "created": answer.created,
        "model": state.model,
        "choices": choices,
        "usage": answer.usage(),
    }


def completion_problems(fields: dict[str, Any]) -> list[str]:
    prompt = fields.get("prompt")
    if prompt is None:
        return ["missing prompt"]
    if not _prompt_ok(prompt):
        return ["prompt is empty or not a string, a list of strings or a list of token ids"]
    return []


def _prompt_ok(prompt: Any) -> bool:
    if isinstance(prompt, str):
        return bool(prompt)
    if not isinstance(prompt, list) or not prompt:
        return False
    if all(type(t) is int for t in prompt):
        return True
    return all((isinstance(p, str) and p) or (isinstance(p, list) and p and all(type(t) is int for t in p)) for p in prompt)


def completion_prompt_tokens(fields: dict[str, Any]) -> tuple[int, int]:
    """Characters / 4 (no tokenizer here), token ids counted as given; and how many prompts."""
    prompt = fields.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) or (isinstance(prompt, list) and prompt and type(prompt[0]) is int) else prompt
    if not isinstance(prompts, list):
        return 0, 1
    return sum(len(p) if isinstance(p, list) else (len(p) + 3) // 4 for p in prompts), max(1, len(prompts))


COMPLETIONS = RequestKind(
    "completions", "/v1/completions", "completions", completion_problems, completion_prompt_tokens, choices_in, CompletionState, completion_document
)

KINDS: dict[str, RequestKind] = {COMPLETIONS.url: COMPLETIONS}
# urls acs will take once it speaks them (a chat state class plugs in as a RequestKind)
PENDING: dict[str, str] = {
    "/v1/chat/completions": "chat requests (url /v1/chat/completions) are not supported by acs batch yet: only /v1/completions",
}
