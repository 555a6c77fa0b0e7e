"""What the real servers send on /v1/chat/completions, and acs's answer to it, without a build.

The captures in tests/fixtures/realserver/<server>/3*-chat-* (made by
tests/realserver/capture_chat.py from the tiny model; with and without `include_usage`, and not
streamed) are served byte for byte by the loopback server to `acs chat`. Each test first checks
that the capture shows the quirk it is about, so a capture replaced by one without it fails
loudly instead of testing nothing.
"""

from __future__ import annotations

import json

import pytest

from tests import chat_frames as cf
from tests.helpers import run_acs
from tests.realserver.captures import Capture, capture_reply, load_capture
from tests.sse_server import ScriptedServer

LS = "llama-server"
LCP = "llama-cpp-python"
SERVERS = [LS, LCP]


def content_of(cap: Capture) -> str:
    return "".join((c.get("delta") or {}).get("content") or "" for o in cap.data_objects() for c in o.get("choices") or [])


def chat(server: ScriptedServer, cap: Capture, *args: str, **kw):
    server.route("POST", cf.CHAT, capture_reply(cap, **kw))
    return run_acs(["chat", "-m", "tiny-llama", *args, "Hello"], env={"ACS_API_BASE": server.base_url})


def test_llama_server_role_chunk_has_null_content_and_usage_comes_when_asked(server: ScriptedServer) -> None:
    cap = load_capture(LS, "30-chat-stream-usage")
    objs = cap.data_objects()
    assert objs[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}  # the quirk: null, not ""
    assert objs[-1]["choices"] == [] and "timings" in objs[-1]  # usage in its own chunk, with llama.cpp's timings
    u = objs[-1]["usage"]
    r = chat(server, cap)
    assert r.returncode == 0, r.stderr
    assert r.stdout == content_of(cap) and len(r.stdout) > 10
    assert r.stderr == f"{u['prompt_tokens']} prompt + {u['completion_tokens']} completion = {u['total_tokens']} tokens · finish: length\n"


def test_llama_server_sends_no_chat_usage_unless_asked(server: ScriptedServer) -> None:
    """Unlike its /v1/completions (usage on every finish chunk, asked or not), llama-server's chat
    stream carries usage only with include_usage; the finish chunk still has `timings`."""
    cap = load_capture(LS, "31-chat-stream-no-usage")
    objs = cap.data_objects()
    assert "stream_options" not in cap.request
    assert not any("usage" in o for o in objs) and "timings" in objs[-1]
    r = chat(server, cap, "--no-usage")
    assert r.returncode == 0 and r.stdout == content_of(cap)
    assert r.stderr == "usage: none (not asked for: --no-usage) · finish: length\n"
    assert "stream_options" not in server.requests[-1].json()


@pytest.mark.parametrize("case", ["30-chat-stream-usage", "31-chat-stream-no-usage"])
def test_llama_cpp_python_role_chunk_without_content_and_never_usage(server: ScriptedServer, case: str) -> None:
    cap = load_capture(LCP, case)
    objs = cap.data_objects()
    assert objs[0]["choices"][0]["delta"] == {"role": "assistant"}  # content missing, as OpenAI does
    assert not any("usage" in o for o in objs)  # not even when include_usage is asked for
    assert b'"object": "chat.completion.chunk"' in cap.body  # JSON with spaces after separators
    r = chat(server, cap)
    assert r.returncode == 0 and r.stdout == content_of(cap)
    assert r.stderr == "usage: the server reported none · finish: length\n"
    doc = json.loads(chat(server, cap, "--json").stdout)
    assert doc["timings"]["estimated"] is True and doc["timings"]["tokens"] == len([o for o in objs if o["choices"][0]["delta"].get("content")])


@pytest.mark.parametrize("kind", SERVERS)
@pytest.mark.parametrize("case", ["30-chat-stream-usage", "31-chat-stream-no-usage"])
def test_raw_replay_and_json_of_the_captures(server: ScriptedServer, kind: str, case: str) -> None:
    cap = load_capture(kind, case)
    assert cap.chunks is not None and b"".join(cap.chunks) == cap.body  # one response, chunks known
    raw = chat(server, cap, "--raw", chunked_raw=True)
    assert raw.returncode == 0 and raw.stdout_bytes == cap.body
    live = chat(server, cap, chunked_raw=True)
    replayed = run_acs(["replay", "-"], input=cap.body)
    assert replayed.returncode == live.returncode == 0
    assert replayed.stdout_bytes == live.stdout_bytes == content_of(cap).encode()
    doc = json.loads(chat(server, cap, "--json").stdout)
    assert doc["choices"][0]["message"] == {"role": "assistant", "content": content_of(cap), "reasoning": None, "tool_calls": []}
    assert doc["model"] == "tiny-llama" and doc["id"].startswith("chatcmpl-")


@pytest.mark.parametrize("kind", SERVERS)
def test_a_non_streamed_chat_answer(server: ScriptedServer, kind: str) -> None:
    """A 200 application/json chat.completion (what these servers send for stream: false)."""
    cap = load_capture(kind, "32-chat-non-stream")
    doc = json.loads(cap.body)
    assert doc["object"] == "chat.completion" and cap.header_map["content-type"].startswith("application/json")
    r = chat(server, cap)
    assert r.returncode == 0 and r.stdout == doc["choices"][0]["message"]["content"]
    u = doc["usage"]
    assert r.stderr == f"{u['prompt_tokens']} prompt + {u['completion_tokens']} completion = {u['total_tokens']} tokens · finish: length\n"
    replayed = run_acs(["replay", "-"], input=cap.body)
    assert replayed.returncode == 0 and replayed.stdout == r.stdout
