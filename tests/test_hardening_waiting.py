"""Bounded waiting (README "Exit status" 5 and "What acs does with unusual streams"): --timeout
holds between two reads that bring completion data, whatever else keeps the socket busy
(keep-alive comments, named pings, `data: null`, a frame trickled byte by byte), and --max-time
caps the whole run (connecting, retries, the model lookup, waiting and streaming) as curl's does.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from acs_cli.run import MaxTime, _Expired, time_limit
from tests.cliutil import COMPLETIONS, MODELS, Streaming, assert_failure, env_for, text_reply
from tests.helpers import run_acs
from tests.sse_server import Reply, ScriptedServer, vllm_frame

PING = b": ping\n\n"


def pings(count: int = 60) -> list[bytes]:
    return [PING] * count


def timed(args: list[str], server: ScriptedServer, **kw) -> tuple[object, float]:
    t0 = time.monotonic()
    result = run_acs(args, env=env_for(server, **kw.pop("env", {})), **kw)
    return result, time.monotonic() - t0


# ------------------------------------------------------------------------------------ --timeout


@pytest.mark.parametrize(
    "keepalive",
    [PING, b":\n\n", b"event: ping\ndata: {}\n\n", b"data: null\n\n", b"\n\n", b"id: 7\nretry: 100\n\n", b"event: ping\ndata: ping\n\n", b'data: {"choices":[]}\n', b"data: {}\n\n"],
    ids=["comment", "bare-colon", "named-ping", "data-null", "blank-lines", "id-retry", "named-text-ping", "event-never-ends", "empty-object"],
)
def test_a_server_that_only_pings_is_stuck(server: ScriptedServer, keepalive: bytes) -> None:
    server.route("POST", COMPLETIONS, Reply(segments=[keepalive] * 60, delay=0.1, end="hang"))  # 6 s of pings
    r, elapsed = timed(["complete", "--timeout", "1", "hi"], server)
    message, hint = assert_failure(r, 5)
    assert "waiting for the first token" in message and "ping" in message, message
    assert "--timeout" in hint and "only pings" in hint
    assert elapsed < 3.5, elapsed  # 1 s and one more ping, not the 6 s of pings
    assert r.stdout == ""
    assert server.wait_for_disconnect(5)  # the connection is closed: the server may stop


def test_pings_between_frames_keep_the_text(server: ScriptedServer) -> None:
    segments = [vllm_frame("Once"), vllm_frame(" upon"), *pings()]
    server.route("POST", COMPLETIONS, Reply(segments=segments, delay=0.1, end="hang"))
    r, elapsed = timed(["complete", "--timeout", "1", "hi"], server)
    message, _ = assert_failure(r, 5)
    assert "between two frames" in message
    assert r.stdout == "Once upon"
    assert elapsed < 3.5


@pytest.mark.parametrize("tail", [[], pings()], ids=["silent", "pinging"])
def test_a_stall_after_every_choice_finished_is_complete(server: ScriptedServer, tail: list[bytes]) -> None:
    """No [DONE] and no end of the body, but the completion is whole: acs ends it at --timeout."""
    segments = [vllm_frame("all "), vllm_frame("done", finish_reason="stop"), *tail]
    server.route("POST", COMPLETIONS, Reply(segments=segments, delay=0.1, end="hang"))
    r, elapsed = timed(["complete", "--timeout", "1", "hi"], server)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "all done"
    assert elapsed < 4


@pytest.mark.parametrize("delay", [0.05, 0.2])
def test_a_frame_trickled_byte_by_byte_is_stuck(server: ScriptedServer, delay: float) -> None:
    frame = vllm_frame("slow")  # some 200 bytes: 10 s or more at these paces
    server.route("POST", COMPLETIONS, Reply(segments=[vllm_frame("kept"), frame], one_byte_chunks=True, delay=delay, end="hang"))
    r, elapsed = timed(["complete", "--timeout", "1.5", "hi"], server)
    assert_failure(r, 5)
    assert elapsed < 6, elapsed


def test_a_trickled_first_frame_then_nothing_with_json(server: ScriptedServer) -> None:
    segments = [vllm_frame("kept"), *[bytes([b]) for b in vllm_frame("never whole")]]
    server.route("POST", COMPLETIONS, Reply(segments=segments, delay=0.1, end="hang"))
    r, elapsed = timed(["complete", "--json", "--timeout", "1", "hi"], server)
    assert r.returncode == 5
    obj = json.loads(r.stdout)
    assert obj["choices"][0]["text"] == "kept"
    assert obj["complete"] is False and obj["error"]["kind"] == "timeout" and obj["error"]["exit_status"] == 5
    assert elapsed < 4


def test_frames_paced_within_the_timeout_among_pings_are_fine(server: ScriptedServer) -> None:
    segments: list[bytes] = []
    for i in range(5):
        segments += [vllm_frame(f"t{i}", finish_reason="stop" if i == 4 else None), PING, PING, PING]
    server.route("POST", COMPLETIONS, Reply.sse(segments, delay=0.15))  # a frame every 0.6 s
    r, _ = timed(["complete", "--timeout", "1", "hi"], server)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "t0t1t2t3t4"


def test_logprobs_only_frames_count_as_data(server: ScriptedServer) -> None:
    lp = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    segments = [vllm_frame("a"), *[vllm_frame("", logprobs=lp) for _ in range(6)], vllm_frame("b", finish_reason="stop")]
    server.route("POST", COMPLETIONS, Reply.sse(segments, delay=0.3))
    r, _ = timed(["complete", "--timeout", "1", "hi"], server)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ab"


@pytest.mark.parametrize("segments", [pings(), [vllm_frame("kept"), *pings()], [bytes([b]) for b in vllm_frame("trickle")]], ids=["pings", "text-then-pings", "trickle"])
def test_raw_stops_a_server_that_only_pings(server: ScriptedServer, segments: list[bytes]) -> None:
    reply = Reply(segments=segments, delay=0.1, end="hang")
    server.route("POST", COMPLETIONS, reply)
    r, elapsed = timed(["complete", "--raw", "--timeout", "1", "hi"], server)
    assert_failure(r, 5)
    assert reply.body().startswith(r.stdout_bytes) and r.stdout_bytes  # the wire as it came, exact
    assert elapsed < 3.5


def test_raw_steady_stream_among_pings_is_fine(server: ScriptedServer) -> None:
    segments = [vllm_frame("a"), PING, PING, vllm_frame("b", finish_reason="stop")]
    reply = Reply.sse(segments, delay=0.3)
    server.route("POST", COMPLETIONS, reply)
    r, _ = timed(["complete", "--raw", "--timeout", "1", "hi"], server)
    assert r.returncode == 0, r.stderr
    assert r.stdout_bytes == reply.body()


def test_a_json_answer_trickled_byte_by_byte_is_stuck(server: ScriptedServer) -> None:
    body = json.dumps({"id": "x", "choices": [{"index": 0, "text": "whole", "finish_reason": "stop"}]}).encode()
    server.route("POST", COMPLETIONS, Reply.json(200, body, one_byte_chunks=True, delay=0.05))  # ~4 s
    r, elapsed = timed(["complete", "--timeout", "1", "hi"], server)
    message, _ = assert_failure(r, 5)
    assert "JSON answer" in message
    assert elapsed < 3.5


# ------------------------------------------------------------------------------------ --max-time


def long_stream(count: int = 100, delay: float = 0.1) -> Reply:
    return text_reply([f"w{i:03d} " for i in range(count)], delay=delay)


def test_max_time_caps_a_stream_that_flows(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, long_stream())  # 10 s of steady text
    r, elapsed = timed(["complete", "--max-time", "1", "hi"], server)
    message, hint = assert_failure(r, 5)
    assert "--max-time 1 s" in message and "while streaming" in message
    assert "--max-time" in hint
    assert r.stdout.startswith("w000 ") and "w099" not in r.stdout  # the text so far is kept
    assert 0.9 < elapsed < 4
    assert server.wait_for_disconnect(5)


def test_max_time_while_waiting_for_the_first_byte(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["late"], first_delay=20))
    r, elapsed = timed(["complete", "--timeout", "60", "--max-time", "0.8", "hi"], server)
    message, _ = assert_failure(r, 5)
    assert "--max-time 0.8 s" in message
    assert elapsed < 4


def test_max_time_during_the_model_lookup(server: ScriptedServer) -> None:
    server.route("GET", MODELS, Reply.json(200, {"data": [{"id": "m"}]}, first_delay=20))
    t0 = time.monotonic()
    r = run_acs(["complete", "--max-time", "1", "hi"], env={"ACS_API_BASE": server.base_url})
    message, _ = assert_failure(r, 5)
    assert "--max-time" in message and "before the request was sent" in message
    assert time.monotonic() - t0 < 4


def test_max_time_cuts_the_wait_between_retries(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.json(503, {"error": "busy"}, headers=[("content-type", "application/json"), ("retry-after", "30")]))
    r, elapsed = timed(["complete", "--retries", "3", "--max-time", "1", "hi"], server)
    assert_failure(r, 5)
    assert elapsed < 4


def test_max_time_keeps_the_json_object(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, long_stream())
    r, _ = timed(["complete", "--json", "--max-time", "1", "hi"], server)
    assert r.returncode == 5
    obj = json.loads(r.stdout)
    assert obj["choices"][0]["text"].startswith("w000 ")
    assert obj["error"]["kind"] == "timeout" and "--max-time" in obj["error"]["message"]
    assert obj["complete"] is False


def test_max_time_jsonl_ends_with_error_and_done(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, long_stream())
    r, _ = timed(["complete", "--jsonl", "--max-time", "1", "hi"], server)
    assert r.returncode == 5
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert lines[0]["type"] == "delta"
    assert [line["type"] for line in lines[-2:]] == ["error", "done"]


def test_max_time_with_raw_keeps_the_bytes(server: ScriptedServer) -> None:
    reply = long_stream()
    server.route("POST", COMPLETIONS, reply)
    r, elapsed = timed(["complete", "--raw", "--max-time", "1", "hi"], server)
    assert_failure(r, 5)
    assert r.stdout_bytes and reply.body().startswith(r.stdout_bytes)
    assert elapsed < 4


def test_max_time_on_a_terminal_restores_the_cursor(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["late"], first_delay=20))
    r, elapsed = timed(["complete", "--max-time", "1", "hi"], server, env={"TERM": "xterm-256color"}, stdout_tty=True, stderr_tty=True)
    assert r.returncode == 5
    assert "\x1b[?25l" in r.stderr and r.stderr.rindex("\x1b[?25h") > r.stderr.rindex("\x1b[?25l")  # the spinner ran and gave the cursor back
    assert elapsed < 4


def test_a_run_within_max_time_is_untouched(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["a", "b"]))
    r, _ = timed(["complete", "--max-time", "20", "hi"], server)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ab"


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "-inf", "1e999"])
def test_max_time_must_be_a_positive_finite_number(value: str) -> None:
    r = run_acs(["complete", "--max-time", value, "hi"], env={"ACS_MODEL": "m"})
    message, _ = assert_failure(r, 2)
    assert "--max-time" in message


def test_time_limit_keeps_an_alarm_set_before_it() -> None:
    """Whoever runs acs in-process (the tests do) may have an alarm of its own: it still fires."""
    fired: list[int] = []
    saved = signal.signal(signal.SIGALRM, lambda s, f: fired.append(s))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with time_limit(MaxTime(5)):
            time.sleep(0.5)  # the earlier alarm goes off inside, and is handed on
        assert fired == [signal.SIGALRM]
        signal.setitimer(signal.ITIMER_REAL, 10)
        with time_limit(MaxTime(0.2)), pytest.raises(_Expired):
            time.sleep(2)
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 9 < remaining <= 10  # re-armed with what was left
        assert signal.getsignal(signal.SIGALRM) is not None and fired == [signal.SIGALRM]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, saved)


def test_max_time_covers_reading_the_prompt() -> None:
    """A stdin that never ends (`ssh host acs complete`) is part of the run --max-time caps."""
    with Streaming(["complete", "--max-time", "1"], env={"ACS_MODEL": "m"}, stdin=subprocess.PIPE) as run:
        rc = run.wait(10)
        err = run.stderr.decode()
        run.proc.stdin.close()
    assert rc == 5, err
    assert "--max-time 1 s (before the request was sent)" in err
