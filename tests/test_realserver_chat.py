"""`acs chat` end to end against the real servers (llama.cpp's llama-server and llama-cpp-python's
server), each serving the tiny generated model, whose GGUF carries a small chat template
(`role: content` lines, then `assistant:`) that both servers apply on /v1/chat/completions.

Marked `realserver` (see tests/realserver/README.md; skipped without the build). acs runs as in
tests/test_realserver.py; what these servers send is also replayed from captures by the fast
suite (tests/test_realserver_chat_findings.py).
"""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.cliutil import Streaming
from tests.helpers import run_acs
from tests.realserver.proxy import RecordingProxy, parse_response
from tests.realserver.servers import (  # noqa: F401  (fixtures)
    LLAMA_CPP_PYTHON,
    LLAMA_SERVER,
    RunningServer,
    realserver,
    realserver_logs,
    slow_realserver,
)
from tests.test_realserver import ACS_TIMEOUT, SEED, _busy, cpu_share, env_at, frames_of, usage_line, wait_for_text

pytestmark = pytest.mark.realserver

PROMPT = "Tell me a story."
SYSTEM = "You are terse."


def chat_args(srv: RunningServer, *extra: str, prompt: str = PROMPT, max_tokens: int = 48, temperature: float = 0) -> list[str]:
    return ["chat", "-m", srv.model, "--system", SYSTEM, "--max-tokens", str(max_tokens), "--seed", str(SEED), "--temperature", str(temperature), *extra, prompt]


def non_streaming(srv: RunningServer, prompt: str = PROMPT, max_tokens: int = 48, temperature: float = 0) -> dict:
    """The same chat request acs makes, without streaming, straight to the server."""
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
    body = {"model": srv.model, "messages": messages, "max_tokens": max_tokens, "seed": SEED, "temperature": temperature, "stream": False}
    return srv.post_json("/v1/chat/completions", body)


@pytest.mark.parametrize("prompt", [PROMPT, "Café — naïve 中文 😀?"], ids=["ascii", "unicode"])
@pytest.mark.parametrize("temperature", [0, 0.8], ids=["greedy", "sampled"])
def test_piped_chat_is_exactly_the_non_streaming_content(realserver: RunningServer, prompt: str, temperature: float) -> None:
    expected = non_streaming(realserver, prompt, temperature=temperature)["choices"][0]["message"]["content"]
    assert len(expected) >= 20, expected  # the model runs to max_tokens with word pieces
    r = run_acs(chat_args(realserver, prompt=prompt, temperature=temperature), env=env_at(realserver.base_url), timeout=ACS_TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert r.stdout_bytes == expected.encode("utf-8")
    assert usage_line(r.stderr).endswith("finish: length")


def test_chat_json_message_and_usage(realserver: RunningServer) -> None:
    plain = non_streaming(realserver)
    with RecordingProxy(realserver.port) as proxy:
        r = run_acs(chat_args(realserver, "--json"), env=env_at(proxy.base_url), timeout=ACS_TIMEOUT)
        assert proxy.wait_closed(10)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    [choice] = doc["choices"]
    assert choice["message"] == {"role": "assistant", "content": plain["choices"][0]["message"]["content"], "reasoning": None, "tool_calls": []}
    assert choice["finish_reason"] == "length"
    streamed = [f["usage"] for f in frames_of(parse_response(proxy.flows[-1].response_bytes).body) if isinstance(f, dict) and f.get("usage")]
    if realserver.kind == LLAMA_SERVER:
        assert len(streamed) == 1  # the include_usage chunk, choices: []
        assert doc["usage"] == streamed[0]
        assert (doc["usage"]["prompt_tokens"], doc["usage"]["completion_tokens"]) == (plain["usage"]["prompt_tokens"], plain["usage"]["completion_tokens"])
        assert doc["timings"]["estimated"] is False
    else:
        assert streamed == [] and doc["usage"] is None  # llama-cpp-python never streams chat usage
        assert doc["timings"]["estimated"] is True and doc["timings"]["tokens"] == plain["usage"]["completion_tokens"]


def test_chat_usage_line_is_the_servers_own_count(realserver: RunningServer) -> None:
    r = run_acs(chat_args(realserver), env=env_at(realserver.base_url), timeout=ACS_TIMEOUT)
    assert r.returncode == 0, r.stderr
    if realserver.kind == LLAMA_SERVER:
        u = non_streaming(realserver)["usage"]
        assert usage_line(r.stderr) == f"{u['prompt_tokens']} prompt + {u['completion_tokens']} completion = {u['total_tokens']} tokens · finish: length"
    else:
        assert usage_line(r.stderr) == "usage: the server reported none · finish: length"


def test_chat_raw_is_exactly_the_bytes_the_server_sent(realserver: RunningServer) -> None:
    with RecordingProxy(realserver.port) as proxy:
        r = run_acs(chat_args(realserver, "--raw"), env=env_at(proxy.base_url), timeout=ACS_TIMEOUT)
        assert proxy.wait_closed(10)
    assert r.returncode == 0, r.stderr
    resp = parse_response(proxy.flows[-1].response_bytes)
    assert resp.status == 200 and resp.terminated and resp.body.endswith(b"data: [DONE]\n\n")
    assert r.stdout_bytes == resp.body
    first = frames_of(resp.body)[0]
    assert first["object"] == "chat.completion.chunk" and first["choices"][0]["delta"]["role"] == "assistant"
    assert not first["choices"][0]["delta"].get("content")  # the role-only first chunk


def test_the_system_message_reaches_the_chat_template(realserver: RunningServer) -> None:
    """The template writes `role: content` lines: a system message adds its tokens to the prompt."""
    r = run_acs(["chat", "-m", realserver.model, "--json", "--max-tokens", "4", "Hi"], env=env_at(realserver.base_url), timeout=ACS_TIMEOUT)
    with_system = run_acs(["chat", "-m", realserver.model, "--json", "--max-tokens", "4", "--system", "Be brief and kind.", "Hi"],
                          env=env_at(realserver.base_url), timeout=ACS_TIMEOUT)
    assert r.returncode == with_system.returncode == 0
    if realserver.kind == LLAMA_SERVER:
        assert json.loads(with_system.stdout)["usage"]["prompt_tokens"] > json.loads(r.stdout)["usage"]["prompt_tokens"]


def test_ctrl_c_mid_chat_exits_130_and_the_server_stops_generating(slow_realserver: RunningServer) -> None:
    srv = slow_realserver
    pid = srv.proc.pid
    with Streaming(chat_args(srv, max_tokens=srv.n_ctx - 200), env=env_at(srv.base_url)) as run:
        wait_for_text(run, 40)
        generating = cpu_share(pid, 0.5)
        assert run.proc.poll() is None, "the generation ended before Ctrl-C"
        if srv.kind == LLAMA_SERVER:
            assert _busy(srv)
        shown = len(run.stdout)
        run.interrupt()
        rc = run.wait(15)
        stderr = run.stderr.decode("utf-8", "replace")
        stdout = run.stdout
    assert rc == 130, stderr
    assert len(stdout) >= shown > 0 and "Traceback" not in stderr and "interrupted" in stderr
    # the positive control, relative: on a loaded 2-core machine the server gets a fraction of a core
    assert generating > 0.15, f"the server used only {generating:.0%} of a core while generating"
    time.sleep(0.3)
    after = cpu_share(pid, 1.0)
    assert after < min(0.15, generating / 3), f"the server still uses {after:.0%} of a core after Ctrl-C (and {generating:.0%} before):\n{srv.log()[-2000:]}"
    if srv.kind == LLAMA_SERVER:
        assert not _busy(srv) and re.search(r"slot +release", srv.log())
    else:
        assert "Disconnected from client" in srv.log()


def test_doctor_chat_passes(realserver: RunningServer) -> None:
    """`acs doctor --chat` against each real server: no check fails, and both open the answer with
    a role-only frame (llama-cpp-python sends no chat usage: a warning)."""
    r = run_acs(["doctor", "--chat", "--json"], env=env_at(realserver.base_url), timeout=ACS_TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
    assert "fail" not in {c["status"] for c in checks.values()}, checks
    assert checks["completion"]["detail"].startswith("POST /chat/completions answered 200")
    assert "only the role" in checks["first frame"]["detail"]
    assert checks["usage"]["status"] == ("warn" if realserver.kind == LLAMA_CPP_PYTHON else "pass")
