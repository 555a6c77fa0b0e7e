"""How a run ended, and when things happened: one type carries the verdict to the sinks, the
message ladder (acs_cli.run) and the exit status."""

from __future__ import annotations

import signal as _signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from acs_cli.errors import AcsError, ExitStatus
from acs_cli.records import token_count

if TYPE_CHECKING:
    from acs_cli.completion_state import CompletionState


# the signals that end a run the way Ctrl-C does, and what --json calls them
SIGNAL_NAMES = {
    int(_signal.SIGINT): "interrupted by Ctrl-C",
    int(_signal.SIGTERM): "terminated by SIGTERM",
    int(_signal.SIGHUP): "hung up (SIGHUP)",
}


@dataclass
class Timeline:
    """When things happened to one request, in time.perf_counter() seconds (None: not yet)."""

    scheduled: float | None = None  # when a schedule wanted it sent (load tests)
    sent: float | None = None  # the request was handed to the socket
    headers: float | None = None  # the response head arrived
    first_text: float | None = None  # the first read that carried text (chat: or reasoning or a tool call)
    last_byte: float | None = None  # the last read of the body
    text_frames: int = 0  # (frame, choice) pairs that carried text: the token estimate without usage
    first_reasoning: float | None = None  # chat: the first read that carried reasoning
    first_answer: float | None = None  # chat: the first read that carried answer text

    def figures(self, usage: dict[str, Any] | None, end: float) -> dict[str, Any]:
        """ttft_s (request sent to first text), total_s, decode_tokens_per_s = (completion tokens
        - 1) / (total - ttft); tokens from the server's usage when it sent one, else estimated from
        the frames that carried text (`estimated: true`)."""
        t0 = self.sent if self.sent is not None else end
        total = max(0.0, end - t0)
        ttft = None if self.first_text is None else max(0.0, self.first_text - t0)
        completion = token_count(usage.get("completion_tokens")) if isinstance(usage, dict) else None
        estimated = completion is None
        tokens = self.text_frames if completion is None else completion
        rate = None
        if ttft is not None and tokens is not None and tokens > 1 and total - ttft > 0:
            rate = round((tokens - 1) / (total - ttft), 1)
        return {
            "ttft_s": None if ttft is None else round(ttft, 4),
            "total_s": round(total, 4),
            "decode_tokens_per_s": rate,
            "tokens": tokens,
            "estimated": estimated,
        }


@dataclass
class Outcome:
    """The end of a run: success, a failure (an AcsError), or a signal (Ctrl-C, SIGTERM, SIGHUP)."""

    error: AcsError | None = None
    signal: int | None = None
    state: CompletionState | None = None  # what the stream said (None when no stream was read)
    timeline: Timeline = field(default_factory=Timeline)
    model: str | None = None  # the model asked for, until the stream names one
    ended: float | None = None  # when the run ended (perf_counter)

    @property
    def interrupted(self) -> bool:
        return self.signal is not None

    @property
    def complete(self) -> bool:
        return self.error is None and self.signal is None

    @property
    def status(self) -> int:
        if self.signal is not None:
            return 128 + self.signal  # as a shell reports it: 130 for SIGINT, 143 SIGTERM, 129 SIGHUP
        if self.error is not None:
            return int(self.error.status)
        return int(ExitStatus.OK)

    @property
    def usage(self) -> dict[str, Any] | None:
        return self.state.usage if self.state is not None else None

    @property
    def stdout_closed(self) -> bool:
        """Whether stdout can take nothing more: its reader left (141) or writing it failed (12).
        Nothing more is written then, on stdout or stderr, but the one line of a failure."""
        return self.error is not None and self.error.status in (ExitStatus.BROKEN_PIPE, ExitStatus.OUTPUT)

    def figures(self) -> dict[str, Any]:
        """The timings --json, --jsonl and --stats report."""
        import time

        end = self.ended if self.ended is not None else (self.timeline.last_byte or time.perf_counter())
        return self.timeline.figures(self.usage, end)
