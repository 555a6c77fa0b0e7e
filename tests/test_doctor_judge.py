"""The doctor's probe judgements as pure functions of hand-built records (acs_cli.doctor.judge):
no server, no sleeps. The buffering judgement is in tests/test_doctor_buffering.py; the
end-to-end tests in tests/test_doctor*.py prove the wiring."""

from __future__ import annotations

import json

import pytest

from acs_cli.completion_state import ChoiceState, CompletionState
from acs_cli.doctor import judge
from acs_cli.doctor.judge import BYTES, FRAMES, SECONDS, Probe
from acs_cli.doctor.report import PROBE_NAMES
from acs_cli.errors import ConnectError, HTTPStatusError, IncompleteStream, ProtocolError, StreamError, TimedOut
from tests.doctorutil import probe


def from_stream(*frames: dict | str, **kw) -> Probe:
    """A probe whose end-of-stream fields come from the real parser state fed these frames."""
    state = CompletionState()
    state.feed([("message", f if isinstance(f, str) else json.dumps(f)) for f in frames])
    return probe(failure=state.failure, verdict=state.verdict(), done=state.done, choices=state.ordered(), usage=state.usage, frames=state.frames, **kw)


def text(index: int, t: str, finish: str | None = None) -> dict:
    return {"choices": [{"index": index, "text": t, "finish_reason": finish}]}


def by_name(checks) -> dict:
    return {c.name: c for c in checks}


# ---------------------------------------------------------------------------------------- whole probe


def test_a_healthy_probe_passes_every_check_in_order() -> None:
    checks = judge.judge_probe(probe())
    assert [c.name for c in checks] == list(PROBE_NAMES)
    assert all(c.status == "pass" for c in checks), checks


@pytest.mark.parametrize(
    "kw, failed_at, status",
    [
        ({"request_error": HTTPStatusError(500, "HTTP 500: boom", "check the server")}, "completion", 8),
        ({"request_error": TimedOut("no response within 5 s", "raise --timeout")}, "completion", 5),
        ({"kind": "other", "media": "text/html", "first_bytes": "<html>"}, "completion", 11),
        ({"failure": StreamError("the server reported an error mid-stream: died", "retry")}, "stream", 9),
        ({"failure": ProtocolError("the server sent a frame that is not JSON: {x", "check")}, "stream", 11),
        ({"read_error": TimedOut("no data from the server for 1 s (between two frames)", "x")}, "stream", 5),
        ({"read_error": IncompleteStream("incomplete stream: the connection closed mid-stream (reset)", "x")}, "stream", 10),
        ({"read_error": ConnectError("reading the response failed: boom", "retry")}, "stream", 4),
    ],
)
def test_a_failure_skips_every_probe_check_after_it(kw, failed_at: str, status: int) -> None:
    checks = judge.judge_probe(probe(**kw))
    assert [c.name for c in checks] == list(PROBE_NAMES)
    at = PROBE_NAMES.index(failed_at)
    assert all(c.status == "pass" for c in checks[:at])
    assert checks[at].status == "fail" and checks[at].exit_status == status and checks[at].hint
    reasons = {c.detail for c in checks[at + 1 :]}
    assert all(c.status == "skip" for c in checks[at + 1 :]) and len(reasons) == 1, checks
    assert reasons.pop().startswith("skipped: ")


def test_a_probe_stopped_at_its_limit_skips_the_end_and_judges_the_pace() -> None:
    checks = by_name(judge.judge_probe(probe(limit=FRAMES, limit_value=72, frames=73, done=False, choices=[ChoiceState(0)], usage=None)))
    assert checks["stream"].status == "warn"
    for name in ("finish reason", "[DONE]", "usage"):
        assert checks[name].status == "skip" and "stopped reading before the end" in checks[name].detail
    assert checks["first token"].status == "pass" and checks["buffering"].status == "pass"


# ---------------------------------------------------------------------------------------- completion


def test_completion_pass_names_the_model_and_max_tokens() -> None:
    check = judge.judge_completion(probe(model="llama-8b", max_tokens=32, head_seconds=0.012))
    assert check.status == "pass" and check.seconds == 0.012
    assert check.detail == "POST /completions answered 200 text/event-stream in 12 ms (llama-8b, max_tokens 32)"


def test_completion_path_is_the_endpoints() -> None:
    assert "POST /chat/completions answered 200" in judge.judge_completion(probe(path="chat/completions")).detail


def test_completion_request_error_keeps_its_status_and_hint() -> None:
    error = HTTPStatusError(401, "HTTP 401 Unauthorized: bad key", "check ACS_API_KEY")
    check = judge.judge_completion(probe(request_error=error, head_seconds=0.5))
    assert (check.status, check.exit_status, check.detail, check.hint, check.seconds) == ("fail", 6, error.message, error.hint, 0.5)


def test_completion_json_document_warns() -> None:
    check = judge.judge_completion(probe(kind="json", media="application/json"))
    assert check.status == "warn" and "a whole completion, not an event stream" in check.detail
    assert '"stream": true' in check.hint


def test_completion_event_stream_under_another_media_type_warns() -> None:
    check = judge.judge_completion(probe(media="text/plain"))
    assert check.status == "warn" and "text/plain, but the body is an event stream" in check.detail
    assert "no content type" in judge.judge_completion(probe(media="")).detail


def test_completion_other_body_fails_with_its_start_shortened() -> None:
    check = judge.judge_completion(probe(kind="other", media="text/html", first_bytes="<html>" + "x" * 500))
    assert check.status == "fail" and check.exit_status == 11
    assert "text/html, not an event stream: <html>xx" in check.detail and check.detail.endswith("…")
    assert len(check.detail) < 250


# ---------------------------------------------------------------------------------------- stream


def test_stream_pass_shows_the_preview_with_each_newline_escaped_once() -> None:
    check = judge.judge_stream(probe(preview="one\ntwo\r\nthree"))
    assert check.status == "pass"
    assert check.detail == '18 frames in 18 reads over 1.00 s: "one\\ntwo\\r\\nthree"'
    assert "\\\\" not in check.detail and "\n" not in check.detail


def test_stream_preview_is_shortened() -> None:
    check = judge.judge_stream(probe(preview="word " * 40))
    shown = check.detail.split(": ", 1)[1]
    assert shown.startswith('"word word') and shown.endswith('…"') and len(shown) == judge.PREVIEW_CHARS + 2


def test_stream_without_text_says_so() -> None:
    assert judge.judge_stream(probe(preview="", text_times=[])).detail == "18 frames in 18 reads over 1.00 s, no text"


def test_stream_of_a_json_document() -> None:
    assert judge.judge_stream(probe(kind="json", preview="hi")).detail == 'a JSON completion: "hi"'


def test_stream_error_frame_fails_with_the_servers_message() -> None:
    error = StreamError("the server reported an error mid-stream: the engine died (InternalServerError)", "retry")
    check = judge.judge_stream(probe(failure=error, frames=2, reads=2, last_time=0.004))
    assert check.status == "fail" and check.exit_status == 9
    assert check.detail == f"{error.message} (after 2 frames in 2 reads over 4.0 ms)"


def test_stream_silence_fails_with_the_timeout() -> None:
    error = TimedOut("no data from the server for 0.5 s (between two frames)", "the text so far is kept")
    check = judge.judge_stream(probe(read_error=error, frames=1, reads=1))
    assert check.exit_status == 5 and "0.5 s (between two frames), after 1 frame in 1 read" in check.detail
    assert "raise --timeout" in check.hint and "text so far" not in check.hint


def test_stream_cut_fails_as_incomplete() -> None:
    error = IncompleteStream("incomplete stream: the connection closed mid-stream (peer closed)", "x")
    check = judge.judge_stream(probe(read_error=error))
    assert check.exit_status == 10 and "closed mid-stream" in check.detail and check.hint == judge.CUT_HINT


@pytest.mark.parametrize(
    "limit, value, words",
    [
        (FRAMES, 72, "the server sent more than max_tokens: 73 frames (16 with text) for max_tokens 16"),
        (BYTES, 64 * 1024, "the server sent more than 64 KiB for max_tokens 16"),
        (SECONDS, 120.0, "the stream was still going after 120.00 s"),
    ],
)
def test_stream_stopped_at_a_limit_warns(limit: str, value: float, words: str) -> None:
    check = judge.judge_stream(probe(limit=limit, limit_value=value, frames=73))
    assert check.status == "warn" and words in check.detail and "the probe stopped reading there" in check.detail
    assert check.hint and ("max_tokens" in check.hint or "--max-tokens" in check.hint)


def test_stream_failure_wins_over_a_limit() -> None:
    error = ProtocolError("the server sent a frame that is not JSON: x", "check")
    assert judge.judge_stream(probe(failure=error, limit=FRAMES)).status == "fail"


# ---------------------------------------------------------------------------------------- finish reason


def test_finish_reasons_are_listed_once_each() -> None:
    p = from_stream(text(0, "a"), text(1, "b", "length"), text(0, "c", "length"), text(2, "d", "stop"), "[DONE]")
    check = judge.judge_finish(p)
    assert check.status == "pass" and check.detail == "finish: length, stop"


def test_finish_abort_fails_with_the_verdict() -> None:
    p = from_stream(text(0, "a"), text(0, "", "abort"), "[DONE]")
    check = judge.judge_finish(p)
    assert check.status == "fail" and check.exit_status == 10 and "'abort'" in check.detail


def test_finish_missing_when_the_body_ended_fails() -> None:
    p = from_stream(text(0, "a"), text(0, "b"))
    check = judge.judge_finish(p)
    assert check.status == "fail" and check.detail == "no choice had a finish reason when the body ended"


def test_finish_done_before_a_finish_reason_fails_as_acs_complete_does() -> None:
    p = from_stream(text(0, "a"), "[DONE]")
    assert p.verdict is not None and p.verdict.status == 10  # what acs complete exits with
    check = judge.judge_finish(p)
    assert check.status == "fail" and check.exit_status == 10 and "[DONE] came before" in check.detail


def test_finish_without_any_frame_fails() -> None:
    check = judge.judge_finish(from_stream())
    assert check.status == "fail" and "before any completion frame" in check.detail


# ---------------------------------------------------------------------------------------- [DONE]


def test_done_passes_with_its_time() -> None:
    check = judge.judge_done(probe(last_time=0.25))
    assert (check.status, check.detail, check.seconds) == ("pass", "data: [DONE] after 250 ms", 0.25)


def test_done_missing_after_every_finish_warns() -> None:
    check = judge.judge_done(from_stream(text(0, "a", "stop")))
    assert check.status == "warn" and "acs accepts it" in check.detail


def test_done_missing_without_a_finish_fails() -> None:
    check = judge.judge_done(from_stream(text(0, "a")))
    assert check.status == "fail" and check.exit_status == 10


def test_done_is_skipped_for_a_json_document() -> None:
    assert judge.judge_done(probe(kind="json", done=True)).status == "skip"


# ---------------------------------------------------------------------------------------- usage


def test_usage_pass_shows_the_figures() -> None:
    check = judge.judge_usage(probe(usage={"prompt_tokens": 5, "completion_tokens": 16, "total_tokens": 21}))
    assert (check.status, check.detail) == ("pass", "5 prompt + 16 completion = 21 tokens")


def test_usage_missing_warns() -> None:
    check = judge.judge_usage(probe(usage=None))
    assert check.status == "warn" and "the server sends no usage; `acs` will say so" in check.detail


@pytest.mark.parametrize("tokens, choices, status", [(16, 1, "pass"), (17, 1, "warn"), (32, 2, "pass"), (33, 2, "warn"), (400, 1, "warn")])
def test_usage_over_max_tokens_warns(tokens: int, choices: int, status: str) -> None:
    p = probe(max_tokens=16, usage={"completion_tokens": tokens}, choices=[ChoiceState(i, True, "length") for i in range(choices)])
    check = judge.judge_usage(p)
    assert check.status == status
    if status == "warn":
        assert f"more completion tokens than the max_tokens {16 * choices} asked for" in check.detail
        assert "ignores max_tokens" in check.hint


def test_usage_with_a_figure_that_is_not_a_number_passes() -> None:
    assert judge.judge_usage(probe(usage={"completion_tokens": "many"})).status == "pass"


# ---------------------------------------------------------------------------------------- first token


def test_first_token_is_the_first_text_time() -> None:
    check = judge.judge_first_token(probe(text_times=[0.3, 0.4], head_seconds=0.1))
    assert (check.status, check.seconds) == ("pass", 0.3)
    assert check.detail == "first text after 300 ms (headers after 100 ms)"


def test_first_token_without_text_warns() -> None:
    check = judge.judge_first_token(probe(text_times=[], frames=3))
    assert check.status == "warn" and check.detail == "no text arrived (3 frames)" and "--max-tokens" in check.hint


def test_first_token_of_a_json_document_is_the_whole_answer() -> None:
    check = judge.judge_first_token(probe(kind="json", last_time=2.0))
    assert check.status == "pass" and "not streamed" in check.detail and check.seconds == 2.0
