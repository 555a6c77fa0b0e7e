"""`acs replay`: a `--raw` capture (a file, stdin, or the bundled sample) through the same parser
and sinks as a live stream, paced like a model when asked."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from acs_cli.body import feed_document, pump, sniff_body
from acs_cli.chat_state import ChatState, is_chat
from acs_cli.completion_state import CompletionState
from acs_cli.errors import AcsError, HTTPStatusError, UsageError
from acs_cli.options import ReplayOptions, check_reasoning
from acs_cli.output import check_output_flags, make_sink
from acs_cli.request import check_seconds
from acs_cli.run import drive
from acs_cli.sse import SSEParser

if TYPE_CHECKING:
    from acs_cli.outcome import Outcome
    from acs_cli.sinks import Sink
    from acs_cli.terminal import Terminal

SAMPLE = "data/rust.sse"
SAMPLE_PROMPT = "Five reasons to learn Rust:\\n1."  # what the bundled sample answered
CHAT_SAMPLE = "data/chat.sse"  # a chat answer with reasoning and a tool call
CHAT_SAMPLE_PROMPT = "What should I pack for Paris tomorrow?"
SAMPLE_DELAY = 0.04  # the bundled sample is paced like a real model
MAX_DELAY = 3600.0  # between two frames; more is a typo (and past ~1e9 s no clock can sleep it)


def read_capture(source: str | None, term: Terminal, sample: str = SAMPLE) -> bytes:
    if source is None:
        from importlib.resources import files

        return files("acs_cli").joinpath(sample).read_bytes()
    if source == "-":
        return term.read_stdin()
    try:
        with open(source, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror}", "give the path of a capture made with `acs complete --raw > FILE`") from None


def split_capture(data: bytes) -> tuple[int | None, bytes, bytes]:
    """(status, head, body) of a capture; a `--raw -i` capture starts with its status line."""
    if not data.startswith(b"HTTP/"):
        return None, b"", data
    for sep in (b"\r\n\r\n", b"\n\n"):
        head, found, body = data.partition(sep)
        if found:
            break
    else:
        return None, b"", data
    try:
        status = int(head.split(None, 2)[1])
    except (IndexError, ValueError):
        status = None
    return status, head, body


def frames_of(body: bytes) -> Iterator[bytes]:
    """The body cut after each blank line, so frames can be paced one by one."""
    start = 0
    for match in re.finditer(rb"(?:\r\n|\r|\n)(?:\r\n|\r|\n)", body):
        yield body[start : match.end()]
        start = match.end()
    if start < len(body):
        yield body[start:]


def replay(opts: ReplayOptions, term: Terminal) -> Outcome:
    out = opts.output
    if out.logprobs_table:
        opts.logprobs = True
    check_output_flags(out, opts.choices)
    check_reasoning(opts.reasoning)
    check_seconds("--delay", opts.delay, zero=True, most=MAX_DELAY)
    data = read_capture(opts.source, term, CHAT_SAMPLE if opts.chat else SAMPLE)
    delay = opts.delay if opts.delay is not None else (SAMPLE_DELAY if opts.source is None else 0.0)
    status, head, body = split_capture(data)
    chat = opts.chat or is_chat_capture(body)
    sink = make_sink(out, term, choices=opts.choices, logprobs=opts.logprobs, source="capture", chat=chat, reasoning=opts.reasoning)
    if opts.source is None and term.stdout_tty and not (out.json or out.jsonl or out.quiet):
        prompt, command = (CHAT_SAMPLE_PROMPT, "acs chat") if chat else (SAMPLE_PROMPT, "acs complete")
        term.message(f"a recorded sample stream, not a live server: the answer to “{prompt}” ({command} talks to ACS_API_BASE)", "dim")

    def play(outcome: Outcome) -> AcsError | None:
        if status is not None and not 200 <= status < 300:
            from acs_cli.api import error_fields  # it brings httpx: only for a capture of an error answer

            message, _ = error_fields(body)
            return HTTPStatusError(status, f"the capture holds an HTTP {status} answer: {message or 'no message'}", "this capture is an error response, not a stream")
        outcome.timeline.sent = time.perf_counter()
        outcome.state = state = (ChatState if chat else CompletionState)(opts.choices)
        if (head and b"application/json" in head.lower()) or sniff_body("", body[:64]) == "json":
            feed_document(body, state, sink, outcome.timeline)
        else:
            chunks: Iterable[bytes] = _paced(frames_of(body), delay) if delay > 0 else [body]
            pump(chunks, state, sink, outcome.timeline)
        return state.verdict()

    return drive(sink, play)


def is_chat_capture(body: bytes) -> bool:
    """Whether a capture holds a chat stream (or a whole chat answer), from its first frames."""
    head = body[:65536]
    if sniff_body("", head[:64]) == "json":
        try:
            return is_chat(json.loads(body))
        except (ValueError, RecursionError):
            return False
    parser = SSEParser()
    for _event, data in parser.feed(head)[:8]:
        try:
            frame = json.loads(data)
        except (ValueError, RecursionError):
            continue
        if isinstance(frame, dict) and frame.get("choices"):
            return is_chat(frame)
    return False


def _paced(frames: Iterator[bytes], delay: float) -> Iterator[bytes]:
    first = True
    for frame in frames:
        if not first:
            time.sleep(delay)
        first = False
        yield frame


__all__ = ["replay", "read_capture", "split_capture", "frames_of", "Sink"]
