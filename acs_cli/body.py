"""A response body to records: what a 200 body holds (sniffing), pumping its reads through the
parser into a sink, and the one mapping of httpx's failures to acs's errors.

Used by `acs complete` (text, JSON and --raw) and `acs doctor`; `acs replay` pumps a file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from acs_cli.completion_state import CompletionState
from acs_cli.errors import AcsError, ConnectError, IncompleteStream, ProtocolError, TimedOut
from acs_cli.records import Delta, Reasoning, Record, ToolCallDelta
from acs_cli.sse import SSEParser
from acs_cli.text import shorten

if TYPE_CHECKING:
    from acs_cli.outcome import Timeline
    from acs_cli.sinks import Sink

ERROR_BODY_LIMIT = 64 * 1024  # an error page is read this far and no further
DOCUMENT_LIMIT = 32 * 1024 * 1024  # a whole JSON answer (a completion, a model list)


def sniff_body(media: str, first: bytes) -> str:
    """What a 200 body holds, from its media type and first bytes: json, sse or other."""
    if media == "application/json" or media.endswith("+json"):
        return "json"
    head = first.lstrip(b"\xef\xbb\xbf \t\r\n")[:6]
    if head.startswith(b"{"):
        return "json"
    if not head or head.startswith((b"data", b":", b"event", b"id", b"retry")):
        return "sse"
    return "other"


def media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    """The first read put back in front of the rest."""
    if first:
        yield first
    yield from rest


def read_bounded(chunks: Iterable[bytes], limit: int, timeout: float | None = None) -> tuple[bytes, bool]:
    """The body up to `limit` bytes, and whether there was more (the rest is not read). With a
    `timeout`, the whole body must arrive within it (a body trickled byte by byte cannot hold acs)."""
    parts: list[bytes] = []
    size = 0
    deadline = time.perf_counter() + timeout if timeout else None
    for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(parts)[:limit], True
        if deadline is not None and time.perf_counter() > deadline:
            raise TimedOut(
                f"the server's JSON answer did not arrive whole within {timeout:g} s", "raise --timeout or ACS_TIMEOUT if the server is just slow"
            )
    return b"".join(parts), False


def parse_document(body: bytes, state: CompletionState) -> list[Record]:
    """A whole JSON body (a 200 answer that is not a stream) into records."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        what = "neither an event stream nor JSON"
        if isinstance(exc, RecursionError) or "digits" in str(exc):
            what = "JSON acs cannot read (nested too deeply, or a number too long)"
        state.failure = ProtocolError(
            f"the server answered 200 with a body that is {what}: {shorten(body[:200].decode('utf-8', 'replace'))}",
            "check that the base URL points at an OpenAI-compatible server",
        )
        return []
    return state.feed_document(payload)


def pump(chunks: Iterable[bytes], state: CompletionState, sink: Sink, timeline: Timeline, timeout: float | None = None) -> None:
    """Bytes to events to records to the sink, one network read (or capture frame) at a time:
    one parse, one write, at most one clock read per read, never per token.

    With a `timeout`, reads that bring nothing for the completion (keep-alive comments, pings,
    a frame trickling in byte by byte) do not hold acs past it: the socket's own timeout starts
    again with every read, so the data deadline is kept here.
    """
    parser = SSEParser()
    clock = time.perf_counter
    span = timeout or 0.0
    deadline = clock() + span if span else None
    try:
        for chunk in chunks:
            events = parser.feed(chunk)
            records = state.feed(events) if events else None
            if not records:
                if deadline is not None and clock() > deadline:
                    if state.verdict(cut=True) is None:
                        break  # every choice finished: the completion is whole, [DONE] or not
                    raise silence(state, span, "the text so far is kept", stalled=True)
                if state.stopped:
                    break
                continue
            if deadline is not None:
                deadline = clock() + span
            note_output(records, timeline, clock)
            sink.write(records)
            if state.stopped:
                break
    finally:
        parser.close()
        timeline.last_byte = clock()


def note_output(records: list[Record], timeline: Timeline, clock: Callable[[], float]) -> None:
    """Count the (frame, choice) pieces of one read that carried generated output (the token
    estimate without usage) and note when the first came: text, and for chat reasoning and tool
    calls too (`first_text`), with the first reasoning and the first answer text apart."""
    texts = others = 0
    for r in records:
        kind = type(r)
        if kind is Delta:
            if r.text:  # type: ignore[union-attr]
                texts += 1
        elif kind is Reasoning:
            others += 1
            if timeline.first_reasoning is None:
                timeline.first_reasoning = clock()
        elif kind is ToolCallDelta:
            others += 1
    if texts or others:
        timeline.text_frames += texts + others
        if timeline.first_text is None or (texts and timeline.first_answer is None):
            now = clock()
            if timeline.first_text is None:
                timeline.first_text = now
            if texts and timeline.first_answer is None:
                timeline.first_answer = now


def silence(state: CompletionState | None, timeout: float, kept: str, stalled: bool = False) -> TimedOut:
    """--timeout passed without data: nothing at all arrived (the socket timed out), or only
    keep-alive comments, pings and unfinished frames did (`stalled`)."""
    phase = ""
    if state is not None:
        phase = " (between two frames)" if state.choices else " (waiting for the first token)"
    if not stalled:
        return TimedOut(f"no data from the server for {timeout:g} s{phase}", f"{kept}; raise --timeout or ACS_TIMEOUT if the server is just slow")
    return TimedOut(
        f"no completion data from the server for {timeout:g} s{phase}, only keep-alive pings or a frame that never ended",
        f"{kept}; a server that only pings is treated as stuck: raise --timeout or ACS_TIMEOUT if it is just slow",
    )


def feed_document(body: bytes, state: CompletionState, sink: Sink, timeline: Timeline) -> None:
    records = parse_document(body, state)
    timeline.last_byte = time.perf_counter()
    note_output(records, timeline, lambda: timeline.last_byte or 0.0)
    if state.failure is None:
        sink.write(records)


def read_completion(response: object, state: CompletionState, sink: Sink, timeline: Timeline, timeout: float) -> AcsError | None:
    """Feed a 200 response's body through the parser into the sink; the verdict (None: whole)."""
    import httpx

    assert isinstance(response, httpx.Response)
    media = media_type(response.headers.get("content-type", ""))
    chunks = response.iter_raw()
    try:
        if media != "text/event-stream":
            first = next(chunks, b"")
            kind = sniff_body(media, first)
            if kind == "json":
                body, more = read_bounded(prepend(first, chunks), DOCUMENT_LIMIT, timeout)
                if more:
                    return ProtocolError(
                        f"the server answered 200 with a JSON body over {DOCUMENT_LIMIT // (1024 * 1024)} MiB", "check the server; acs reads a whole JSON answer up to that size"
                    )
                feed_document(body, state, sink, timeline)
                return state.verdict()
            if kind == "other":
                return ProtocolError(
                    f"the server answered 200 with {media or 'no content type'}, not an event stream: {shorten(first[:200].decode('utf-8', 'replace'))}",
                    "check that the base URL points at an OpenAI-compatible server, not a web page or a proxy login",
                )
            chunks = prepend(first, chunks)
        pump(chunks, state, sink, timeline, timeout)
    except AcsError as exc:  # an event too large for the parser
        return exc
    except httpx.HTTPError as exc:
        return body_error(exc, state, timeout)
    return state.verdict()


def body_error(exc: Exception, state: CompletionState | None, timeout: float) -> AcsError | None:
    """What an httpx failure while reading a body means; None when the stream was whole anyway
    (the connection closed after every choice finished). Without a state (--raw), the bytes
    received are what is kept."""
    import httpx

    kept = "the text so far is kept" if state is not None else "the bytes received are on stdout"
    if isinstance(exc, httpx.TimeoutException):
        if state is not None and state.verdict(cut=True) is None:
            return None  # silent after every choice finished: the completion is whole
        return silence(state, timeout, kept)
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        if state is not None and state.verdict(cut=True) is None:
            return None
        return IncompleteStream(
            f"incomplete stream: the connection closed mid-{'stream' if state is not None else 'body'} ({shorten(str(exc), 120)})",
            f"{kept}; retry, and check for a proxy or server that cuts long responses",
        )
    return ConnectError(f"reading the response failed: {shorten(str(exc) or type(exc).__name__, 160)}", "retry; check the server's log")
