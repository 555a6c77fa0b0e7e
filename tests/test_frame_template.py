"""FrameTemplate (acs_cli/frames.py): a frame that differs from the stream's learned
frame only in its text is read without json; what the state makes of it must be exactly what
the full parse makes.

The property: for generated streams of frames (the same frame with new texts, texts holding
quotes, backslashes, escapes and non-ASCII, spaced and compact JSON, fields that change midway,
decoys such as a key that contains `"text":`, duplicate keys, and broken frames), a state that
learns templates and one that never does give the same records and the same state after every
frame.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acs_cli.chat_state import ChatState
from acs_cli.completion_state import CompletionState
from acs_cli.frames import learn_template
from acs_cli.records import StreamFailure

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VLLM = '{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":%s,"logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}'
TEXTS = st.lists(st.sampled_from(['"', "\\", "/", "a", " ", "é", "\u2028", "\n", "\t", "\x00", "😀", "text", ":", '"text":"']), max_size=6).map("".join)


def _records(state: CompletionState, data: str) -> list[Any]:
    out = []
    for r in state.feed([("message", data)]):
        out.append(("failure", r.error.message) if type(r) is StreamFailure else r)
    return out


def _snapshot(state: CompletionState) -> tuple:
    return (
        state.frames, state.id, state.model, state.done, state.failure and state.failure.message, state.usage,
        [(c.index, c.finished, c.finish_reason, c.stop_reason) for c in state.ordered()],
    )


def _same_outcome(make: type[CompletionState], stream: list[str]) -> CompletionState:
    learning, plain = make(), make()
    plain._tries = 0  # never learns: every frame goes through json
    for data in stream:
        assert _records(learning, data) == _records(plain, data), data
        assert _snapshot(learning) == _snapshot(plain), data
    return learning


def _dumps(frame: Any, spaced: bool) -> str:
    return json.dumps(frame, separators=(", ", ": ") if spaced else (",", ":"), ensure_ascii=False)


MISSING = object()
INDEXES = st.sampled_from([0, 0, 0, 1, -1, True, 1.0, MISSING])
SCALARS = st.sampled_from([None, None, 0, 5, "", "x", False, True])


def _set(target: dict, key: str, value: object) -> None:
    if value is MISSING:
        target.pop(key, None)
    else:
        target[key] = value


@st.composite
def streams(draw: st.DrawFn) -> list[str]:
    """Frames of one stream: most differ from the last only in their text; some change a field of
    the stream (kept from then on), finish, break, or carry what the state reads beyond the text."""
    base: dict = {
        "id": draw(st.sampled_from(["cmpl-1", 'x"text":"y', "\\", "", 5, None])),
        "model": draw(st.sampled_from(["m", '"text":"', "é"])),
        "choices": [{"index": 0, "text": "", "logprobs": None, "finish_reason": None}],
    }
    if draw(st.booleans()):
        base['q"text'] = "decoy"  # a key whose escaped quote precedes `text":`
    spaced = draw(st.booleans())
    out = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["text"] * 6 + ["field", "choice", "finish", "dup", "broken", "usage", "logprobs"]))
        if kind == "field":  # from here on the stream's frames carry another value here
            key = draw(st.sampled_from(["created", "error", "object", "usage"]))
            _set(base, key, draw(st.sampled_from([MISSING, None, 0, 3, "", "boom", "error", "text_completion"])))
        elif kind == "choice":
            choice = base["choices"][0]
            _set(choice, "index", draw(INDEXES))
            _set(choice, "logprobs", draw(SCALARS))
        frame = json.loads(json.dumps(base))
        frame["choices"][0]["text"] = draw(TEXTS)
        data = _dumps(frame, spaced)
        if kind == "finish":
            frame["choices"][0]["finish_reason"] = draw(st.sampled_from(["stop", "length", None, 7]))
            data = _dumps(frame, spaced)
        elif kind == "dup":  # the first "text" is overridden by a second one
            data = data.replace('"index"', '"text": "shadowed", "index"', 1)
        elif kind == "broken":
            data = data[: draw(st.integers(0, len(data) - 1))]
        elif kind == "usage":
            frame["usage"] = {"prompt_tokens": 1, "completion_tokens": draw(st.integers(0, 9))}
            data = _dumps(frame, spaced)
        elif kind == "logprobs":
            frame["choices"][0]["logprobs"] = {"tokens": [frame["choices"][0]["text"]]}
            data = _dumps(frame, spaced)
        out.append(data)
    return out


@PROPS
@given(streams())
def test_templates_change_nothing(stream: list[str]) -> None:
    _same_outcome(CompletionState, stream)


DELTA_EXTRAS = st.sampled_from([{}, {}, {}, {"role": "assistant"}, {"reasoning_content": None}, {"reasoning_content": "think"},
                                 {"reasoning": "why"}, {"reasoning": ""}, {"tool_calls": None}, {"tool_calls": 5}])


@PROPS
@given(st.lists(st.tuples(TEXTS, DELTA_EXTRAS, SCALARS), min_size=1, max_size=10), st.booleans())
def test_chat_templates_change_nothing(frames: list[tuple[str, dict, object]], spaced: bool) -> None:
    """Chat frames whose delta sometimes holds reasoning, a role or tool calls beside the content,
    and whose logprobs are sometimes a truthy scalar."""
    head = {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
    stream = [_dumps(head, spaced)]
    for text, extras, logprobs in frames:
        choice = {"index": 0, "delta": {**extras, "content": text}, "logprobs": logprobs, "finish_reason": None}
        stream.append(_dumps({**head, "choices": [choice]}, spaced))
    stream.append(_dumps({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}, spaced))
    _same_outcome(ChatState, stream)


def test_a_chat_stream_is_read_through_its_template() -> None:
    head = '{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{%s},"logprobs":null,"finish_reason":null}]}'
    stream = [head % '"role":"assistant","content":""'] + [head % f'"content":{json.dumps(t)}' for t in (" a", ' "b"', " c")]
    state = _same_outcome(ChatState, stream)
    assert state.template is not None and state.template.hits == 2 and state.template.plain == 0


def test_a_vllm_stream_is_read_through_its_template() -> None:
    texts = [" the", ' "quoted"', " back\\slash", " café", " \u2028", ""]
    state = _same_outcome(CompletionState, [VLLM % json.dumps(t) for t in texts])
    assert state.template is not None and state.template.hits == len(texts) - 1


def test_spaced_json_is_read_through_its_template_too() -> None:
    """llama-cpp-python writes JSON with json.dumps's default separators."""
    frames = [_dumps({"id": "c", "choices": [{"text": t, "index": 0, "logprobs": None, "finish_reason": None}]}, True) for t in "abcd"]
    state = _same_outcome(CompletionState, frames)
    assert state.template is not None and state.template.hits == 3


def test_a_misplaced_text_is_never_learned() -> None:
    """The first `"text":` is part of a key holding an escaped quote, and a duplicate key hides
    the first text: the probe puts the marker where json does not read it as the text."""
    decoy = '{"x\\"text":"v","choices":[{"index":0,"text":"a"}]}'
    duplicate = '{"choices":[{"text":"hidden","index":0,"text":"a"}]}'
    for data in (decoy, duplicate):
        assert learn_template(data, json.loads(data), CompletionState.TEXT_PATH) is None


def test_frames_with_more_than_scalars_beside_the_text_are_not_learned() -> None:
    with_logprobs = '{"choices":[{"index":0,"text":"a","logprobs":{"tokens":["a"]}}]}'
    two_choices = '{"choices":[{"index":0,"text":"a"},{"index":1,"text":"b"}]}'
    for data in (with_logprobs, two_choices):
        assert learn_template(data, json.loads(data), CompletionState.TEXT_PATH) is None


def test_a_stream_whose_frames_always_differ_stops_learning() -> None:
    state = _same_outcome(CompletionState, [VLLM.replace('"created":1', f'"created":{i}') % '"x"' for i in range(20)])
    assert state._tries == 0 and state.template is not None and state.template.hits == 0


def test_a_stream_without_a_string_id_keeps_each_frames_model() -> None:
    """While the stream has no id, every frame's model is taken (what _frame does): a template
    learned three frames back must not skip that."""
    frame = '{"id":5,"model":"%s","choices":[{"index":0,"text":"%s"}]}'
    stream = [frame % ("m1", "a"), frame % ("m2", "b"), frame % ("m3", "c"), frame % ("m2", "d"), frame % ("m3", "e")]
    state = _same_outcome(CompletionState, stream)
    assert state.model == "m3" and state.template is not None and state.template.hits == 1


def test_a_frame_whose_text_is_the_proofs_marker_is_not_learned() -> None:
    """With the marker already at the text's place, a first duplicate holding it too would pass
    the proof, and a later frame would be read at the shadowed place."""
    mark = json.dumps("\u2063acs\u2063")
    frame = '{"id":"x","choices":[{"index":0,"text":%s,"text":%s}]}'
    stream = [frame % (mark, mark), frame % ('"hello"', mark)]
    state = _same_outcome(CompletionState, stream)
    assert state.template is None or state.template.hits == 0
