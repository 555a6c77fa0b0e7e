"""Every wire scenario, end to end: the scripted server serves its exact bytes and the real `acs`
runs as a subprocess with stdout piped.

What is checked comes from README.md (pipe output, exit statuses, the usage line, error lines) and
from each scenario's structured `outcome` (tests/fixtures/wire_scenarios.json; the reference
client algorithm that decides it is written down in tests/oracle.py):

* `acs complete` (live): stdout bytes, exit status, stderr (usage line / error + hint lines,
  the server's message), never a traceback, and the request acs sent;
* `acs replay -` with the body bytes on stdin: the same stdout and exit status as live;
* `acs complete --raw`: stdout is the de-chunked body exactly, the exit status reports HTTP
  errors and cut connections;
* `acs complete --raw -i` then `acs replay` of that capture: the round trip gives what live gives.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers import run_acs
from tests.scenarios import load_scenarios, scenario_body
from tests.sse_server import Reply, ScriptedServer, vllm_frame

SCENARIOS: list[dict[str, Any]] = load_scenarios()
BY_ID = {sc["id"]: sc for sc in SCENARIOS}
IDS = [sc["id"] for sc in SCENARIOS]
NON_HTTP_ERROR_IDS = [sc["id"] for sc in SCENARIOS if sc["outcome"]["kind"] != "http_error"]
TWO_XX_IDS = [sc["id"] for sc in SCENARIOS if 200 <= sc["status"] < 300]
HTTP_ERROR_IDS = [sc["id"] for sc in SCENARIOS if sc["outcome"]["kind"] == "http_error"]
MULTI_CHOICE_IDS = [sc["id"] for sc in SCENARIOS if len(sc["outcome"]["texts"]) > 1]

RETRYABLE = {429, 502, 503, 504}
KIND_STATUS = {"ok": 0, "incomplete": 10, "stream_error": 9, "protocol_error": 11}
PROMPT = "hello"
MODEL = "m"
MAX_TOKENS = 5


# ----------------------------------------------------------------------------------- expectations


def expected_status(sc: dict[str, Any]) -> int:
    out = sc["outcome"]
    if out["kind"] == "http_error":
        code = out["http_status"]
        if code in (401, 403):
            return 6
        if code >= 500:
            return 8
        return 7
    return KIND_STATUS[out["kind"]]


def joined_texts(texts: dict[str, str], first: str | None = None) -> bytes:
    """README: one choice → exactly its text; several → each choice's text in index order,
    separated by a blank line (a text not ending in "\\n" is followed by "\\n\\n", one ending in
    "\\n" by "\\n"). With one choice asked for, the first choice the server sends streams live
    whatever its index (`first`), and any others it sends follow in index order."""
    keys = sorted(texts, key=int)
    if first is not None and first in keys:
        keys.remove(first)
        keys.insert(0, first)
    out = []
    for i, k in enumerate(keys):
        text = texts[k]
        out.append(text)
        if i < len(keys) - 1:
            out.append("\n" if text.endswith("\n") else "\n\n")
    return "".join(out).encode("utf-8")


def first_choice(body: bytes) -> str | None:
    """The index of the first choice a stream's frames carry (what acs streams live when one
    choice was asked for)."""
    for line in body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        try:
            frame = json.loads(line[5:])
        except ValueError:
            continue
        choices = frame.get("choices") if isinstance(frame, dict) else None
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            return str(choices[0].get("index", 0))
    return None


def complete_args(sc: dict[str, Any], *extra: str) -> list[str]:
    args = ["complete", "-m", MODEL, "--max-tokens", str(MAX_TOKENS)]
    if sc["status"] in RETRYABLE:
        args += ["--retries", "0"]  # answer once: the scenario is the whole story
    return [*args, *extra, PROMPT]


def serve(server: ScriptedServer, sc: dict[str, Any]) -> dict[str, str]:
    server.route("POST", "/v1/completions", Reply.from_scenario(sc))
    return {"ACS_API_BASE": server.base_url}


def lines(text: str) -> list[str]:
    return text.splitlines()


def assert_no_traceback(res: Any) -> None:
    assert "Traceback" not in res.stderr, res.stderr


def assert_failure_lines(res: Any, sc: dict[str, Any]) -> None:
    """One `acs: error: ` line with the server's message (and the status for HTTP errors),
    followed by a `hint: ` line."""
    out = sc["outcome"]
    err_lines = lines(res.stderr)
    errors = [i for i, line in enumerate(err_lines) if line.startswith("acs: error: ")]
    assert len(errors) == 1, f"expected exactly one 'acs: error: ' line:\n{res.stderr}"
    hints = [i for i, line in enumerate(err_lines) if line.startswith("hint: ")]
    assert hints and any(i > errors[0] for i in hints), f"no 'hint: ' line after the error line:\n{res.stderr}"
    error_line = err_lines[errors[0]]
    needle = out.get("message_contains")
    if needle is not None:
        assert needle in error_line, f"{needle!r} not in the error line {error_line!r}"
    if out["kind"] == "http_error":
        assert str(out["http_status"]) in error_line, f"status {out['http_status']} not in {error_line!r}"


def assert_usage_reported(res: Any, sc: dict[str, Any], none: str = "usage: the server reported none") -> None:
    """The usage line: the server's figures, or `none` (a replay says the capture holds none)."""
    out = sc["outcome"]
    usage = out["usage"]
    if usage is not None:
        figures = f"{usage['prompt_tokens']} prompt + {usage['completion_tokens']} completion = {usage['total_tokens']} tokens"
        assert figures in res.stderr, f"usage {figures!r} not on stderr:\n{res.stderr}"
    if out["kind"] != "ok":
        return
    err_lines = lines(res.stderr)
    assert err_lines, "no usage line on stderr"
    last = err_lines[-1]
    if usage is not None:
        assert last.startswith(figures), f"last stderr line is not the usage line: {last!r}"
    else:
        assert last.startswith(none), f"last stderr line: {last!r}"
    finishes = out["finish"]
    if len(finishes) == 1:
        (reason,) = finishes.values()
        assert last.endswith(f"· finish: {reason}"), f"finish reason {reason!r} not at the end of {last!r}"
    else:
        assert "finish:" in last, last
        for reason in set(finishes.values()):
            assert str(reason) in last, f"finish reason {reason!r} not in {last!r}"


def assert_outcome(res: Any, sc: dict[str, Any], *, stdout: bytes | None = None, one_asked: bool = True) -> None:
    """stdout, exit status and stderr of a text-mode run (live or replay) against the outcome;
    `one_asked`: the run asked for one choice (no -n)."""
    out = sc["outcome"]
    assert_no_traceback(res)
    first = first_choice(scenario_body(sc)) if one_asked else None
    want = joined_texts(out["texts"], first) if stdout is None else stdout
    assert res.stdout_bytes == want
    assert res.returncode == expected_status(sc), f"exit {res.returncode}, stderr:\n{res.stderr}"
    if out["kind"] == "ok":
        assert "acs: error:" not in res.stderr, res.stderr
    else:
        assert_failure_lines(res, sc)


def assert_request(server: ScriptedServer, **body_fields: Any) -> dict[str, Any]:
    posts = [r for r in server.requests if r.method == "POST"]
    assert len(server.requests) == 1 and len(posts) == 1, [(r.method, r.target) for r in server.requests]
    req = posts[0]
    assert req.path == "/v1/completions"
    assert req.headers.get("content-type", "").split(";")[0].strip() == "application/json"
    assert "text/event-stream" in req.headers.get("accept", "")
    body = json.loads(req.body)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["model"] == MODEL
    assert body["prompt"] == PROMPT
    assert body["max_tokens"] == MAX_TOKENS
    for key, value in body_fields.items():
        if value is None:
            assert key not in body, body
        else:
            assert body[key] == value, body
    return body


# ----------------------------------------------------------------------------------- live


@pytest.mark.parametrize("sid", IDS)
def test_live_piped(server: ScriptedServer, sid: str) -> None:
    sc = BY_ID[sid]
    env = serve(server, sc)
    res = run_acs(complete_args(sc), env=env)
    assert_outcome(res, sc)
    assert_usage_reported(res, sc)
    assert_request(server, n=None)


@pytest.mark.parametrize("sid", MULTI_CHOICE_IDS)
def test_live_with_n_asked(server: ScriptedServer, sid: str) -> None:
    """With `-n K` (as many choices as the stream holds) the output is the same joining."""
    sc = BY_ID[sid]
    n = len(sc["outcome"]["texts"])
    env = serve(server, sc)
    res = run_acs(complete_args(sc, "-n", str(n)), env=env)
    assert_outcome(res, sc, one_asked=False)
    assert_usage_reported(res, sc)
    assert_request(server, n=n)


@pytest.mark.parametrize(
    "sid,index",
    [(sid, int(k)) for sid in MULTI_CHOICE_IDS for k in sorted(BY_ID[sid]["outcome"]["texts"], key=int)],
)
def test_live_one_choice(server: ScriptedServer, sid: str, index: int) -> None:
    """`--choice K` prints only choice K's text."""
    sc = BY_ID[sid]
    env = serve(server, sc)
    res = run_acs(complete_args(sc, "-n", str(len(sc["outcome"]["texts"])), "--choice", str(index)), env=env)
    assert_outcome(res, sc, stdout=sc["outcome"]["texts"][str(index)].encode("utf-8"))


@pytest.mark.parametrize("sid", [i for i in IDS if BY_ID[i]["outcome"]["kind"] == "ok" and BY_ID[i]["outcome"]["usage"]])
def test_quiet_drops_the_usage_line(server: ScriptedServer, sid: str) -> None:
    sc = BY_ID[sid]
    env = serve(server, sc)
    res = run_acs(complete_args(sc, "-q"), env=env)
    assert_outcome(res, sc)
    assert res.stderr == "", res.stderr


# ----------------------------------------------------------------------------------- replay


@pytest.mark.parametrize("sid", NON_HTTP_ERROR_IDS)
def test_replay_matches_live(sid: str) -> None:
    """The body bytes (what `acs complete --raw` captures) replayed from stdin: same text, same status."""
    sc = BY_ID[sid]
    res = run_acs(["replay", "-"], input=scenario_body(sc))
    assert_outcome(res, sc)
    assert_usage_reported(res, sc, none="usage: none in the capture")


# ----------------------------------------------------------------------------------- --raw


@pytest.mark.parametrize("sid", TWO_XX_IDS)
def test_raw_is_the_body_exactly(server: ScriptedServer, sid: str) -> None:
    sc = BY_ID[sid]
    env = serve(server, sc)
    res = run_acs(complete_args(sc, "--raw"), env=env)
    assert_no_traceback(res)
    assert res.stdout_bytes == scenario_body(sc)
    if sc["end"] == "abort":  # the connection was cut: the bytes received, and exit 10
        assert res.returncode == 10, res.stderr
        errors = [line for line in lines(res.stderr) if line.startswith("acs: error: ")]
        assert len(errors) == 1 and any(line.startswith("hint: ") for line in lines(res.stderr)), res.stderr
    else:
        assert res.returncode == 0, res.stderr
        assert "acs: error:" not in res.stderr
    assert_request(server)


@pytest.mark.parametrize("sid", HTTP_ERROR_IDS)
def test_raw_http_error_body_and_status(server: ScriptedServer, sid: str) -> None:
    """README: with --raw the exit status still reports HTTP errors; stdout is still the body."""
    sc = BY_ID[sid]
    env = serve(server, sc)
    res = run_acs(complete_args(sc, "--raw"), env=env)
    assert_no_traceback(res)
    assert res.stdout_bytes == scenario_body(sc)
    assert res.returncode == expected_status(sc), res.stderr
    assert_failure_lines(res, sc)
    assert_request(server)


def split_head(capture: bytes) -> tuple[list[bytes], bytes]:
    head, sep, body = capture.partition(b"\r\n\r\n")
    assert sep, capture[:300]
    return head.split(b"\r\n"), body


@pytest.mark.parametrize("sid", IDS)
def test_raw_include_capture_replays_like_live(server: ScriptedServer, sid: str) -> None:
    """`acs complete --raw -i > cap` then `acs replay cap`: the head, the exact body, and a replay
    that gives live's text and exit status (HTTP errors included)."""
    sc = BY_ID[sid]
    env = serve(server, sc)
    cap = run_acs(complete_args(sc, "--raw", "-i"), env=env)
    assert_no_traceback(cap)
    head, body = split_head(cap.stdout_bytes)
    assert head[0] == f"HTTP/1.1 {sc['status']} {sc['reason']}".encode()
    for name, value in sc["headers"]:
        assert f"{name}: {value}".encode("latin-1") in head[1:], head
    assert body == scenario_body(sc)
    if sc["outcome"]["kind"] == "http_error":
        assert cap.returncode == expected_status(sc)
    else:
        assert cap.returncode == (10 if sc["end"] == "abort" else 0), cap.stderr

    res = run_acs(["replay", "-"], input=cap.stdout_bytes)
    assert_outcome(res, sc)
    if sc["outcome"]["kind"] != "http_error":
        assert_usage_reported(res, sc, none="usage: none in the capture")


# ----------------------------------------------------------------------------------- beyond the fixture
# The joining rule for several choices has cases the fixture does not hold: texts that end in a
# newline, and an empty choice. And a JSON surrogate pair split over two frames.

JOIN_CASES: dict[str, tuple[list[bytes], dict[str, str]]] = {
    "newline_endings_interleaved": (
        [
            vllm_frame("x", index=1),
            vllm_frame("line\n", index=0),
            vllm_frame("y\n", index=2),
            vllm_frame("", index=0, finish_reason="stop"),
            vllm_frame("", index=2, finish_reason="length"),
            vllm_frame("", index=1, finish_reason="stop"),
        ],
        {"0": "line\n", "1": "x", "2": "y\n"},
    ),
    "empty_middle_choice": (
        [
            vllm_frame("a", index=0, finish_reason="stop"),
            vllm_frame("", index=1, finish_reason="stop"),
            vllm_frame("c", index=2, finish_reason="length"),
        ],
        {"0": "a", "1": "", "2": "c"},
    ),
    "empty_first_choice": (
        [
            vllm_frame("b", index=1),
            vllm_frame("", index=0, finish_reason="stop"),
            vllm_frame("", index=1, finish_reason="length"),
        ],
        {"0": "", "1": "b"},
    ),
    "blank_line_text": (
        [
            vllm_frame("p\n\n", index=0),
            vllm_frame("\n", index=1, finish_reason="stop"),
            vllm_frame("", index=0, finish_reason="stop"),
        ],
        {"0": "p\n\n", "1": "\n"},
    ),
}


@pytest.mark.parametrize("name", sorted(JOIN_CASES))
@pytest.mark.parametrize("mode", ["live", "live_n", "replay"])
def test_several_choices_joining_rule(server: ScriptedServer, name: str, mode: str) -> None:
    frames, texts = JOIN_CASES[name]
    reply = Reply.sse(frames)
    if mode == "replay":
        res = run_acs(["replay", "-"], input=reply.body())
    else:
        server.route("POST", "/v1/completions", reply)
        extra = ["-n", str(len(texts))] if mode == "live_n" else []
        res = run_acs(["complete", "-m", MODEL, "--max-tokens", str(MAX_TOKENS), *extra, PROMPT], env={"ACS_API_BASE": server.base_url})
    assert_no_traceback(res)
    assert res.returncode == 0, res.stderr
    assert res.stdout_bytes == joined_texts(texts, None if mode == "live_n" else first_choice(reply.body()))
    assert lines(res.stderr)[-1].startswith("usage: none in the capture" if mode == "replay" else "usage: the server reported none")


def test_surrogate_pair_split_over_two_frames(server: ScriptedServer) -> None:
    """OpenAI-style `\\ud83d` escapes: the pair's halves in two frames still make one 😀."""
    frames = [
        b'data: {"id":"c","object":"text_completion","choices":[{"index":0,"text":"a \\ud83d","finish_reason":null}]}\n\n',
        b'data: {"id":"c","object":"text_completion","choices":[{"index":0,"text":"\\ude00 b","finish_reason":"stop"}]}\n\n',
    ]
    reply = Reply.sse(frames)
    server.route("POST", "/v1/completions", reply)
    res = run_acs(["complete", "-m", MODEL, PROMPT], env={"ACS_API_BASE": server.base_url})
    assert_no_traceback(res)
    assert res.returncode == 0, res.stderr
    assert res.stdout_bytes == "a 😀 b".encode()
    replayed = run_acs(["replay", "-"], input=reply.body())
    assert replayed.returncode == 0 and replayed.stdout_bytes == "a 😀 b".encode()
