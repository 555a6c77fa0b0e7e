"""--json (one object at the end) and --jsonl (one normalized line per event as it arrives).

Both print on stdout only; the usage line, messages and hints stay on stderr. The object (and the
last line of --jsonl) is printed for every outcome once a request was attempted: success, a
failure before any answer (connect error, HTTP 4xx/5xx: no choices), a failure mid-stream (the
partial text), and Ctrl-C (error kind "interrupted").
"""

from __future__ import annotations

import json
from typing import Any

from acs_cli.errors import (
    AcsError,
    ConfigError,
    ConnectError,
    ExitStatus,
    HTTPStatusError,
    IncompleteStream,
    ProtocolError,
    StreamError,
    TimeoutError_,
    UsageError,
)
from acs_cli.sse import CompletionStream
from acs_cli.terminal import Terminal

_KINDS: list[tuple[type[AcsError], str]] = [
    (UsageError, "usage"),
    (ConfigError, "config"),
    (ConnectError, "connect"),
    (TimeoutError_, "timeout"),
    (HTTPStatusError, "http"),
    (StreamError, "stream_error"),
    (IncompleteStream, "incomplete"),
    (ProtocolError, "protocol"),
]

# JSON leaves C1 controls, DEL and the bidi overrides as they are; escaped, the output is the same
# JSON and cannot drive a terminal it is printed on
_ESCAPE = {c: f"\\u{c:04x}" for c in [0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]}


def dumps(obj: Any, indent: int | None = None) -> bytes:
    """Compact (or indented) UTF-8 JSON; a lone surrogate (an emoji split across frames) is
    written as its \\u escape instead of failing."""
    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(obj, ensure_ascii=False, indent=indent, separators=separators).translate(_ESCAPE)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, ensure_ascii=True, indent=indent, separators=separators).encode("ascii")


def error_object(error: BaseException | None, interrupted: bool = False) -> dict[str, Any] | None:
    """{"kind", "message", "hint", "exit_status"} (+ "http_status", "error_type", "code" when known)."""
    if interrupted:
        return {
            "kind": "interrupted",
            "message": "interrupted by Ctrl-C",
            "hint": None,
            "exit_status": int(ExitStatus.INTERRUPTED),
        }
    if error is None:
        return None
    from acs_cli.run import redact

    if isinstance(error, AcsError):
        kind = next((name for cls, name in _KINDS if isinstance(error, cls)), "error")
        out: dict[str, Any] = {
            "kind": kind,
            "message": redact(error.message),
            "hint": redact(error.hint) if error.hint else None,
            "exit_status": int(error.status),
        }
        if isinstance(error, HTTPStatusError):
            out["http_status"] = error.status_code
        error_type = getattr(error, "error_type", None)
        if error_type is not None:
            out["error_type"] = error_type
        code = getattr(error, "code", None)
        if code is not None:
            out["code"] = code
        return out
    return {"kind": "internal", "message": redact(f"{type(error).__name__}: {error}"), "hint": None, "exit_status": int(ExitStatus.ERROR)}


def _reportable(error: BaseException | None) -> bool:
    # a closed stdout (141) or a bug outside acs's error tree prints nothing more
    return error is None or isinstance(error, AcsError)


class _JsonBase:
    def __init__(self, term: Terminal, opts: Any) -> None:
        self.out = term.stdout
        self.opts = opts
        self.only = opts.output.choice
        self.asked_logprobs = opts.request.logprobs is not None
        self.concluded = False
        self.model: str | None = None  # the model asked for, until the stream names one

    def start(self) -> None:
        pass

    def finish(self, stream: CompletionStream) -> None:
        pass

    def close(self) -> None:
        pass

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.out.flush()


class JsonSink(_JsonBase):
    """--json: nothing while the stream runs (the stream keeps the text), one object at the end."""

    def write(self, deltas: list[tuple[int, str]], stream: CompletionStream) -> None:
        pass

    def report(self, stream: CompletionStream, error: BaseException | None, interrupted: bool, timings: dict[str, Any]) -> None:
        if self.concluded or not _reportable(error):
            return
        self.concluded = True
        self._write(dumps(self.document(stream, error, interrupted, timings), indent=2) + b"\n")

    def document(self, stream: CompletionStream, error: BaseException | None, interrupted: bool, timings: dict[str, Any]) -> dict[str, Any]:
        choices = []
        for c in stream.ordered():
            if self.only is not None and c.index != self.only:
                continue
            item: dict[str, Any] = {
                "index": c.index,
                "text": c.text,
                "finish_reason": c.finish_reason,
                "stop_reason": c.stop_reason,
            }
            if self.asked_logprobs or c.logprobs is not None:
                item["logprobs"] = c.logprobs
            choices.append(item)
        failure = error_object(error, interrupted)
        return {
            "id": stream.id,
            "model": stream.model or self.model,
            "choices": choices,
            "usage": stream.usage,
            "timings": timings,
            "complete": failure is None,
            "error": failure,
        }


class EventStream(CompletionStream):
    """A CompletionStream that also notes, frame by frame, the events --jsonl prints: each text
    delta (with the frame's logprobs for that choice) and each finish, in arrival order."""

    def __init__(self, only: int | None = None) -> None:
        super().__init__(keep_text=False)
        self.only = only
        self.events: list[dict[str, Any]] = []
        self.announced: set[int] = set()

    def _frame(self, frame: dict[str, Any], deltas: list[tuple[int, str]]) -> None:
        start = len(deltas)
        super()._frame(frame, deltas)
        choices = frame.get("choices")
        if type(choices) is not list:
            return
        events = self.events
        if len(deltas) > start:
            from acs_cli.logprobs import frame_logprobs

            only = self.only
            for (index, text), logprobs in zip(deltas[start:], frame_logprobs(choices, deltas[start:])):
                if only is not None and index != only:
                    continue
                event: dict[str, Any] = {"type": "delta", "index": index, "text": text}
                if logprobs is not None:
                    event["logprobs"] = logprobs
                events.append(event)
        if any(type(c) is dict and c.get("finish_reason") is not None for c in choices):
            self.announce_finishes()

    def announce_finishes(self) -> None:
        for index, choice in sorted(self.choices.items()):
            if choice.finished and index not in self.announced:
                self.announced.add(index)
                if self.only is None or index == self.only:
                    self.events.append(
                        {"type": "finish", "index": index, "finish_reason": choice.finish_reason, "stop_reason": choice.stop_reason}
                    )


class JsonlSink(_JsonBase):
    """--jsonl: the events of each network read as JSON lines, written and flushed as they arrive;
    at the end the usage, an error when the run failed, and always a last `done` line."""

    def write(self, deltas: list[tuple[int, str]], stream: CompletionStream) -> None:
        events = getattr(stream, "events", None)
        if events:
            self._write(b"".join(dumps(e) + b"\n" for e in events))
            events.clear()

    def report(self, stream: CompletionStream, error: BaseException | None, interrupted: bool, timings: dict[str, Any]) -> None:
        if self.concluded or not _reportable(error):
            return
        self.concluded = True
        lines: list[dict[str, Any]] = []
        if isinstance(stream, EventStream):
            stream.announce_finishes()  # a 200 JSON completion finishes its choices at the end
            lines.extend(stream.events)
            stream.events.clear()
        usage = stream.usage
        if isinstance(usage, dict):
            lines.append(
                {
                    "type": "usage",
                    "prompt_tokens": usage.get("prompt_tokens"),
                    "completion_tokens": usage.get("completion_tokens"),
                    "total_tokens": usage.get("total_tokens"),
                }
            )
        failure = error_object(error, interrupted)
        if failure is not None:
            lines.append({"type": "error", **failure})
        lines.append(
            {
                "type": "done",
                "complete": failure is None,
                "id": stream.id,
                "model": stream.model or self.model,
                "timings": timings,
            }
        )
        self._write(b"".join(dumps(line) + b"\n" for line in lines))
