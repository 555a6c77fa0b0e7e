"""Unit tests of acs_cli.sse, pure and without I/O.

`SSEParser` against the WHATWG event-stream interpretation rules (README "What acs does with
unusual streams"), one rule at a time: UTF-8 with replacement and one leading BOM stripped; lines
end at CRLF, LF or CR (a CRLF may be split across reads) and nothing else; a `:` line is a
comment; a field's value loses one leading space; a blank line dispatches only when data was set;
an unterminated event at the end is dropped. `StreamView` against the reference client
algorithm (tests/oracle.py: routing by index, duplicates, usage, [DONE], error frames, verdicts).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from acs_cli.errors import IncompleteStream, ProtocolError, StreamError
from acs_cli.sse import SSEParser
from tests.stream_view import StreamView

BOM = b"\xef\xbb\xbf"


def parse(*chunks: bytes, close: bool = True) -> list[tuple[str, str]]:
    parser = SSEParser()
    events: list[tuple[str, str]] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    if close:
        parser.close()
    return events


def msg(data: str) -> tuple[str, str]:
    return ("message", data)


# ==================================================================================== SSEParser

# ------------------------------------------------------------------ line ends


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_every_line_end_kind_dispatches_the_same(eol: bytes) -> None:
    body = b"data: a" + eol + eol + b"data: b" + eol + b"data: c" + eol + eol
    assert parse(body) == [msg("a"), msg("b\nc")]


def test_mixed_line_ends_in_one_stream() -> None:
    assert parse(b"data: a\r\ndata: b\rdata: c\n\r\n") == [msg("a\nb\nc")]


def test_crlf_is_one_line_end_not_two() -> None:
    # were CR and LF two line ends, the blank line would dispatch "a" alone
    assert parse(b"data: a\r\ndata: b\r\n\r\n") == [msg("a\nb")]


def test_cr_at_end_of_one_feed_and_lf_at_start_of_next_are_one_line_end() -> None:
    assert parse(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == [msg("a\nb")]


def test_cr_at_end_of_feed_then_a_lone_cr_is_a_blank_line() -> None:
    assert parse(b"data: a\r", b"\r") == [msg("a")]


def test_cr_at_end_of_feed_then_other_text_is_a_line_end() -> None:
    assert parse(b"data: a\r", b"data: b\r\r") == [msg("a\nb")]


def test_cr_at_end_of_feed_then_cr_lf() -> None:
    # CR | CR LF: the second CR is a new (blank) line whose LF is its own
    assert parse(b"data: a\r", b"\r\ndata: b\n\n") == [msg("a"), msg("b")]


def test_lf_after_a_split_cr_is_swallowed_only_once() -> None:
    # CR | LF LF: the first LF belongs to the CR, the second is the blank line
    assert parse(b"data: a\r", b"\n\n") == [msg("a")]


def test_empty_feed_between_cr_and_lf_changes_nothing() -> None:
    """A read of zero bytes between the CR and the LF of one CRLF: still one line end."""
    assert parse(b"data: a\r", b"", b"\ndata: b\n\n") == [msg("a\nb")]


def test_empty_feeds_are_harmless() -> None:
    assert parse(b"", b"data: a", b"", b"\n", b"", b"\n", b"") == [msg("a")]


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"])
def test_unicode_and_other_separators_are_not_line_ends(char: str) -> None:
    data = f'{{"text":"a{char}b"}}'
    assert parse(f"data: {data}\n\n".encode()) == [msg(data)]


def test_s38_line_separators_inside_json_stay_text() -> None:
    body = b'data: {"text":" a\xe2\x80\xa8b\xe2\x80\xa9c\xc2\x85d"}\n\n'
    ((kind, data),) = parse(body)
    assert json.loads(data)["text"] == " a\u2028b\u2029c\u0085d"


# ------------------------------------------------------------------ BOM


def test_leading_bom_is_dropped() -> None:
    assert parse(BOM + b"data: a\n\n") == [msg("a")]


def test_bom_split_across_feeds_is_dropped() -> None:
    assert parse(b"\xef", b"\xbb", b"\xbfdata: a\n\n") == [msg("a")]
    assert parse(BOM, b"data: a\n\n") == [msg("a")]
    assert parse(b"\xef\xbb", b"\xbfdata: a", b"\n\n") == [msg("a")]


def test_only_one_bom_is_dropped() -> None:
    # the second BOM is part of the first line's field name: "\ufeffdata" is an unknown field
    assert parse(BOM + BOM + b"data: a\n\ndata: b\n\n") == [msg("b")]


def test_bom_not_at_the_very_start_is_kept() -> None:
    assert parse(b"data: a\n\n" + BOM + b"data: b\n\ndata: c\n\n") == [msg("a"), msg("c")]
    assert parse(b"\n" + BOM + b"data: b\n\ndata: c\n\n") == [msg("c")]
    assert parse(b"data: a\n\n", BOM + b"data: b\n\n") == [msg("a")]


def test_bom_inside_a_value_is_text() -> None:
    assert parse(b"data: \xef\xbb\xbfx\n\n") == [msg("\ufeffx")]


# ------------------------------------------------------------------ fields


def test_comments_are_ignored() -> None:
    body = b": keep-alive\n\n: ping\n:\ndata: a\n: comment inside an event\ndata: b\n\n"
    assert parse(body) == [msg("a\nb")]


def test_comment_only_stream_dispatches_nothing() -> None:
    assert parse(b": keep-alive\n\n" * 3) == []


def test_field_without_colon_has_an_empty_value() -> None:
    # `data` alone appends an empty line to the data buffer: the buffer is not empty, so it dispatches ""
    assert parse(b"data\n\n") == [msg("")]
    assert parse(b"data\ndata: x\n\n") == [msg("\nx")]
    assert parse(b"event\ndata: x\n\n") == [msg("x")]


def test_data_without_space() -> None:
    assert parse(b"data:x\n\n") == [msg("x")]
    assert parse(b"data:[DONE]\n\n") == [msg("[DONE]")]


def test_only_one_leading_space_is_removed() -> None:
    assert parse(b"data:  x \n\n") == [msg(" x ")]
    assert parse(b"data:\tx\n\n") == [msg("\tx")]


def test_value_may_hold_colons() -> None:
    assert parse(b'data: {"a":"b:c"}\n\n') == [msg('{"a":"b:c"}')]


def test_multi_line_data_is_joined_with_lf() -> None:
    assert parse(b"data: a\ndata: b\ndata: c\n\n") == [msg("a\nb\nc")]
    assert parse(b"data: a\ndata:\ndata: c\n\n") == [msg("a\n\nc")]


def test_data_empty_dispatches_empty_data() -> None:
    assert parse(b"data:\n\n") == [msg("")]
    assert parse(b"data: \n\n") == [msg("")]


def test_field_names_are_case_sensitive_and_exact() -> None:
    assert parse(b"Data: a\n\nDATA: b\n\n data: c\n\ndata : d\n\nfoo: bar\n\n") == []


def test_event_names() -> None:
    assert parse(b"event: message\ndata: a\n\n") == [msg("a")]
    assert parse(b"event: error\ndata: {}\n\n") == [("error", "{}")]
    assert parse(b"event: ping\ndata: x\n\n") == [("ping", "x")]
    assert parse(b"event:\ndata: a\n\n") == [msg("a")]


def test_last_event_line_wins() -> None:
    assert parse(b"event: a\nevent: error\ndata: x\n\n") == [("error", "x")]


def test_event_type_is_reset_after_dispatch() -> None:
    assert parse(b"event: error\ndata: x\n\ndata: y\n\n") == [("error", "x"), msg("y")]


def test_event_type_is_reset_by_a_blank_line_without_data() -> None:
    assert parse(b"event: ping\n\ndata: y\n\n") == [msg("y")]


def test_event_without_data_dispatches_nothing() -> None:
    assert parse(b"event: ping\n\n") == []
    assert parse(b"event: error\n\n") == []


def test_blank_lines_without_data_dispatch_nothing() -> None:
    assert parse(b"\n\n\n\r\n\r\r") == []
    assert parse(b"id: 7\n\n\n\n") == []
    assert parse(b"retry: 10\n\n\n") == []


def test_id_sets_last_event_id() -> None:
    parser = SSEParser()
    assert parser.feed(b"id: 7\ndata: a\n\n") == [msg("a")]
    assert parser.last_event_id == "7"
    parser.feed(b"id\n\n")  # an id field without a value resets it
    assert parser.last_event_id == ""


def test_id_with_nul_is_ignored() -> None:
    parser = SSEParser()
    assert parser.feed(b"id: 1\ndata: a\n\n") == [msg("a")]
    assert parser.feed(b"id: 2\x003\ndata: b\n\n") == [msg("b")]
    assert parser.last_event_id == "1"


@pytest.mark.parametrize(
    "value,expected",
    [(b"3000", 3000), (b"0", 0), (b"0010", 10), (b"3s", None), (b"abc", None), (b"", None),
     (b"-5", None), (b"+5", None), (b" 5", None), (b"1.5", None), ("\u0663".encode(), None), ("\u00b2".encode(), None)],
)
def test_retry_takes_ascii_digits_only(value: bytes, expected: int | None) -> None:
    parser = SSEParser()
    assert parser.feed(b"retry: " + value + b"\ndata: a\n\n") == [msg("a")]
    assert parser.retry == expected


def test_retry_non_digits_keep_the_previous_value() -> None:
    parser = SSEParser()
    parser.feed(b"retry: 1500\nretry: 3s\n\n")
    assert parser.retry == 1500


def test_nul_in_data_stays() -> None:
    assert parse(b"data: a\x00b\n\n") == [msg("a\x00b")]


# ------------------------------------------------------------------ end of stream


def test_close_discards_an_unterminated_event() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\n\ndata: b\n") == [msg("a")]
    assert parser.mid_event
    parser.close()
    assert parser.feed(b"\n") == []  # the discarded data does not come back


def test_close_discards_an_unterminated_line() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\n\ndata: b") == [msg("a")]
    assert parser.mid_event
    parser.close()


def test_last_event_without_blank_line_is_not_dispatched() -> None:
    assert parse(b"data: a\n\ndata: [DONE]\n") == [msg("a")]
    assert parse(b"data: [DONE]") == []


def test_not_mid_event_after_a_complete_event() -> None:
    parser = SSEParser()
    parser.feed(b"data: a\n\n")
    assert not parser.mid_event


def test_events_are_returned_by_the_feed_that_completes_them() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\n") == []
    assert parser.feed(b"\ndata: b\n\ndata: c") == [msg("a"), msg("b")]
    assert parser.feed(b"\n\n") == [msg("c")]


# ------------------------------------------------------------------ UTF-8


def test_invalid_utf8_becomes_replacement_characters() -> None:
    assert parse(b"data: a\xff\xfeb\n\n") == [msg("a\ufffd\ufffdb")]


def test_truncated_sequence_before_a_line_end_is_replaced() -> None:
    assert parse(b"data: a\xc3\n\n") == [msg("a\ufffd")]
    assert parse(b"data: a\xe6\x97\n\n") == [msg("a\ufffd")]


def test_invalid_utf8_in_field_name() -> None:
    assert parse(b"d\xffata: x\n\ndata: y\n\n") == [msg("y")]


@pytest.mark.parametrize("char", ["é", "日", "😀"])
def test_multibyte_character_split_across_feeds(char: str) -> None:
    raw = f"data: caf{char}\n\n".encode()
    start = raw.index(char.encode())
    for cut in range(start + 1, start + len(char.encode())):
        assert parse(raw[:cut], raw[cut:]) == [msg(f"caf{char}")], cut
    # every byte on its own
    assert parse(*[raw[i : i + 1] for i in range(len(raw))]) == [msg(f"caf{char}")]


def test_multibyte_split_after_a_complete_line_in_the_same_feed() -> None:
    assert parse(b"data: x\ndata: caf\xc3", b"\xa9\n\n") == [msg("x\ncafé")]


def test_charset_is_always_utf8() -> None:
    # X53: whatever the header says, the bytes are UTF-8
    assert parse("data:  café 日本\n\n".encode()) == [msg(" café 日本")]


def test_every_byte_on_its_own_gives_the_same_events() -> None:
    body = (
        BOM
        + b": hi\r\nid: 1\r\nevent: error\r\ndata: {\"e\":\"\xe6\x97\xa5\"}\r\n\r\n"
        + b"data: a\rdata: b\r\rdata:\xf0\x9f\x98\x80\n\n"
    )
    whole = parse(body)
    assert whole == [("error", '{"e":"日"}'), msg("a\nb"), msg("😀")]
    assert parse(*[body[i : i + 1] for i in range(len(body))]) == whole


# ============================================================================ StreamView

CHUNK_ID = "cmpl-1"


def chunk(
    index: int = 0,
    text: str | None = "",
    finish: Any = None,
    stop_reason: Any = None,
    usage: Any = None,
    logprobs: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": CHUNK_ID,
        "object": "text_completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish, "stop_reason": stop_reason}],
        "usage": usage,
        **extra,
    }


def usage_chunk(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "id": CHUNK_ID,
        "object": "text_completion",
        "created": 1,
        "model": "m",
        "choices": [],
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt + completion, "completion_tokens": completion},
    }


def ev(obj: Any, event: str = "message") -> tuple[str, str]:
    return (event, obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"), ensure_ascii=False))


DONE = ("message", "[DONE]")


def feed_all(*events: tuple[str, str], keep_text: bool = True) -> tuple[StreamView, list[tuple[int, str]]]:
    stream = StreamView(keep_text=keep_text)
    return stream, stream.feed(list(events))


def texts(stream: StreamView) -> dict[int, str]:
    return {i: c.text for i, c in stream.choices.items()}


def finishes(stream: StreamView) -> dict[int, str | None]:
    return {i: c.finish_reason for i, c in stream.choices.items()}


# ------------------------------------------------------------------ routing


def test_single_choice_basic() -> None:
    stream, deltas = feed_all(ev(chunk(0, " It")), ev(chunk(0, " was")), ev(chunk(0, " the", "length")), DONE)
    assert deltas == [(0, " It"), (0, " was"), (0, " the")]
    assert texts(stream) == {0: " It was the"}
    assert finishes(stream) == {0: "length"}
    assert stream.done
    assert stream.failure is None
    assert stream.end_of_stream() is None


def test_text_is_routed_by_index_interleaved() -> None:
    stream, deltas = feed_all(
        ev(chunk(0, " red")),
        ev(chunk(1, " blue")),
        ev(chunk(1, "", "stop")),
        ev(chunk(0, " green")),
        ev(chunk(0, "", "length")),
        DONE,
    )
    assert deltas == [(0, " red"), (1, " blue"), (0, " green")]
    assert texts(stream) == {0: " red green", 1: " blue"}
    assert finishes(stream) == {0: "length", 1: "stop"}
    assert stream.end_of_stream(expected=2) is None


def test_any_index_values_in_any_order() -> None:
    stream, deltas = feed_all(
        ev(chunk(2, " x")), ev(chunk(0, " y")), ev(chunk(3, " z", "length")), ev(chunk(1, " w", "length")),
        ev(chunk(2, "", "length")), ev(chunk(0, "", "length")), DONE,
    )
    assert deltas == [(2, " x"), (0, " y"), (3, " z"), (1, " w")]
    assert [c.index for c in stream.ordered()] == [0, 1, 2, 3]
    assert [c.text for c in stream.ordered()] == [" y", " w", " x", " z"]


def test_several_choices_in_one_frame() -> None:
    frame = chunk(0, " A")
    frame["choices"].append({"index": 1, "text": " B", "finish_reason": None})
    last = chunk(0, "", "stop")
    last["choices"].append({"index": 1, "text": "b", "finish_reason": "length"})
    stream, deltas = feed_all(ev(frame), ev(chunk(0, " a")), ev(last), DONE)
    assert deltas == [(0, " A"), (1, " B"), (0, " a"), (1, "b")]
    assert texts(stream) == {0: " A a", 1: " Bb"}
    assert finishes(stream) == {0: "stop", 1: "length"}


def test_frames_after_a_choice_finished_are_ignored() -> None:
    stream, deltas = feed_all(
        ev(chunk(0, " red")),
        ev(chunk(0, " green", "length")),
        ev(chunk(1, " blue")),
        ev(chunk(0, " green", "length")),  # duplicate terminal frame (vLLM < PR #28591)
        ev(chunk(1, "", "stop")),
        ev(chunk(0, " again", "stop", stop_reason="x")),
        DONE,
    )
    assert deltas == [(0, " red"), (0, " green"), (1, " blue")]
    assert texts(stream) == {0: " red green", 1: " blue"}
    assert finishes(stream) == {0: "length", 1: "stop"}
    assert stream.choices[0].stop_reason is None


def test_empty_text_is_not_an_end_signal() -> None:
    stream, deltas = feed_all(ev(chunk(0, " Hi")), ev(chunk(0, "")), ev(chunk(0, " 😀")), ev(chunk(0, "", "length")), DONE)
    assert texts(stream) == {0: " Hi 😀"}
    assert "".join(t for _, t in deltas) == " Hi 😀"


def test_null_or_missing_text_adds_nothing() -> None:
    frame = chunk(0, None)
    missing = {"choices": [{"index": 0, "finish_reason": "stop"}]}
    stream, deltas = feed_all(ev(chunk(0, "a")), ev(frame), ev(missing), DONE)
    assert deltas == [(0, "a")]
    assert finishes(stream) == {0: "stop"}


def test_missing_optional_keys_and_unknown_keys_are_fine() -> None:
    minimal = {"choices": [{"index": 0, "text": " It", "finish_reason": None}]}
    extra = {
        "id": "x", "object": "text_completion", "model": "m", "weird": [1, {"a": None}],
        "choices": [{"index": 0, "text": "", "finish_reason": "length", "token_ids": [1, 2], "new_key": {}}],
        "timings": {"prompt_n": 5},
    }
    stream, _ = feed_all(ev(minimal), ev(extra), DONE)
    assert texts(stream) == {0: " It"}
    assert finishes(stream) == {0: "length"}
    assert stream.end_of_stream() is None


def test_key_order_does_not_matter() -> None:
    frame = '{"choices":[{"finish_reason":"stop","text":"Hello","index":0}],"model":"m","id":"x"}'
    stream, deltas = feed_all(ev(frame), DONE)
    assert deltas == [(0, "Hello")]
    assert finishes(stream) == {0: "stop"}


@pytest.mark.parametrize("reason", ["repetition", "content_filter", "stop", "length", "something_new"])
def test_finish_reasons_other_than_abort_complete_the_stream(reason: str) -> None:
    stream, _ = feed_all(ev(chunk(0, " loop", reason)), DONE)
    assert finishes(stream) == {0: reason}
    assert stream.end_of_stream() is None


@pytest.mark.parametrize("stop_reason", [None, "\nUser:", 128009, 0])
def test_stop_reason_may_be_string_int_or_null(stop_reason: Any) -> None:
    stream, _ = feed_all(ev(chunk(0, "Hi")), ev(chunk(0, "", "stop", stop_reason=stop_reason)), DONE)
    assert stream.choices[0].stop_reason == stop_reason
    assert stream.choices[0].finish_reason == "stop"


def test_logprobs_are_appended_in_order() -> None:
    lp1 = {"text_offset": [0, 3], "token_logprobs": [-0.25, -1.5], "tokens": [" It", " was"], "top_logprobs": [{" It": -0.25}, {" was": -1.5}]}
    lp2 = {"text_offset": [7], "token_logprobs": [-9999.0], "tokens": [" the"], "top_logprobs": [{" the": -9999.0}]}
    stream, _ = feed_all(ev(chunk(0, " It was", logprobs=lp1)), ev(chunk(0, " the", "length", logprobs=lp2)), DONE)
    lp = stream.choices[0].logprobs
    assert lp is not None
    assert lp["tokens"] == [" It", " was", " the"]
    assert lp["token_logprobs"] == [-0.25, -1.5, -9999.0]
    assert lp["text_offset"] == [0, 3, 7]
    assert len(lp["top_logprobs"]) == 3


def test_deltas_come_without_keep_text() -> None:
    stream, deltas = feed_all(ev(chunk(0, "a")), ev(chunk(0, "b", "stop")), DONE, keep_text=False)
    assert deltas == [(0, "a"), (0, "b")]
    assert finishes(stream) == {0: "stop"}


def test_identity_fields_are_kept() -> None:
    first = chunk(0, " It")
    last = chunk(0, "", "stop", stop_reason=128009, system_fingerprint="vllm-0.20.0-3f2a9c1d")
    stream, _ = feed_all(ev(first), ev(last), DONE)
    assert stream.id == CHUNK_ID
    assert stream.model == "m"


def test_non_ascii_and_escapes_in_text() -> None:
    text = 'a\u2028b\u2029c\x85d "q" \\ \r\n\t 😀 日本'
    escaped = json.dumps(chunk(0, text, "stop"), ensure_ascii=True)
    stream, deltas = feed_all(ev(escaped), DONE)
    assert deltas == [(0, text)]


# ------------------------------------------------------------------ usage


def test_usage_from_the_aggregate_chunk() -> None:
    stream, deltas = feed_all(ev(chunk(0, " It")), ev(chunk(0, " was", "length")), ev(usage_chunk(5, 2)), DONE)
    assert deltas == [(0, " It"), (0, " was")]
    assert stream.usage == {"prompt_tokens": 5, "total_tokens": 7, "completion_tokens": 2}


def test_usage_null_on_content_chunks_is_ignored() -> None:
    stream, _ = feed_all(ev(chunk(0, "Hello", usage=None)), ev(chunk(0, "", "stop", usage=None)), DONE)
    assert stream.usage is None
    stream, _ = feed_all(ev(usage_chunk(10, 1)), ev(chunk(0, "", "stop", usage=None)), DONE)
    assert stream.usage is not None and stream.usage["total_tokens"] == 11


def test_per_chunk_usage_is_replaced_by_the_aggregate_never_summed() -> None:
    per = lambda c: {"prompt_tokens": 5, "total_tokens": 5 + c, "completion_tokens": c}  # noqa: E731
    stream, _ = feed_all(
        ev(chunk(0, " red", usage=per(1))),
        ev(chunk(1, " blue", usage=per(1))),
        ev(chunk(0, " green", "length", usage=per(2))),
        ev(chunk(1, "", "stop", usage=per(2))),
        ev(usage_chunk(5, 4)),
        DONE,
    )
    assert {k: stream.usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")} == {
        "prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9,
    }


def test_usage_on_the_finish_chunk_is_used_without_an_aggregate() -> None:
    # llama-server: usage only on the finish chunk
    u = {"completion_tokens": 3, "prompt_tokens": 5, "total_tokens": 8}
    stream, _ = feed_all(ev(chunk(0, " It")), ev(chunk(0, " was")), ev(chunk(0, " the", "length", usage=u)), DONE)
    assert stream.usage == u


def test_per_chunk_usage_without_aggregate_is_the_last_one_not_a_sum() -> None:
    per = lambda c: {"prompt_tokens": 5, "total_tokens": 5 + c, "completion_tokens": c}  # noqa: E731
    stream, _ = feed_all(
        ev(chunk(0, " a", usage=per(1))), ev(chunk(0, " b", usage=per(2))), ev(chunk(0, " c", "length", usage=per(3))), DONE
    )
    assert stream.usage == per(3)


def test_aggregate_usage_is_not_replaced_by_a_later_per_chunk_figure() -> None:
    stream, _ = feed_all(
        ev(chunk(0, " a")),
        ev(usage_chunk(5, 4)),
        ev(chunk(1, " b", "stop", usage={"prompt_tokens": 5, "total_tokens": 6, "completion_tokens": 1})),
        DONE,
    )
    assert stream.usage["completion_tokens"] == 4 and stream.usage["total_tokens"] == 9


def test_usage_only_stream_does_not_index_choices() -> None:
    stream, deltas = feed_all(ev(usage_chunk(3, 0)), DONE)
    assert deltas == []
    assert stream.choices == {}
    assert stream.failure is None


# ------------------------------------------------------------------ [DONE]


@pytest.mark.parametrize("done", ["[DONE]", "[DONE] ", "[DONE]  \t"])
def test_done_ends_the_stream(done: str) -> None:
    stream, deltas = feed_all(ev(chunk(0, " It", "length")), ("message", done), ev(chunk(0, " extra")), ev(chunk(1, " more", "stop")))
    assert stream.done
    assert deltas == [(0, " It")]
    assert texts(stream) == {0: " It"}
    assert stream.end_of_stream() is None


def test_everything_after_done_is_ignored_in_later_feeds_too() -> None:
    stream = StreamView(keep_text=True)
    stream.feed([ev(chunk(0, " It")), DONE])
    assert stream.feed([ev(chunk(0, " extra", "stop"))]) == []
    assert stream.feed([ev({"error": {"message": "late"}})]) == []
    assert stream.feed([ev("{not json")]) == []
    assert stream.failure is None
    assert texts(stream) == {0: " It"}
    assert stream.done


def test_done_as_a_named_event_is_not_a_message() -> None:
    stream, _ = feed_all(ev(chunk(0, " It")), ("ping", "[DONE]"))
    assert not stream.done


# ------------------------------------------------------------------ skipped data


@pytest.mark.parametrize("data", ["", " ", "\n", "\t", " \n "])
def test_empty_or_blank_data_is_skipped(data: str) -> None:
    stream, deltas = feed_all(("message", data), ev(chunk(0, " It", "length")), ("message", data), DONE)
    assert stream.failure is None
    assert deltas == [(0, " It")]


def test_data_null_is_skipped() -> None:
    stream, deltas = feed_all(ev(chunk(0, " It")), ("message", "null"), ev(chunk(0, " was", "length")), ("message", "null"), DONE)
    assert stream.failure is None
    assert texts(stream) == {0: " It was"}
    assert stream.end_of_stream() is None


def test_unknown_event_names_are_ignored() -> None:
    stream, deltas = feed_all(
        ("ping", json.dumps(chunk(0, "no"))), ev(chunk(0, " It")), ("keepalive", "x"), ev(chunk(0, "", "length"), "message"), DONE
    )
    assert stream.failure is None
    assert deltas == [(0, " It")]


# ------------------------------------------------------------------ errors


def test_nested_error_frame_stops_the_stream_and_keeps_earlier_deltas() -> None:
    err = {"error": {"message": "Internal server error", "type": "InternalServerError", "param": None, "code": 500}}
    stream, deltas = feed_all(ev(chunk(0, " It")), ("message", json.dumps(err)), ev(chunk(0, " was", "stop")), DONE)
    assert deltas == [(0, " It")]
    assert isinstance(stream.failure, StreamError)
    assert "Internal server error" in stream.failure.message
    assert stream.failure.error_type == "InternalServerError"
    assert stream.failure.code == 500
    assert stream.end_of_stream() is stream.failure
    assert stream.feed([ev(chunk(0, " more"))]) == []


def test_old_vllm_error_frame_with_object_inside() -> None:
    err = {"error": {"object": "error", "message": "Sampled token IDs exceed the max model length.", "type": "BadRequestError", "param": None, "code": 400}}
    stream, _ = feed_all(ev(chunk(0, " It")), ev(chunk(0, " was")), ("message", json.dumps(err)), DONE)
    assert isinstance(stream.failure, StreamError)
    assert "Sampled token IDs exceed the max model length." in stream.failure.message
    assert stream.failure.code == 400
    assert texts(stream) == {0: " It was"}


def test_flat_error_frame() -> None:
    stream, _ = feed_all(ev({"object": "error", "message": "boom", "type": "BadRequestError", "param": None, "code": 400}), DONE)
    assert isinstance(stream.failure, StreamError)
    assert "boom" in stream.failure.message
    assert stream.failure.error_type == "BadRequestError"
    assert stream.failure.code == 400


def test_error_as_a_string() -> None:
    stream, _ = feed_all(ev({"error": "Unauthorized"}), DONE)
    assert isinstance(stream.failure, StreamError)
    assert "Unauthorized" in stream.failure.message


def test_first_frame_error_openai() -> None:
    err = '{"error":{"message": "The server had an error processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}'
    stream, deltas = feed_all(("message", err), DONE)
    assert deltas == []
    assert isinstance(stream.failure, StreamError)
    assert "The server had an error processing your request" in stream.failure.message
    assert stream.failure.error_type == "server_error"


def test_falsy_error_key_is_not_an_error() -> None:
    for frame in (chunk(0, " It", "stop", error=None), chunk(0, " It", "stop", error={}), chunk(0, " It", "stop", error="")):
        stream, deltas = feed_all(ev(frame), DONE)
        assert stream.failure is None, frame
        assert deltas == [(0, " It")]


@pytest.mark.parametrize(
    "data,needle",
    [
        ('{"message":"Upstream request timed out","code":504}', "Upstream request timed out"),
        ('{"error":{"message":"nested in event","type":"t"}}', "nested in event"),
        ("plain text failure", "plain text failure"),
    ],
)
def test_event_error(data: str, needle: str) -> None:
    stream, deltas = feed_all(ev(chunk(0, " It")), ("error", data), ev(chunk(0, " was", "stop")), DONE)
    assert deltas == [(0, " It")]
    assert isinstance(stream.failure, StreamError)
    assert needle in stream.failure.message
    assert isinstance(stream.end_of_stream(), StreamError)


def test_event_error_code() -> None:
    stream, _ = feed_all(("error", '{"message":"Upstream request timed out","code":504}'))
    assert isinstance(stream.failure, StreamError)
    assert stream.failure.code == 504


@pytest.mark.parametrize("data", ["{unparsable}", "{", '{"a":1} trailing', "not json at all", "[DONE", "'x'"])
def test_frame_that_is_not_json_is_a_protocol_error(data: str) -> None:
    stream, deltas = feed_all(ev(chunk(0, " It")), ("message", data), ev(chunk(0, " was", "stop")), DONE)
    assert deltas == [(0, " It")]
    assert isinstance(stream.failure, ProtocolError)
    assert data in stream.failure.message
    assert stream.end_of_stream() is stream.failure


def test_long_non_json_frame_is_shown_shortened() -> None:
    data = "{" + "x" * 5000
    stream, _ = feed_all(("message", data))
    assert isinstance(stream.failure, ProtocolError)
    assert "{xxxx" in stream.failure.message
    assert len(stream.failure.message) < 1000


@pytest.mark.parametrize("data", ["[1, 2]", "42", '"text"', "true", "false", "[]", "1.5"])
def test_json_that_is_not_an_object_is_a_protocol_error(data: str) -> None:
    stream, _ = feed_all(("message", data), ev(chunk(0, " It", "stop")), DONE)
    assert isinstance(stream.failure, ProtocolError)
    assert stream.choices == {}


# ------------------------------------------------------------------ verdicts


def test_verdict_done_is_complete() -> None:
    stream, _ = feed_all(ev(chunk(0, " It", "length")), DONE)
    assert stream.end_of_stream() is None
    assert stream.end_of_stream(cut=True) is None


def test_verdict_every_choice_finished_without_done_is_complete() -> None:
    stream, _ = feed_all(ev(chunk(0, " It")), ev(chunk(0, "", "length")))
    assert not stream.done
    assert stream.end_of_stream() is None


def test_verdict_no_done_no_finish_is_incomplete() -> None:
    stream, _ = feed_all(ev(chunk(0, " It")))
    assert isinstance(stream.end_of_stream(), IncompleteStream)
    assert isinstance(stream.end_of_stream(cut=True), IncompleteStream)


def test_verdict_nothing_at_all_is_incomplete() -> None:
    stream = StreamView()
    assert isinstance(stream.end_of_stream(), IncompleteStream)
    stream.feed([("message", "null"), ("ping", "x")])
    assert isinstance(stream.end_of_stream(), IncompleteStream)


def test_verdict_one_of_two_seen_choices_unfinished_is_incomplete() -> None:
    stream, _ = feed_all(ev(chunk(0, " red")), ev(chunk(1, " blue")), ev(chunk(1, "", "stop")), ev(chunk(0, " green")))
    assert isinstance(stream.end_of_stream(), IncompleteStream)
    assert isinstance(stream.end_of_stream(cut=True, expected=2), IncompleteStream)


def test_verdict_counts_the_expected_choices() -> None:
    stream, _ = feed_all(ev(chunk(0, " a", "stop")))
    assert stream.end_of_stream(expected=1) is None
    assert isinstance(stream.end_of_stream(expected=2), IncompleteStream)  # choice 1 never came
    stream.feed([ev(chunk(1, " b", "length"))])
    assert stream.end_of_stream(expected=2) is None
    assert isinstance(stream.end_of_stream(expected=3), IncompleteStream)


def test_verdict_done_before_an_expected_choice_is_incomplete() -> None:
    """n=2 asked: [DONE] after only choice 0 finished is a stream cut short (exit 10), and
    [DONE] alone, with no completion frame at all, is too."""
    stream, _ = feed_all(ev(chunk(0, " a", "stop")), DONE)
    verdict = stream.end_of_stream(expected=2)
    assert isinstance(verdict, IncompleteStream) and "choice 1" in verdict.message
    stream, _ = feed_all(DONE)
    assert isinstance(stream.end_of_stream(), IncompleteStream)


def test_verdict_finish_reason_abort_is_incomplete_even_with_done() -> None:
    stream, _ = feed_all(ev(chunk(0, " It")), ev(chunk(0, " was")), ev(chunk(0, "", "abort")), DONE)
    verdict = stream.end_of_stream()
    assert isinstance(verdict, IncompleteStream)
    assert "abort" in verdict.message
    assert texts(stream) == {0: " It was"}


def test_verdict_abort_of_one_choice_among_several() -> None:
    stream, _ = feed_all(ev(chunk(0, " a", "stop")), ev(chunk(1, " b", "abort")), DONE)
    assert isinstance(stream.end_of_stream(expected=2), IncompleteStream)


def test_verdict_is_the_failure_when_there_is_one() -> None:
    stream, _ = feed_all(ev(chunk(0, " a", "stop")), ev({"error": {"message": "x"}}))
    assert isinstance(stream.end_of_stream(), StreamError)
    stream, _ = feed_all(ev(chunk(0, " a", "stop")), ("message", "{bad"))
    assert isinstance(stream.end_of_stream(), ProtocolError)


# ------------------------------------------------------------------ non-streamed document


def test_json_document_is_one_complete_response() -> None:
    doc = {
        "id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "text": " It was", "logprobs": None, "finish_reason": "length", "stop_reason": None}],
        "usage": {"prompt_tokens": 5, "total_tokens": 7, "completion_tokens": 2},
    }
    stream = StreamView(keep_text=True)
    assert stream.feed_document(doc) == [(0, " It was")]
    assert stream.done
    assert finishes(stream) == {0: "length"}
    assert stream.usage == doc["usage"]
    assert stream.end_of_stream() is None


@pytest.mark.parametrize("doc", [[1, 2], "text", 3, {"foo": "bar"}])
def test_json_document_that_is_not_a_completion_is_a_protocol_error(doc: Any) -> None:
    stream = StreamView()
    stream.feed_document(doc)
    assert isinstance(stream.end_of_stream(), ProtocolError)


# ------------------------------------------------------------------ parser + stream together


def test_sse_to_deltas_end_to_end() -> None:
    body = (
        b": keep-alive\r\n\r\n"
        b"event: message\r\ndata: " + json.dumps(chunk(0, " It")).encode() + b"\r\n\r\n"
        b"event: ping\r\n\r\n"
        b"data:" + json.dumps(chunk(0, "", "length")).encode() + b"\r\n\r\n"
        b"data: [DONE] \r\n\r\n"
        b"data: " + json.dumps(chunk(0, " extra")).encode() + b"\r\n\r\n"
    )
    parser = SSEParser()
    stream = StreamView(keep_text=True)
    deltas = stream.feed(parser.feed(body))
    parser.close()
    assert deltas == [(0, " It")]
    assert stream.done and stream.end_of_stream() is None
