"""Property tests: how a body is cut into reads never changes what acs_cli.sse makes of it.

For every event-stream scenario of the fixture, and for generated vLLM-shaped streams (random
texts with non-ASCII, emoji, U+2028, CR, quotes and backslashes; random n and interleaving;
optional BOM, comments and other lines that dispatch nothing, `event: message`, `data:` without space, CRLF or CR framing), the body is
split at random points (1-byte pieces, cuts inside CRLF and inside multi-byte characters
included) and fed to `SSEParser` + `StreamView`. The events, the deltas and the final state
must equal those of feeding it whole, the events must equal the reference WHATWG parser in
tests/oracle.py, and the per-index concatenated deltas must equal the expected texts.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acs_cli.errors import IncompleteStream, ProtocolError, StreamError
from acs_cli.sse import SSEParser
from tests.oracle import expected_outcome, sse_events
from tests.scenarios import load_scenarios, scenario_body
from tests.stream_view import StreamView

PROPS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PER_SCENARIO = settings(PROPS, max_examples=12)

USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")
BIG = 50_000  # bodies above this size are not fed one byte at a time (S54: 1 MB)


def _is_event_stream(sc: dict[str, Any]) -> bool:
    media = dict(sc["headers"]).get("content-type", "").partition(";")[0].strip().lower()
    return sc["status"] == 200 and media == "text/event-stream"


SCENARIOS = {sc["id"]: sc for sc in load_scenarios() if _is_event_stream(sc)}
SIDS = sorted(SCENARIOS)
assert len(SIDS) >= 50


# ------------------------------------------------------------------------------------ helpers


def _describe(exc: Exception | None) -> Any:
    if exc is None:
        return None
    return (type(exc).__name__, getattr(exc, "message", str(exc)), getattr(exc, "hint", None))


def run(pieces: list[bytes], *, cut: bool = False, expected: int = 1) -> dict[str, Any]:
    """Feed the pieces one by one; everything observable, for comparison."""
    parser = SSEParser()
    stream = StreamView(keep_text=True)
    events: list[tuple[str, str]] = []
    deltas: list[tuple[int, str]] = []
    for piece in pieces:
        new = parser.feed(piece)
        events += new
        deltas += stream.feed(new)
    mid_event = parser.mid_event
    parser.close()
    verdict = stream.end_of_stream(cut=cut, expected=expected)
    return {
        "events": events,
        "deltas": deltas,
        "choices": {
            i: (c.text, c.finished, c.finish_reason, c.stop_reason, c.logprobs) for i, c in sorted(stream.choices.items())
        },
        "usage": stream.usage,
        "done": stream.done,
        "failure": _describe(stream.failure),
        "verdict": _describe(verdict),
        "verdict_type": type(verdict),
        "frames": stream.frames,
        "identity": (stream.id, stream.model),
        "last_event_id": parser.last_event_id,
        "retry": parser.retry,
        "mid_event": mid_event,
    }


def pieces_at(body: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(set(c for c in cuts if 0 < c < len(body))), len(body)]
    return [body[a:b] for a, b in zip(points, points[1:])]


def one_byte_pieces(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


@functools.cache
def special_cuts(body: bytes) -> tuple[int, ...]:
    """Cut points that stress a parser: between a CR and the next byte (inside CRLF), inside a
    multi-byte UTF-8 character (before a continuation byte), right after an LF, inside the BOM."""
    out = set()
    for i, b in enumerate(body):
        if b == 0x0D or b == 0x0A:
            out.add(i + 1)
        elif 0x80 <= b <= 0xBF:
            out.add(i)
    if body.startswith(b"\xef\xbb\xbf"):
        out.update((1, 2, 3))
    return tuple(sorted(c for c in out if 0 < c < len(body)))


@st.composite
def splits(draw: st.DrawFn, body: bytes) -> list[bytes]:
    """A way to cut `body` into reads: 1-byte pieces, special points, random points, or a mix."""
    n = len(body)
    if n < 2:
        return [body]
    modes = ["random", "special", "mixed"] + (["ones"] if n <= BIG else [])
    mode = draw(st.sampled_from(modes))
    if mode == "ones":
        return one_byte_pieces(body)
    special = special_cuts(body)
    cuts: list[int] = []
    if mode in ("random", "mixed") or not special:
        cuts += draw(st.lists(st.integers(1, n - 1), min_size=1, max_size=min(40, n - 1)))
    if mode in ("special", "mixed") and special:
        cuts += draw(st.lists(st.sampled_from(special), min_size=1, max_size=40))
    return pieces_at(body, cuts)


def per_index_text(deltas: list[tuple[int, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for index, text in deltas:
        out[str(index)] = out.get(str(index), "") + text
    return out


def kind_of(verdict_type: type) -> str:
    if verdict_type is type(None):
        return "ok"
    return {IncompleteStream: "incomplete", StreamError: "stream_error", ProtocolError: "protocol_error"}[verdict_type]


def assert_matches_outcome(state: dict[str, Any], body: bytes, outcome: dict[str, Any]) -> None:
    assert state["events"] == sse_events(body)
    texts = {str(i): c[0] for i, c in state["choices"].items()}
    assert texts == outcome["texts"]
    got = per_index_text(state["deltas"])
    assert got == {k: v for k, v in outcome["texts"].items() if v}
    assert {str(i): c[2] for i, c in state["choices"].items()} == outcome["finish"]
    assert {str(i): c[3] for i, c in state["choices"].items()} == outcome["stop_reason"]
    usage = state["usage"]
    assert (None if usage is None else {k: usage.get(k) for k in USAGE_KEYS}) == outcome["usage"]
    assert kind_of(state["verdict_type"]) == outcome["kind"]


# ------------------------------------------------------------------------------------ scenarios


@functools.cache
def whole(sid: str) -> dict[str, Any]:
    sc = SCENARIOS[sid]
    return run([scenario_body(sc)], cut=sc["end"] == "abort")


@pytest.mark.parametrize("sid", SIDS)
def test_scenario_whole_body_gives_the_outcome(sid: str) -> None:
    sc = SCENARIOS[sid]
    assert_matches_outcome(whole(sid), scenario_body(sc), sc["outcome"])


@pytest.mark.parametrize("sid", SIDS)
def test_scenario_as_served_segments_gives_the_same(sid: str) -> None:
    sc = SCENARIOS[sid]
    assert run(sc["segments"], cut=sc["end"] == "abort") == whole(sid)


@pytest.mark.parametrize("sid", [s for s in SIDS if len(scenario_body(SCENARIOS[s])) <= BIG])
def test_scenario_one_byte_at_a_time_gives_the_same(sid: str) -> None:
    sc = SCENARIOS[sid]
    assert run(one_byte_pieces(scenario_body(sc)), cut=sc["end"] == "abort") == whole(sid)


@pytest.mark.parametrize("sid", SIDS)
def test_scenario_cut_at_every_special_point_gives_the_same(sid: str) -> None:
    sc = SCENARIOS[sid]
    body = scenario_body(sc)
    assert run(pieces_at(body, list(special_cuts(body))), cut=sc["end"] == "abort") == whole(sid)


@pytest.mark.parametrize("sid", SIDS)
@PER_SCENARIO
@given(data=st.data())
def test_scenario_random_splits_give_the_same(sid: str, data: st.DataObject) -> None:
    sc = SCENARIOS[sid]
    body = scenario_body(sc)
    pieces = data.draw(splits(body), label="pieces")
    assert b"".join(pieces) == body
    assert run(pieces, cut=sc["end"] == "abort") == whole(sid)


# ------------------------------------------------------------------------------------ generated

TEXT_ATOMS = st.one_of(
    st.sampled_from(
        ["a", " ", "It", "é", "日本", "😀", "👩\u200d💻", "\u2028", "\u2029", "\x85", "\r", "\n", "\r\n",
         '"', "\\", '\\"', "\t", "\x00", "\x1b[31m", "\ufeff", ":", "data: ", "[DONE]", "\n\n", "}", "{"]
    ),
    st.characters(blacklist_categories=("Cs",)),
)
PIECE = st.lists(TEXT_ATOMS, max_size=5).map("".join)
FINISH = st.sampled_from(["stop", "length", "repetition", "content_filter"])
STOP_REASON = st.sampled_from([None, 128009, "\nUser:", "é"])
# lines between frames that dispatch nothing: comments, a ping event without data, id/retry and
# unknown fields, and a line whose field name starts with a BOM (only a BOM at the very start of
# the stream is dropped, so this is the unknown field "\ufeffdata")
NOISE = st.sampled_from(
    [b": keep-alive\n\n", b": ping\n", b":\n", b": \xc3\xa9 \xe2\x80\xa8\n\n", b"event: ping\n\n", b"id: 7\n",
     b"retry: 3s\n", b"foo: bar\n", b"\n", b"\xef\xbb\xbfdata: junk\n\n"]
)


def frame_json(index: int, text: str, finish: str | None, stop_reason: Any, ensure_ascii: bool, openai_shape: bool) -> bytes:
    if openai_shape:
        obj: dict[str, Any] = {
            "id": "cmpl-96c64", "object": "text_completion", "created": 1711363440,
            "choices": [{"text": text, "index": index, "logprobs": None, "finish_reason": finish}],
            "model": "gpt-3.5-turbo-instruct",
        }
    else:
        obj = {
            "id": "cmpl-ae7c4833c82a33d6", "object": "text_completion", "created": 1767225600,
            "model": "meta-llama/Llama-3.1-8B",
            "choices": [{"index": index, "text": text, "logprobs": None, "finish_reason": finish,
                         "stop_reason": stop_reason, "prompt_token_ids": None, "token_ids": None}],
            "usage": None,
        }
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=ensure_ascii).encode("utf-8")


@st.composite
def streams(draw: st.DrawFn) -> dict[str, Any]:
    """A complete vLLM/OpenAI-shaped stream and what it must give."""
    n = draw(st.integers(1, 3))
    labels = draw(st.permutations(list(range(n))))  # choice k is sent with index labels[k]
    openai_shape = draw(st.booleans())
    ensure_ascii = draw(st.booleans())
    separate_finish = draw(st.booleans())
    frames: dict[int, list[tuple[str, str | None, Any]]] = {}
    texts: dict[str, str] = {}
    finish: dict[str, str] = {}
    stop_reason: dict[str, Any] = {}
    for k in range(n):
        index = labels[k]
        pieces = draw(st.lists(PIECE, max_size=5))
        reason = draw(FINISH)
        stop = None if openai_shape else draw(STOP_REASON)
        seq: list[tuple[str, str | None, Any]] = [(p, None, None) for p in pieces]
        if separate_finish or not seq:
            seq.append(("", reason, stop))
        else:
            seq[-1] = (seq[-1][0], reason, stop)
        frames[index] = seq
        texts[str(index)] = "".join(pieces)
        finish[str(index)] = reason
        stop_reason[str(index)] = stop
    order = draw(st.permutations([i for i, seq in frames.items() for _ in seq]))
    usage = draw(st.one_of(st.none(), st.tuples(st.integers(0, 10**6), st.integers(0, 10**6))))
    done = draw(st.booleans())
    bom = draw(st.booleans())
    eol = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    event_message = draw(st.booleans())
    no_space = draw(st.booleans())

    def wrap(payload: bytes) -> bytes:
        head = b"event: message\n" if event_message else b""
        return head + (b"data:" if no_space else b"data: ") + payload + b"\n\n"

    out: list[bytes] = []
    deltas: list[tuple[int, str]] = []
    cursor = {i: 0 for i in frames}
    for index in order:
        text, reason, stop = frames[index][cursor[index]]
        cursor[index] += 1
        if draw(st.integers(0, 4)) == 0:
            noise = draw(NOISE)
            if out or bom or not noise.startswith(b"\xef\xbb\xbf"):  # not a leading BOM
                out.append(noise)
        out.append(wrap(frame_json(index, text, reason, stop, ensure_ascii, openai_shape)))
        if text:
            deltas.append((index, text))
    if usage is not None:
        p, c = usage
        agg = {"id": "x", "object": "text_completion", "created": 1, "model": "m", "choices": [],
               "usage": {"prompt_tokens": p, "total_tokens": p + c, "completion_tokens": c}}
        out.append(wrap(json.dumps(agg, separators=(",", ":")).encode()))
    if done:
        out.append(wrap(b"[DONE]"))
    body = b"".join(out)
    assert b"\r" not in body  # JSON escapes CR and LF, so the framing can be rewritten safely
    body = body.replace(b"\n", eol)
    if bom:
        body = b"\xef\xbb\xbf" + body
    return {
        "body": body,
        "texts": texts,
        "finish": finish,
        "stop_reason": stop_reason,
        "deltas": deltas,
        "usage": None if usage is None else {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
        "done": done,
        "n": n,
    }


@PROPS
@given(data=st.data())
def test_generated_stream_any_split_gives_the_texts(data: st.DataObject) -> None:
    gen = data.draw(streams(), label="stream")
    body = gen["body"]
    pieces = data.draw(splits(body), label="pieces")
    assert b"".join(pieces) == body
    ref = run([body])
    assert run(pieces) == ref
    assert ref["events"] == sse_events(body)
    assert ref["deltas"] == gen["deltas"]
    assert per_index_text(ref["deltas"]) == {k: v for k, v in gen["texts"].items() if v}
    assert {str(i): c[0] for i, c in ref["choices"].items()} == gen["texts"]
    assert {str(i): c[2] for i, c in ref["choices"].items()} == gen["finish"]
    assert {str(i): c[3] for i, c in ref["choices"].items()} == gen["stop_reason"]
    usage = ref["usage"]
    assert (None if usage is None else {k: usage.get(k) for k in USAGE_KEYS}) == gen["usage"]
    assert ref["done"] == gen["done"]
    assert ref["failure"] is None
    assert ref["verdict"] is None  # every choice finished, with or without [DONE]
    assert run(pieces, expected=gen["n"])["verdict"] is None
    oracle = expected_outcome(200, [("content-type", "text/event-stream")], body)
    assert oracle["kind"] == "ok" and oracle["texts"] == gen["texts"]


@PROPS
@given(data=st.data())
def test_generated_stream_cut_short_any_split_gives_the_same(data: st.DataObject) -> None:
    """A body that stops anywhere (a dropped connection): splitting still changes nothing, the
    texts are those the reference algorithm delivers, and the verdict is incomplete unless the
    stream had reached [DONE] or every choice had finished (one choice is asked for here: it is
    whichever index came; the reference algorithm too needs every seen choice finished, and no
    more)."""
    gen = data.draw(streams(), label="stream")
    full = gen["body"]
    end = data.draw(st.integers(0, len(full)), label="end")
    body = full[:end]
    pieces = data.draw(splits(body), label="pieces") if body else [body]
    ref = run([body], cut=True)
    assert run(pieces, cut=True) == ref
    assert ref["events"] == sse_events(body)
    oracle = expected_outcome(200, [("content-type", "text/event-stream")], body, dropped=True)
    texts = {str(i): c[0] for i, c in ref["choices"].items()}
    assert texts == oracle["texts"]
    assert {str(i): c[2] for i, c in ref["choices"].items()} == oracle["finish"]
    for index, text in texts.items():
        assert gen["texts"][index].startswith(text)
    complete = ref["done"] or (bool(ref["choices"]) and all(c[1] for c in ref["choices"].values()))
    assert (ref["verdict"] is None) == complete
    if not complete:
        assert ref["verdict_type"] is IncompleteStream
