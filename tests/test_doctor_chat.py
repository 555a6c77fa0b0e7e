"""`acs doctor --chat`: the same checklist against POST /chat/completions, with one more line
saying whether the first frame carried only the role. In-process against the loopback server."""

from __future__ import annotations

import json

from acs_cli.doctor import NAMES
from acs_cli.doctor.judge import Probe, judge_probe
from tests import chat_frames as cf
from tests.doctorutil import env, models_reply
from tests.helpers import run_acs
from tests.sse_server import Reply, ScriptedServer

CHAT_NAMES = [*NAMES[: NAMES.index("stream") + 1], "first frame", *NAMES[NAMES.index("stream") + 1 :]]


def doctor_chat(server: ScriptedServer, reply: Reply, *args: str) -> tuple[int, dict, dict]:
    server.route("GET", "/v1/models", models_reply("m"))
    server.route("POST", cf.CHAT, reply)
    r = run_acs(["doctor", "--chat", "--json", *args], env=env(server.base_url))
    assert "Traceback" not in r.stderr
    payload = json.loads(r.stdout)
    return r.returncode, payload, {c["name"]: c for c in payload["checks"]}


def test_a_chat_server_passes_and_the_role_only_frame_is_noted(server: ScriptedServer) -> None:
    code, payload, checks = doctor_chat(server, Reply.sse(cf.answer_chunks(["a", "b", "c"], reason="length", usage=(5, 3)), delay=0.02))
    assert code == 0 and payload["ok"] is True
    assert [c["name"] for c in payload["checks"]] == CHAT_NAMES
    assert checks["completion"]["detail"].startswith("POST /chat/completions answered 200 text/event-stream")
    assert checks["first frame"]["status"] == "pass" and "only the role" in checks["first frame"]["detail"]
    assert checks["stream"]["detail"].endswith(': "abc"')
    assert checks["usage"]["detail"] == "5 prompt + 3 completion = 8 tokens"
    sent = [q for q in server.requests if q.path == cf.CHAT][0].json()
    assert sent == {"model": "m", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 16, "temperature": 0, "stream": True,
                    "stream_options": {"include_usage": True}}


def test_a_first_frame_with_text_is_noted_too(server: ScriptedServer) -> None:
    chunks = [cf.chunk({"role": "assistant", "content": "a"}), cf.content("b", finish="stop")]
    code, _, checks = doctor_chat(server, Reply.sse(chunks))
    assert code == 0 and checks["first frame"]["detail"] == "the first frame already carries the answer (no role-only frame first)"


def test_reasoning_counts_as_the_first_token(server: ScriptedServer) -> None:
    chunks = [cf.role_chunk(), *(cf.reasoning(f" r{i}") for i in range(6)), cf.finish("length")]
    code, _, checks = doctor_chat(server, Reply.sse(chunks, delay=0.06))
    assert code == 0
    assert checks["first token"]["status"] == "pass" and checks["first token"]["detail"].startswith("first text after")
    assert checks["buffering"]["status"] == "pass" and "as they are generated" in checks["buffering"]["detail"]


def test_a_server_without_the_chat_endpoint_fails(server: ScriptedServer) -> None:
    code, _, checks = doctor_chat(server, Reply.json(404, {"error": {"message": "Not Found"}}))
    assert code == 7
    assert checks["completion"]["status"] == "fail" and "/chat/completions" in checks["completion"]["detail"]
    assert "first frame" not in checks and checks["stream"]["status"] == "skip"


def test_the_checklist_on_a_terminal_has_the_line(server: ScriptedServer) -> None:
    server.route("GET", "/v1/models", models_reply("m"))
    server.route("POST", cf.CHAT, Reply.sse(cf.answer_chunks(["a"])))
    r = run_acs(["doctor", "--chat"], env=env(server.base_url))
    assert r.returncode == 0, r.stdout
    line = next(line for line in r.stdout.splitlines() if line.startswith("✓ first frame "))
    assert line.split(None, 3)[3] == 'the first frame carries only the role ({"role": "assistant"}): the answer starts, no token yet'


def test_a_completion_probe_has_no_first_frame_line() -> None:
    assert "first frame" not in [c.name for c in judge_probe(Probe(text_times=[0.1]))]
    assert "first frame" in [c.name for c in judge_probe(Probe(text_times=[0.1], role_only=False))]
