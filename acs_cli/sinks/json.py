"""--json (one object at the end) and --jsonl (one normalized line per event as it arrives).

Both print on stdout only; the usage line, messages and hints stay on stderr (the sink they wrap).
The object (and the last line of --jsonl) is printed for every outcome once a request was
attempted: success, a failure before any answer (connect error, HTTP 4xx/5xx: no choices), a
failure mid-stream (the partial text), and a signal (error kind "interrupted").
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from acs_cli.outcome import SIGNAL_NAMES
from acs_cli.records import Delta, Finish
from acs_cli.secrets import redact
from acs_cli.sinks.logprobs import merge_logprobs

if TYPE_CHECKING:
    from acs_cli.completion_state import ChoiceState, CompletionState
    from acs_cli.outcome import Outcome
    from acs_cli.records import Record
    from acs_cli.sinks import Sink
    from acs_cli.terminal import Terminal

# JSON leaves C1 controls, DEL and the bidi overrides as they are; escaped, the output is the same
# JSON and cannot drive a terminal it is printed on
_ESCAPE = {c: f"\\u{c:04x}" for c in [0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]}


def dumps(obj: Any, indent: int | None = None) -> bytes:
    """Compact (or indented) UTF-8 JSON that cannot drive a terminal and cannot fail on what a
    server sent: a lone surrogate (an emoji split across frames) is written as its \\u escape;
    NaN and ±Infinity (JSON has neither; a server's `NaN` or `1e999` reads as one) are written
    as null, as JavaScript's JSON.stringify writes them, and so is a value nested too deeply to
    write or a number too long to print."""
    separators = (",", ":") if indent is None else (",", ": ")
    try:
        text = json.dumps(obj, ensure_ascii=False, indent=indent, separators=separators, allow_nan=False)
    except (ValueError, RecursionError):
        obj = writable(obj)
        text = json.dumps(obj, ensure_ascii=False, indent=indent, separators=separators, allow_nan=False)
    text = text.translate(_ESCAPE)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, ensure_ascii=True, indent=indent, separators=separators, allow_nan=False).encode("ascii")


MAX_DEPTH = 64  # deeper than any completion object; what is deeper is garbage a server sent


def writable(value: Any, depth: int = 0) -> Any:
    """The value with what JSON cannot hold replaced by None (the slow path of dumps)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            int.__repr__(value)  # past Python's 4300 digits an int cannot be printed (a sum can get there)
        except ValueError:
            return None
        return value
    if isinstance(value, (dict, list, tuple)):
        if depth >= MAX_DEPTH:
            return None
        if isinstance(value, dict):
            return {str(k): writable(v, depth + 1) for k, v in value.items()}
        return [writable(v, depth + 1) for v in value]
    return value


def error_object(outcome: Outcome) -> dict[str, Any] | None:
    """{"kind", "message", "hint", "exit_status"} (+ "http_status", "error_type", "code" when
    known), every string redacted; None when the run succeeded."""
    if outcome.signal is not None:
        return {
            "kind": "interrupted",
            "message": SIGNAL_NAMES.get(outcome.signal, f"ended by signal {outcome.signal}"),
            "hint": None,
            "exit_status": outcome.status,
        }
    error = outcome.error
    if error is None:
        return None
    out: dict[str, Any] = {
        "kind": error.kind,
        "message": redact(error.message),
        "hint": redact(error.hint) if error.hint else None,
        "exit_status": int(error.status),
    }
    status_code = getattr(error, "status_code", None)
    if status_code is not None:
        out["http_status"] = status_code
    for key in ("error_type", "code"):
        value = getattr(error, key, None)
        if value is not None:
            out[key] = redact(value) if isinstance(value, str) else value
    return out


def _reportable(outcome: Outcome) -> bool:
    # a closed stdout (141) prints nothing more
    return not outcome.stdout_closed


class _JsonOutput:
    def __init__(self, inner: Sink, term: Terminal, only: int | None) -> None:
        self.inner = inner
        self.term = term
        self.only = only

    def begin(self) -> None:
        self.inner.begin()

    def timings(self, outcome: Outcome) -> dict[str, Any]:
        """The `timings` object (chat adds its reasoning and answer times)."""
        return outcome.figures()


class JsonSink(_JsonOutput):
    """--json: nothing while the stream runs (the text is kept here), one object at the end."""

    def __init__(self, inner: Sink, term: Terminal, only: int | None, asked_logprobs: bool) -> None:
        super().__init__(inner, term, only)
        self.asked_logprobs = asked_logprobs
        self.texts: dict[int, list[str]] = {}
        self.logprobs: dict[int, dict[str, list[Any]]] = {}

    def write(self, records: list[Record]) -> None:
        for r in records:
            if type(r) is Delta:
                parts = self.texts.get(r.index)
                if parts is None:
                    parts = self.texts[r.index] = []
                if r.text:
                    parts.append(r.text)
                if r.logprobs is not None:
                    merge_logprobs(self.logprobs, r)
        self.inner.write(records)

    def end(self, outcome: Outcome) -> None:
        # the object first: when stdout cannot take it, nothing more is said (no usage line)
        if _reportable(outcome):
            self.term.write_out(dumps(self.document(outcome), indent=2) + b"\n")
        self.inner.end(outcome)

    def document(self, outcome: Outcome) -> dict[str, Any]:
        state = outcome.state
        choices = []
        if state is not None:
            choices = [self.choice(c, state) for c in state.ordered() if self.only is None or c.index == self.only]
        failure = error_object(outcome)
        return {
            "id": state.id if state is not None else None,
            "model": (state.model if state is not None else None) or outcome.model,
            "choices": choices,
            "usage": outcome.usage,
            "timings": self.timings(outcome),
            "complete": failure is None,
            "error": failure,
        }


    def choice(self, c: ChoiceState, state: CompletionState) -> dict[str, Any]:
        """One choice of the object: its text, finish and (when asked or sent) logprobs."""
        item: dict[str, Any] = {
            "index": c.index,
            "text": "".join(self.texts.get(c.index, ())),
            "finish_reason": c.finish_reason,
            "stop_reason": c.stop_reason,
        }
        if self.asked_logprobs or c.index in self.logprobs:
            item["logprobs"] = self.logprobs.get(c.index)
        return item


class JsonlSink(_JsonOutput):
    """--jsonl: the events of each network read as JSON lines, written and flushed as they
    arrive: each text delta (with that frame's logprobs for the choice) and each finish; at the
    end the usage, an error when the run failed, and always a last `done` line."""

    def write(self, records: list[Record]) -> None:
        lines: list[bytes] = []
        only = self.only
        for r in records:
            if only is not None and getattr(r, "index", only) != only:
                continue
            event = self.event(r)
            if event is not None:
                lines.append(dumps(event))
        if lines:
            self.term.write_out(b"\n".join(lines) + b"\n")
        self.inner.write(records)

    def event(self, r: Record) -> dict[str, Any] | None:
        """The line for one record, if it makes one (a delta with text, a finish)."""
        kind = type(r)
        if kind is Delta:
            if not r.text:  # type: ignore[union-attr]
                return None
            event: dict[str, Any] = {"type": "delta", "index": r.index, "text": r.text}  # type: ignore[union-attr]
            if r.logprobs is not None:  # type: ignore[union-attr]
                event["logprobs"] = r.logprobs  # type: ignore[union-attr]
            return event
        if kind is Finish:
            return {"type": "finish", "index": r.index, "finish_reason": r.reason, "stop_reason": r.stop_reason}  # type: ignore[union-attr]
        return None

    def end(self, outcome: Outcome) -> None:
        if _reportable(outcome):
            self.term.write_out(b"".join(dumps(line) + b"\n" for line in self.last_lines(outcome)))
        self.inner.end(outcome)

    def last_lines(self, outcome: Outcome) -> list[dict[str, Any]]:
        """usage (when the server sent it), error (when the run failed), and always done."""
        lines: list[dict[str, Any]] = []
        usage = outcome.usage
        if isinstance(usage, dict):
            lines.append(
                {
                    "type": "usage",
                    "prompt_tokens": usage.get("prompt_tokens"),
                    "completion_tokens": usage.get("completion_tokens"),
                    "total_tokens": usage.get("total_tokens"),
                }
            )
        failure = error_object(outcome)
        if failure is not None:
            lines.append({"type": "error", **failure})
        state = outcome.state
        lines.append(
            {
                "type": "done",
                "complete": failure is None,
                "id": state.id if state is not None else None,
                "model": (state.model if state is not None else None) or outcome.model,
                "timings": self.timings(outcome),
            }
        )
        return lines
