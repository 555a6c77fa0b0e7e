"""What a request line asks for, and the answer object built from its stream.

A `RequestKind` is everything `acs batch` needs to know about one endpoint: the `url` a batch line
names, the path under the base URL, how to check a body's prompt part (`prompt`, or `messages`
for chat) and estimate its tokens, how many choices an answer holds, the parser state that reads
its stream (CompletionState, or ChatState with the same interface), the collecting sink that
keeps what the records said (--json's, over Discard) and the `object` of the non-streaming answer
the batch output holds. Another endpoint is another RequestKind in `KINDS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from acs_cli.chat_request import CHAT_PATH
from acs_cli.chat_state import ChatState
from acs_cli.completion_state import CompletionState
from acs_cli.consumer import CompletionConsumer
from acs_cli.request import choices_in
from acs_cli.sinks import Discard
from acs_cli.sinks.chat_json import ChatJsonSink
from acs_cli.sinks.json import JsonSink

if TYPE_CHECKING:
    from acs_cli.terminal import Terminal


@dataclass(frozen=True)
class RequestKind:
    name: str
    url: str  # as a batch line names it
    path: str  # under the base URL (which ends in /v1)
    object: str  # the non-streaming answer's `object`
    check: Callable[[dict[str, Any]], list[str]]  # what is wrong with a body's prompt part (the rest is common)
    prompt_tokens: Callable[[dict[str, Any]], tuple[int, int]]  # (estimated prompt tokens, prompts held)
    choices: Callable[[dict[str, Any]], int]  # the choices an answer to this body holds
    make_state: Callable[[int], Any]  # choices expected -> a parser state (CompletionState's interface)
    collector: type[JsonSink]  # keeps each choice's text (or message) and logprobs from the records


class Answer(CompletionConsumer):
    """The parser as an engine consumer (acs_cli.consumer) with the kind's collecting sink, and the
    response's request id; nothing here parses again."""

    __slots__ = ("collected", "created", "kind", "request_id")

    def __init__(self, kind: RequestKind, choices: int, term: Terminal | None) -> None:
        self.kind = kind
        # logprobs "asked" so that every choice has the key (null when the server sent none)
        self.collected = kind.collector(Discard(), term, None, True)  # type: ignore[arg-type]  # term is only used by end()
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

    def document(self) -> dict[str, Any]:
        """The object a non-streaming request would have answered (`text_completion`, `chat.completion`)."""
        state = self.state
        return {
            "id": state.id,
            "object": self.kind.object,
            "created": self.created,
            "model": state.model,
            "choices": [self.collected.choice(c, state) for c in state.ordered()],
            "usage": self.usage(),
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


def chat_problems(fields: dict[str, Any]) -> list[str]:
    messages = fields.get("messages")
    if messages is None:
        return ["missing messages"]
    if not isinstance(messages, list) or not messages:
        return ["messages is not a non-empty list"]
    for number, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return [f"messages[{number}] is not an object with a role"]
    return []


def chat_prompt_tokens(fields: dict[str, Any]) -> tuple[int, int]:
    """Characters of every message's content / 4, and 4 a message for the chat template's marks."""
    total = 0
    for message in fields.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        text = content if isinstance(content, str) else str(content or "")
        total += (len(text) + 3) // 4 + 4
    return total, 1


def chat_choices(fields: dict[str, Any]) -> int:
    n = fields.get("n")
    return n if type(n) is int and n > 0 else 1


COMPLETIONS = RequestKind(
    "completions", "/v1/completions", "completions", "text_completion",
    completion_problems, completion_prompt_tokens, choices_in, CompletionState, JsonSink,
)  # fmt: skip
CHAT = RequestKind(
    "chat", "/v1/chat/completions", CHAT_PATH, "chat.completion",
    chat_problems, chat_prompt_tokens, chat_choices, ChatState, ChatJsonSink,
)  # fmt: skip

KINDS: dict[str, RequestKind] = {kind.url: kind for kind in (COMPLETIONS, CHAT)}
