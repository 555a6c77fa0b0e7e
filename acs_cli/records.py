"""The small typed records a completion (or chat) stream is turned into, in arrival order.

The parser state (acs_cli.completion_state) yields them; the sinks (acs_cli.sinks) and the engine's
consumers read them. Nothing here does I/O or knows who reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from acs_cli.errors import AcsError


@dataclass(slots=True)
class Delta:
    """New output of one choice from one frame: its text (possibly empty when the frame carried
    only logprobs, or when a choice first appears without text) and that frame's logprobs."""

    index: int
    text: str
    logprobs: dict[str, Any] | None = None


@dataclass(slots=True)
class Finish:
    """A choice finished, with the server's reason (`stop`, `length`, `abort`, …)."""

    index: int
    reason: str | None  # None only for a whole JSON document that gave no reason
    stop_reason: Any = None


@dataclass(slots=True)
class Usage:
    """The request's token usage as known after this frame (the aggregate, or the per-choice sum)."""

    usage: dict[str, Any]


def token_count(value: Any) -> int | None:
    """A token count the server reported, or None when it is not one (a bool, a float, a string,
    a negative number, or one too large to be a count: past 2**63 it could not even be divided)."""
    return value if type(value) is int and 0 <= value < 1 << 63 else None


@dataclass(slots=True)
class Done:
    """`data: [DONE]`: the server says the stream is over."""


@dataclass(slots=True)
class StreamFailure:
    """The stream cannot go on: an error frame or a frame that is not a completion."""

    error: AcsError


@dataclass(slots=True)
class Reasoning:
    """Chat: new reasoning text of one choice from one frame (`reasoning_content` or `reasoning`),
    the model's thinking before (or between) its answer."""

    index: int
    text: str


@dataclass(slots=True)
class ToolCallDelta:
    """Chat: a fragment of one tool call of one choice. `call` is the call's own index within the
    choice; `id` and `name` are the call's as known so far (from its first fragment that had
    them); `arguments` is this fragment's piece of the arguments string."""

    index: int
    call: int
    id: str | None
    name: str | None
    arguments: str


Record = Delta | Finish | Usage | Done | StreamFailure | Reasoning | ToolCallDelta
