"""The completion parser as an engine consumer: one response body's reads to records, with the
arrival time of every frame that carried text (what load tests and batch runs measure).

The engine (acs_cli.engine) calls `on_head`, `on_data` once per read with that read's decoded body
bytes and its arrival time, and `on_end`; the same pure parser and state as `acs complete` turn
the bytes into records, which go to an optional sink.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from acs_cli.body import DOCUMENT_LIMIT, media_type, parse_document, sniff_body
from acs_cli.completion_state import CompletionState
from acs_cli.errors import AcsError, IncompleteStream, ProtocolError
from acs_cli.records import Delta, Reasoning, ToolCallDelta
from acs_cli.sse import SSEParser

if TYPE_CHECKING:
    from acs_cli.records import Record
    from acs_cli.sinks import Sink


class CompletionConsumer:
    """Feeds one response body through SSEParser and a CompletionState (or a sibling state class
    with the same interface, e.g. for chat) into `sink`, if any.

    `frame_times` holds one arrival time per (frame, choice) that carried text (chat: or reasoning,
    or a tool-call fragment), in order (a read with three text frames adds its time three times);
    `first_text` is the first of them.
    """

    __slots__ = ("state", "sink", "parser", "frame_times", "first_text", "status", "_document", "keep_times")

    def __init__(self, state: CompletionState | None = None, sink: Sink | None = None, keep_times: bool = True) -> None:
        self.state = state if state is not None else CompletionState()
        self.sink = sink
        self.parser = SSEParser()
        self.keep_times = keep_times
        self.frame_times: list[float] = []
        self.first_text: float | None = None
        self.status: int | None = None
        self._document: bytearray | None = None  # a whole JSON answer (not a stream), collected until the end

    def on_head(self, head: Any, now: float) -> None:
        self.status = head.status
        value = head.get(b"content-type")
        media = media_type(value.decode("latin-1")) if value else ""
        if media and media != "text/event-stream" and sniff_body(media, b"") == "json":
            self._document = bytearray()

    def on_data(self, data: bytes, now: float) -> bool:
        if self._document is not None:
            self._document += data
            if len(self._document) > DOCUMENT_LIMIT:
                raise ProtocolError(f"the server answered 200 with a JSON body over {DOCUMENT_LIMIT >> 20} MiB", "check the server")
            return False
        events = self.parser.feed(data)
        if events:
            records = self.state.feed(events)
            if records:
                self._take(records, now)
        return self.state.stopped

    def on_end(self, now: float) -> None:
        self.parser.close()
        if self._document is not None:
            self._take(parse_document(bytes(self._document), self.state), now)
            self._document = None

    def _take(self, records: list[Record], now: float) -> None:
        texts = 0
        for r in records:
            kind = type(r)
            if (kind is Delta and r.text) or kind is Reasoning or kind is ToolCallDelta:  # type: ignore[union-attr]
                texts += 1  # chat: reasoning and tool calls are generated tokens too
        if texts:
            if self.first_text is None:
                self.first_text = now
            if self.keep_times:
                self.frame_times.extend([now] * texts)
        if self.sink is not None and records:
            self.sink.write(records)

    def verdict(self, error: AcsError | None) -> AcsError | None:
        """The request's outcome from the engine's error (None: the body ended) and the stream:
        a connection cut after every choice finished is still a whole completion."""
        if isinstance(error, IncompleteStream):
            return self.state.verdict(cut=True)
        if error is not None:
            return error
        return self.state.verdict()
