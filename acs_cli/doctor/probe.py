"""The probe: one short streamed request, read into a `Probe` record for acs_cli.doctor.judge.

The body goes through the same pieces as `acs complete` (acs_cli.body: sniffing, the pump, the
httpx-to-acs error mapping), with a sink that notes when each read brought text. The probe is
bounded in memory and time whatever the server does: it stops reading past LIMIT_FACTOR times
max_tokens frames, past a byte budget, or after PROBE_SECONDS, and says so (a server that
ignores max_tokens would otherwise stream forever).

What is probed is an `Endpoint`: the path, the request body and the parser state. A chat probe
differs from the completion probe only in those.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from acs_cli.body import body_error, media_type, parse_document, prepend, pump, read_bounded, sniff_body
from acs_cli.completion_state import CompletionState
from acs_cli.errors import AcsError
from acs_cli.records import Delta, Reasoning, Record, ToolCallDelta
from acs_cli.secrets import redact

from .judge import BYTES, FRAMES, PREVIEW_CHARS, SECONDS, Probe

if TYPE_CHECKING:
    from acs_cli.outcome import Outcome

PROBE_PROMPT = "Hello"
LIMIT_FACTOR = 4  # frames past this many times max_tokens: the server ignores max_tokens
EXTRA_FRAMES = 8  # frames a stream may send besides its tokens (role, finish, usage)
FRAME_BYTES = 4096  # a generous size for one frame, for the byte budget
PROBE_SECONDS = 120.0  # the longest the probe reads a body (--timeout holds between reads)


@dataclass(frozen=True)
class Endpoint:
    """What the probe sends, where, and which parser state reads its frames."""

    path: str  # below the base URL, for messages: POST /completions
    body: Callable[[str, int], dict[str, Any]]  # (model, max_tokens) -> the request body
    state: Callable[[], CompletionState]  # a fresh parser state for the answer's frames
    open: Callable[[Any, dict[str, Any]], Any]  # (api, body) -> the 2xx streaming response; raises AcsError


def completion_body(model: str, max_tokens: int) -> dict[str, Any]:
    """Short, deterministic, streamed, with usage asked for."""
    return {
        "model": model,
        "prompt": PROBE_PROMPT,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


COMPLETIONS = Endpoint("completions", completion_body, CompletionState, lambda api, body: api.open_completion(body))


def chat_body(model: str, max_tokens: int) -> dict[str, Any]:
    """The probe as one user message, otherwise as the completion probe."""
    body = completion_body(model, max_tokens)
    del body["prompt"]
    return {"model": model, "messages": [{"role": "user", "content": PROBE_PROMPT}], **body}


def chat_state() -> CompletionState:
    from acs_cli.chat_state import ChatState  # only `acs doctor --chat` needs it

    return ChatState()


CHAT = Endpoint("chat/completions", chat_body, chat_state, lambda api, body: api.open_completion(body, path="chat/completions"))


def frame_limit(max_tokens: int) -> int:
    return LIMIT_FACTOR * max_tokens + EXTRA_FRAMES


def byte_limit(max_tokens: int) -> int:
    return 64 * 1024 + frame_limit(max_tokens) * FRAME_BYTES


class ProbeSink:
    """The probe's sink: per read that brought text, its arrival and how many frames of text;
    the start of the first choice's text for the preview (no more: memory stays flat)."""

    def __init__(self, probe: Probe, start: float, clock: Callable[[], float]) -> None:
        self.probe = probe
        self.start = start
        self.clock = clock
        self.index: int | None = None  # the choice previewed: the lowest index seen

    def begin(self) -> None:
        pass

    def write(self, records: list[Record]) -> None:
        now = self.clock() - self.start
        probe = self.probe
        texts = 0
        for r in records:
            if type(r) is Reasoning or type(r) is ToolCallDelta:
                texts += 1  # chat output besides the answer: timed, not previewed
                continue
            if type(r) is not Delta or not r.text:
                continue
            texts += 1
            if self.index is None or r.index < self.index:
                self.index, probe.preview = r.index, ""
            if r.index == self.index and len(probe.preview) <= PREVIEW_CHARS:
                probe.preview += r.text[: PREVIEW_CHARS + 1]
        if texts:
            probe.text_reads += 1
            probe.text_times.extend([now] * texts)

    def end(self, outcome: Outcome) -> None:
        pass


def run_probe(api: Any, endpoint: Endpoint, model: str, max_tokens: int, timeout: float, clock: Callable[[], float] = time.perf_counter) -> Probe:
    """Send the probe and read its answer into a Probe; never raises an AcsError."""
    probe = Probe(path=endpoint.path, model=model, max_tokens=max_tokens)
    start = clock()
    try:
        response = endpoint.open(api, endpoint.body(model, max_tokens))
    except AcsError as exc:
        probe.request_error = exc
        probe.head_seconds = clock() - start
        return probe
    probe.head_seconds = clock() - start
    probe.status = response.status_code
    probe.headers = {k.lower(): v for k, v in response.headers.items()}
    probe.media = media_type(response.headers.get("content-type", ""))
    state = endpoint.state()
    try:
        _read_body(probe, response.iter_raw(), state, timeout, start, clock)
    finally:
        response.close()
    probe.failure = state.failure
    probe.verdict = state.verdict()
    probe.done = state.done
    probe.choices = state.ordered()
    probe.usage = state.usage
    probe.frames = state.frames
    probe.role_only = getattr(state, "role_only_first", None)  # chat: what the first frame held
    return probe


def _read_body(probe: Probe, chunks: Iterator[bytes], state: CompletionState, timeout: float, start: float, clock: Callable[[], float]) -> None:
    import httpx

    from acs_cli.outcome import Timeline

    sink = ProbeSink(probe, start, clock)
    try:
        if probe.media != "text/event-stream":
            first = next(chunks, b"")
            probe.kind = sniff_body(probe.media, first)
            if probe.kind == "other":
                probe.first_bytes = redact(first[:1024].decode("utf-8", "replace"))  # before any shortening
                return
            chunks = prepend(first, chunks)
            if probe.kind == "json":
                _read_document(probe, chunks, state, sink, start, clock)
                return
        pump(_metered(chunks, probe, state, start, clock), state, sink, Timeline())
    except AcsError as exc:  # an event too large for the parser
        probe.read_error = exc
    except httpx.HTTPError as exc:
        probe.read_error = body_error(exc, state, timeout)


def _read_document(probe: Probe, chunks: Iterable[bytes], state: CompletionState, sink: ProbeSink, start: float, clock: Callable[[], float]) -> None:
    """A whole JSON completion instead of a stream, read up to the byte budget."""
    limit = byte_limit(probe.max_tokens)
    body, more = read_bounded(chunks, limit)
    probe.last_time = clock() - start
    probe.reads, probe.body_bytes = 1, len(body)
    if more:
        probe.limit, probe.limit_value = BYTES, limit
        return
    sink.write(parse_document(body, state))


def _metered(chunks: Iterable[bytes], probe: Probe, state: CompletionState, start: float, clock: Callable[[], float]) -> Iterator[bytes]:
    """The body's reads, counted and timed, ending at the first limit the stream passes (checked
    once the pump has taken each read, so the frames it brought are counted)."""
    frames, size = frame_limit(probe.max_tokens), byte_limit(probe.max_tokens)
    for chunk in chunks:
        if not chunk:
            continue
        probe.reads += 1
        probe.body_bytes += len(chunk)
        probe.last_time = clock() - start
        yield chunk
        if state.frames > frames:
            probe.limit, probe.limit_value = FRAMES, frames
        elif probe.body_bytes > size:
            probe.limit, probe.limit_value = BYTES, size
        elif clock() - start > PROBE_SECONDS:
            probe.limit, probe.limit_value = SECONDS, PROBE_SECONDS
        if probe.limit is not None:
            return
