"""--json (one object at the end) and --jsonl (one line per event as it arrives), on complete and
replay: success, several choices, failures mid-stream and before any answer, Ctrl-C, usage
errors, logprobs, and terminal safety of the JSON itself (README "Structured output")."""

from __future__ import annotations

import json
import time

import pytest

from tests.cliutil import COMPLETIONS, Streaming, assert_failure, choices_reply, closed_port, env_for, frames, text_reply
from tests.helpers import run_acs
from tests.scenarios import get_scenario
from tests.sse_server import Reply, ScriptedServer, usage_frame, vllm_frame

LONG = [f"w{i:03d} " for i in range(200)]
TIMING_KEYS = {"ttft_s", "total_s", "decode_tokens_per_s", "tokens", "estimated"}


def parse_object(stdout: str) -> dict:
    obj = json.loads(stdout)  # the whole of stdout is one JSON document
    assert isinstance(obj, dict)
    return obj


def parse_lines(stdout: str) -> list[dict]:
    assert stdout.endswith("\n") or not stdout
    return [json.loads(line) for line in stdout.splitlines()]


def without_timings(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k != "timings"}


# ------------------------------------------------------------------------------------ --json


def test_json_ok(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["Hello", ",", " world"], finish="length", usage=(5, 3)))
    r = run_acs(["complete", "--json", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    obj = parse_object(r.stdout)
    assert list(obj) == ["id", "model", "choices", "usage", "timings", "complete", "error"]
    assert obj["id"] == "cmpl-ae7c4833c82a33d6"
    assert obj["model"] == "meta-llama/Llama-3.1-8B"
    assert obj["choices"] == [{"index": 0, "text": "Hello, world", "finish_reason": "length", "stop_reason": None}]
    assert obj["usage"] == {"prompt_tokens": 5, "total_tokens": 8, "completion_tokens": 3}
    assert obj["complete"] is True and obj["error"] is None
    assert set(obj["timings"]) == TIMING_KEYS
    assert obj["timings"]["estimated"] is False
    assert obj["timings"]["ttft_s"] is not None and obj["timings"]["ttft_s"] <= obj["timings"]["total_s"]
    # the usage line stays on stderr; nothing else is on stdout
    assert "5 prompt + 3 completion = 8 tokens · finish: length" in r.stderr


def test_json_quiet_leaves_stderr_empty(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["a", "b"]))
    r = run_acs(["complete", "--json", "-q", "hi"], env=env_for(server))
    assert r.returncode == 0
    assert r.stderr == ""
    assert parse_object(r.stdout)["choices"][0]["text"] == "ab"


def test_json_stop_reason_passes_through(server: ScriptedServer) -> None:
    segs = [vllm_frame("x"), vllm_frame("", finish_reason="stop", stop_reason=128009), usage_frame(2, 2)]
    server.route("POST", COMPLETIONS, Reply.sse(segs))
    r = run_acs(["complete", "--json", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert parse_object(r.stdout)["choices"] == [{"index": 0, "text": "x", "finish_reason": "stop", "stop_reason": 128009}]


def test_json_several_choices(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, choices_reply({0: ["a1", "a2"], 1: ["b1", "b2", "b3"]}))
    r = run_acs(["complete", "--json", "--n", "2", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    obj = parse_object(r.stdout)
    assert [(c["index"], c["text"], c["finish_reason"]) for c in obj["choices"]] == [(0, "a1a2", "stop"), (1, "b1b2b3", "stop")]
    assert obj["complete"] is True


def test_json_choice_selects_one(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, choices_reply({0: ["a1", "a2"], 1: ["b1", "b2"]}))
    r = run_acs(["complete", "--json", "--n", "2", "--choice", "1", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert [c["text"] for c in parse_object(r.stdout)["choices"]] == ["b1b2"]


def test_json_mid_stream_error_exit_9_keeps_the_partial_text(server: ScriptedServer) -> None:
    error = {"error": {"message": "engine died", "type": "InternalServerError", "code": 500}}
    server.route("POST", COMPLETIONS, Reply.sse([*frames(["part", "ial"], finish=None), error]))  # type: ignore[arg-type]
    r = run_acs(["complete", "--json", "hi"], env=env_for(server))
    message, hint = assert_failure(r, 9)  # the message and hint still go to stderr
    assert "engine died" in message
    obj = parse_object(r.stdout)
    assert obj["complete"] is False
    assert obj["choices"][0]["text"] == "partial"
    err = obj["error"]
    assert err["kind"] == "stream_error" and err["exit_status"] == 9
    assert "engine died" in err["message"] and err["message"] == message
    assert err["hint"] == hint
    assert err["error_type"] == "InternalServerError" and err["code"] == 500


def test_json_truncated_stream_exit_10(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.sse([vllm_frame("cut "), vllm_frame("short")], done=False, end="abort"))
    r = run_acs(["complete", "--json", "hi"], env=env_for(server))
    assert_failure(r, 10)
    obj = parse_object(r.stdout)
    assert obj["complete"] is False
    assert obj["error"]["kind"] == "incomplete" and obj["error"]["exit_status"] == 10
    assert obj["choices"] == [{"index": 0, "text": "cut short", "finish_reason": None, "stop_reason": None}]


def test_json_http_404_exit_7_prints_the_object_without_choices(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.json(404, {"error": {"message": "The model `m` does not exist.", "type": "NotFoundError", "code": 404}}))
    r = run_acs(["complete", "--json", "hi"], env=env_for(server))
    message, _ = assert_failure(r, 7)
    obj = parse_object(r.stdout)
    assert obj["choices"] == [] and obj["usage"] is None and obj["id"] is None
    assert obj["model"] == "m"  # the model asked for
    assert obj["complete"] is False
    assert obj["error"]["kind"] == "http" and obj["error"]["http_status"] == 404 and obj["error"]["exit_status"] == 7
    assert obj["error"]["message"] == message
    assert obj["timings"]["ttft_s"] is None


def test_json_connect_error_exit_4(server: ScriptedServer) -> None:
    r = run_acs(["complete", "--json", "--retries", "0", "hi"], env=env_for(server, ACS_API_BASE=f"http://127.0.0.1:{closed_port()}/v1"))
    assert_failure(r, 4)
    obj = parse_object(r.stdout)
    assert obj["error"]["kind"] == "connect" and obj["error"]["exit_status"] == 4
    assert obj["choices"] == [] and obj["complete"] is False


def test_json_never_shows_the_key(server: ScriptedServer) -> None:
    key = "sk-acs-test-5ecret-7f3a9c"
    server.route("POST", COMPLETIONS, Reply.json(400, {"error": {"message": f"bad key {key}"}}))
    r = run_acs(["complete", "--json", "hi"], env=env_for(server, ACS_API_KEY=key))
    assert_failure(r, 7)
    assert key not in r.stdout and key not in r.stderr
    assert "[ACS_API_KEY]" in parse_object(r.stdout)["error"]["message"]


def test_json_ctrl_c_exit_130_complete_false(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(LONG, delay=0.05))
    with Streaming(["complete", "--json", "hi"], env=env_for(server)) as run:
        deadline = time.monotonic() + 20
        while len(server.segment_times) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        assert run.stdout == b""  # --json prints nothing until the end
        run.interrupt()
        rc = run.wait(10)
        out, err = run.stdout.decode(), run.stderr.decode()
    assert rc == 130, err
    assert "Traceback" not in err
    obj = parse_object(out)
    assert obj["complete"] is False
    assert obj["error"]["kind"] == "interrupted" and obj["error"]["exit_status"] == 130
    text = obj["choices"][0]["text"]
    assert text.startswith("w000 w001 w002 w003 w004") and "w199" not in text
    assert "interrupted" in err  # the usage line on stderr says so
    assert server.wait_for_disconnect(5)


def test_json_ctrl_c_before_the_first_token(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["late"], first_delay=30))
    with Streaming(["complete", "--json", "hi"], env=env_for(server)) as run:
        assert server.wait_for_requests(1, 20)
        time.sleep(0.2)
        run.interrupt()
        rc = run.wait(10)
        out = run.stdout.decode()
    assert rc == 130
    obj = parse_object(out)
    assert obj["choices"] == [] and obj["error"]["kind"] == "interrupted"


@pytest.mark.parametrize(
    "flags",
    [["--json", "--jsonl"], ["--json", "--raw"], ["--jsonl", "--raw"], ["--raw", "--stats"], ["--raw", "--logprobs-table"]],
    ids=lambda f: " ".join(f),
)
def test_exclusive_flags_are_a_usage_error(server: ScriptedServer, flags: list[str]) -> None:
    server.route("POST", COMPLETIONS, text_reply(["x"]))
    r = run_acs(["complete", *flags, "hi"], env=env_for(server))
    message, _ = assert_failure(r, 2)
    assert flags[0] in message and flags[1] in message
    assert r.stdout == ""
    assert server.requests == []


def test_replay_json_and_jsonl_together_is_a_usage_error() -> None:
    r = run_acs(["replay", "--json", "--jsonl"])
    assert_failure(r, 2)
    assert r.stdout == ""


def test_json_logprobs_when_asked(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.from_scenario(get_scenario("S09")))
    r = run_acs(["complete", "--json", "--logprobs", "2", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    choice = parse_object(r.stdout)["choices"][0]
    assert choice["text"] == " It was the end"
    assert choice["logprobs"] == {
        "tokens": [" It", " was", " the", " end"],
        "token_logprobs": [-0.25, -1.5, -9999.0, -0.5],
        "top_logprobs": [{" It": -0.25, " The": -1.75}, {" was": -1.5}, {" the": -9999.0}, {" end": -0.5}],
        "text_offset": [0, 3, 7, 11],
    }


def test_json_logprobs_asked_but_not_sent_is_null(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["a"]))
    r = run_acs(["complete", "--json", "--logprobs", "1", "hi"], env=env_for(server))
    assert parse_object(r.stdout)["choices"][0]["logprobs"] is None


def test_json_echo_logprobs_start_with_null(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.from_scenario(get_scenario("S18")))
    r = run_acs(["complete", "--json", "--echo", "--logprobs", "1", "Hello"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    choice = parse_object(r.stdout)["choices"][0]
    assert choice["text"] == "Hello world!"
    assert choice["logprobs"]["token_logprobs"] == [None, -2.0]


def test_json_escapes_controls_that_could_drive_a_terminal(server: ScriptedServer) -> None:
    hostile = "a\x1b]0;pwned\x07 \u009b31m \u202e b"
    server.route("POST", COMPLETIONS, text_reply([hostile]))
    r = run_acs(["complete", "--json", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    out = r.stdout_bytes
    for raw in (b"\x1b", b"\x07", "\u009b".encode(), "\u202e".encode()):
        assert raw not in out
    assert parse_object(r.stdout)["choices"][0]["text"] == hostile  # the same JSON value


def test_json_emoji_split_across_frames(server: ScriptedServer) -> None:
    # a surrogate pair as two JSON escapes in two frames (what a byte-level tokenizer can send)
    segs = [b'data: {"choices":[{"index":0,"text":"\\ud83d"}]}\n\n', b'data: {"choices":[{"index":0,"text":"\\ude00","finish_reason":"stop"}]}\n\n']
    server.route("POST", COMPLETIONS, Reply.sse(segs))
    r = run_acs(["complete", "--json", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert parse_object(r.stdout)["choices"][0]["text"] == "😀"


def test_json_from_a_200_json_completion(server: ScriptedServer) -> None:
    body = {"id": "cmpl-1", "object": "text_completion", "model": "m1", "choices": [{"index": 0, "text": "whole", "finish_reason": "stop"}], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
    server.route("POST", COMPLETIONS, Reply.json(200, body))
    r = run_acs(["complete", "--json", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    obj = parse_object(r.stdout)
    assert obj["id"] == "cmpl-1" and obj["choices"][0]["text"] == "whole" and obj["complete"] is True


# ------------------------------------------------------------------------------------ replay


def capture(server: ScriptedServer, reply: Reply, args: list[str], tmp_path) -> str:
    server.route("POST", COMPLETIONS, reply)
    raw = run_acs(["complete", "--raw", *args, "hi"], env=env_for(server))
    assert raw.returncode == 0, raw.stderr
    path = tmp_path / "capture.sse"
    path.write_bytes(raw.stdout_bytes)
    return str(path)


@pytest.mark.parametrize(
    ("reply", "args"),
    [
        (text_reply(["Hello", " there", "!"], finish="length"), []),
        (choices_reply({0: ["a", "b"], 1: ["c"]}), ["--n", "2"]),
        (Reply.from_scenario(get_scenario("S09")), ["--logprobs", "2"]),
    ],
    ids=["one", "n2", "logprobs"],
)
def test_replay_json_equals_the_live_one_but_for_timings(server: ScriptedServer, tmp_path, reply: Reply, args: list[str]) -> None:
    path = capture(server, reply, args, tmp_path)
    live = run_acs(["complete", "--json", *args, "hi"], env=env_for(server))
    assert live.returncode == 0, live.stderr
    replay_args = ["--n", "2"] if "--n" in args else []
    replayed = run_acs(["replay", path, "--json", *replay_args])
    assert replayed.returncode == 0, replayed.stderr
    assert without_timings(parse_object(replayed.stdout)) == without_timings(parse_object(live.stdout))
    assert set(parse_object(replayed.stdout)["timings"]) == TIMING_KEYS


def test_replay_jsonl_equals_the_live_one_but_for_timings(server: ScriptedServer, tmp_path) -> None:
    reply = choices_reply({0: ["a", "b"], 1: ["c"]})
    path = capture(server, reply, ["--n", "2"], tmp_path)
    live = run_acs(["complete", "--jsonl", "--n", "2", "hi"], env=env_for(server))
    replayed = run_acs(["replay", path, "--jsonl", "--n", "2"])
    assert live.returncode == replayed.returncode == 0
    strip = lambda lines: [{k: v for k, v in line.items() if k != "timings"} for line in lines]  # noqa: E731
    assert strip(parse_lines(replayed.stdout)) == strip(parse_lines(live.stdout))


def test_replay_of_an_http_error_capture_prints_the_object(tmp_path) -> None:
    path = tmp_path / "err.sse"
    path.write_bytes(b'HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n\r\n{"error": {"message": "no such model"}}')
    r = run_acs(["replay", str(path), "--json"])
    assert_failure(r, 7)
    obj = parse_object(r.stdout)
    assert obj["error"]["kind"] == "http" and obj["error"]["http_status"] == 404 and obj["choices"] == []


def test_replay_json_of_the_bundled_sample() -> None:
    r = run_acs(["replay", "--delay", "0", "--json"])
    assert r.returncode == 0, r.stderr
    obj = parse_object(r.stdout)
    assert obj["choices"][0]["text"].startswith(" It’s fast.")
    assert obj["usage"]["completion_tokens"] == 80 and obj["complete"] is True


# ------------------------------------------------------------------------------------ --jsonl


def test_jsonl_ok(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["Hello", ",", " world"], finish="length", usage=(5, 3)))
    r = run_acs(["complete", "--jsonl", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    lines = parse_lines(r.stdout)
    assert lines[:4] == [
        {"type": "delta", "index": 0, "text": "Hello"},
        {"type": "delta", "index": 0, "text": ","},
        {"type": "delta", "index": 0, "text": " world"},
        {"type": "finish", "index": 0, "finish_reason": "length", "stop_reason": None},
    ]
    assert lines[4] == {"type": "usage", "prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    done = lines[5]
    assert done["type"] == "done" and done["complete"] is True
    assert done["id"] == "cmpl-ae7c4833c82a33d6" and done["model"] == "meta-llama/Llama-3.1-8B"
    assert set(done["timings"]) == TIMING_KEYS
    assert len(lines) == 6
    assert "5 prompt + 3 completion = 8 tokens" in r.stderr


def test_jsonl_lines_arrive_live(server: ScriptedServer) -> None:
    pieces = ["alpha", " beta", " gamma", " delta", " omega"]
    server.route("POST", COMPLETIONS, text_reply(pieces, delay=0.3))
    with Streaming(["complete", "--jsonl", "hi"], env=env_for(server)) as run:
        rc = run.wait(30)
        first = run.first_time(b'"text":"alpha"}\n')
        out = run.stdout.decode()
    assert rc == 0
    assert first is not None, out
    last_segment = max(t for _, t in server.segment_times)
    assert first < last_segment - 0.5, (first, last_segment)
    texts = [line["text"] for line in parse_lines(out) if line["type"] == "delta"]
    assert texts == pieces


def test_jsonl_one_line_per_frame_even_in_one_read(server: ScriptedServer) -> None:
    body = b"".join(frames(["a", "b", "c"])) + usage_frame(1, 3)
    server.route("POST", COMPLETIONS, Reply.sse([body]))  # all frames in a single write
    r = run_acs(["complete", "--jsonl", "hi"], env=env_for(server))
    assert [line["text"] for line in parse_lines(r.stdout) if line["type"] == "delta"] == ["a", "b", "c"]


def test_jsonl_several_choices(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, choices_reply({0: ["a1", "a2"], 1: ["b1", "b2"]}))
    r = run_acs(["complete", "--jsonl", "--n", "2", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    lines = parse_lines(r.stdout)
    deltas = [(line["index"], line["text"]) for line in lines if line["type"] == "delta"]
    assert deltas == [(0, "a1"), (1, "b1"), (0, "a2"), (1, "b2")]  # arrival order, not index order
    finishes = [line["index"] for line in lines if line["type"] == "finish"]
    assert finishes == [0, 1]
    assert lines[-1]["type"] == "done" and lines[-1]["complete"] is True


def test_jsonl_mid_stream_error(server: ScriptedServer) -> None:
    error = {"error": {"message": "engine died", "type": "InternalServerError"}}
    server.route("POST", COMPLETIONS, Reply.sse([*frames(["part", "ial"], finish=None), error]))  # type: ignore[arg-type]
    r = run_acs(["complete", "--jsonl", "hi"], env=env_for(server))
    assert_failure(r, 9)
    lines = parse_lines(r.stdout)
    assert [line["type"] for line in lines] == ["delta", "delta", "error", "done"]
    assert lines[2]["kind"] == "stream_error" and lines[2]["exit_status"] == 9 and "engine died" in lines[2]["message"]
    assert lines[3]["complete"] is False


def test_jsonl_truncated(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.sse([vllm_frame("cut ")], done=False, end="abort"))
    r = run_acs(["complete", "--jsonl", "hi"], env=env_for(server))
    assert_failure(r, 10)
    lines = parse_lines(r.stdout)
    assert [line["type"] for line in lines] == ["delta", "error", "done"]
    assert lines[1]["kind"] == "incomplete" and lines[2]["complete"] is False


def test_jsonl_http_404(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.json(404, {"error": {"message": "no such model"}}))
    r = run_acs(["complete", "--jsonl", "hi"], env=env_for(server))
    assert_failure(r, 7)
    lines = parse_lines(r.stdout)
    assert [line["type"] for line in lines] == ["error", "done"]
    assert lines[0]["kind"] == "http" and lines[0]["http_status"] == 404 and lines[0]["exit_status"] == 7


def test_jsonl_ctrl_c(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(LONG, delay=0.05))
    with Streaming(["complete", "--jsonl", "hi"], env=env_for(server)) as run:
        assert run.wait_for_stdout(b'"w003 "', 20)
        run.interrupt()
        rc = run.wait(10)
        out = run.stdout.decode()
    assert rc == 130
    lines = parse_lines(out)
    assert lines[-2]["type"] == "error" and lines[-2]["kind"] == "interrupted" and lines[-2]["exit_status"] == 130
    assert lines[-1] == {**lines[-1], "type": "done", "complete": False}
    assert all(line["type"] == "delta" for line in lines[:-2])


def test_jsonl_delta_carries_the_frames_logprobs(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.from_scenario(get_scenario("S09")))
    r = run_acs(["complete", "--jsonl", "--logprobs", "2", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    deltas = [line for line in parse_lines(r.stdout) if line["type"] == "delta"]
    assert [d["text"] for d in deltas] == [" It was the", " end"]
    assert deltas[0]["logprobs"]["tokens"] == [" It", " was", " the"]
    assert deltas[0]["logprobs"]["token_logprobs"] == [-0.25, -1.5, -9999.0]
    assert deltas[1]["logprobs"]["tokens"] == [" end"]


def test_jsonl_from_a_200_json_completion_has_its_finish(server: ScriptedServer) -> None:
    body = {"id": "c", "object": "text_completion", "model": "m", "choices": [{"index": 0, "text": "whole", "finish_reason": None}]}
    server.route("POST", COMPLETIONS, Reply.json(200, body))
    r = run_acs(["complete", "--jsonl", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    types = [line["type"] for line in parse_lines(r.stdout)]
    assert types == ["delta", "finish", "done"]


def test_jsonl_choice_filters_events(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, choices_reply({0: ["a1", "a2"], 1: ["b1", "b2"]}))
    r = run_acs(["complete", "--jsonl", "--n", "2", "--choice", "1", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert {line.get("index") for line in parse_lines(r.stdout) if line["type"] in ("delta", "finish")} == {1}
