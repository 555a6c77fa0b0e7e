"""Pure: server-sent events of a completion stream to typed records, and the stream's state.

The rules servers follow (vLLM, llama.cpp, llama-cpp-python, OpenAI):

- each `data:` event is one JSON chunk; `data: [DONE]` (also with trailing space) ends the stream
  and anything after it is ignored; `data: null` (llama-server between the prompts of a batch)
  carries nothing;
- text is routed by each choice's `index` (an integer; choices come interleaved, several may
  share a frame); frames for a choice after its finish reason are ignored (vLLM before its
  PR #28591 repeated finished children);
- `finish_reason` `abort` or `error` means the server gave up: the stream is incomplete;
- usage comes from the aggregate chunk (`choices: []`), which wins; without one, usage on a
  one-choice chunk is that choice's (llama-server puts it on each prompt's finish chunk): the
  latest figure per choice counts (vLLM's continuous usage is cumulative, never summed over
  frames) and the choices' figures add up;
- an error inside the stream comes as a JSON object with a truthy `error` (nested
  `{"error": {...}}` or a plain string), the old flat `{"object": "error", ...}`, or an
  `event: error` event; it stops the stream (exit 9);
- a frame that is not a JSON object (or that acs cannot decode: nested too deeply, a number too
  large) is a protocol error (exit 11); the text before it is kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from acs_cli.errors import AcsError, IncompleteStream, ProtocolError, StreamError
from acs_cli.frames import FrameTemplate, learn_template, parse_json
from acs_cli.records import Delta, Done, Finish, Record, StreamFailure, Usage, token_count
from acs_cli.text import shorten

EXTRA_CHOICES = 64  # choices a stream may bring beyond those asked for (shown, and they must finish)
_TEMPLATE_TRIES = 3  # templates a stream may learn that did not pay off (16 hits) before it stops learning
_NOT_COMPLETION_HINT = "check that the base URL points at an OpenAI-compatible server; `acs complete --raw` shows the bytes"


def describe(value: Any, limit: int = 80) -> str:
    """A server value that should have been a short string (a finish reason, an error message),
    as one shortened line, whatever it is: nested garbage and huge numbers included."""
    if isinstance(value, str):
        return shorten(value, limit)
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        text = type(value).__name__
    return shorten(text, limit)


@dataclass
class ChoiceState:
    index: int
    finished: bool = False
    finish_reason: str | None = None
    stop_reason: Any = None


def stream_error(payload: Any, fallback: str) -> StreamError:
    """The error a server reported inside a 200 stream, from its error object (or string)."""
    if isinstance(payload, dict):
        message = payload.get("message") or fallback
        error_type = payload.get("type")
        code = payload.get("code")
    else:
        message = payload or fallback
        error_type = code = None
    detail = f" ({describe(error_type)}" + (f", code {describe(code)})" if code is not None else ")") if error_type else ""
    return StreamError(
        f"the server reported an error mid-stream: {describe(message, 200)}{detail}",
        "the text before the error is kept; retry the request, and check the server's log if it repeats",
        error_type=error_type if isinstance(error_type, str) else None,
        code=code,
    )


class CompletionState:
    """Turns events into records (acs_cli.records) and keeps what a verdict and a summary need.

    `feed` returns the records of the events in arrival order. It stops at the first failure:
    the last record is then a StreamFailure (also kept in `failure`), after the records decoded
    before it, so their text can still be written. Memory is flat: no text is kept here.
    """

    TEXT_PATH: tuple[str | int, ...] = ("choices", 0, "text")  # the string a stream's frames differ in (FrameTemplate)

    def __init__(self, expected: int = 1) -> None:
        self.expected = max(1, expected)  # the choices asked for (n)
        self.choices: dict[int, ChoiceState] = {}
        self.usage: dict[str, Any] | None = None
        self._usage_is_aggregate = False
        self._choice_usage: dict[Any, dict[str, Any]] = {}
        self.done = False
        self.failure: AcsError | None = None
        self.id: str | None = None
        self.model: str | None = None
        self.frames = 0  # JSON frames taken (the error and [DONE] events excepted)
        self.notices: list[str] = []  # one-time warnings about what the stream did
        self.template: FrameTemplate | None = None
        self._tries = _TEMPLATE_TRIES

    @property
    def stopped(self) -> bool:
        """Whether nothing more will be taken: [DONE] arrived or the stream failed."""
        return self.done or self.failure is not None

    def feed(self, events: list[tuple[str, str]]) -> list[Record]:
        records: list[Record] = []
        for event_type, data in events:
            if self.done or self.failure is not None:
                break
            if event_type != "message":
                self._named_event(event_type, data, records)
                continue
            if data[:1] != "{":  # not the usual frame: blank, [DONE] (leading space allowed) or other
                if not data.strip():
                    continue
                if data.lstrip()[:6] == "[DONE]":
                    self.done = True
                    records.append(Done())
                    break
            template = self.template
            if template is not None:
                text = template.fill(data)
                if text is not None:
                    index = template.plain
                    if index is not None and self.id is not None:  # (without an id, _frame takes each frame's model)
                        state = self.choices.get(index)
                        if state is not None and not state.finished:  # all _frame would do, without reading the frame
                            self.frames += 1
                            if text:
                                records.append(Delta(index, text, None))
                            continue
                    self._frame(template.frame, records)
                    continue
            try:
                frame = parse_json(data)
            except ValueError as exc:
                self._fail(ProtocolError(f"the server sent a frame that is {exc}: {shorten(data)}", _NOT_COMPLETION_HINT), records)
                break
            if type(frame) is not dict:
                if frame is None:
                    continue  # llama-server sends `data: null` between the prompts of a batch
                self._fail(ProtocolError(f"the server sent a frame that is not a JSON object: {shorten(data)}", _NOT_COMPLETION_HINT), records)
                break
            if self._tries:
                self._learn(data, frame)
            self._frame(frame, records)
        return records

    def _learn(self, data: str, frame: dict[str, Any]) -> None:
        """A frame the template did not fit: learn it instead (a few times a stream, unless the
        templates pay off)."""
        if self.template is not None and self.template.hits >= 16:
            self._tries += 1
        self._tries -= 1
        self.template = learn_template(data, frame, self.TEXT_PATH)
        if self.template is not None:
            self.template.plain = self._plain_index(self.template.frame)

    def _plain_index(self, frame: dict[str, Any]) -> int | None:
        """The choice index if all `_frame` does with this (template's) frame, once the stream's
        id is known and its choice has been seen and is not finished, is count it and pass its text
        on: no error, one choice, no finish reason, no logprobs. (A chat state reads more than the
        text: None.)"""
        choices = frame.get("choices")
        if frame.get("error") or frame.get("object") == "error" or type(choices) is not list or len(choices) != 1:
            return None
        c = choices[0]
        index = c.get("index", 0)
        if type(index) is not int or index < 0 or c.get("logprobs") or c.get("finish_reason") is not None:
            return None
        return index

    def feed_document(self, payload: Any) -> list[Record]:
        """A whole non-streamed completion (a 200 JSON body instead of an event stream)."""
        records: list[Record] = []
        if not isinstance(payload, dict) or not ("choices" in payload or "error" in payload or "object" in payload):
            self._fail(
                ProtocolError(
                    "the server answered 200 with JSON that is not a completion",
                    "check that the base URL points at an OpenAI-compatible server; `acs complete --raw` shows the body",
                ),
                records,
            )
            return records
        self._frame(payload, records)
        if self.failure is None:
            for choice in self.ordered():
                if not choice.finished:
                    choice.finished = True  # a whole document is finished, reason or not
                    records.append(Finish(choice.index, None))
            self.done = True
        return records

    def _fail(self, error: AcsError, records: list[Record]) -> None:
        self.failure = error
        records.append(StreamFailure(error))

    def _named_event(self, event_type: str, data: str, records: list[Record]) -> None:
        if event_type == "error":
            try:
                payload: Any = parse_json(data)
            except ValueError:
                payload = data
            if isinstance(payload, dict) and payload.get("error"):
                payload = payload["error"]
            self._fail(stream_error(payload, "the server sent an error event"), records)
            return
        # other named events (ping, ...) carry nothing for a completion; but completion JSON under
        # another name would vanish silently, so say so once
        if "choices" not in data or any("event:" in n for n in self.notices):
            return
        try:
            frame = parse_json(data)
        except ValueError:
            return
        if isinstance(frame, dict) and "choices" in frame:
            self.notices.append(
                f"warning: the server sent completion frames as `event: {shorten(event_type, 40)}`; acs reads only unnamed (message) events, so their text is not shown"
            )

    def _frame(self, frame: dict[str, Any], records: list[Record]) -> None:
        self.frames += 1
        get = frame.get
        error = get("error")
        if error:
            self._fail(stream_error(error, "the server reported an error"), records)
            return
        if get("object") == "error":
            self._fail(stream_error(frame, "the server reported an error"), records)
            return
        choices = get("choices")
        usage = get("usage")
        if usage and type(usage) is dict:
            self._take_usage(usage, choices)
            records.append(Usage(self.usage or usage))
        if self.id is None:
            ident = get("id")
            model = get("model")
            self.id = ident if isinstance(ident, str) else None
            self.model = model if isinstance(model, str) else None
        if not choices or type(choices) is not list:
            return
        states = self.choices
        for c in choices:
            if type(c) is not dict:
                continue
            index = c.get("index", 0)
            if type(index) is not int or index < 0:  # True and 1.0 would pass for choice 1 in a dict
                self._fail(ProtocolError(f"the server sent a choice index that is not a whole number: {describe(index, 60)}", _NOT_COMPLETION_HINT), records)
                return
            state = states.get(index)
            first = state is None
            if state is None:
                if len(states) >= self.expected + EXTRA_CHOICES:  # memory stays flat
                    self._fail(ProtocolError(f"the server sent more than {len(states)} choices; {self.expected} were asked for", _NOT_COMPLETION_HINT), records)
                    return
                state = states[index] = ChoiceState(index)
            if state.finished:
                continue  # duplicate terminal frames (vLLM before PR #28591)
            self._read_choice(c, index, first, records)
            reason = c.get("finish_reason")
            if reason is not None:
                state.finished = True
                state.finish_reason = reason if isinstance(reason, str) else describe(reason)
                state.stop_reason = c.get("stop_reason")
                records.append(Finish(index, state.finish_reason, state.stop_reason))

    def _read_choice(self, c: dict[str, Any], index: int, first: bool, records: list[Record]) -> None:
        """What one choice of one frame says besides its finish reason: here its `text` and
        `logprobs` (a Delta, empty on the choice's first appearance); a chat state reads `delta`."""
        text = c.get("text")
        logprobs = c.get("logprobs")
        if type(text) is not str:
            text = ""
        if text or first or logprobs:
            records.append(Delta(index, text, logprobs if type(logprobs) is dict else None))

    def _take_usage(self, usage: dict[str, Any], choices: Any) -> None:
        # A frame without choices (or with all of them, the old fake stream) carries the request's
        # aggregate, which wins. Usage on a one-choice frame is that choice's: the latest figure
        # per choice counts and the choices' figures add up (see the module docstring).
        if not choices or type(choices) is not list or len(choices) > 1:
            self.usage = usage
            self._usage_is_aggregate = True
            return
        if self._usage_is_aggregate:
            return
        first = choices[0]
        index = first.get("index", 0) if type(first) is dict else 0
        if type(index) is not int:
            return  # the frame fails on its index (see _frame)
        self._choice_usage[index] = usage
        if len(self._choice_usage) == 1:
            self.usage = usage
            return
        total: dict[str, Any] = {}
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            values = [token_count(u.get(key)) for u in self._choice_usage.values()]
            if all(v is not None for v in values):
                total[key] = sum(v for v in values if v is not None)
        self.usage = total or usage

    def verdict(self, *, cut: bool = False) -> AcsError | None:
        """Once the body ended: None when the completion is whole, else what went wrong.

        Whole means every choice asked for (0..n-1; with one asked for, the one that came, whatever
        its index) and every one the server sent has its finish reason,
        with or without [DONE] after it; [DONE] alone, or before a choice finished, is incomplete
        (llama-cpp-python ends a generation that way when another request takes its slot).
        """
        if self.failure is not None:
            return self.failure
        aborted = [c for c in self.ordered() if c.finish_reason in ("abort", "error")]
        if aborted:
            return IncompleteStream(
                f"the server ended the generation with finish reason {aborted[0].finish_reason!r}",
                "the text so far is kept; the server aborted the request (overload, shutdown or a client timeout upstream): retry it",
            )
        # the choices asked for are 0..n-1; one choice asked for is whichever index it came with
        asked = set(range(self.expected)) if self.expected > 1 or not self.choices else set()
        unfinished = [i for i in sorted(set(self.choices) | asked) if i not in self.choices or not self.choices[i].finished]
        if not unfinished:
            return None
        if self.done:
            what = f"[DONE] came before choice {unfinished[0]} had a finish reason" if self.choices else "[DONE] came without any completion frame"
            return IncompleteStream(
                f"incomplete stream: {what}",
                "the text so far is kept on stdout; the server stopped this generation early: retry it",
            )
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

    def ordered(self) -> list[ChoiceState]:
        return [self.choices[i] for i in sorted(self.choices)]
