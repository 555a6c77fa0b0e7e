"""`acs doctor` end to end: the real command as a subprocess against scripted loopback servers
(plain HTTP, and HTTPS through a small TLS front with a certificate made at test time)."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest

from acs_cli.doctor import NAMES
from tests.cliutil import COMPLETIONS, KEY, MODELS, LoopbackListener, closed_port, text_reply
from tests.helpers import run_acs
from tests.ptyutil import PtyRun, colour_sgr
from tests.sse_server import Reply, ScriptedServer, vllm_frame

MARKS = {"pass": "✓", "warn": "⚠", "fail": "✗", "skip": "–"}
WORDS = [f" w{i}" for i in range(8)]


def models_reply(*ids: str) -> Reply:
    return Reply.json(200, {"object": "list", "data": [{"id": i, "object": "model", "owned_by": "vllm"} for i in ids]})


def serve(server: ScriptedServer, completion: Reply | None = None, models: Reply | None = None) -> ScriptedServer:
    server.route("GET", MODELS, models or models_reply("m"))
    server.route("POST", COMPLETIONS, completion or text_reply(WORDS, delay=0.05))
    return server


def env(base: str | None, **extra: str | None) -> dict[str, str | None]:
    out: dict[str, str | None] = {"ACS_API_KEY": KEY, "ACS_MODEL": "m"}
    if base is not None:
        out["ACS_API_BASE"] = base
    out.update(extra)
    return out


def doctor(args: list[str], environment: dict[str, str | None], timeout: float = 60) -> subprocess.CompletedProcess:
    r = run_acs(["doctor", *args], env=environment, timeout=timeout)
    assert "Traceback" not in r.stderr, r.stderr
    assert KEY not in r.stdout and KEY not in r.stderr, "the key leaked"
    assert "\x1b" not in r.stdout and "\x1b" not in r.stderr, "escape codes in piped output"
    return r


def doctor_json(args: list[str], environment: dict[str, str | None], timeout: float = 60) -> tuple[int, dict[str, Any], dict[str, dict[str, Any]]]:
    r = doctor([*args, "--json"], environment, timeout)
    payload = json.loads(r.stdout)
    assert set(payload) >= {"ok", "base_url", "checks"}
    assert payload["ok"] == (r.returncode == 0)
    checks = {c["name"]: c for c in payload["checks"]}
    assert [c["name"] for c in payload["checks"]] == list(NAMES) or payload["checks"][0]["name"] == "settings"
    for c in payload["checks"]:
        assert set(c) == {"name", "status", "detail", "hint", "seconds"}
        assert c["status"] in MARKS
        assert (c["hint"] is not None) == (c["status"] in ("warn", "fail")), c
    return r.returncode, payload, checks


def text_checks(stdout: str) -> dict[str, tuple[str, str, str | None]]:
    """name -> (status, detail, hint) from the checklist's lines."""
    out: dict[str, tuple[str, str, str | None]] = {}
    status_of = {mark: status for status, mark in MARKS.items()}
    lines = stdout.splitlines()
    for i, line in enumerate(lines):
        if not line or line[0] not in status_of:
            continue
        rest = line[2:]
        folded = re.fullmatch(r"\d+ checks skipped \((.*)\): (.*)", rest)
        if folded:  # a run of checks skipped for one reason: one line naming them
            for name in folded.group(2).split(", "):
                out[name] = ("skip", f"skipped: {folded.group(1)}", None)
            continue
        name = next(n for n in sorted(NAMES, key=len, reverse=True) if rest.startswith(n))
        hint = None
        if i + 1 < len(lines) and lines[i + 1].lstrip().startswith("hint: "):
            hint = lines[i + 1].strip()[len("hint: ") :]
        out[name] = (status_of[line[0]], rest[len(name) :].strip(), hint)
    return out


def statuses(checks: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: c["status"] for name, c in checks.items()}


# ---------------------------------------------------------------------------------------- healthy


def test_healthy_server_passes_every_check(server: ScriptedServer) -> None:
    serve(server)
    r = doctor([], env(server.base_url))
    assert r.returncode == 0, r.stdout
    checks = text_checks(r.stdout)
    assert list(checks) == list(NAMES)
    assert checks["TLS"][0] == "skip" and "plain http" in checks["TLS"][1]
    assert all(status == "pass" for name, (status, _, _) in checks.items() if name != "TLS"), r.stdout
    assert f"connected to 127.0.0.1:{server.port} in " in checks["TCP connect"][1]
    assert " ms" in checks["DNS"][1]
    assert checks["finish reason"][1] == "finish: stop"
    assert "5 prompt + 8 completion = 13 tokens" in checks["usage"][1]
    assert "first text after" in checks["first token"][1]
    assert "as they are generated" in checks["buffering"][1]
    assert "proxy_buffering" not in r.stdout
    assert r.stdout.splitlines()[-1].startswith("ok: 12 passed")
    assert r.stderr == ""

    # the probe request: short, deterministic, streamed, asks for usage; the key went to the server
    probe = [q for q in server.requests if q.path == COMPLETIONS][0]
    body = probe.json()
    assert body["model"] == "m" and body["prompt"] == "Hello" and body["max_tokens"] == 16
    assert body["temperature"] == 0 and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert probe.headers["authorization"] == f"Bearer {KEY}"


def test_healthy_server_json(server: ScriptedServer) -> None:
    serve(server, completion=text_reply(WORDS[:5], delay=0.05))  # a healthy server honours max_tokens 5
    code, payload, checks = doctor_json(["--max-tokens", "5"], env(server.base_url))
    assert code == 0
    assert payload["ok"] is True and payload["base_url"] == server.base_url
    assert statuses(checks)["TLS"] == "skip"
    assert all(s == "pass" for n, s in statuses(checks).items() if n != "TLS")
    assert checks["TCP connect"]["seconds"] > 0
    assert checks["first token"]["seconds"] > 0
    assert [q for q in server.requests if q.path == COMPLETIONS][0].json()["max_tokens"] == 5


def test_flags_override_the_environment(server: ScriptedServer) -> None:
    serve(server, models=models_reply("a", "b"))
    code, _, checks = doctor_json(["--base-url", server.base_url, "-m", "b", "--timeout", "30"], env("http://127.0.0.1:1/v1", ACS_MODEL="a"))
    assert code == 0
    assert "timeout 30 s" in checks["base URL"]["detail"]
    assert checks["model"]["detail"].startswith("b is served")


def test_no_key_configured(server: ScriptedServer) -> None:
    serve(server)
    code, _, checks = doctor_json([], env(server.base_url, ACS_API_KEY=None))
    assert code == 0
    assert "no key" in checks["auth"]["detail"]
    assert "authorization" not in server.requests[0].headers


# ---------------------------------------------------------------------------------------- network


def test_connection_refused_fails_at_tcp_and_skips_the_rest() -> None:
    port = closed_port()
    r = doctor([], env(f"http://127.0.0.1:{port}/v1"))
    assert r.returncode == 4, r.stdout
    checks = text_checks(r.stdout)
    assert checks["base URL"][0] == "pass" and checks["DNS"][0] == "pass"
    status, detail, hint = checks["TCP connect"]
    assert status == "fail" and f"127.0.0.1:{port}" in detail and "refused" in detail.lower()
    assert hint and "start the server" in hint
    for name in NAMES[NAMES.index("TLS") :]:
        assert checks[name][0] == "skip" and "TCP connect failed" in checks[name][1]
    assert "failed at TCP connect (exit 4)" in r.stdout.splitlines()[-1]


def test_dns_failure() -> None:
    code, payload, checks = doctor_json([], env("http://acs-doctor-no-such-host.invalid:8000/v1"))
    assert code == 4 and payload["ok"] is False
    assert checks["DNS"]["status"] == "fail"
    assert "acs-doctor-no-such-host.invalid" in checks["DNS"]["detail"]
    assert "host name" in checks["DNS"]["hint"]
    assert statuses(checks)["TCP connect"] == "skip"


def test_malformed_base_url_is_a_config_failure() -> None:
    code, _, checks = doctor_json([], env("ftp://example.com/v1"))
    assert code == 3
    assert checks["base URL"]["status"] == "fail" and "scheme" in checks["base URL"]["detail"]
    assert all(c["status"] == "skip" for n, c in checks.items() if n != "base URL")


def test_proxy_from_the_environment_is_what_gets_checked(server: ScriptedServer) -> None:
    serve(server)
    port = closed_port()
    code, _, checks = doctor_json([], env(server.base_url, HTTP_PROXY=f"http://127.0.0.1:{port}", NO_PROXY=None))
    assert code == 4
    assert "proxy" in checks["TCP connect"]["detail"] and str(port) in checks["TCP connect"]["detail"]
    assert not server.requests


# ---------------------------------------------------------------------------------------- HTTP


def test_401_on_models_is_an_auth_failure(server: ScriptedServer) -> None:
    serve(server, models=Reply.json(401, {"error": {"message": "Invalid API key", "type": "Unauthorized"}}))
    r = doctor([], env(server.base_url))
    assert r.returncode == 6, r.stdout
    checks = text_checks(r.stdout)
    status, detail, hint = checks["auth"]
    assert status == "fail" and "401" in detail and "Invalid API key" in detail
    assert hint and "ACS_API_KEY" in hint
    assert checks["model"][0] == "skip"
    assert not [q for q in server.requests if q.path == COMPLETIONS]


def test_401_without_a_key_says_to_set_one(server: ScriptedServer) -> None:
    serve(server, models=Reply.json(401, {"error": "Unauthorized"}))
    code, _, checks = doctor_json([], env(server.base_url, ACS_API_KEY=None))
    assert code == 6
    assert "set ACS_API_KEY" in checks["auth"]["hint"]


def test_unknown_model_is_a_config_failure_listing_the_models(server: ScriptedServer) -> None:
    serve(server, models=models_reply("llama-8b", "qwen-7b"))
    code, _, checks = doctor_json([], env(server.base_url, ACS_MODEL="gpt-9"))
    assert code == 3
    model = checks["model"]
    assert model["status"] == "fail" and "gpt-9" in model["detail"]
    assert "llama-8b" in model["detail"] and "qwen-7b" in model["detail"]
    assert "--model" in model["hint"]
    assert statuses(checks)["completion"] == "skip"


def test_several_models_and_none_configured(server: ScriptedServer) -> None:
    serve(server, models=models_reply("llama-8b", "qwen-7b"))
    code, _, checks = doctor_json([], env(server.base_url, ACS_MODEL=None))
    assert code == 3
    assert "serves 2: llama-8b, qwen-7b" in checks["model"]["detail"]
    assert "ACS_MODEL" in checks["model"]["hint"]


def test_one_model_and_none_configured_is_used(server: ScriptedServer) -> None:
    serve(server, models=models_reply("only-one"))
    code, _, checks = doctor_json([], env(server.base_url, ACS_MODEL=None))
    assert code == 0
    assert "only-one will be used" in checks["model"]["detail"]
    assert [q for q in server.requests if q.path == COMPLETIONS][0].json()["model"] == "only-one"


def test_http_500_on_the_completion(server: ScriptedServer) -> None:
    serve(server, completion=Reply.json(500, {"error": {"message": "CUDA out of memory"}}))
    code, _, checks = doctor_json([], env(server.base_url))
    assert code == 8
    assert checks["completion"]["status"] == "fail" and "CUDA out of memory" in checks["completion"]["detail"]
    assert statuses(checks)["stream"] == "skip"


# ---------------------------------------------------------------------------------------- stream


def test_stream_without_usage_warns(server: ScriptedServer) -> None:
    serve(server, completion=text_reply(WORDS, usage=None))
    r = doctor([], env(server.base_url))
    assert r.returncode == 0, r.stdout
    status, detail, hint = text_checks(r.stdout)["usage"]
    assert status == "warn" and "the server sends no usage; `acs` will say so" in detail and hint
    assert "1 warning" in r.stdout.splitlines()[-1]


def test_stream_without_done_and_without_finish_is_incomplete(server: ScriptedServer) -> None:
    serve(server, completion=Reply.sse([vllm_frame(" a"), vllm_frame(" b")], done=False))
    code, _, checks = doctor_json([], env(server.base_url))
    assert code == 10
    assert statuses(checks)["stream"] == "pass"
    assert checks["finish reason"]["status"] == "fail"
    assert checks["[DONE]"]["status"] == "fail"


def test_stream_without_done_but_finished_warns(server: ScriptedServer) -> None:
    serve(server, completion=text_reply(WORDS, done=False))
    code, _, checks = doctor_json([], env(server.base_url))
    assert code == 0
    assert checks["finish reason"]["status"] == "pass"
    assert checks["[DONE]"]["status"] == "warn" and "without data: [DONE]" in checks["[DONE]"]["detail"]


def test_error_frame_is_a_stream_error(server: ScriptedServer) -> None:
    error = {"error": {"message": "the engine died", "type": "InternalServerError", "code": 500}}
    serve(server, completion=Reply.sse([vllm_frame(" a"), error]))
    code, _, checks = doctor_json([], env(server.base_url))
    assert code == 9
    assert checks["stream"]["status"] == "fail" and "the engine died" in checks["stream"]["detail"]
    assert all(checks[n]["status"] == "skip" for n in NAMES[NAMES.index("finish reason") :])


def test_frame_that_is_not_json_is_a_protocol_error(server: ScriptedServer) -> None:
    serve(server, completion=Reply.sse([vllm_frame(" a"), "{not json"]))
    code, _, checks = doctor_json([], env(server.base_url))
    assert code == 11
    assert "not JSON" in checks["stream"]["detail"]


def test_cut_connection_is_incomplete(server: ScriptedServer) -> None:
    serve(server, completion=Reply.sse([vllm_frame(" a"), vllm_frame(" b")], done=False, end="abort"))
    code, _, checks = doctor_json([], env(server.base_url))
    assert code == 10
    assert checks["stream"]["status"] == "fail" and "closed mid-stream" in checks["stream"]["detail"]


def test_json_answer_instead_of_a_stream_warns(server: ScriptedServer) -> None:
    document = {
        "id": "cmpl-1",
        "object": "text_completion",
        "model": "m",
        "choices": [{"index": 0, "text": " there", "finish_reason": "length"}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 16, "total_tokens": 18},
    }
    serve(server, completion=Reply.json(200, document))
    code, _, checks = doctor_json([], env(server.base_url))
    assert code == 0
    assert checks["completion"]["status"] == "warn" and "not an event stream" in checks["completion"]["detail"]
    assert '"stream": true' in checks["completion"]["hint"]
    assert checks["finish reason"]["status"] == "pass"
    assert checks["usage"]["status"] == "pass"
    assert checks["[DONE]"]["status"] == "skip" and checks["buffering"]["status"] == "skip"


def test_html_answer_is_a_protocol_error(server: ScriptedServer) -> None:
    page = Reply(headers=[("content-type", "text/html")], segments=[b"<html><title>Sign in</title></html>"], end="length")
    serve(server, completion=page)
    code, _, checks = doctor_json([], env(server.base_url))
    assert code == 11
    assert "text/html" in checks["completion"]["detail"]


# ---------------------------------------------------------------------------------------- buffering


def buffered() -> Reply:
    """What a buffering proxy delivers: nothing for a second, then every frame in one write."""
    whole = b"".join(text_reply(WORDS).segments)
    return Reply(segments=[whole], first_delay=1.0)


def test_buffering_proxy_is_detected(server: ScriptedServer) -> None:
    serve(server, completion=buffered())
    r = doctor([], env(server.base_url))
    assert r.returncode == 0, r.stdout  # a warning, not a failure
    status, detail, hint = text_checks(r.stdout)["buffering"]
    assert status == "warn" and "frames arrive all at once: a proxy is buffering the stream" in detail
    assert hint and "proxy_buffering off;" in hint and "X-Accel-Buffering: no" in hint
    assert "X-Accel-Buffering: no" not in detail


def test_paced_stream_is_not_buffered(server: ScriptedServer) -> None:
    headers = [("content-type", "text/event-stream"), ("x-accel-buffering", "no")]
    serve(server, completion=text_reply(WORDS, delay=0.05, first_delay=0.3, headers=headers))
    code, _, checks = doctor_json([], env(server.base_url))
    assert code == 0
    assert checks["buffering"]["status"] == "pass"
    assert "proxy_buffering" not in json.dumps(checks)
    assert "X-Accel-Buffering: no" in checks["buffering"]["detail"]
    assert checks["first token"]["seconds"] >= 0.3


def test_silence_past_the_timeout(server: ScriptedServer) -> None:
    serve(server, completion=Reply.sse([vllm_frame(" a")], done=False, end="hang"))
    code, _, checks = doctor_json(["--timeout", "0.5"], env(server.base_url))
    assert code == 5
    assert checks["stream"]["status"] == "fail" and "0.5 s" in checks["stream"]["detail"]


# ---------------------------------------------------------------------------------------- the probe's limits


def test_a_server_that_ignores_max_tokens_is_cut_off_with_a_warning(server: ScriptedServer) -> None:
    endless = Reply.sse([vllm_frame(f" w{i}") for i in range(5000)], done=False)  # far more than asked, no end
    serve(server, completion=endless)
    r = doctor(["--max-tokens", "5"], env(server.base_url))
    assert r.returncode == 0, r.stdout  # a warning, not a failure
    checks = text_checks(r.stdout)
    status, detail, hint = checks["stream"]
    assert status == "warn" and "the server sent more than max_tokens:" in detail and "for max_tokens 5" in detail
    assert "the probe stopped reading there" in detail and hint and "ignores max_tokens" in hint
    frames = int(detail.split("max_tokens: ")[1].split(" frames")[0])
    assert 4 * 5 < frames < 5000
    assert "– 3 checks skipped (the probe stopped reading before the end): finish reason, [DONE], usage" in r.stdout.splitlines()
    assert checks["first token"][0] == "pass" and checks["buffering"][0] in ("pass", "warn")
    assert server.wait_for_disconnect(10)  # the probe hung up instead of reading on


def test_a_stream_that_never_ends_is_cut_off_by_the_time_budget(server: ScriptedServer, monkeypatch) -> None:
    monkeypatch.setattr("acs_cli.doctor.probe.PROBE_SECONDS", 0.3)
    pings = Reply(segments=[b": ping\n\n"] * 400, delay=0.025)  # 10 s of keep-alive comments
    serve(server, completion=pings)
    code, _, checks = doctor_json([], env(server.base_url))
    assert code == 0
    assert checks["stream"]["status"] == "warn" and "the stream was still going after 300 ms" in checks["stream"]["detail"]
    assert checks["stream"]["seconds"] < 5
    assert checks["first token"]["status"] == "warn"


def test_a_body_past_the_byte_budget_is_cut_off(server: ScriptedServer) -> None:
    flood = Reply(segments=[b": " + b"x" * 65536 + b"\n"] * 200)  # 13 MB of comments
    serve(server, completion=flood)
    code, _, checks = doctor_json([], env(server.base_url))
    assert code == 0
    assert checks["stream"]["status"] == "warn" and "the server sent more than 352 KiB for max_tokens 16" in checks["stream"]["detail"]


def test_a_large_json_answer_is_cut_off(server: ScriptedServer) -> None:
    document = {"choices": [{"index": 0, "text": "x" * 1_000_000, "finish_reason": "length"}]}
    serve(server, completion=Reply.json(200, document))
    code, _, checks = doctor_json([], env(server.base_url))
    assert code == 0
    assert checks["completion"]["status"] == "warn" and checks["stream"]["status"] == "warn"
    assert "more than 352 KiB" in checks["stream"]["detail"]


def test_done_before_the_finish_reason_fails_as_complete_does(server: ScriptedServer) -> None:
    serve(server, completion=Reply.sse([vllm_frame(" a"), vllm_frame(" b")]))
    code, _, checks = doctor_json([], env(server.base_url))
    assert code == 10
    assert checks["finish reason"]["status"] == "fail" and "[DONE] came before" in checks["finish reason"]["detail"]
    assert checks["[DONE]"]["status"] == "pass"


def test_the_probe_takes_its_endpoint_as_a_parameter(server: ScriptedServer, monkeypatch, tmp_path: Path) -> None:
    """What a chat probe will change: the path, the body and the parser state; nothing else."""
    monkeypatch.setenv("HOME", str(tmp_path))  # no config file, no key from the developer's environment
    for name in [n for n in os.environ if n.upper().startswith(("ACS_", "OPENAI_"))]:
        monkeypatch.delenv(name)
    from acs_cli.api import Api
    from acs_cli.completion_state import CompletionState
    from acs_cli.doctor.judge import judge_probe
    from acs_cli.doctor.probe import Endpoint, run_probe
    from acs_cli.settings import load_settings

    states: list[CompletionState] = []

    def state() -> CompletionState:
        states.append(CompletionState())
        return states[-1]

    def body(model: str, max_tokens: int) -> dict[str, Any]:
        return {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": max_tokens, "stream": True}

    def open_chat(api: Api, payload: dict[str, Any]) -> Any:
        return api.client.send(api.client.build_request("POST", api.url("chat/completions"), json=payload), stream=True)

    server.route("POST", "/v1/chat/completions", text_reply(WORDS[:3]))
    settings = load_settings(api_base=server.base_url, model="m")
    with Api(settings, retries=0) as api:
        probe = run_probe(api, Endpoint("chat/completions", body, state, open_chat), "m", 3, 5.0)
    checks = {c.name: c for c in judge_probe(probe)}
    assert len(states) == 1 and states[0].done
    assert checks["completion"].detail.startswith("POST /chat/completions answered 200 text/event-stream")
    assert all(c.status == "pass" for c in checks.values()), checks
    sent = [q for q in server.requests if q.path == "/v1/chat/completions"][0].json()
    assert sent["messages"][0]["content"] == "Hi" and sent["max_tokens"] == 3


# ---------------------------------------------------------------------------------------- what doctor shows


def test_the_preview_shows_a_newline_once(server: ScriptedServer) -> None:
    serve(server, completion=text_reply(["one\n", "two"]))
    r = doctor([], env(server.base_url))
    assert r.returncode == 0, r.stdout
    assert text_checks(r.stdout)["stream"][1].endswith(': "one\\ntwo"')
    _, _, checks = doctor_json([], env(server.base_url))
    assert checks["stream"]["detail"].endswith(': "one\\ntwo"')


def test_server_strings_are_shown_visibly(server: ScriptedServer) -> None:
    hostile = "m\x1b[2J\x1b]0;pwned\x07\u202e"
    serve(server, completion=Reply.json(500, {"error": {"message": f"boom {hostile}"}}), models=models_reply(hostile))
    r = doctor([], env(server.base_url, ACS_MODEL=None))
    assert r.returncode == 8
    assert "m\\e[2J\\e]0;pwned\\x07\\u202e will be used" in r.stdout
    assert "boom m\\e[2J" in text_checks(r.stdout)["completion"][1]
    code, payload, checks = doctor_json([], env(server.base_url, ACS_MODEL=None))
    assert "\\e[2J" in checks["model"]["detail"] and "\x1b" not in json.dumps(payload, ensure_ascii=False)


def test_a_password_in_the_base_url_is_masked_everywhere(server: ScriptedServer) -> None:
    serve(server, models=models_reply())
    base = server.base_url.replace("http://", "http://bob:hunter2@")
    for args in ([], ["--json"]):
        r = doctor(args, env(base))
        assert r.returncode == 3, r.stdout
        assert "hunter2" not in r.stdout + r.stderr
        assert "bob:***@127.0.0.1" in r.stdout
    assert json.loads(r.stdout)["base_url"] == base.replace("hunter2", "***")


@pytest.mark.parametrize(
    "host, status",
    [
        ("127.0.0.1.invalid", "warn"),  # a name spelled like an address is not loopback
        ("localhost.invalid", "warn"),
        ("192.0.2.1", "warn"),
        ("127.0.0.1", "pass"),
        ("127.45.6.7", "pass"),  # all of 127/8 is loopback
        ("[::1]", "pass"),
        ("[::ffff:127.0.0.1]", "pass"),
    ],
)
def test_the_plain_http_key_warning_decides_loopback_by_address(host: str, status: str, monkeypatch) -> None:
    monkeypatch.setattr("acs_cli.doctor.checks.CONNECT_TIMEOUT", 0.5)  # 192.0.2.1 is a blackhole: no need to wait
    _, _, checks = doctor_json([], env(f"http://{host}:{closed_port()}/v1"))
    assert checks["base URL"]["status"] == status, checks["base URL"]
    assert ("the key goes over plain http://" in checks["base URL"]["detail"]) == (status == "warn")


def test_long_lines_wrap_on_a_terminal_and_not_in_a_pipe(server: ScriptedServer) -> None:
    serve(server)
    r = run_acs(["doctor"], env=env(server.base_url, COLUMNS="60"), stdout_tty=True, timeout=60)
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert all(len(line) <= 60 for line in lines), r.stdout
    assert any(line.startswith(" " * 17) and line.strip() for line in lines)  # a continuation under the detail
    piped = doctor([], env(server.base_url, COLUMNS="60"))
    assert max(len(line) for line in piped.stdout.splitlines()) > 60
    assert len(piped.stdout.splitlines()) == 15  # the title, 13 checks, the summary: one line each


# ---------------------------------------------------------------------------------------- terminal


def test_colour_on_a_terminal_and_no_color(server: ScriptedServer) -> None:
    serve(server)
    with PtyRun(["doctor"], env=env(server.base_url)) as run:
        assert run.wait(60) == 0
        assert colour_sgr(run.output), run.text
        assert "✓ buffering" in run.text.replace("\x1b[32m✓\x1b[0m", "✓")
        assert KEY not in run.text
    with PtyRun(["doctor"], env=env(server.base_url, NO_COLOR="1")) as run:
        assert run.wait(60) == 0
        assert "\x1b[" not in run.text and "✓ buffering" in run.text


# ---------------------------------------------------------------------------------------- TLS


class TLSFront(LoopbackListener):
    """An HTTPS front on 127.0.0.1: terminates TLS with the given certificate and relays the bytes
    to a plain loopback server (one thread per connection). Handshakes the client aborts are fine."""

    threaded = True
    scheme = "https"

    def __init__(self, cert: Path, key: Path, backend_port: int) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.backend_port = backend_port
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            conn.close()
            return
        backend = socket.create_connection(("127.0.0.1", self.backend_port))
        try:
            tls.setblocking(False)
            backend.setblocking(False)
            while not self._stop.is_set():
                ready, _, _ = select.select([tls, backend], [], [], 0.05)
                pending = [tls] if tls.pending() else []
                for src in set(ready) | set(pending):
                    dst = backend if src is tls else tls
                    try:
                        data = src.recv(65536)
                    except (ssl.SSLWantReadError, BlockingIOError):
                        continue
                    if not data:
                        return
                    dst.setblocking(True)
                    dst.sendall(data)
                    dst.setblocking(False)
        except (ssl.SSLError, OSError):
            return
        finally:
            for s in (tls, backend):
                try:
                    s.close()
                except OSError:
                    pass

def make_certificate(directory: Path, days: int) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    cert, key = directory / f"cert-{days}.pem", directory / f"key-{days}.pem"
    done = subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", str(days), "-subj", "/CN=127.0.0.1/O=acs doctor test",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        capture_output=True,
        timeout=60,
    )
    if done.returncode != 0:
        pytest.skip(f"openssl cannot make a certificate here: {done.stderr.decode(errors='replace')[:200]}")
    return cert, key


@pytest.fixture
def https_front(server: ScriptedServer, tmp_path: Path):
    def start(days: int) -> tuple[TLSFront, Path]:
        cert, key = make_certificate(tmp_path, days)
        front = TLSFront(cert, key, server.port)
        fronts.append(front)
        return front, cert

    fronts: list[TLSFront] = []
    serve(server)
    yield start
    for front in fronts:
        front.close()


def test_tls_self_signed_certificate_fails_by_default(https_front) -> None:
    front, _ = https_front(30)
    code, _, checks = doctor_json([], env(front.base_url, SSL_CERT_FILE=None, SSL_CERT_DIR=None))
    assert code == 4
    tls = checks["TLS"]
    assert tls["status"] == "fail" and "certificate" in tls["detail"] and "self-signed" in tls["detail"]
    assert "SSL_CERT_FILE" in tls["hint"]
    assert statuses(checks)["auth"] == "skip"


def test_tls_passes_with_ssl_cert_file_and_reports_the_expiry(https_front, server: ScriptedServer) -> None:
    front, cert = https_front(30)
    r = doctor([], env(front.base_url, SSL_CERT_FILE=str(cert)))
    assert r.returncode == 0, r.stdout
    status, detail, _ = text_checks(r.stdout)["TLS"]
    assert status == "pass"
    assert "CN=127.0.0.1" in detail and "O=acs doctor test" in detail
    assert "(in 29 days)" in detail or "(in 30 days)" in detail
    assert [q for q in server.requests if q.path == COMPLETIONS][0].headers["authorization"] == f"Bearer {KEY}"


def test_tls_certificate_about_to_expire_warns(https_front) -> None:
    front, cert = https_front(5)
    code, _, checks = doctor_json([], env(front.base_url, SSL_CERT_FILE=str(cert)))
    assert code == 0
    assert checks["TLS"]["status"] == "warn" and "renew" in checks["TLS"]["hint"]


class PlainHTTP400(LoopbackListener):
    """A plain HTTP port that answers anything (a TLS ClientHello too) with 400, as web servers do."""

    def handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            except OSError:
                pass


def test_tls_against_a_plain_http_port_fails() -> None:
    plain = PlainHTTP400()
    try:
        code, _, checks = doctor_json([], env(f"https://127.0.0.1:{plain.port}/v1"))
    finally:
        plain.close()
    assert code == 4
    assert checks["TLS"]["status"] == "fail" and "handshake" in checks["TLS"]["detail"]
    assert "http://" in checks["TLS"]["hint"]
    assert checks["TLS"]["seconds"] < 5
