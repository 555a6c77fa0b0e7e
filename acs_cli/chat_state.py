"""Pure: server-sent events of a chat stream (`/v1/chat/completions`) to typed records.

The same frame, usage, [DONE] and verdict rules as a completion stream (acs_cli.completion_state,
whose state this extends); only what one choice of one frame says differs. What servers send:

- each choice carries a `delta` (a whole `chat.completion` answer carries a `message` instead);
  the first chunk usually holds only `{"role": "assistant"}` (llama-server adds `"content":
  null`, vLLM `"content": ""`): that is the choice's first appearance, never a token;
- `content` may be a string, `""`, null or missing;
- reasoning arrives under `reasoning_content` (llama-server, older vLLM) or `reasoning`
  (newer vLLM), before the answer or interleaved with it; when a delta carries both names (a
  server sending both for compatibility) it is the same text, taken once;
- tool calls arrive as fragments `{"index", "id", "type", "function": {"name", "arguments"}}`
  keyed by `index` (several may share a chunk): the id and name come with the call's first
  fragment, the arguments string is split anywhere over many chunks and joined here; the choice
  then finishes with `finish_reason: "tool_calls"`;
- chat logprobs are `{"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}`: each
  Delta gets them in the completion shape too (`tokens`, `token_logprobs`, `top_logprobs`), so the
  logprobs view and table read them unchanged, with the entries as sent under `content`.

Tool calls are kept whole here (the --json output and a conversation need them), bounded per call.
When a choice finishes, every call's arguments must be JSON; one that is not gets a notice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from acs_cli.completion_state import CompletionState
from acs_cli.records import Delta, Reasoning, Record, ToolCallDelta
from acs_cli.text import shorten

ARGUMENTS_LIMIT = 16 * 1024 * 1024  # characters of one call's arguments kept (as one SSE event)
_EMPTY: dict[str, Any] = {}


@dataclass
class ToolCall:
    """One tool call of one choice, joined from its fragments."""

    call: int
    id: str | None = None
    type: str = "function"
    name: str | None = None
    parts: list[str] = field(default_factory=list)
    size: int = 0
    truncated: bool = False  # more than ARGUMENTS_LIMIT arrived; the rest was not kept

    @property
    def arguments(self) -> str:
        return "".join(self.parts)

    def as_message(self) -> dict[str, Any]:
        """The call as the OpenAI API writes it in an assistant message."""
        return {"id": self.id, "type": self.type, "function": {"name": self.name, "arguments": self.arguments}}


def chat_logprobs(value: Any) -> dict[str, Any] | None:
    """Chat logprobs in the completion shape the logprobs view reads, the entries kept as sent."""
    if type(value) is not dict:
        return None
    entries = value.get("content")
    if type(entries) is not list:
        return None
    tokens: list[Any] = []
    values: list[Any] = []
    tops: list[Any] = []
    for entry in entries:
        if type(entry) is not dict:
            continue
        tokens.append(entry.get("token"))
        values.append(entry.get("logprob"))
        top = entry.get("top_logprobs")
        tops.append(top if type(top) is list else [])
    return {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops, "content": entries}


def _arguments(value: Any) -> str:
    if type(value) is str:
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))  # a server that sends an object


def is_chat(frame: Any) -> bool:
    """Whether a frame (or a whole answer) is a chat one: its `object` says so, or its first
    choice has a `delta` or a `message` instead of `text`."""
    if not isinstance(frame, dict):
        return False
    kind = frame.get("object")
    if isinstance(kind, str):
        return kind.startswith("chat.completion")
    choices = frame.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    return isinstance(first, dict) and ("delta" in first or "message" in first) and "text" not in first


class ChatState(CompletionState):
    """CompletionState for chat streams: content becomes Delta, reasoning Reasoning, tool-call
    fragments ToolCallDelta (see the module docstring)."""

    TEXT_PATH = ("choices", 0, "delta", "content")

    def __init__(self, expected: int = 1) -> None:
        super().__init__(expected)
        self.tool_calls: dict[int, dict[int, ToolCall]] = {}  # choice index -> call index -> call
        self.roles: dict[int, str] = {}
        self.role_only_first: bool | None = None  # whether the first choice frame held only the role

    def _plain_index(self, frame: dict[str, Any]) -> int | None:
        """As for a completion, and the delta carries no reasoning (a role, or tool calls that are
        not a list, are read only on a choice's first appearance or not at all)."""
        index = super()._plain_index(frame)
        delta = frame["choices"][0].get("delta") if index is not None else None
        if type(delta) is not dict or delta.get("reasoning_content") or delta.get("reasoning"):
            return None
        return index

    def calls_of(self, index: int) -> list[ToolCall]:
        calls = self.tool_calls.get(index, {})
        return [calls[k] for k in sorted(calls)]

    def _read_choice(self, c: dict[str, Any], index: int, first: bool, records: list[Record]) -> None:
        delta = c.get("delta")
        if type(delta) is not dict:
            delta = c.get("message")  # a whole chat.completion answer
            if type(delta) is not dict:
                delta = _EMPTY
        content = delta.get("content")
        if type(content) is not str:
            content = ""
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning and type(reasoning) is str:
            records.append(Reasoning(index, reasoning))
        logprobs = c.get("logprobs")
        converted = chat_logprobs(logprobs) if logprobs else None
        if content or first or converted is not None:
            records.append(Delta(index, content, converted))
        calls = delta.get("tool_calls")
        if calls and type(calls) is list:
            self._take_calls(index, calls, records)
        if first:
            self._first_appearance(index, delta, content, reasoning, calls)
        if c.get("finish_reason") is not None and index in self.tool_calls:
            self._check_calls(index)

    def _first_appearance(self, index: int, delta: dict[str, Any], content: str, reasoning: Any, calls: Any) -> None:
        role = delta.get("role")
        if type(role) is str:
            self.roles[index] = role
        if self.role_only_first is None:
            self.role_only_first = type(role) is str and not content and not reasoning and not calls

    def _take_calls(self, index: int, fragments: list[Any], records: list[Record]) -> None:
        calls = self.tool_calls.setdefault(index, {})
        for position, fragment in enumerate(fragments):
            if type(fragment) is not dict:
                continue
            number = fragment.get("index", position)
            if type(number) is not int:
                number = position
            function = fragment.get("function")
            if type(function) is not dict:
                function = _EMPTY
            call = calls.get(number)
            if call is None:
                call = calls[number] = ToolCall(number)
            ident, name, kind = fragment.get("id"), function.get("name"), fragment.get("type")
            if call.id is None and type(ident) is str and ident:
                call.id = ident
            if call.name is None and type(name) is str and name:
                call.name = name
            if type(kind) is str and kind:
                call.type = kind
            arguments = _arguments(function.get("arguments"))
            if arguments and not call.truncated:
                if call.size + len(arguments) > ARGUMENTS_LIMIT:
                    call.truncated = True
                else:
                    call.parts.append(arguments)
                    call.size += len(arguments)
            records.append(ToolCallDelta(index, number, call.id, call.name, arguments))

    def _check_calls(self, index: int) -> None:
        """The choice finished: every call's arguments must be one JSON value."""
        for call in self.calls_of(index):
            what = f"tool call {call.call}" + (f" ({shorten(call.name, 60)})" if call.name else "") + f" of choice {index}"
            if call.truncated:
                self.notices.append(f"warning: {what}: arguments over {ARGUMENTS_LIMIT >> 20} MiB; only the first {ARGUMENTS_LIMIT >> 20} MiB are kept")
                continue
            arguments = call.arguments
            try:
                json.loads(arguments)
            except ValueError as exc:
                problem = "they are empty" if not arguments.strip() else f"{getattr(exc, 'msg', exc)} at character {getattr(exc, 'pos', '?')}"
                self.notices.append(f"warning: {what}: the arguments are not valid JSON ({problem}): {shorten(arguments, 120)}")
            except RecursionError:
                self.notices.append(f"warning: {what}: the arguments are JSON nested too deeply to check")
