"""The prompt (argument, stdin, both, -e) and the request acs sends (README "Use", "Request options")."""

from __future__ import annotations

import json

import pytest

from tests.cliutil import COMPLETIONS, assert_failure, choices_reply, env_for, text_reply
from tests.helpers import run_acs
from tests.ptyutil import PtyRun
from tests.sse_server import ScriptedServer


@pytest.fixture
def ok(server: ScriptedServer) -> ScriptedServer:
    server.route("POST", COMPLETIONS, text_reply(["done"]))
    return server


def sent(server: ScriptedServer) -> dict:
    assert len(server.requests) == 1, server.requests
    return server.requests[0].json()


def run_ok(server: ScriptedServer, args: list[str], **kw):
    r = run_acs(["complete", *args], env=env_for(server), **kw)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "done"
    return sent(server)


# ------------------------------------------------------------------------------------ prompt


def test_prompt_from_argument(ok: ScriptedServer) -> None:
    assert run_ok(ok, ["Once upon a time"])["prompt"] == "Once upon a time"


def test_prompt_from_stdin_without_argument(ok: ScriptedServer) -> None:
    assert run_ok(ok, [], input="Once upon a time\n")["prompt"] == "Once upon a time"


def test_prompt_from_stdin_with_dash(ok: ScriptedServer) -> None:
    assert run_ok(ok, ["-"], input="Once upon a time\n")["prompt"] == "Once upon a time"


@pytest.mark.parametrize(
    "stdin, prompt",
    [
        ("line\n", "line"),
        ("line", "line"),
        ("line\n\n", "line\n"),  # only ONE final newline is dropped
        ("a\nb\n", "a\nb"),
        ("  spaced  \n", "  spaced  "),
    ],
)
def test_one_final_newline_of_stdin_is_dropped(ok: ScriptedServer, stdin: str, prompt: str) -> None:
    assert run_ok(ok, [], input=stdin)["prompt"] == prompt


def test_stdin_and_argument_are_joined_by_a_newline(ok: ScriptedServer) -> None:
    body = run_ok(ok, ["Summary:"], input="my notes\nsecond line\n")
    assert body["prompt"] == "my notes\nsecond line\nSummary:"


def test_empty_stdin_with_argument_uses_the_argument(ok: ScriptedServer) -> None:
    assert run_ok(ok, ["Summary:"], input="")["prompt"] == "Summary:"


@pytest.mark.parametrize("args, stdin", [([""], None), ([], ""), (["-"], ""), ([], "\n"), ([""], "")])
def test_empty_prompt_is_usage_error(ok: ScriptedServer, args: list[str], stdin: str | None) -> None:
    r = run_acs(["complete", *args], env=env_for(ok), input=stdin)
    assert_failure(r, 2)
    assert "Usage: acs complete" in r.stderr
    assert ok.requests == []
    assert r.stdout == ""


def test_no_argument_while_stdin_is_a_terminal_is_usage_error(ok: ScriptedServer) -> None:
    with PtyRun(["complete"], env=env_for(ok), term="dumb") as run:
        rc = run.wait(20)
        out = run.text
    assert rc == 2, out
    assert "Usage: acs complete" in out
    assert "acs: error: " in out and "hint: " in out
    assert "Traceback" not in out
    assert ok.requests == []


def test_escapes_with_e(ok: ScriptedServer) -> None:
    body = run_ok(ok, ["-e", r"a\nb\tc\\d\qe\x41 \"f"])
    assert body["prompt"] == "a\nb\tc\\d\\qe\\x41 \\\"f"


def test_escapes_long_flag_and_trailing_backslash(ok: ScriptedServer) -> None:
    assert run_ok(ok, ["--escapes", "end\\"])["prompt"] == "end\\"


def test_escapes_double_backslash_before_n(ok: ScriptedServer) -> None:
    # `\\n` is an escaped backslash followed by n, not a newline
    assert run_ok(ok, ["-e", r"x\\ny"])["prompt"] == "x\\ny"


def test_no_escapes_without_e(ok: ScriptedServer) -> None:
    assert run_ok(ok, [r"a\nb\tc"])["prompt"] == r"a\nb\tc"


def test_escapes_apply_to_the_argument_not_to_stdin(ok: ScriptedServer) -> None:
    body = run_ok(ok, ["-e", r"Q:\n"], input=r"literal \n stays" + "\n")
    assert body["prompt"] == "literal \\n stays\nQ:\n"


def test_non_ascii_prompt_argument(ok: ScriptedServer) -> None:
    prompt = "Grüße, 世界 🦀 — naïve “quotes” \u2028 end"
    body = run_ok(ok, [prompt])
    assert body["prompt"] == prompt
    raw = ok.requests[0].body
    raw.decode("utf-8")  # valid UTF-8 on the wire
    assert ok.requests[0].headers["content-length"] == str(len(raw))


def test_non_ascii_prompt_on_stdin(ok: ScriptedServer) -> None:
    prompt = "Grüße, 世界 🦀"
    assert run_ok(ok, [], input=(prompt + "\n").encode("utf-8"))["prompt"] == prompt


def test_invalid_utf8_on_stdin_does_not_crash(ok: ScriptedServer) -> None:
    r = run_acs(["complete"], env=env_for(ok), input=b"caf\xe9 au lait\n")
    assert "Traceback" not in r.stderr
    assert r.returncode == 0, r.stderr
    assert sent(ok)["prompt"].startswith("caf")


# ------------------------------------------------------------------------------------ the request


def test_default_request_body(ok: ScriptedServer) -> None:
    body = run_ok(ok, ["hi"])
    assert body == {
        "model": "m",
        "prompt": "hi",
        "max_tokens": 256,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_request_headers(ok: ScriptedServer) -> None:
    run_ok(ok, ["hi"])
    q = ok.requests[0]
    assert q.method == "POST"
    assert q.path == COMPLETIONS
    assert q.headers["accept"] == "text/event-stream"
    assert q.headers["content-type"].split(";")[0].strip() == "application/json"
    json.loads(q.body)


def test_every_request_flag_lands_in_the_body_with_its_type(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, choices_reply({0: ["a"], 1: ["b"]}))
    args = [
        "--max-tokens", "80",
        "--temperature", "0.7",
        "--top-p", "0.9",
        "--stop", "END",
        "--stop", "\n\n",
        "--seed", "42",
        "--n", "2",
        "--logprobs", "3",
        "--echo",
        "--presence-penalty", "0.5",
        "--frequency-penalty", "-0.25",
        "hi",
    ]  # fmt: skip
    r = run_acs(["complete", *args], env=env_for(server))
    assert r.returncode == 0, r.stderr
    body = sent(server)
    expected = {
        "max_tokens": 80,
        "temperature": 0.7,
        "top_p": 0.9,
        "stop": ["END", "\n\n"],
        "seed": 42,
        "n": 2,
        "logprobs": 3,
        "echo": True,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.25,
    }
    for key, value in expected.items():
        assert body[key] == value, key
        assert type(body[key]) is type(value), (key, body[key])
    assert body["stream"] is True


def test_short_flags(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, choices_reply({0: ["a"], 1: ["b"]}))
    r = run_acs(["complete", "-t", "1", "-n", "2", "-m", "short", "-p", "top_k=5", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    body = sent(server)
    assert body["temperature"] == 1.0 and isinstance(body["temperature"], float)
    assert body["n"] == 2 and body["model"] == "short" and body["top_k"] == 5


def test_single_stop_is_still_a_list(ok: ScriptedServer) -> None:
    assert run_ok(ok, ["--stop", "\n", "hi"])["stop"] == ["\n"]


def test_unset_optional_fields_are_absent(ok: ScriptedServer) -> None:
    body = run_ok(ok, ["hi"])
    for key in ("temperature", "top_p", "stop", "seed", "n", "logprobs", "echo", "presence_penalty", "frequency_penalty"):
        assert key not in body


def test_params_are_json_when_they_parse(ok: ScriptedServer) -> None:
    params = ["top_k=40", "ignore_eos=true", "min_p=0.05", "x=hello", 'obj={"a":1}', "lst=[1,2]", "nothing=null", 'q="7"']
    args = [a for p in params for a in ("--param", p)]
    body = run_ok(ok, [*args, "hi"])
    assert body["top_k"] == 40 and type(body["top_k"]) is int
    assert body["ignore_eos"] is True
    assert body["min_p"] == 0.05 and type(body["min_p"]) is float
    assert body["x"] == "hello"
    assert body["obj"] == {"a": 1}
    assert body["lst"] == [1, 2]
    assert body["nothing"] is None
    assert body["q"] == "7"


def test_param_value_may_contain_equals_signs_and_be_empty(ok: ScriptedServer) -> None:
    body = run_ok(ok, ["--param", "expr=a=b", "--param", "empty=", "hi"])
    assert body["expr"] == "a=b"
    assert body["empty"] == ""


def test_param_can_set_a_field_the_flags_do_not_cover(ok: ScriptedServer) -> None:
    body = run_ok(ok, ["--param", "max_tokens=10", "hi"])
    assert body["max_tokens"] == 10


@pytest.mark.parametrize("bad", ["noequals", "=5"])
def test_malformed_param_is_usage_error(ok: ScriptedServer, bad: str) -> None:
    r = run_acs(["complete", "--param", bad, "hi"], env=env_for(ok))
    message, hint = assert_failure(r, 2)
    assert bad in message
    assert "--param" in hint or "KEY=VALUE" in hint or "top_k" in hint
    assert ok.requests == []


def test_stream_is_always_true(ok: ScriptedServer) -> None:
    """README: every request has "stream": true; a --param cannot turn it off (usage error, no request)."""
    assert run_ok(ok, ["hi"])["stream"] is True
    ok.requests.clear()
    r = run_acs(["complete", "--param", "stream=false", "hi"], env=env_for(ok))
    assert r.returncode == 2
    assert "acs: error: --param stream cannot be set" in r.stderr and "hint: " in r.stderr
    assert not [q for q in ok.requests if q.method == "POST"]


def test_no_usage_drops_stream_options(ok: ScriptedServer) -> None:
    body = run_ok(ok, ["--no-usage", "hi"])
    assert "stream_options" not in body
    assert body["stream"] is True


def test_usage_requested_by_default(ok: ScriptedServer) -> None:
    assert run_ok(ok, ["hi"])["stream_options"] == {"include_usage": True}


def test_raw_sends_the_same_request(ok: ScriptedServer) -> None:
    r = run_acs(["complete", "--raw", "--max-tokens", "7", "--param", "top_k=3", "hi"], env=env_for(ok))
    assert r.returncode == 0, r.stderr
    body = sent(ok)
    assert body["max_tokens"] == 7 and body["top_k"] == 3 and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert ok.requests[0].headers["accept"] == "text/event-stream"


@pytest.mark.parametrize("flag, value", [("--max-tokens", "-1"), ("--n", "0"), ("--max-tokens", "many"), ("--temperature", "hot")])
def test_invalid_flag_values_are_usage_errors(ok: ScriptedServer, flag: str, value: str) -> None:
    r = run_acs(["complete", flag, value, "hi"], env=env_for(ok))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert ok.requests == []


def test_unknown_flag_is_usage_error(ok: ScriptedServer) -> None:
    r = run_acs(["complete", "--no-such-flag", "hi"], env=env_for(ok))
    assert_failure(r, 2)
    assert ok.requests == []
