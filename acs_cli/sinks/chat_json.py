"""--json and --jsonl for chat: the completion outputs with each choice's `message` (role,
content, reasoning, tool calls) and the chat events (reasoning, tool_call); and the collector
that keeps what a chat answer said, for the JSON object and for a conversation's next turn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from acs_cli.records import Delta, Reasoning, ToolCallDelta
from acs_cli.sinks.chat import chat_figures
from acs_cli.sinks.json import JsonlSink, JsonSink

if TYPE_CHECKING:
    from acs_cli.chat_state import ChatState
    from acs_cli.completion_state import ChoiceState, CompletionState
    from acs_cli.outcome import Outcome
    from acs_cli.records import Record


class ChatCollector:
    """Each choice's answer text, reasoning and chat logprobs entries, from the records."""

    def __init__(self) -> None:
        self.content: dict[int, list[str]] = {}
        self.reasoning: dict[int, list[str]] = {}
        self.logprobs: dict[int, list[Any]] = {}

    def take(self, records: list[Record]) -> None:
        for r in records:
            kind = type(r)
            if kind is Delta:
                parts = self.content.setdefault(r.index, [])  # type: ignore[union-attr]
                if r.text:  # type: ignore[union-attr]
                    parts.append(r.text)  # type: ignore[union-attr]
                if r.logprobs is not None:  # type: ignore[union-attr]
                    self.logprobs.setdefault(r.index, []).extend(r.logprobs.get("content") or ())  # type: ignore[union-attr]
            elif kind is Reasoning:
                self.reasoning.setdefault(r.index, []).append(r.text)  # type: ignore[union-attr]

    def message(self, index: int, state: CompletionState | None) -> dict[str, Any]:
        """The assistant message of one choice, as the API writes it (reasoning added)."""
        reasoning = self.reasoning.get(index)
        calls = getattr(state, "calls_of", None)
        return {
            "role": getattr(state, "roles", {}).get(index, "assistant"),
            "content": "".join(self.content.get(index, ())),
            "reasoning": "".join(reasoning) if reasoning else None,
            "tool_calls": [c.as_message() for c in calls(index)] if calls is not None else [],
        }


def conversation_message(collector: ChatCollector, state: ChatState, index: int = 0) -> dict[str, Any]:
    """The assistant message to send back in the next turn: role and content, and the tool calls
    when there were some (reasoning is not sent back, as the API expects)."""
    message = collector.message(index, state)
    out = {"role": "assistant", "content": message["content"]}
    if message["tool_calls"]:
        out["tool_calls"] = message["tool_calls"]
    return out


class ChatJsonSink(JsonSink):
    """--json for chat: `choices` with `index`, `message`, `finish_reason`, `stop_reason` (and
    `logprobs` as the API writes them, `{"content": [...]}`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.collector = ChatCollector()

    def write(self, records: list[Record]) -> None:
        self.collector.take(records)
        self.inner.write(records)

    def timings(self, outcome: Outcome) -> dict[str, Any]:
        return chat_figures(outcome)

    def choice(self, c: ChoiceState, state: CompletionState) -> dict[str, Any]:
        item: dict[str, Any] = {
            "index": c.index,
            "message": self.collector.message(c.index, state),
            "finish_reason": c.finish_reason,
            "stop_reason": c.stop_reason,
        }
        if self.asked_logprobs or c.index in self.collector.logprobs:
            entries = self.collector.logprobs.get(c.index)
            item["logprobs"] = None if entries is None else {"content": entries}
        return item


class ChatJsonlSink(JsonlSink):
    """--jsonl for chat: `delta` (answer text, with `logprobs` `{"content": [...]}` when the frame
    had them), `reasoning`, `tool_call` (one per fragment: `call`, `id`, `name`, `arguments`),
    `finish` as they arrive; `usage`, `error` and `done` at the end."""

    def timings(self, outcome: Outcome) -> dict[str, Any]:
        return chat_figures(outcome)

    def event(self, r: Record) -> dict[str, Any] | None:
        kind = type(r)
        if kind is Delta:
            event = super().event(r)
            if event is not None and "logprobs" in event:
                event["logprobs"] = {"content": event["logprobs"].get("content")}  # as the chat API writes them
            return event
        if kind is Reasoning:
            return {"type": "reasoning", "index": r.index, "text": r.text}  # type: ignore[union-attr]
        if kind is ToolCallDelta:
            return {"type": "tool_call", "index": r.index, "call": r.call, "id": r.id, "name": r.name, "arguments": r.arguments}  # type: ignore[union-attr]
        return super().event(r)
