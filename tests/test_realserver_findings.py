"""What the real servers put on the wire, and acs's answer to it, without building anything.

Every way llama.cpp's `llama-server` and llama-cpp-python differ from vLLM (see
tests/realserver/captures.py and tests/test_realserver.py, which runs the real servers) is served
here byte for byte from tests/fixtures/realserver/ by the loopback ScriptedServer, with acs as a
subprocess. Each test first checks that the capture shows the quirk it is about, so a capture
replaced by one without it fails loudly instead of testing nothing.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.cliutil import COMPLETIONS, MODELS, assert_failure
from tests.helpers import run_acs
from tests.realserver.captures import Capture, capture_reply, load_capture
from tests.sse_server import ScriptedServer

LS = "llama-server"
LCP = "llama-cpp-python"
MODEL = "tiny-llama"


def serve(server: ScriptedServer, cap: Capture, **kw) -> None:
    server.route("POST", COMPLETIONS, capture_reply(cap, **kw))


def complete(server: ScriptedServer, *args: str, **kw):
    return run_acs(["complete", "-m", MODEL, *args, "Hello world"], env={"ACS_API_BASE": server.base_url}, **kw)


def usage_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if "finish:" in line]
    assert len(lines) == 1, stderr
    return lines[0]


# --------------------------------------------------------------------------------- llama-server


def test_llama_server_finish_chunk_carries_usage_and_timings(server: ScriptedServer) -> None:
    cap = load_capture(LS, "01-stream-include-usage")
    chunks = [o for o in cap.data_objects() if isinstance(o, dict)]
    last = chunks[-1]
    # the quirk: finish reason on an empty-text last chunk whose choices are not empty, which
    # also carries usage and a non-standard `timings` object; no separate choices:[] chunk
    assert last["choices"][0]["finish_reason"] == "length" and last["choices"][0]["text"] == ""
    assert last["usage"]["prompt_tokens"] == 4 and last["usage"]["completion_tokens"] == 80
    assert "timings" in last
    assert not any(o["choices"] == [] for o in chunks)
    assert all("usage" not in o for o in chunks[:-1])
    serve(server, cap)
    r = complete(server)
    assert r.returncode == 0, r.stderr
    assert r.stdout == cap.texts_by_index()[0]
    assert usage_line(r.stderr) == "4 prompt + 80 completion = 84 tokens · finish: length"


def test_llama_server_sends_usage_even_when_not_asked(server: ScriptedServer) -> None:
    cap = load_capture(LS, "02b-stream-usage-false")
    assert cap.request["stream_options"] == {"include_usage": False}
    assert "usage" in cap.data_objects()[-1]
    serve(server, cap)
    r = complete(server, "--no-usage")
    assert r.returncode == 0, r.stderr
    assert "stream_options" not in server.requests[-1].json()
    assert r.stdout == cap.texts_by_index()[0]
    assert usage_line(r.stderr) == "4 prompt + 80 completion = 84 tokens · finish: length"


def test_llama_server_chatcmpl_ids_compact_json_and_raw_utf8(server: ScriptedServer) -> None:
    cap = load_capture(LS, "01-stream-include-usage")
    objs = cap.data_objects()
    assert all(o["id"].startswith("chatcmpl-") and o["object"] == "text_completion" for o in objs)
    assert b'"index":0,"logprobs":null,"finish_reason":null}],"created":' in cap.body  # compact
    assert b"\\u" not in cap.body and re.search(rb"[\x80-\xff]", cap.body)  # raw UTF-8, not \u escapes
    assert cap.header_map["content-type"] == "text/event-stream"  # no charset
    text = cap.texts_by_index()[0]
    assert any(ord(c) > 127 for c in text)
    serve(server, cap)
    r = complete(server)
    assert r.returncode == 0, r.stderr
    assert r.stdout_bytes == text.encode("utf-8")


def test_llama_server_raw_is_every_chunk_byte_exact(server: ScriptedServer) -> None:
    cap = load_capture(LS, "01-stream-include-usage")
    reply = capture_reply(cap, chunked_raw=True)
    assert len(reply.segments) == len(cap.events())  # one HTTP chunk per event
    server.route("POST", COMPLETIONS, reply)
    r = complete(server, "--raw")
    assert r.returncode == 0, r.stderr
    assert r.stdout_bytes == reply.body()


def test_llama_server_data_null_between_prompts(server: ScriptedServer) -> None:
    cap = load_capture(LS, "11-prompt-array-2")
    assert b"\n\ndata: null\n\n" in cap.body
    texts = cap.texts_by_index()
    assert sorted(texts) == [0, 1]
    serve(server, cap)
    r = complete(server, "--param", 'prompt=["Hello","world"]')
    assert server.requests[-1].json()["prompt"] == ["Hello", "world"]
    assert r.returncode == 0, r.stderr
    assert r.stdout == texts[0] + "\n\n" + texts[1]
    assert usage_line(r.stderr).endswith("finish: [0] length, [1] length")


def test_llama_server_prompt_array_usage_counts_every_prompt(server: ScriptedServer) -> None:
    """With a prompt array, each prompt's finish chunk carries that prompt's usage only (3+5 and
    2+5 here) and no aggregate follows: the usage line must not report the last prompt alone."""
    cap = load_capture(LS, "11-prompt-array-2")
    usages = [o["usage"] for o in cap.data_objects() if isinstance(o, dict) and "usage" in o]
    assert [(u["prompt_tokens"], u["completion_tokens"]) for u in usages] == [(3, 5), (2, 5)]
    serve(server, cap)
    r = complete(server, "--param", 'prompt=["Hello","world"]')
    assert r.returncode == 0, r.stderr
    assert usage_line(r.stderr) == "5 prompt + 10 completion = 15 tokens · finish: [0] length, [1] length"


def test_llama_server_eos_at_once(server: ScriptedServer) -> None:
    cap = load_capture(LS, "13-eos-bias-stream")
    assert cap.texts_by_index() == {0: ""}
    serve(server, cap)
    r = complete(server, "--param", 'logit_bias={"2": 100}')
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert usage_line(r.stderr) == "3 prompt + 1 completion = 4 tokens · finish: stop"


@pytest.mark.parametrize(
    "case, args, status, message",
    [
        (
            "04j-prompt-too-long-stream",
            [],
            7,
            "request (801 tokens) exceeds the available context size (512 tokens), try increasing it",
        ),
        ("06a-n2-stream", ["-n", "2"], 7, "Field 'n': Value must be between 1 <= value <= 1, but got 2"),
        ("04e-invalid-json", [], 8, "[json.exception.parse_error.101] parse error at line 1, column 59"),
    ],
)
def test_llama_server_json_errors(server: ScriptedServer, case: str, args: list[str], status: int, message: str) -> None:
    """llama-server answers request errors before any header is sent, as ordinary JSON:
    `{"error": {"code", "message", "type", ...}}` with `Connection: close`."""
    cap = load_capture(LS, case)
    body = json.loads(cap.body)
    assert set(body) == {"error"} and body["error"]["code"] == cap.status
    assert cap.header_map["content-type"].startswith("application/json")
    serve(server, cap)
    r = complete(server, *args)
    got, _hint = assert_failure(r, status)
    assert message in got
    assert r.stdout == ""
    raw = complete(server, "--raw", *args)
    assert raw.returncode == status
    assert raw.stdout_bytes == cap.body


# ---------------------------------------------------------------------------- llama-cpp-python


def test_llama_cpp_python_json_dumps_spacing_and_unicode_escapes(server: ScriptedServer) -> None:
    cap = load_capture(LCP, "01-stream-include-usage")
    assert b'{"id": "cmpl-' in cap.body and b'", "object": ' in cap.body  # json.dumps separators
    assert re.search(rb"\\u[0-9a-f]{4}", cap.body)  # ensure_ascii escapes
    assert not re.search(rb"[\x80-\xff]", cap.body)
    assert cap.header_map["content-type"] == "text/event-stream; charset=utf-8"
    text = cap.texts_by_index()[0]
    assert any(ord(c) > 127 for c in text)
    serve(server, cap)
    r = complete(server)
    assert r.returncode == 0, r.stderr
    assert r.stdout_bytes == text.encode("utf-8")


def test_llama_cpp_python_never_sends_usage(server: ScriptedServer) -> None:
    cap = load_capture(LCP, "01-stream-include-usage")
    assert cap.request["stream_options"] == {"include_usage": True}
    assert not any("usage" in o for o in cap.data_objects())
    serve(server, cap)
    r = complete(server)
    assert r.returncode == 0, r.stderr
    assert server.requests[-1].json()["stream_options"] == {"include_usage": True}
    assert usage_line(r.stderr) == "usage: the server reported none · finish: length"


def test_llama_cpp_python_raw_is_every_chunk_byte_exact(server: ScriptedServer) -> None:
    cap = load_capture(LCP, "01-stream-include-usage")
    reply = capture_reply(cap, chunked_raw=True)
    server.route("POST", COMPLETIONS, reply)
    r = complete(server, "--raw")
    assert r.returncode == 0, r.stderr
    assert r.stdout_bytes == reply.body()


def test_llama_cpp_python_ping_comments_between_tokens(server: ScriptedServer) -> None:
    cap = load_capture(LCP, "20-slow-model-ping")
    pings = [e for e in cap.events() if e.startswith(b": ping - ")]
    assert len(pings) == 2
    events = cap.events()
    first_ping = events.index(pings[0])
    assert events[first_ping - 1].startswith(b"data: {") and events[first_ping + 2].startswith(b"data: {")
    assert re.fullmatch(rb": ping - \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\+00:00\n\n", pings[0])
    serve(server, cap, delay=0.005)
    r = complete(server)
    assert r.returncode == 0, r.stderr
    assert r.stdout == cap.texts_by_index()[0]
    assert "ping" not in r.stdout
    assert usage_line(r.stderr) == "usage: the server reported none · finish: length"
    raw = complete(server, "--raw")
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout_bytes == cap.body


def test_llama_cpp_python_prompt_too_long_empty_200_is_incomplete(server: ScriptedServer) -> None:
    """A prompt longer than the context, streaming: 200, text/event-stream, an empty body."""
    cap = load_capture(LCP, "04j-prompt-too-long-stream")
    assert cap.status == 200 and cap.body == b""
    assert cap.header_map["content-type"].startswith("text/event-stream")
    serve(server, cap)
    r = complete(server)
    message, _hint = assert_failure(r, 10)
    assert "incomplete" in message
    assert r.stdout == ""
    # --raw reports HTTP errors and cut connections; this body ended cleanly: a note, not an error
    raw = complete(server, "--raw")
    assert raw.stdout_bytes == b""
    assert "[DONE]" in raw.stderr


@pytest.mark.parametrize("end", ["abort", "chunked"], ids=["as-captured", "clean-end"])
def test_llama_cpp_python_stream_cut_short_by_another_request(server: ScriptedServer, end: str) -> None:
    """llama-cpp-python (interrupt_requests, its default) ends a running stream when another
    request arrives: `data: [DONE]` with no finish reason on any chunk, then the connection
    closes without the zero-size last chunk. The completion is cut short: incomplete (10)."""
    cap = load_capture(LCP, "21-interrupted-by-next-request")
    assert not cap.terminated
    objs = cap.data_objects()
    assert len(objs) > 10 and all(c["finish_reason"] is None for o in objs for c in o["choices"])
    assert cap.body.endswith(b"data: [DONE]\n\n")
    serve(server, cap, end=end)
    r = complete(server)
    assert r.stdout == cap.texts_by_index()[0]  # the text so far stays
    message, _hint = assert_failure(r, 10)
    assert "incomplete" in message
    if end == "abort":
        raw = complete(server, "--raw")
        assert raw.stdout_bytes == cap.body
        assert raw.returncode == 10  # the connection was cut


def test_llama_cpp_python_500_text_plain(server: ScriptedServer) -> None:
    cap = load_capture(LCP, "04e-invalid-json")
    assert cap.header_map["content-type"] == "text/plain; charset=utf-8" and cap.body == b"Internal Server Error"
    serve(server, cap)
    r = complete(server)
    message, _hint = assert_failure(r, 8)
    assert "Internal Server Error" in message


def test_llama_cpp_python_500_multiline_message_is_one_line(server: ScriptedServer) -> None:
    """llama-cpp-python turns a validation error (`--param max_tokens=-1`) into a 500 whose
    message spans lines and quotes a server-side stack frame; acs's error is still one line."""
    cap = load_capture(LCP, "04c-max-tokens-neg")
    message = json.loads(cap.body)["error"]["message"]
    assert "\n" in message and "File " in message
    serve(server, cap)
    r = complete(server, "--param", "max_tokens=-1")
    got, _hint = assert_failure(r, 8)
    assert "Input should be greater than or equal to 0" in got


def test_llama_cpp_python_eos_at_once(server: ScriptedServer) -> None:
    cap = load_capture(LCP, "13-eos-bias-stream")
    assert len(cap.data_objects()) == 1  # the finish reason comes on the only chunk
    serve(server, cap)
    r = complete(server)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert usage_line(r.stderr) == "usage: the server reported none · finish: stop"


# ------------------------------------------------------------------------------------- /models


@pytest.mark.parametrize("which", [LS, LCP])
def test_models_list_and_single_model_auto_pick(server: ScriptedServer, which: str) -> None:
    """llama-server's /v1/models has an extra Ollama-style `models` list and `meta`;
    llama-cpp-python's has `owned_by: me` and `permissions`. Both serve one model."""
    cap = load_capture(which, "05-models")
    assert [m["id"] for m in json.loads(cap.body)["data"]] == [MODEL]
    server.route("GET", MODELS, capture_reply(cap))
    server.route("POST", COMPLETIONS, capture_reply(load_capture(which, "13-eos-bias-stream")))
    env = {"ACS_API_BASE": server.base_url}
    r = run_acs(["models"], env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == MODEL + "\n"
    r = run_acs(["complete", "hi"], env=env)
    assert r.returncode == 0, r.stderr
    assert server.requests[-1].json()["model"] == MODEL
