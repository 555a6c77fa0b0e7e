"""`acs doctor` end to end, issue 10's items: the probe's limits against a server that ignores
max_tokens or never ends, its endpoint as a parameter, and what doctor shows (escapes, masks,
loopback by address, wrapping)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.cliutil import closed_port, text_reply
from tests.doctorutil import WORDS, doctor, doctor_json, env, models_reply, serve, text_checks
from tests.helpers import run_acs
from tests.sse_server import Reply, ScriptedServer, vllm_frame

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
        assert "http://***@127.0.0.1" in r.stdout and "bob" not in r.stdout
    assert json.loads(r.stdout)["base_url"] == base.replace("bob:hunter2", "***")


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
