"""Pure stream parsing, no I/O: bytes in, server-sent events out (WHATWG event-stream
interpretation), then events to per-choice text deltas, usage, [DONE] and errors (WIRE.md §12)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from acs_cli.errors import IncompleteStream, ProtocolError, StreamError

_loads = json.loads
# the C scanner behind json.loads, without its two whitespace regex matches per call: frames are
# compact JSON, and anything it does not take whole goes through json.loads for the real error
_scan = json.JSONDecoder().scan_once


def parse_json(data: str) -> Any:
    try:
        value, end = _scan(data, 0)
    except StopIteration:
        return _loads(data)
    if end != len(data):
        return _loads(data)
    return value


class SSEParser:
    """Incremental event-stream parser.

    Lines end at CRLF, LF or CR and nothing else (a CR at the end of one read and the LF at the
    start of the next are one line end); one leading BOM is stripped; the stream is always UTF-8,
    invalid bytes become U+FFFD; an event is dispatched on a blank line only when its data buffer
    is non-empty; an unterminated event at end of stream is discarded (`close`).
    """

    __slots__ = ("_held", "_skip_lf", "_at_start", "_data", "_event", "last_event_id", "retry")

    def __init__(self) -> None:
        self._held: list[bytes] = []
        self._skip_lf = False
        self._at_start = True
        self._data: list[str] = []
        self._event = ""
        self.last_event_id = ""
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        """Parse one read; return the (event type, data) pairs it completed."""
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
                if not chunk:
                    return []
        end = chunk.rfind(b"\n")
        cr = chunk.rfind(b"\r")
        if cr > end:
            end = cr
            # the LF that may follow a final CR belongs to it; it can only arrive in the next read
            self._skip_lf = cr == len(chunk) - 1
        if end < 0:
            self._held.append(chunk)  # no line end yet: hold it (joined once, not per read)
            return []
        if self._held:
            self._held.append(chunk)
            head = b"".join(self._held)
            end += len(head) - len(chunk)
            self._held.clear()
            buf = head
        else:
            buf = chunk
        if end + 1 < len(buf):
            self._held.append(buf[end + 1 :])
        text = buf[: end + 1].decode("utf-8", "replace")
        if self._at_start:
            self._at_start = False
            if text[:1] == "\ufeff":
                text = text[1:]
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        lines.pop()  # the text ends with a line end, so the last piece is always empty
        return self._interpret(lines)

    def _interpret(self, lines: list[str]) -> list[tuple[str, str]]:
        events: list[tuple[str, str]] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append((self._event or "message", "\n".join(data)))
                    data.clear()
                self._event = ""
                continue
            if line[0] == ":":
                continue
            name, colon, value = line.partition(":")
            if colon and value[:1] == " ":
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id":
                if "\0" not in value:
                    self.last_event_id = value
            elif name == "retry":
                if value.isascii() and value.isdigit():
                    self.retry = int(value)
        return events

    def close(self) -> None:
        """End of stream: an event without its blank line is discarded, as the spec says."""
        self._data.clear()
        self._event = ""
        self._held.clear()

    @property
    def mid_event(self) -> bool:
        """Whether bytes of an unfinished event are held (a stream cut here lost something)."""
        return bool(self._held or self._data)


@dataclass
class Choice:
    index: int
    parts: list[str] = field(default_factory=list)
    finished: bool = False
    finish_reason: str | None = None
    stop_reason: Any = None
    logprobs: dict[str, list[Any]] | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)


def shorten(text: str, limit: int = 200) -> str:
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error_from(payload: Any, fallback: str) -> StreamError:
    if isinstance(payload, dict):
        message = payload.get("message") or fallback
        error_type = payload.get("type")
        code = payload.get("code")
    else:
        message = str(payload) if payload else fallback
        error_type = code = None
    detail = f" ({error_type}" + (f", code {code})" if code is not None else ")") if error_type else ""
    return StreamError(
        f"the server reported an error mid-stream: {shorten(str(message))}{detail}",
        "the text before the error is kept; retry the request, and check the server's log if it repeats",
        error_type=error_type,
        code=code,
    )


class CompletionStream:
    """Turns events into per-choice deltas and keeps everything a summary needs.

    `feed` returns (index, text) deltas in arrival order. It stops at the first failure (an error
    frame, malformed JSON) and stores it in `failure`, so that the deltas decoded before it can
    still be written before the failure is raised.
    """

    def __init__(self, keep_text: bool = False) -> None:
        # the sinks write text as it arrives; keeping it all (for a summary at the end) is opt-in,
        # so memory stays flat however long the stream
        self.keep_text = keep_text
        self.choices: dict[int, Choice] = {}
        self.usage: dict[str, Any] | None = None
        self._usage_is_aggregate = False
        self._choice_usage: dict[Any, dict[str, Any]] = {}
        self.done = False
        self.failure: Exception | None = None
        self.id: str | None = None
        self.model: str | None = None
        self.system_fingerprint: str | None = None
        self.frames = 0

    def feed(self, events: list[tuple[str, str]]) -> list[tuple[int, str]]:
        deltas: list[tuple[int, str]] = []
        for event_type, data in events:
            if self.done or self.failure is not None:
                break
            if event_type != "message":
                if event_type == "error":
                    self.failure = _error_from(self._error_payload(data), "the server sent an error event")
                continue  # other named events (ping, ...) carry nothing for a completion
            if data[:1] in " \t\n" and not data.strip():
                continue
            if data[:6] == "[DONE]" or data.lstrip()[:6] == "[DONE]":
                self.done = True
                break
            try:
                frame = parse_json(data)
            except ValueError:
                self.failure = ProtocolError(
                    f"the server sent a frame that is not JSON: {shorten(data)}",
                    "check that ACS_API_BASE points at an OpenAI-compatible server; `acs complete --raw` shows the bytes",
                )
                break
            if type(frame) is not dict:
                if frame is None:
                    continue  # llama-server sends `data: null` between the prompts of a batch
                self.failure = ProtocolError(
                    f"the server sent a frame that is not a JSON object: {shorten(data)}",
                    "check that ACS_API_BASE points at an OpenAI-compatible server; `acs complete --raw` shows the bytes",
                )
                break
            self._frame(frame, deltas)
        return deltas

    def feed_document(self, payload: Any) -> list[tuple[int, str]]:
        """A whole non-streamed completion (a 200 JSON body instead of an event stream)."""
        deltas: list[tuple[int, str]] = []
        if not isinstance(payload, dict) or not ("choices" in payload or "error" in payload or "object" in payload):
            self.failure = ProtocolError(
                "the server answered 200 with JSON that is not a completion",
                "check that ACS_API_BASE points at an OpenAI-compatible server; `acs complete --raw` shows the body",
            )
            return deltas
        self._frame(payload, deltas)
        if self.failure is None:
            for choice in self.choices.values():
                if not choice.finished:
                    choice.finished = True
            self.done = True
        return deltas

    @staticmethod
    def _error_payload(data: str) -> Any:
        try:
            payload = parse_json(data)
        except ValueError:
            return data
        if isinstance(payload, dict) and payload.get("error"):
            return payload["error"]
        return payload

    def _frame(self, frame: dict[str, Any], deltas: list[tuple[int, str]]) -> None:
        self.frames += 1
        get = frame.get
        error = get("error")
        if error:
            self.failure = _error_from(error, "the server reported an error")
            return
        if get("object") == "error":
            self.failure = _error_from(frame, "the server reported an error")
            return
        choices = get("choices")
        usage = get("usage")
        if usage and type(usage) is dict:
            self._take_usage(usage, choices)
        if self.id is None:
            self.id = get("id")
            self.model = get("model")
        if "system_fingerprint" in frame and frame["system_fingerprint"]:
            self.system_fingerprint = frame["system_fingerprint"]
        if not choices or type(choices) is not list:
            return
        states = self.choices
        for c in choices:
            if type(c) is not dict:
                continue
            index = c.get("index", 0)
            state = states.get(index)
            if state is None:
                if type(index) is not int:
                    index = 0
                    state = states.get(0)
                if state is None:
                    state = states[index] = Choice(index)
            if state.finished:
                continue  # duplicate terminal frames (vLLM before PR #28591)
            text = c.get("text")
            if text and type(text) is str:
                if self.keep_text:
                    state.parts.append(text)
                deltas.append((index, text))
            logprobs = c.get("logprobs")
            if logprobs:
                self._add_logprobs(state, logprobs)
            reason = c.get("finish_reason")
            if reason is not None:
                state.finished = True
                state.finish_reason = str(reason)
                state.stop_reason = c.get("stop_reason")

    def _take_usage(self, usage: dict[str, Any], choices: Any) -> None:
        # A frame without choices (or with all of them, the old fake stream) carries the request's
        # aggregate, which wins. Usage on a one-choice frame is that choice's: the latest figure
        # per choice counts (vLLM's continuous stats are cumulative, so never summed over frames),
        # and the choices' figures add up (llama-server reports each prompt of a batch apart).
        if not choices or type(choices) is not list or len(choices) > 1:
            self.usage = usage
            self._usage_is_aggregate = True
            return
        if self._usage_is_aggregate:
            return
        first = choices[0]
        index = first.get("index", 0) if type(first) is dict else 0
        self._choice_usage[index] = usage
        if len(self._choice_usage) == 1:
            self.usage = usage
            return
        total: dict[str, Any] = {}
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            values = [u.get(key) for u in self._choice_usage.values()]
            if all(type(v) is int for v in values):
                total[key] = sum(values)  # type: ignore[arg-type]
        self.usage = total or usage

    @staticmethod
    def _add_logprobs(state: Choice, logprobs: Any) -> None:
        if not isinstance(logprobs, dict):
            return
        if state.logprobs is None:
            state.logprobs = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
        for key, values in state.logprobs.items():
            more = logprobs.get(key)
            if isinstance(more, list):
                values.extend(more)

    def end_of_stream(self, *, cut: bool = False, expected: int = 1) -> Exception | None:
        """The verdict once the body ended: None when the completion is whole."""
        if self.failure is not None:
            return self.failure
        aborted = [c for c in self.choices.values() if c.finish_reason in ("abort", "error")]
        if aborted:
            return IncompleteStream(
                f"the server ended the generation with finish reason {aborted[0].finish_reason!r}",
                "the text so far is kept; the server aborted the request (overload, shutdown or a client timeout upstream): retry it",
            )
        if self.done:
            unfinished = [c.index for c in self.ordered() if not c.finished]
            if unfinished:
                # servers finish every choice before [DONE]; one that did not was cut short
                # (llama-cpp-python does this when another request takes its slot)
                return IncompleteStream(
                    f"incomplete stream: [DONE] came before choice {unfinished[0]} had a finish reason",
                    "the text so far is kept on stdout; the server stopped this generation early: retry it",
                )
            return None
        indexes = set(self.choices) | set(range(expected))
        if self.choices and all(i in self.choices and self.choices[i].finished for i in indexes):
            return None  # every choice finished; only [DONE] (and maybe usage) is missing (WIRE.md S48)
        if cut:
            what = "the connection closed mid-stream"
        elif not self.choices and self.frames == 0:
            what = "the stream ended before any completion frame arrived"
        else:
            what = "the stream ended without [DONE] and without a finish reason"
        return IncompleteStream(
            f"incomplete stream: {what}",
            "the text so far is kept on stdout; retry, and check for a proxy or server that cuts long responses",
        )

    def ordered(self) -> list[Choice]:
        return [self.choices[i] for i in sorted(self.choices)]
