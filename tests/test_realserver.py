"""acs end to end against real servers nobody on the team wrote: llama.cpp's C++ `llama-server`
and llama-cpp-python's server, each serving a tiny generated llama model on 127.0.0.1.

Marked `realserver`. The servers are built once per machine by `python3 tests/realserver/build.py`
(see tests/realserver/servers.py for the fixtures; without the build these tests are skipped with
that command in the reason). acs always runs as a real subprocess; the servers are never mocked.
What the servers send that vLLM does not is also replayed from captures by the fast suite
(tests/test_realserver_findings.py).
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.cliutil import Streaming, assert_failure
from tests.helpers import run_acs
from tests.ptyutil import PtyRun, strip_ansi
from tests.realserver.proxy import RecordingProxy, parse_response
from tests.realserver.servers import (  # noqa: F401  (fixtures)
    LLAMA_CPP_PYTHON,
    LLAMA_SERVER,
    RunningServer,
    realserver,
    realserver_logs,
    slow_realserver,
)

pytestmark = pytest.mark.realserver

PROMPT = "Once upon a time"
SEED = 42
ACS_TIMEOUT = 120  # seconds for one acs run (generous: a loaded 2-core machine)


def complete_args(
    srv: RunningServer, prompt: str = PROMPT, *extra: str, max_tokens: int = 48, model: bool = True, temperature: float = 0
) -> list[str]:
    args = ["complete"]
    if model:
        args += ["-m", srv.model]
    args += ["--max-tokens", str(max_tokens), "--seed", str(SEED), "--temperature", str(temperature), *extra, prompt]
    return args


def env_at(base_url: str) -> dict[str, str | None]:
    return {"ACS_API_BASE": base_url}


def non_streaming(srv: RunningServer, prompt: str = PROMPT, max_tokens: int = 48, temperature: float = 0) -> dict:
    """The same request acs makes, without streaming, straight to the server."""
    return srv.post_json(
        "/v1/completions",
        {
            "model": srv.model, "prompt": prompt, "max_tokens": max_tokens,
            "seed": SEED, "temperature": temperature, "stream": False,
        },
    )


def frames_of(body: bytes) -> list:
    """The JSON values of an event stream's `data:` lines, [DONE] left out."""
    out = []
    for line in body.split(b"\n"):
        if line.startswith(b"data: ") and line[6:].strip() != b"[DONE]":
            out.append(json.loads(line[6:]))
    return out


def usage_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if "finish:" in line]
    assert len(lines) == 1, stderr
    return lines[0]


# -------------------------------------------------------------------------------- piped output


@pytest.mark.parametrize("prompt", [PROMPT, "Café — naïve 中文 😀:"], ids=["ascii", "unicode"])
@pytest.mark.parametrize("temperature", [0, 0.8], ids=["greedy", "sampled"])
def test_piped_text_is_exactly_the_non_streaming_text(realserver: RunningServer, prompt: str, temperature: float) -> None:
    expected = non_streaming(realserver, prompt, temperature=temperature)["choices"][0]["text"]
    assert len(expected) >= 20, expected  # the model runs to max_tokens with word pieces
    args = complete_args(realserver, prompt, temperature=temperature)
    r = run_acs(args, env=env_at(realserver.base_url), timeout=ACS_TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert r.stdout_bytes == expected.encode("utf-8")
    assert usage_line(r.stderr).endswith("finish: length")


def test_usage_line_is_the_servers_own_count(realserver: RunningServer) -> None:
    with RecordingProxy(realserver.port) as proxy:
        r = run_acs(complete_args(realserver), env=env_at(proxy.base_url), timeout=ACS_TIMEOUT)
        assert proxy.wait_closed(10)
    assert r.returncode == 0, r.stderr
    resp = parse_response(proxy.flows[-1].response_bytes)
    usages = [f["usage"] for f in frames_of(resp.body) if isinstance(f, dict) and f.get("usage")]
    if realserver.kind == LLAMA_SERVER:
        assert len(usages) == 1, usages  # on the finish chunk, asked for or not
        u = usages[0]
        assert u["completion_tokens"] == 48
        assert usage_line(r.stderr) == (
            f"{u['prompt_tokens']} prompt + {u['completion_tokens']} completion = {u['total_tokens']} tokens · finish: length"
        )
        plain = non_streaming(realserver)["usage"]
        assert (plain["prompt_tokens"], plain["completion_tokens"]) == (u["prompt_tokens"], u["completion_tokens"])
    else:
        assert usages == []  # llama-cpp-python never streams usage, include_usage or not
        assert json.loads(proxy.flows[-1].request_bytes.partition(b"\r\n\r\n")[2])["stream_options"] == {
            "include_usage": True
        }
        assert usage_line(r.stderr) == "usage: the server reported none · finish: length"


def test_raw_is_exactly_the_bytes_the_server_sent(realserver: RunningServer) -> None:
    with RecordingProxy(realserver.port) as proxy:
        r = run_acs(complete_args(realserver, PROMPT, "--raw"), env=env_at(proxy.base_url), timeout=ACS_TIMEOUT)
        assert proxy.wait_closed(10)
    assert r.returncode == 0, r.stderr
    assert len(proxy.flows) == 1
    resp = parse_response(proxy.flows[0].response_bytes)
    assert resp.status == 200 and resp.chunks is not None and resp.terminated  # --raw reads to the end
    assert resp.body.endswith(b"data: [DONE]\n\n")
    assert r.stdout_bytes == resp.body
    # and it is this response's bytes, not a replay of some other one: ids differ per request
    again = run_acs(complete_args(realserver, PROMPT, "--raw"), env=env_at(realserver.base_url), timeout=ACS_TIMEOUT)
    assert again.returncode == 0
    ids = {f["id"] for f in frames_of(again.stdout_bytes) if isinstance(f, dict)}
    assert ids and ids.isdisjoint({f["id"] for f in frames_of(resp.body) if isinstance(f, dict)})


# ----------------------------------------------------------------------------------- terminal


def _printable_window(text: str, size: int = 8) -> tuple[int, str]:
    """The first run of `size` printable characters in the text (no control or format
    characters, which acs shows escaped on a terminal)."""
    for i in range(len(text) - size + 1):
        window = text[i : i + size]
        if window.isprintable() and window.strip() == window:
            return i, window
    raise AssertionError(f"no {size} printable characters in a row in {text!r}")


def test_terminal_shows_text_before_the_stream_ends(slow_realserver: RunningServer) -> None:
    srv = slow_realserver
    with RecordingProxy(srv.port) as proxy:
        args = complete_args(srv, PROMPT, max_tokens=600)
        with PtyRun(args, env=env_at(proxy.base_url)) as run:
            rc = run.wait(ACS_TIMEOUT)
            out = run.output
            assert proxy.wait_closed(10)
            flow = proxy.flows[-1]
            resp = parse_response(flow.response_bytes)
            text = "".join(c.get("text") or "" for f in frames_of(resp.body) if isinstance(f, dict) for c in f["choices"])
            _, window = _printable_window(text)
            shown = run.first_time(window.encode("utf-8"))
    assert rc == 0, out.decode("utf-8", "replace")
    done = flow.first_time(b"data: [DONE]")
    first_byte = flow.downstream[0][0]
    assert done is not None and done - first_byte > 1.0, "the slow model answered too fast to tell live from not"
    assert shown is not None, (window, strip_ansi(out)[-500:])
    assert shown < done - 0.5, f"text appeared {done - shown:.2f} s before the stream ended"
    assert "finish: length" in strip_ansi(out).decode("utf-8", "replace")


# ------------------------------------------------------------------------------------- Ctrl-C


def _busy(srv: RunningServer) -> bool:
    """llama-server's /slots: is the (only) slot still processing?"""
    slots = srv.get_json("/slots")
    return bool(slots[0]["is_processing"])


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14 and 15)


def cpu_share(pid: int, seconds: float) -> float:
    """The share of one core the process used over the next `seconds`."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


def wait_for_text(run: Streaming, nbytes: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(run.stdout) < nbytes and run.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(run.stdout) >= nbytes, (run.stdout, run.stderr)


def test_ctrl_c_mid_stream_exits_130_and_the_server_stops_generating(slow_realserver: RunningServer) -> None:
    srv = slow_realserver
    pid = srv.proc.pid
    with Streaming(complete_args(srv, PROMPT, max_tokens=srv.n_ctx - 100), env=env_at(srv.base_url)) as run:
        wait_for_text(run, 40)
        generating = cpu_share(pid, 0.5)  # the positive control: the server is busy generating
        assert run.proc.poll() is None, "the generation ended before Ctrl-C"
        if srv.kind == LLAMA_SERVER:
            assert _busy(srv)
        shown = len(run.stdout)
        run.interrupt()
        rc = run.wait(15)
        stderr = run.stderr.decode("utf-8", "replace")
        stdout = run.stdout
    assert rc == 130, stderr
    assert len(stdout) >= shown > 0  # the text so far stays
    assert "Traceback" not in stderr
    assert "interrupted" in stderr
    assert generating > 0.5, f"the server used only {generating:.0%} of a core while generating"
    time.sleep(0.3)  # the server notices the closed connection at its next token
    after = cpu_share(pid, 1.0)
    assert after < 0.15, f"the server still uses {after:.0%} of a core after Ctrl-C:\n{srv.log()[-2000:]}"
    if srv.kind == LLAMA_SERVER:
        assert not _busy(srv), srv.log()[-2000:]
        assert re.search(r"slot +release", srv.log()), srv.log()[-2000:]
    else:
        assert "Disconnected from client" in srv.log(), srv.log()[-2000:]
    # the server is free again: a new request is answered at once
    t0 = time.monotonic()
    srv.post_json("/v1/completions", {"model": srv.model, "prompt": "Hi", "max_tokens": 1, "stream": False})
    assert time.monotonic() - t0 < 5


def test_another_clients_request_mid_stream(slow_realserver: RunningServer) -> None:
    """llama-server (one slot) queues a second client's request until the stream is done;
    llama-cpp-python (interrupt_requests, its default) ends the running stream at once with
    `data: [DONE]` and no finish reason, then closes without the last chunk. acs must not
    call that cut-short completion whole."""
    srv = slow_realserver
    with Streaming(complete_args(srv, PROMPT, max_tokens=300), env=env_at(srv.base_url)) as run:
        wait_for_text(run, 40)
        assert run.proc.poll() is None, "the generation ended before the second request"
        other = srv.post_json("/v1/completions", {"model": srv.model, "prompt": "Hi", "max_tokens": 1, "stream": False})
        assert other["choices"][0]["finish_reason"] in ("length", "stop")
        rc = run.wait(60)
        stderr = run.stderr.decode("utf-8", "replace")
        stdout = run.stdout
    assert "Traceback" not in stderr
    if srv.kind == LLAMA_SERVER:
        assert rc == 0, stderr
        assert re.fullmatch(r"\d+ prompt \+ 300 completion = \d+ tokens · finish: length", usage_line(stderr)), stderr
        assert stdout.decode("utf-8") == non_streaming(srv, PROMPT, max_tokens=300)["choices"][0]["text"]
    else:
        assert len(stdout) > 0
        assert rc == 10, f"exit {rc} for a completion the server cut short (no finish reason); stderr:\n{stderr}"
        assert "acs: error: incomplete stream" in stderr


# ------------------------------------------------------------------------------------- models


def test_models_lists_the_model(realserver: RunningServer) -> None:
    r = run_acs(["models"], env=env_at(realserver.base_url), timeout=ACS_TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert r.stdout == realserver.model + "\n"


def test_the_only_model_is_picked_without_m(realserver: RunningServer) -> None:
    expected = non_streaming(realserver, max_tokens=16)["choices"][0]["text"]
    with RecordingProxy(realserver.port) as proxy:
        r = run_acs(complete_args(realserver, max_tokens=16, model=False), env=env_at(proxy.base_url), timeout=ACS_TIMEOUT)
        assert proxy.wait_closed(10)
    assert r.returncode == 0, r.stderr
    assert r.stdout == expected
    # the model lookup and the completion go over one kept-alive connection, one after the other
    assert len(proxy.flows) == 1, [f.request_bytes[:40] for f in proxy.flows]
    sent = proxy.flows[0].request_bytes
    assert sent.startswith(b"GET /v1/models "), sent[:200]
    post = sent.index(b"POST /v1/completions ")
    body = sent[post:].partition(b"\r\n\r\n")[2]
    assert sent.count(b"POST /v1/completions ") == 1 and json.loads(body)["model"] == realserver.model


# ------------------------------------------------------------------------- context overflow

LONG_PROMPT = "hello world " * 400  # about 800 tokens for a context of 512


def test_prompt_longer_than_the_context(realserver: RunningServer) -> None:
    r = run_acs(complete_args(realserver, LONG_PROMPT, max_tokens=8), env=env_at(realserver.base_url), timeout=ACS_TIMEOUT)
    if realserver.kind == LLAMA_SERVER:
        # the server's own 400 message, as it answers the same request
        req = urllib.request.Request(
            realserver.origin + "/v1/completions",
            data=json.dumps({"model": realserver.model, "prompt": LONG_PROMPT, "max_tokens": 8, "stream": True}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(req, timeout=30)
        assert exc.value.code == 400
        server_message = json.loads(exc.value.read())["error"]["message"]
        assert "exceeds the available context size" in server_message
        message, _hint = assert_failure(r, 7)
        assert server_message in message
    else:
        # llama-cpp-python: 200, text/event-stream, and an empty body
        message, _hint = assert_failure(r, 10)
        assert "incomplete" in message
    assert r.stdout == ""


def test_doctor_passes(realserver: RunningServer) -> None:
    """`acs doctor` against each real server: no check fails (llama-cpp-python sends no usage:
    that is a warning, not a failure), and the checklist names the model it found."""
    r = run_acs(["doctor", "--json"], env=env_at(realserver.base_url), timeout=ACS_TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["ok"] is True
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert "fail" not in statuses.values(), statuses
    assert statuses.get("usage") == ("warn" if realserver.kind == LLAMA_CPP_PYTHON else "pass"), statuses
    assert realserver.model in json.dumps(report)
    text = run_acs(["doctor"], env=env_at(realserver.base_url), timeout=ACS_TIMEOUT)
    assert text.returncode == 0 and "Traceback" not in text.stderr
