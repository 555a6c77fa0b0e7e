"""`acs doctor` end to end: the real command (in-process, through a test terminal; a pseudo-terminal
for colour) against scripted loopback servers. The judgements themselves are tested without a
server in tests/test_doctor_judge.py, the outputs in tests/test_doctor_render.py."""

from __future__ import annotations

import json

from tests.cliutil import COMPLETIONS, KEY, closed_port, text_reply
from tests.doctorutil import NAMES, WORDS, doctor, doctor_json, env, models_reply, serve, statuses, text_checks
from tests.ptyutil import PtyRun, colour_sgr
from tests.sse_server import Reply, ScriptedServer, vllm_frame

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
