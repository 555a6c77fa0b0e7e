"""ChatState: chat chunks to records, on the completion state's frame, usage and verdict rules."""

from __future__ import annotations

import json

import pytest

from acs_cli.chat_state import ChatState
from acs_cli.completion_state import CompletionState
from acs_cli.errors import IncompleteStream, StreamError
from acs_cli.records import Delta, Done, Finish, Reasoning, ToolCallDelta, Usage
from acs_cli.sse import SSEParser
from tests import chat_frames as cf


def feed(chunks: list, done: bool = True, expected: int = 1) -> tuple[ChatState, list]:
    state = ChatState(expected)
    records = state.feed(SSEParser().feed(cf.sse(chunks, done)))
    return state, records


def texts(records: list) -> dict[int, str]:
    out: dict[int, str] = {}
    for r in records:
        if type(r) is Delta:
            out[r.index] = out.get(r.index, "") + r.text
    return out


@pytest.mark.parametrize("first_content", ["", None, cf.MISSING], ids=["empty", "null", "missing"])
def test_the_role_only_first_chunk_is_a_first_appearance_not_a_token(first_content) -> None:
    state, records = feed([cf.role_chunk(content=first_content), cf.content("Hi"), cf.finish()])
    assert records[0] == Delta(0, "", None)  # the choice appears, with no text
    assert [r for r in records if type(r) is Delta and r.text] == [Delta(0, "Hi", None)]
    assert state.role_only_first is True and state.roles == {0: "assistant"}
    assert state.verdict() is None


def test_content_null_empty_or_missing_adds_nothing() -> None:
    chunks = [cf.role_chunk(), cf.chunk({"content": None}), cf.chunk({"content": ""}), cf.chunk({}), cf.content("a"), cf.finish()]
    state, records = feed(chunks)
    assert [r for r in records if type(r) is Delta] == [Delta(0, ""), Delta(0, "a")]
    assert state.frames == 6


def test_a_first_chunk_with_text_is_not_role_only() -> None:
    state, records = feed([cf.chunk({"role": "assistant", "content": "Hel"}), cf.content("lo", finish="stop")])
    assert texts(records) == {0: "Hello"} and state.role_only_first is False


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_under_either_name_before_and_between_the_answer(field: str) -> None:
    chunks = [cf.role_chunk(), cf.reasoning("Let me ", field=field), cf.reasoning("think.", field=field), cf.content("Yes"), cf.reasoning(" again", field=field), cf.content("!"), cf.finish()]
    state, records = feed(chunks)
    kinds = [(type(r).__name__, r.text) for r in records if type(r) in (Delta, Reasoning) and r.text]
    assert kinds == [("Reasoning", "Let me "), ("Reasoning", "think."), ("Delta", "Yes"), ("Reasoning", " again"), ("Delta", "!")]


def test_a_delta_with_both_reasoning_names_is_taken_once() -> None:
    state, records = feed([cf.role_chunk(), cf.chunk({"reasoning": "x", "reasoning_content": "x"}), cf.finish()])
    assert [r for r in records if type(r) is Reasoning] == [Reasoning(0, "x")]


def test_reasoning_and_content_in_one_delta_reasoning_first() -> None:
    state, records = feed([cf.chunk({"reasoning_content": "hm", "content": "ok"}, finish="stop")])
    assert [type(r) for r in records] == [Reasoning, Delta, Finish, Done]


def test_tool_call_fragments_join_into_calls() -> None:
    chunks = [
        cf.role_chunk(),
        cf.calls(cf.call(0, id="call_1", name="get_weather", arguments="")),
        cf.calls(cf.call(0, arguments='{"ci')),
        cf.calls(cf.call(0, arguments='ty": "Par')),
        cf.calls(cf.call(0, arguments='is"}')),
        cf.finish("tool_calls"),
    ]
    state, records = feed(chunks)
    fragments = [r for r in records if type(r) is ToolCallDelta]
    assert [r.arguments for r in fragments] == ["", '{"ci', 'ty": "Par', 'is"}']
    assert all(r.id == "call_1" and r.name == "get_weather" for r in fragments)
    [call] = state.calls_of(0)
    assert call.as_message() == {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    assert state.choices[0].finish_reason == "tool_calls" and state.verdict() is None
    assert state.notices == []


def test_several_calls_in_one_chunk_and_interleaved() -> None:
    chunks = [
        cf.calls(cf.call(0, id="a", name="f", arguments='{"x":'), cf.call(1, id="b", name="g", arguments="[1,")),
        cf.calls(cf.call(1, arguments="2]"), cf.call(0, arguments="1}")),
        cf.finish("tool_calls"),
    ]
    state, _ = feed(chunks)
    assert [(c.id, c.name, c.arguments) for c in state.calls_of(0)] == [("a", "f", '{"x":1}'), ("b", "g", "[1,2]")]


def test_a_later_id_or_name_does_not_replace_the_first() -> None:
    state, _ = feed([cf.calls(cf.call(0, id="a", name="f", arguments="{")), cf.calls(cf.call(0, id="zzz", name="f", arguments="}")), cf.finish("tool_calls")])
    [call] = state.calls_of(0)
    assert (call.id, call.name, call.arguments) == ("a", "f", "{}")


def test_fragments_without_index_are_numbered_by_position() -> None:
    state, _ = feed([cf.chunk({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{}"}}, {"id": "b", "function": {"name": "g", "arguments": "{}"}}]}, finish="tool_calls")])
    assert [c.call for c in state.calls_of(0)] == [0, 1]


def test_arguments_that_are_not_json_when_the_call_ends_get_a_notice() -> None:
    state, _ = feed([cf.calls(cf.call(0, id="a", name="f", arguments='{"x": 1')), cf.finish("tool_calls")])
    assert len(state.notices) == 1
    assert "tool call 0 (f) of choice 0: the arguments are not valid JSON" in state.notices[0] and '{"x": 1' in state.notices[0]
    state, _ = feed([cf.calls(cf.call(0, id="a", name="f")), cf.finish("tool_calls")])
    assert "they are empty" in state.notices[0]


def test_a_call_still_open_when_the_stream_is_cut_is_not_judged() -> None:
    state, _ = feed([cf.calls(cf.call(0, id="a", name="f", arguments='{"x"'))], done=False)
    assert state.notices == []
    assert isinstance(state.verdict(cut=True), IncompleteStream)


@pytest.mark.parametrize("reason", ["stop", "length", "tool_calls", "content_filter"])
def test_finish_reasons_pass_through(reason: str) -> None:
    state, records = feed([cf.content("a", finish=reason)])
    assert Finish(0, reason, None) in records and state.verdict() is None


def test_abort_is_incomplete() -> None:
    state, _ = feed([cf.content("a"), cf.finish("abort")])
    assert isinstance(state.verdict(), IncompleteStream)


def test_two_choices_interleaved() -> None:
    chunks = [cf.role_chunk(0), cf.role_chunk(1), cf.content("a", 1), cf.content("b", 0), cf.reasoning("r", 1), cf.content("c", 1, finish="stop"), cf.content("d", 0, finish="length")]
    state, records = feed(chunks, expected=2)
    assert texts(records) == {0: "bd", 1: "ac"}
    assert [c.finish_reason for c in state.ordered()] == ["length", "stop"] and state.verdict() is None


def test_usage_chunk_and_no_usage() -> None:
    state, records = feed(cf.answer_chunks(["a", "b"]))
    assert state.usage == {"prompt_tokens": 7, "total_tokens": 9, "completion_tokens": 2}
    assert any(type(r) is Usage for r in records)
    state, _ = feed(cf.answer_chunks(["a"], usage=None))
    assert state.usage is None and state.verdict() is None


def test_done_missing_after_every_choice_finished_is_whole_and_before_is_not() -> None:
    assert feed(cf.answer_chunks(["a"]), done=False)[0].verdict() is None
    assert isinstance(feed([cf.role_chunk(), cf.content("a")])[0].verdict(), IncompleteStream)


def test_error_frame_mid_stream() -> None:
    state, records = feed([cf.content("a"), {"error": {"message": "boom", "type": "server_error"}}])
    assert texts(records) == {0: "a"} and isinstance(state.verdict(), StreamError)


def test_chat_logprobs_in_both_shapes() -> None:
    lp = {"content": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": [{"token": "Hi", "logprob": -0.1}, {"token": "Yo", "logprob": -2.5}]}]}
    state, records = feed([cf.chunk({"content": "Hi"}, logprobs=lp, finish="stop")])
    delta = next(r for r in records if type(r) is Delta)
    assert delta.logprobs is not None
    assert delta.logprobs["tokens"] == ["Hi"] and delta.logprobs["token_logprobs"] == [-0.1]
    assert delta.logprobs["top_logprobs"] == [lp["content"][0]["top_logprobs"]]
    assert delta.logprobs["content"] == lp["content"]


def test_a_whole_chat_completion_document() -> None:
    doc = {
        "id": "chatcmpl-1", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi", "reasoning_content": "hm",
                     "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    state = ChatState()
    records = state.feed_document(json.loads(json.dumps(doc)))
    assert [type(r) for r in records] == [Usage, Reasoning, Delta, ToolCallDelta, Finish]
    assert state.calls_of(0)[0].arguments == '{"a":1}' and state.verdict() is None


def test_completion_state_reads_chat_chunks_as_empty() -> None:
    """The per-choice reading is the only difference: a completion state sees no text in chat."""
    state = CompletionState()
    records = state.feed(SSEParser().feed(cf.sse(cf.answer_chunks(["a"]))))
    assert texts(records) == {0: ""} and state.verdict() is None


def test_the_engine_consumer_reads_chat_with_chat_state() -> None:
    """What `acs bench` and `acs batch` use for a chat workload: CompletionConsumer(ChatState(n)).
    Reasoning and tool-call fragments are generated tokens: each gets its arrival time."""
    from acs_cli.consumer import CompletionConsumer

    class Head:
        status = 200

        def get(self, name: bytes) -> bytes | None:
            return b"text/event-stream"

    c = CompletionConsumer(ChatState(1))
    c.on_head(Head(), 0.0)
    assert c.on_data(cf.sse([cf.role_chunk()], done=False), 1.0) is False  # the role: no time
    assert c.on_data(cf.sse([cf.reasoning("hm"), cf.reasoning("…")], done=False), 2.0) is False
    assert c.on_data(cf.sse([cf.content("ok"), cf.calls(cf.call(0, id="a", name="f", arguments="{}"))], done=False), 3.0) is False
    assert c.on_data(cf.sse([cf.finish("tool_calls"), cf.usage_chunk(4, 4)]), 4.0) is True
    c.on_end(4.0)
    assert c.frame_times == [2.0, 2.0, 3.0, 3.0] and c.first_text == 2.0
    assert c.verdict(None) is None and c.state.usage == {"prompt_tokens": 4, "total_tokens": 8, "completion_tokens": 4}
