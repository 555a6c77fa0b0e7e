"""Property tests for chat: how a chat body is cut into reads never changes what SSEParser +
ChatState make of it (the records, each choice's answer, reasoning, joined tool calls, finish
reasons, usage, notices and verdict), for every scenario of tests/chat_scenarios.py and for
generated streams (random n and interleaving, reasoning under either name, content null, empty or
missing, several tool calls whose fragments are cut anywhere and may share a chunk, CRLF or CR
framing)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acs_cli.chat_state import ChatState
from acs_cli.records import Delta, Reasoning, ToolCallDelta
from acs_cli.sse import SSEParser
from tests import chat_frames as cf
from tests.chat_scenarios import BY_ID, IDS
from tests.test_sse_properties import PIECE, PROPS, one_byte_pieces, splits

PER_SCENARIO = settings(PROPS, max_examples=20)


def run(pieces: list[bytes], *, cut: bool = False, expected: int = 1) -> dict[str, Any]:
    """Feed the pieces one by one; everything observable, for comparison."""
    parser = SSEParser()
    state = ChatState(expected)
    records: list[Any] = []
    for piece in pieces:
        records += state.feed(parser.feed(piece))
    parser.close()
    content: dict[int, str] = {}
    reasoning: dict[int, str] = {}
    for r in records:
        if type(r) is Delta:
            content[r.index] = content.get(r.index, "") + r.text
        elif type(r) is Reasoning:
            reasoning[r.index] = reasoning.get(r.index, "") + r.text
    verdict = state.verdict(cut=cut)
    return {
        "records": [repr(r) for r in records],
        "content": content,
        "reasoning": reasoning,
        "calls": {i: [(c.name, c.arguments) for c in state.calls_of(i)] for i in sorted(state.tool_calls)},
        "call_numbers": {i: {c.call: (c.name, c.arguments) for c in state.calls_of(i)} for i in sorted(state.tool_calls)},
        "finish": {c.index: c.finish_reason for c in state.ordered()},
        "usage": state.usage,
        "notices": state.notices,
        "verdict": None if verdict is None else (type(verdict).__name__, verdict.message),
    }


@pytest.mark.parametrize("sid", IDS)
def test_scenario_outcome_whole_and_one_byte_at_a_time(sid: str) -> None:
    sc = BY_ID[sid]
    body = sc.body()
    whole = run([body], cut=sc.cut, expected=sc.n)
    assert run(one_byte_pieces(body), cut=sc.cut, expected=sc.n) == whole
    assert whole["content"] == sc.content
    assert whole["reasoning"] == sc.reasoning
    assert whole["calls"] == sc.calls
    assert {i: r for i, r in whole["finish"].items()} == sc.finish
    assert (whole["verdict"] is None) == (sc.status == 0)


@pytest.mark.parametrize("sid", IDS)
@PER_SCENARIO
@given(data=st.data())
def test_scenario_random_splits_give_the_same(sid: str, data: st.DataObject) -> None:
    sc = BY_ID[sid]
    body = sc.body()
    pieces = data.draw(splits(body), label="pieces")
    assert run(pieces, cut=sc.cut, expected=sc.n) == run([body], cut=sc.cut, expected=sc.n)


# ------------------------------------------------------------------------------------ generated

ARGUMENT_VALUES = st.one_of(st.integers(), st.text(max_size=8), st.booleans(), st.none(), st.lists(st.integers(), max_size=3))
ARGUMENTS = st.dictionaries(st.text(min_size=1, max_size=6), ARGUMENT_VALUES, max_size=3).map(lambda d: json.dumps(d, ensure_ascii=False))
NAMES = st.sampled_from(["get_weather", "search", "now", "f\x1b[31m", "名前"])


@st.composite
def fragments(draw: st.DrawFn, text: str) -> list[str]:
    """text cut into 1..6 pieces at random points (pieces may be empty)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=5)))
    points = [0, *cuts, len(text)]
    return [text[a:b] for a, b in zip(points, points[1:])]


@st.composite
def choice_events(draw: st.DrawFn, index: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One choice's deltas in order (role first) and what they must give."""
    field = draw(st.sampled_from(["reasoning_content", "reasoning"]))
    deltas: list[dict[str, Any]] = [{"role": "assistant", **draw(st.sampled_from([{}, {"content": None}, {"content": ""}]))}]
    want: dict[str, Any] = {"content": "", "reasoning": "", "calls": []}
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["reasoning", "content", "nothing"]))
        piece = draw(PIECE)
        if kind == "reasoning" and piece:
            deltas.append({field: piece})
            want["reasoning"] += piece
        elif kind == "content":
            deltas.append({"content": piece})
            want["content"] += piece
        else:
            deltas.append(draw(st.sampled_from([{}, {"content": None}, {"content": ""}])))
    calls = []
    for number in range(draw(st.integers(0, 3))):
        name, arguments = draw(NAMES), draw(ARGUMENTS)
        parts = draw(fragments(arguments))
        calls.append([cf.call(number, id=f"call_{index}_{number}", name=name, arguments=parts[0])] + [cf.call(number, arguments=p) for p in parts[1:]])
        want["calls"].append((name, arguments))
    while any(calls):  # fragments of several calls, in call order per call, sometimes sharing a chunk
        group = []
        for queue in calls:
            if queue and (not group or draw(st.booleans())):
                group.append(queue.pop(0))
        deltas.append({"tool_calls": group})
    want["finish"] = "tool_calls" if want["calls"] else draw(st.sampled_from(["stop", "length"]))
    return deltas, want


@st.composite
def chat_streams(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 3))
    per_choice = [draw(choice_events(i)) for i in range(n)]
    queues = {i: list(deltas) for i, (deltas, _) in enumerate(per_choice)}
    order = draw(st.permutations([i for i, q in queues.items() for _ in q]))
    chunks = [cf.chunk(queues[i].pop(0), index=i) for i in order]
    for i, (_, want) in enumerate(per_choice):
        chunks.append(cf.finish(want["finish"], index=i))
    usage = draw(st.one_of(st.none(), st.tuples(st.integers(0, 999), st.integers(0, 999))))
    if usage is not None:
        chunks.append(cf.usage_chunk(*usage))
    body = cf.sse(chunks, done=draw(st.booleans()))
    body = body.replace(b"\n", draw(st.sampled_from([b"\n", b"\r\n", b"\r"])))  # JSON escapes CR and LF
    return {"body": body, "n": n, "want": [w for _, w in per_choice], "usage": usage}


@PROPS
@given(data=st.data())
def test_generated_chat_stream_any_split_gives_the_answers(data: st.DataObject) -> None:
    gen = data.draw(chat_streams(), label="stream")
    body = gen["body"]
    pieces = data.draw(splits(body), label="pieces")
    ref = run([body], expected=gen["n"])
    assert run(pieces, expected=gen["n"]) == ref
    for i, want in enumerate(gen["want"]):
        assert ref["content"].get(i, "") == want["content"]
        assert ref["reasoning"].get(i, "") == want["reasoning"]
        assert ref["calls"].get(i, []) == want["calls"]
        assert ref["finish"][i] == want["finish"]
    assert ref["verdict"] is None and ref["notices"] == []  # every call's arguments are JSON
    usage = ref["usage"]
    assert (None if usage is None else (usage["prompt_tokens"], usage["completion_tokens"])) == gen["usage"]
    # the role chunk is never a token: the only empty Delta of a choice marks its first appearance
    assert sum(r.startswith("Delta(") and "text=''" in r for r in ref["records"]) == gen["n"]
    assert sum(r.startswith("ToolCallDelta(") for r in ref["records"]) >= sum(len(w["calls"]) for w in gen["want"])


@PROPS
@given(data=st.data())
def test_generated_chat_stream_cut_anywhere(data: st.DataObject) -> None:
    """A body that stops anywhere: splitting still changes nothing, what was received is a prefix
    of each answer, and the verdict is incomplete unless every choice had finished."""
    gen = data.draw(chat_streams(), label="stream")
    body = gen["body"][: data.draw(st.integers(0, len(gen["body"])), label="end")]
    pieces = data.draw(splits(body), label="pieces") if body else [body]
    ref = run([body], cut=True, expected=gen["n"])
    assert run(pieces, cut=True, expected=gen["n"]) == ref
    for i, text in ref["content"].items():
        assert gen["want"][i]["content"].startswith(text)
    for i, calls in ref["call_numbers"].items():  # a cut may leave out a call in the middle: pair them by number
        for number, (name, arguments) in calls.items():
            want_name, want_arguments = gen["want"][i]["calls"][number]
            assert name == want_name and want_arguments.startswith(arguments)
    finished = len(ref["finish"]) == gen["n"] and all(ref["finish"].values())
    assert (ref["verdict"] is None) == finished


def test_tool_call_deltas_name_their_call() -> None:
    state = ChatState()
    records = state.feed(SSEParser().feed(cf.sse([cf.calls(cf.call(0, id="a", name="f", arguments="{")), cf.calls(cf.call(0, arguments="}")), cf.finish("tool_calls")])))
    assert [r for r in records if type(r) is ToolCallDelta] == [ToolCallDelta(0, 0, "a", "f", "{"), ToolCallDelta(0, 0, "a", "f", "}")]
