"""The completion consumer the engine feeds: reads to records, frame arrival times, verdicts."""

from __future__ import annotations

from acs_cli.consumer import CompletionConsumer
from acs_cli.errors import IncompleteStream, ProtocolError
from acs_cli.records import Delta, Finish
from tests.sse_server import DONE, usage_frame, vllm_frame


class Head:
    def __init__(self, status: int = 200, content_type: bytes = b"text/event-stream") -> None:
        self.status = status
        self._type = content_type

    def get(self, name: bytes) -> bytes | None:
        return self._type if name == b"content-type" else None


class Collect:
    def __init__(self) -> None:
        self.records: list = []

    def begin(self) -> None:
        pass

    def write(self, records: list) -> None:
        self.records += records

    def end(self, outcome: object) -> None:
        pass


def test_frame_times_one_per_text_frame_at_its_read() -> None:
    sink = Collect()
    c = CompletionConsumer(sink=sink)
    c.on_head(Head(), 0.5)
    assert c.on_data(vllm_frame("a") + vllm_frame("b"), 1.0) is False
    assert c.on_data(vllm_frame("", finish_reason="stop"), 2.0) is False  # no text: no time
    assert c.on_data(usage_frame(3, 2) + DONE, 3.0) is True  # [DONE]: stop reading
    c.on_end(3.0)
    assert c.frame_times == [1.0, 1.0]
    assert c.first_text == 1.0
    assert [r.text for r in sink.records if isinstance(r, Delta)] == ["a", "b"]
    assert any(isinstance(r, Finish) for r in sink.records)
    assert c.state.usage == {"prompt_tokens": 3, "total_tokens": 5, "completion_tokens": 2}
    assert c.verdict(None) is None


def test_a_cut_after_every_choice_finished_is_whole_but_mid_choice_is_not() -> None:
    c = CompletionConsumer()
    c.on_head(Head(), 0.0)
    c.on_data(vllm_frame("a", finish_reason="stop"), 1.0)
    c.on_end(1.0)
    assert c.verdict(IncompleteStream("cut")) is None
    c = CompletionConsumer()
    c.on_head(Head(), 0.0)
    c.on_data(vllm_frame("a"), 1.0)
    c.on_end(1.0)
    assert isinstance(c.verdict(IncompleteStream("cut")), IncompleteStream)
    assert isinstance(c.verdict(None), IncompleteStream)


def test_a_json_answer_is_read_whole_at_the_end() -> None:
    body = b'{"id":"c","object":"text_completion","model":"m","choices":[{"index":0,"text":"whole","finish_reason":"stop"}]}'
    c = CompletionConsumer()
    c.on_head(Head(content_type=b"application/json"), 0.0)
    c.on_data(body[:10], 1.0)
    c.on_data(body[10:], 2.0)
    assert c.first_text is None
    c.on_end(2.5)
    assert c.frame_times == [2.5] and c.verdict(None) is None


def test_an_error_frame_stops_and_is_the_verdict() -> None:
    c = CompletionConsumer(keep_times=False)
    c.on_head(Head(), 0.0)
    assert c.on_data(vllm_frame("a") + b'data: {"error": {"message": "boom", "type": "X", "code": 500}}\n\n', 1.0) is True
    assert c.frame_times == [] and c.first_text == 1.0
    assert "boom" in c.verdict(None).message
    c = CompletionConsumer()
    c.on_head(Head(), 0.0)
    assert c.on_data(b"data: {nope\n\n", 1.0) is True
    assert isinstance(c.verdict(None), ProtocolError)
