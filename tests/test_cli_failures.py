"""Every documented failure, its exit status, its message and its hint (README "Exit status").

The subprocess tests run the real acs against the loopback ScriptedServer. The table at the end
maps HTTP statuses x error-body shapes in-process through `Api` with an httpx.MockTransport.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.cliutil import (
    COMPLETIONS,
    ClosingListener,
    assert_failure,
    closed_port,
    env_for,
    frames,
    text_reply,
)
from tests.helpers import run_acs
from tests.sse_server import Reply, ScriptedServer, vllm_frame


def refused_env() -> dict[str, str | None]:
    return {"ACS_API_BASE": f"http://127.0.0.1:{closed_port()}/v1", "ACS_MODEL": "m"}


# ------------------------------------------------------------------------------------ connecting


def test_connection_refused_exits_4() -> None:
    t0 = time.monotonic()
    r = run_acs(["complete", "--retries", "0", "hi"], env=refused_env())
    message, hint = assert_failure(r, 4)
    assert time.monotonic() - t0 < 5
    assert "refused" in message.lower()
    assert "attempts" not in message
    assert "ACS_API_BASE" in hint or "server" in hint
    assert r.stdout == ""


def test_connection_refused_is_retried_and_says_how_often() -> None:
    t0 = time.monotonic()
    r = run_acs(["complete", "--retries", "2", "hi"], env=refused_env())
    elapsed = time.monotonic() - t0
    message, _ = assert_failure(r, 4)
    assert "after 3 attempts" in message
    assert elapsed >= 0.4  # backoff 0.5 s then 1 s, each with jitter down to half


def test_default_retries_are_two() -> None:
    r = run_acs(["complete", "hi"], env=refused_env())
    message, _ = assert_failure(r, 4)
    assert "after 3 attempts" in message


def test_connection_reset_before_the_answer_is_retried_then_exit_4() -> None:
    with ClosingListener() as listener:
        r = run_acs(["complete", "--retries", "2", "hi"], env={"ACS_API_BASE": listener.base_url, "ACS_MODEL": "m"})
        accepted = listener.accepted
    message, hint = assert_failure(r, 4)
    assert accepted == 3
    assert "3 attempts" in message


def test_connection_closed_before_the_answer_without_retries() -> None:
    with ClosingListener(reset=False) as listener:
        r = run_acs(["complete", "--retries", "0", "hi"], env={"ACS_API_BASE": listener.base_url, "ACS_MODEL": "m"})
        accepted = listener.accepted
    assert_failure(r, 4)
    assert accepted == 1


# ------------------------------------------------------------------------------------ HTTP errors


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_exit_6_and_point_at_the_key(server: ScriptedServer, status: int) -> None:
    server.route("POST", COMPLETIONS, Reply.json(status, {"error": {"message": "Invalid API key", "type": "auth_error"}}))
    r = run_acs(["complete", "hi"], env=env_for(server))
    message, hint = assert_failure(r, 6)
    assert str(status) in message and "Invalid API key" in message
    assert "ACS_API_KEY" in hint
    assert len(server.requests) == 1  # never retried


def test_auth_failure_with_a_key_set_also_points_at_the_key(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.json(401, {"error": "Unauthorized"}))
    r = run_acs(["complete", "hi"], env=env_for(server, ACS_API_KEY="sk-wrong"))
    message, hint = assert_failure(r, 6)
    assert "Unauthorized" in message
    assert "ACS_API_KEY" in hint


def test_404_unknown_model_names_the_model(server: ScriptedServer) -> None:
    server.route(
        "POST",
        COMPLETIONS,
        Reply.json(404, {"error": {"message": "The model `llama-9000` does not exist.", "type": "NotFoundError", "param": "model", "code": 404}}),
    )
    r = run_acs(["complete", "-m", "llama-9000", "hi"], env=env_for(server))
    message, hint = assert_failure(r, 7)
    assert "404" in message and "does not exist" in message
    assert "llama-9000" in hint
    assert "--model" in hint or "acs models" in hint


def test_commands_named_in_hints_exist(server: ScriptedServer) -> None:
    """A hint that tells the user to run `acs SOMETHING` must name a command acs has."""
    server.route(
        "POST", COMPLETIONS, Reply.json(404, {"object": "error", "message": "The model `x` does not exist.", "type": "NotFoundError", "param": None, "code": 404})
    )
    r = run_acs(["complete", "-m", "x", "hi"], env=env_for(server))
    _, hint = assert_failure(r, 7)
    for name in re.findall(r"`acs ([a-z][a-z-]*)", hint):
        check = run_acs([name, "--help"])
        assert check.returncode == 0, f"the hint {hint!r} names `acs {name}`, which does not exist:\n{check.stderr}"


def test_404_without_v1_suggests_v1(server: ScriptedServer) -> None:
    server.route("POST", "/completions", Reply.json(404, {"detail": "Not Found"}))
    r = run_acs(["complete", "hi"], env=env_for(None, ACS_API_BASE=server.origin))
    message, hint = assert_failure(r, 7)
    assert "404" in message
    assert "/v1" in hint
    assert server.origin + "/v1" in hint


@pytest.mark.parametrize(
    "body, shown",
    [
        ({"error": {"message": "max_tokens is too large: 99999", "type": "invalid_request_error", "param": "max_tokens", "code": None}}, "max_tokens is too large: 99999"),
        ({"object": "error", "message": "This model's maximum context length is 2048 tokens", "type": "BadRequestError", "param": None, "code": 400}, "maximum context length is 2048 tokens"),
        ({"error": "prompt must not be empty"}, "prompt must not be empty"),
        ({"detail": "Field required: prompt"}, "Field required: prompt"),
    ],
    ids=["nested", "flat", "string", "detail"],
)
def test_400_shows_the_servers_message(server: ScriptedServer, body: dict, shown: str) -> None:
    server.route("POST", COMPLETIONS, Reply.json(400, body))
    r = run_acs(["complete", "hi"], env=env_for(server))
    message, hint = assert_failure(r, 7)
    assert "400" in message
    assert shown in message
    assert len(server.requests) == 1


def test_400_with_a_plain_text_body(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply(400, "Bad Request", headers=[("content-type", "text/plain")], segments=[b"bad prompt\n"], end="length"))
    r = run_acs(["complete", "hi"], env=env_for(server))
    message, _ = assert_failure(r, 7)
    assert "bad prompt" in message


@pytest.mark.parametrize("status", [500, 502])
def test_5xx_exit_8(server: ScriptedServer, status: int) -> None:
    html = f"<html><head><title>{status} Server Trouble</title></head><body><h1>oops</h1></body></html>".encode()
    server.route("POST", COMPLETIONS, Reply.json(status, html, headers=[("content-type", "text/html")]))
    r = run_acs(["complete", "--retries", "0", "hi"], env=env_for(server))
    message, hint = assert_failure(r, 8)
    assert str(status) in message
    assert "Server Trouble" in message
    assert "<html>" not in message


def test_5xx_with_empty_body(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply(500, "Internal Server Error", headers=[], end="length"))
    r = run_acs(["complete", "hi"], env=env_for(server))
    message, _ = assert_failure(r, 8)
    assert "500" in message


def test_error_message_escape_sequences_are_not_passed_to_stderr(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.json(400, {"error": {"message": "bad \x1b]0;pwned\x07 \x1b[2J thing"}}))
    r = run_acs(["complete", "hi"], env=env_for(server))
    message, _ = assert_failure(r, 7)
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr
    assert "bad" in message and "thing" in message


def test_429_with_retry_after_is_retried_then_succeeds(server: ScriptedServer) -> None:
    limited = Reply.json(429, {"error": {"message": "rate limited"}}, headers=[("content-type", "application/json"), ("retry-after", "1")])
    server.route("POST", COMPLETIONS, [limited, text_reply(["fine"])])
    t0 = time.monotonic()
    r = run_acs(["complete", "hi"], env=env_for(server))
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert r.stdout == "fine"
    assert len(server.requests) == 2
    gap = server.requests[1].time - server.requests[0].time
    assert gap >= 0.95 and elapsed >= 0.95, (gap, elapsed)


def test_429_after_the_retries_exits_7(server: ScriptedServer) -> None:
    limited = Reply.json(429, {"error": {"message": "rate limited"}}, headers=[("content-type", "application/json"), ("retry-after", "0")])
    server.route("POST", COMPLETIONS, limited)
    r = run_acs(["complete", "--retries", "1", "hi"], env=env_for(server))
    message, hint = assert_failure(r, 7)
    assert "429" in message and "rate limited" in message
    assert "2 attempts" in message
    assert len(server.requests) == 2


def test_503_retried_once_then_failing_says_2_attempts(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.json(503, {"error": {"message": "overloaded"}}))
    r = run_acs(["complete", "--retries", "1", "hi"], env=env_for(server))
    message, hint = assert_failure(r, 8)
    assert "503" in message and "overloaded" in message
    assert "2 attempts" in message
    assert len(server.requests) == 2


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_errors_are_retried(server: ScriptedServer, status: int) -> None:
    server.route("POST", COMPLETIONS, [Reply.json(status, b""), text_reply(["recovered"])])
    r = run_acs(["complete", "--retries", "1", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "recovered"
    assert len(server.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 404, 500])
def test_other_statuses_are_not_retried(server: ScriptedServer, status: int) -> None:
    server.route("POST", COMPLETIONS, Reply.json(status, {"error": {"message": "no"}}))
    r = run_acs(["complete", "--retries", "3", "hi"], env=env_for(server))
    assert r.returncode in (6, 7, 8)
    assert len(server.requests) == 1


def test_stream_cut_mid_body_is_not_retried(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply(segments=frames(["one", " two", " three"])[:2], end="abort"))
    r = run_acs(["complete", "--retries", "3", "hi"], env=env_for(server))
    message, hint = assert_failure(r, 10)
    assert r.stdout == "one two"
    assert len(server.requests) == 1


def test_cut_right_after_the_headers_is_not_retried(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply(segments=[], end="abort"))
    r = run_acs(["complete", "--retries", "3", "hi"], env=env_for(server))
    assert_failure(r, 10)
    assert len(server.requests) == 1


# ------------------------------------------------------------------------------------ timeouts


def test_timeout_waiting_for_the_first_byte(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["late"], first_delay=8))
    t0 = time.monotonic()
    r = run_acs(["complete", "--timeout", "1", "hi"], env=env_for(server))
    elapsed = time.monotonic() - t0
    message, hint = assert_failure(r, 5)
    assert re.search(r"first (byte|token)", message), message
    assert "--timeout" in hint
    assert 0.9 <= elapsed < 7  # the 1 s timeout, not the server's 8 s, ended it
    assert r.stdout == ""


def test_timeout_after_the_headers_before_any_frame(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply(segments=[], end="hang"))
    r = run_acs(["complete", "--timeout", "1", "hi"], env=env_for(server))
    message, hint = assert_failure(r, 5)
    assert re.search(r"first (byte|token)", message), message
    assert "--timeout" in hint


def test_timeout_between_two_frames_keeps_the_text(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply(segments=[vllm_frame("partial"), vllm_frame(" more")], end="hang"))
    t0 = time.monotonic()
    r = run_acs(["complete", "--timeout", "1", "hi"], env=env_for(server))
    elapsed = time.monotonic() - t0
    message, hint = assert_failure(r, 5)
    assert "between two frames" in message
    assert "--timeout" in hint
    assert r.stdout == "partial more"
    assert elapsed < 5
    assert server.wait_for_disconnect(5)  # acs hung up, the server may stop generating


def test_slow_but_steady_stream_is_not_a_timeout(server: ScriptedServer) -> None:
    """The timeout caps each gap, not the whole generation."""
    server.route("POST", COMPLETIONS, text_reply([f"t{i}" for i in range(6)], delay=0.4))
    r = run_acs(["complete", "--timeout", "1", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "t0t1t2t3t4t5"


def test_raw_timeout_between_frames(server: ScriptedServer) -> None:
    seg = vllm_frame("partial")
    server.route("POST", COMPLETIONS, Reply(segments=[seg], end="hang"))
    r = run_acs(["complete", "--raw", "--timeout", "1", "hi"], env=env_for(server))
    assert_failure(r, 5)
    assert r.stdout_bytes == seg


# ------------------------------------------------------------------------------------ in-stream failures


def test_error_frame_mid_stream_keeps_the_text(server: ScriptedServer) -> None:
    server.route(
        "POST",
        COMPLETIONS,
        Reply.sse([vllm_frame("Once"), vllm_frame(" upon"), {"error": {"message": "CUDA out of memory", "type": "InternalServerError", "code": 500}}]),
    )
    r = run_acs(["complete", "hi"], env=env_for(server))
    message, hint = assert_failure(r, 9)
    assert r.stdout == "Once upon"
    assert "CUDA out of memory" in message


def test_flat_error_frame_first(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.sse([{"object": "error", "message": "bad things", "type": "BadRequestError", "code": 400}]))
    r = run_acs(["complete", "hi"], env=env_for(server))
    message, _ = assert_failure(r, 9)
    assert "bad things" in message
    assert r.stdout == ""


def test_stream_without_done_and_finish_is_incomplete(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.sse([vllm_frame("Once"), vllm_frame(" upon")], done=False))
    r = run_acs(["complete", "hi"], env=env_for(server))
    message, hint = assert_failure(r, 10)
    assert r.stdout == "Once upon"
    assert "incomplete" in message


def test_connection_cut_mid_stream_is_incomplete(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply(segments=[vllm_frame("Once"), vllm_frame(" upon")], end="abort"))
    r = run_acs(["complete", "hi"], env=env_for(server))
    message, _ = assert_failure(r, 10)
    assert r.stdout == "Once upon"


def test_finish_reason_abort_is_incomplete(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.sse([vllm_frame("Once"), vllm_frame(" up", finish_reason="abort")]))
    r = run_acs(["complete", "hi"], env=env_for(server))
    assert_failure(r, 10)
    assert r.stdout == "Once up"


def test_all_finished_without_done_is_complete(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.sse(frames(["Once", " upon"]), done=False))
    r = run_acs(["complete", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Once upon"


def test_frame_that_is_not_json_is_protocol_error(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.sse([vllm_frame("ok"), b"data: {not json\n\n"]))
    r = run_acs(["complete", "hi"], env=env_for(server))
    message, hint = assert_failure(r, 11)
    assert "{not json" in message
    assert r.stdout == "ok"


def test_200_html_is_protocol_error(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply(headers=[("content-type", "text/html")], segments=[b"<html>proxy login</html>"], end="length"))
    r = run_acs(["complete", "hi"], env=env_for(server))
    assert_failure(r, 11)
    assert r.stdout == ""


def test_200_json_completion_is_shown(server: ScriptedServer) -> None:
    doc = {"id": "c", "object": "text_completion", "choices": [{"index": 0, "text": "whole answer", "finish_reason": "stop"}], "usage": {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}}
    server.route("POST", COMPLETIONS, Reply.json(200, doc))
    r = run_acs(["complete", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "whole answer"
    assert "2 prompt + 2 completion = 4 tokens" in r.stderr


def test_huge_error_body_is_read_bounded_and_shortened(server: ScriptedServer) -> None:
    big = b"<html><body><p>" + b"x" * (5 * 1024 * 1024) + b"</p></body></html>"
    server.route("POST", COMPLETIONS, Reply.json(500, big, headers=[("content-type", "text/html")]))
    t0 = time.monotonic()
    r = run_acs(["complete", "--retries", "0", "hi"], env=env_for(server))
    elapsed = time.monotonic() - t0
    message, _ = assert_failure(r, 8)
    assert elapsed < 5
    assert len(r.stderr) < 2000
    assert "500" in message


def test_huge_error_body_with_raw(server: ScriptedServer) -> None:
    big = b"E" * (5 * 1024 * 1024)
    server.route("POST", COMPLETIONS, Reply.json(500, big, headers=[("content-type", "text/plain")]))
    r = run_acs(["complete", "--raw", "--retries", "0", "hi"], env=env_for(server))
    assert_failure(r, 8)
    assert len(r.stderr) < 2000
    assert r.stdout_bytes == big  # --raw shows the body as it came


# ------------------------------------------------------------------------------------ error mapping, in-process

NESTED = "nested"
FLAT = "flat"
STRING = "string"
HTML = "html"
EMPTY = "empty"
TEXT = "text"

SERVER_MESSAGE = "the server says no"


def _body(shape: str, status: int) -> tuple[bytes, str]:
    import json

    if shape == NESTED:
        return json.dumps({"error": {"message": SERVER_MESSAGE, "type": "invalid_request_error", "param": None, "code": status}}).encode(), "application/json"
    if shape == FLAT:
        return json.dumps({"object": "error", "message": SERVER_MESSAGE, "type": "BadRequestError", "param": None, "code": status}).encode(), "application/json"
    if shape == STRING:
        return json.dumps({"error": SERVER_MESSAGE}).encode(), "application/json"
    if shape == HTML:
        return f"<html><head><title>{SERVER_MESSAGE}</title></head><body><h1>x</h1></body></html>".encode(), "text/html"
    if shape == TEXT:
        return SERVER_MESSAGE.encode(), "text/plain"
    return b"", "text/plain"


class _Body(httpx.SyncByteStream):
    """A body streamed like a real transport's (httpx reads a plain `content=` eagerly)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __iter__(self):
        if self.data:
            yield self.data


def _response(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> httpx.Response:
    return httpx.Response(status, headers=headers or {}, stream=_Body(body))


EXPECTED_STATUS = {400: 7, 401: 6, 403: 6, 404: 7, 405: 7, 409: 7, 413: 7, 422: 7, 429: 7, 500: 8, 502: 8, 503: 8, 504: 8}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.upper().startswith("ACS_"):
            monkeypatch.delenv(name)


def _api(handler, *, retries: int = 0, sleeps: list[float] | None = None, key: str | None = None, base: str = "http://mock.test/v1"):
    from acs_cli.api import Api
    from acs_cli.settings import load_settings

    settings = load_settings(api_base=base, model="m", timeout=5.0)
    if key is not None:  # the key comes from the environment only
        import os

        os.environ["ACS_API_KEY"] = key
        try:
            settings = load_settings(api_base=base, model="m", timeout=5.0)
        finally:
            del os.environ["ACS_API_KEY"]
    record = sleeps if sleeps is not None else []
    return Api(settings, retries=retries, transport=httpx.MockTransport(handler), sleep=record.append)


@pytest.mark.parametrize("shape", [NESTED, FLAT, STRING, HTML, TEXT, EMPTY])
@pytest.mark.parametrize("status", sorted(EXPECTED_STATUS))
def test_error_mapping_table(clean_env: None, status: int, shape: str) -> None:
    from acs_cli.errors import AcsError

    body, media = _body(shape, status)

    def handler(request: httpx.Request) -> httpx.Response:
        return _response(status, {"content-type": media}, body)

    with _api(handler) as api:
        with pytest.raises(AcsError) as info:
            response = api.open_completion({"model": "m", "prompt": "hi", "stream": True})
            response.close()
    exc = info.value
    assert int(exc.status) == EXPECTED_STATUS[status]
    assert str(status) in exc.message
    if shape != EMPTY:
        assert SERVER_MESSAGE in exc.message
    assert "<" not in exc.message
    assert exc.hint
    if status in (401, 403):
        assert "ACS_API_KEY" in exc.hint


@pytest.mark.parametrize(
    "error, status, words",
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), 4, ["refused"]),
        (httpx.ConnectTimeout("timed out"), 5, ["connect"]),
        (httpx.ReadTimeout("timed out"), 5, ["first byte"]),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), 4, []),
        (httpx.ReadError("[Errno 104] Connection reset by peer"), 4, []),
    ],
)
def test_transport_error_mapping(clean_env: None, error: Exception, status: int, words: list[str]) -> None:
    from acs_cli.errors import AcsError

    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    with _api(handler) as api:
        with pytest.raises(AcsError) as info:
            api.open_completion({"model": "m", "prompt": "hi", "stream": True})
    assert int(info.value.status) == status
    for word in words:
        assert word in info.value.message.lower()
    assert info.value.hint


@pytest.mark.parametrize(
    "retry_after, expected",
    [("1", 1.0), ("0", 0.0), ("2.5", 2.5), ("3600", 60.0), ("soon", None), ("", None)],
)
def test_retry_after_is_honoured_up_to_60_s(clean_env: None, retry_after: str, expected: float | None) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return _response(429, {"retry-after": retry_after}, b"{}")
        return _response(200, {"content-type": "text/event-stream"}, b"data: [DONE]\n\n")

    sleeps: list[float] = []
    with _api(handler, retries=1, sleeps=sleeps) as api:
        api.open_completion({"model": "m", "prompt": "hi"}).close()
    assert len(calls) == 2
    assert len(sleeps) == 1
    if expected is None:
        assert 0 < sleeps[0] <= 8  # the backoff instead
    else:
        assert sleeps[0] == pytest.approx(expected)


def test_retries_back_off_exponentially_with_jitter(clean_env: None) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return _response(503)

    sleeps: list[float] = []
    with _api(handler, retries=4, sleeps=sleeps) as api:
        with pytest.raises(Exception) as info:
            api.open_completion({"model": "m", "prompt": "hi"})
    assert "5 attempts" in info.value.message
    assert len(sleeps) == 4
    for attempt, slept in enumerate(sleeps, start=1):
        ceiling = min(8.0, 0.5 * 2 ** (attempt - 1))
        assert ceiling / 2 <= slept <= ceiling
