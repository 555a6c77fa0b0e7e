"""Every chat wire scenario (tests/chat_scenarios.py), end to end: served live by the loopback
server to `acs chat` (piped, --json, --jsonl, on a terminal), replayed from its bytes, and fetched
with --raw. The expected outcome of each scenario is written down by hand there."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests import chat_frames as cf
from tests.chat_scenarios import BY_ID, IDS, ChatScenario, piped_stdout, tool_call_lines
from tests.helpers import run_acs
from tests.sse_server import Reply, ScriptedServer

ERROR_KIND = {9: "stream_error", 10: "incomplete", 11: "protocol"}


def serve(server: ScriptedServer, sc: ChatScenario) -> dict[str, str | None]:
    server.route("POST", cf.CHAT, Reply(segments=sc.segments(), end="abort" if sc.cut else "chunked"))
    return {"ACS_API_BASE": server.base_url, "ACS_MODEL": "m"}


def chat(server: ScriptedServer, sc: ChatScenario, *extra: str, **kw: Any):
    env = serve(server, sc)
    n = ["--n", str(sc.n)] if sc.n > 1 else []
    return run_acs(["chat", *n, *extra, "Hello"], env=env, **kw)


def assert_status(res: Any, sc: ChatScenario) -> None:
    assert res.returncode == sc.status, res.stderr
    assert "Traceback" not in res.stderr
    if sc.status:
        assert "acs: error: " in res.stderr and "\nhint: " in res.stderr, res.stderr


def in_order(needle: str, hay: str) -> bool:
    """Whether the characters of needle appear in hay in order (the terminal sets the reasoning
    and tool calls apart from the answer, so an interleaved answer is not one run)."""
    rest = iter(hay)
    return all(ch in rest for ch in needle)


@pytest.mark.parametrize("sid", IDS)
def test_live_piped_prints_exactly_the_answers(server: ScriptedServer, sid: str) -> None:
    sc = BY_ID[sid]
    res = chat(server, sc)
    assert_status(res, sc)
    assert res.stdout_bytes == piped_stdout(sc)  # no reasoning, no tool calls on stdout
    calls = [line for line in res.stderr.splitlines() if "tool call " in line]
    assert calls == tool_call_lines(sc)
    if sc.status == 0:
        usage = f"{sc.usage[0]} prompt + {sc.usage[1]} completion = {sum(sc.usage)} tokens" if sc.usage else "usage: the server reported none"
        assert res.stderr.splitlines()[-1].startswith(usage), res.stderr
    request = server.requests[-1]
    assert request.path == cf.CHAT
    assert request.json()["messages"][-1] == {"role": "user", "content": "Hello"}


@pytest.mark.parametrize("sid", IDS)
def test_live_json_has_each_message(server: ScriptedServer, sid: str) -> None:
    sc = BY_ID[sid]
    res = chat(server, sc, "--json")
    assert_status(res, sc)
    doc = json.loads(res.stdout)
    got = {c["index"]: c for c in doc["choices"]}
    assert sorted(got) == sorted(sc.content)
    for index, choice in got.items():
        message = choice["message"]
        assert message["role"] == "assistant"
        assert message["content"] == sc.content[index]
        assert message["reasoning"] == sc.reasoning.get(index)
        assert [(c["function"]["name"], c["function"]["arguments"]) for c in message["tool_calls"]] == sc.calls.get(index, [])
        assert choice["finish_reason"] == sc.finish[index]
    assert doc["complete"] is (sc.status == 0)
    if sc.status:
        assert doc["error"]["exit_status"] == sc.status and doc["error"]["kind"] == ERROR_KIND[sc.status]
    usage = doc["usage"]
    assert (None if usage is None else (usage["prompt_tokens"], usage["completion_tokens"])) == sc.usage
    assert set(doc["timings"]) >= {"ttft_s", "first_reasoning_s", "first_answer_s", "total_s", "decode_tokens_per_s"}


@pytest.mark.parametrize("sid", IDS)
def test_live_jsonl_events_rebuild_the_answers(server: ScriptedServer, sid: str) -> None:
    sc = BY_ID[sid]
    res = chat(server, sc, "--jsonl")
    assert_status(res, sc)
    events = [json.loads(line) for line in res.stdout.splitlines()]
    content: dict[int, str] = {}
    reasoning: dict[int, str] = {}
    calls: dict[tuple[int, int], list[str]] = {}
    for e in events:
        if e["type"] == "delta":
            content[e["index"]] = content.get(e["index"], "") + e["text"]
        elif e["type"] == "reasoning":
            reasoning[e["index"]] = reasoning.get(e["index"], "") + e["text"]
        elif e["type"] == "tool_call":
            kept = calls.setdefault((e["index"], e["call"]), [e["name"], ""])
            kept[1] += e["arguments"]
    assert content == {k: v for k, v in sc.content.items() if v}
    assert reasoning == sc.reasoning
    assert {k: [tuple(v) for (i, _), v in sorted(calls.items()) if i == k] for k in {i for i, _ in calls}} == {k: v for k, v in sc.calls.items() if v}
    assert {e["index"]: e["finish_reason"] for e in events if e["type"] == "finish"} == {k: v for k, v in sc.finish.items() if v}
    assert events[-1]["type"] == "done" and events[-1]["complete"] is (sc.status == 0)


@pytest.mark.parametrize("sid", IDS)
def test_live_on_a_terminal_shows_everything_escaped(server: ScriptedServer, sid: str) -> None:
    sc = BY_ID[sid]
    res = chat(server, sc, stdout_tty=True)
    assert_status(res, sc)
    shown = res.stdout
    assert "\x1b" not in shown and "\r" not in shown  # TERM=dumb: no styles; model text escaped
    for text in [*sc.content.values(), *sc.reasoning.values()]:
        assert in_order(text.replace("\x1b", "\\e").replace("\x07", "\\x07").replace("\r\n", "\n"), shown)
    if sc.reasoning:
        assert "Thinking…" in shown
    for index, calls in sc.calls.items():
        for name, arguments in calls:
            assert in_order(f"→ {name.replace(chr(27), chr(92) + 'e')}({arguments}", shown)
    assert "tool call " not in res.stderr  # shown inline, not again on stderr


@pytest.mark.parametrize("sid", IDS)
def test_replay_matches_live(server: ScriptedServer, sid: str) -> None:
    sc = BY_ID[sid]
    live = chat(server, sc)
    n = ["--n", str(sc.n)] if sc.n > 1 else []
    replayed = run_acs(["replay", *n, "-"], input=sc.body())
    assert replayed.returncode == live.returncode, replayed.stderr
    assert replayed.stdout_bytes == live.stdout_bytes
    assert [line for line in replayed.stderr.splitlines() if "tool call " in line] == tool_call_lines(sc)
    as_json = run_acs(["replay", *n, "--json", "-"], input=sc.body())
    if sc.content:
        assert "message" in json.loads(as_json.stdout)["choices"][0]  # rendered as chat


@pytest.mark.parametrize("sid", IDS)
def test_raw_is_the_body_exactly(server: ScriptedServer, sid: str) -> None:
    sc = BY_ID[sid]
    res = chat(server, sc, "--raw")
    assert res.stdout_bytes == sc.body()
    assert res.returncode == (10 if sc.cut else 0), res.stderr  # --raw judges HTTP and the connection only


def test_a_whole_chat_completion_answer(server: ScriptedServer) -> None:
    """A server that ignores `stream` answers with one chat.completion object."""
    doc = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there", "reasoning_content": "greet"}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}
    server.route("POST", cf.CHAT, Reply.json(200, doc))
    env = {"ACS_API_BASE": server.base_url, "ACS_MODEL": "m"}
    res = run_acs(["chat", "Hi"], env=env)
    assert res.returncode == 0 and res.stdout == "Hi there"
    assert res.stderr.endswith("3 prompt + 2 completion = 5 tokens · finish: stop\n")
    out = json.loads(run_acs(["chat", "--json", "Hi"], env=env).stdout)
    assert out["choices"][0]["message"]["reasoning"] == "greet"
    replayed = run_acs(["replay", "-"], input=json.dumps(doc).encode())
    assert replayed.returncode == 0 and replayed.stdout == "Hi there"
