"""`acs chat` as a user runs it: the request it sends (prompt, --system, --messages, --tools, the
flags of complete) and the usage errors, run in-process against the loopback server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import chat_frames as cf
from tests.cliutil import assert_failure
from tests.helpers import run_acs
from tests.sse_server import Reply, ScriptedServer

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


def answer(server: ScriptedServer, texts: tuple[str, ...] = ("Hi", "!")) -> dict[str, str | None]:
    server.route("POST", cf.CHAT, Reply.sse(cf.answer_chunks(list(texts))))
    return {"ACS_API_BASE": server.base_url, "ACS_MODEL": "m"}


def sent(server: ScriptedServer) -> dict:
    return server.requests[-1].json()


# ------------------------------------------------------------------------------------ request


def test_the_prompt_is_the_user_message_usage_asked(server: ScriptedServer) -> None:
    r = run_acs(["chat", "Why is the sky blue?"], env=answer(server))
    assert r.returncode == 0 and r.stdout == "Hi!"
    assert server.requests[-1].path == "/v1/chat/completions"
    assert sent(server) == {
        "model": "m",
        "messages": [{"role": "user", "content": "Why is the sky blue?"}],
        "max_tokens": 256,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


@pytest.mark.parametrize(
    ("args", "stdin", "content"),
    [
        (["-"], b"from stdin\n", "from stdin"),
        ([], b"only stdin\n", "only stdin"),
        (["Summarize."], b"notes\n", "notes\nSummarize."),
        (["-e", "a\\nb"], None, "a\nb"),
    ],
    ids=["dash", "stdin", "both", "escapes"],
)
def test_prompt_from_argument_stdin_or_both(server: ScriptedServer, args: list[str], stdin: bytes | None, content: str) -> None:
    r = run_acs(["chat", *args], env=answer(server), input=stdin)
    assert r.returncode == 0, r.stderr
    assert sent(server)["messages"] == [{"role": "user", "content": content}]


def test_system_message_from_flag_or_file(server: ScriptedServer, tmp_path: Path) -> None:
    env = answer(server)
    assert run_acs(["chat", "-e", "--system", "Be brief.\\nVery.", "Hi"], env=env).returncode == 0
    assert sent(server)["messages"] == [{"role": "system", "content": "Be brief.\nVery."}, {"role": "user", "content": "Hi"}]
    (tmp_path / "sys.txt").write_text("From a file.\n")
    assert run_acs(["chat", "--system-file", str(tmp_path / "sys.txt"), "Hi"], env=env).returncode == 0
    assert sent(server)["messages"][0] == {"role": "system", "content": "From a file."}
    r = run_acs(["chat", "--system", "a", "--system-file", str(tmp_path / "sys.txt"), "Hi"], env=env)
    assert "cannot be used together" in assert_failure(r, 2)[0]


CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris."},
]


@pytest.mark.parametrize("shape", ["array", "jsonl", "request-body"])
def test_messages_file_then_the_prompt(server: ScriptedServer, tmp_path: Path, shape: str) -> None:
    path = tmp_path / "conv"
    if shape == "array":
        path.write_text(json.dumps(CONVERSATION))
    elif shape == "jsonl":
        path.write_text("".join(json.dumps(m) + "\n" for m in CONVERSATION) + "\n")
    else:
        path.write_text(json.dumps({"model": "x", "messages": CONVERSATION}))
    r = run_acs(["chat", "--messages", str(path), "And of Italy?"], env=answer(server))
    assert r.returncode == 0, r.stderr
    assert sent(server)["messages"] == [*CONVERSATION, {"role": "user", "content": "And of Italy?"}]


def test_messages_alone_or_from_stdin_and_system_replaced(server: ScriptedServer, tmp_path: Path) -> None:
    env = answer(server)
    path = tmp_path / "conv.json"
    path.write_text(json.dumps(CONVERSATION[:2]))
    assert run_acs(["chat", "--messages", str(path)], env=env).returncode == 0  # empty stdin: no new message
    assert sent(server)["messages"] == CONVERSATION[:2]
    r = run_acs(["chat", "--messages", "-", "--system", "Be kind.", "More?"], env=env, input=json.dumps(CONVERSATION).encode())
    assert r.returncode == 0, r.stderr
    assert sent(server)["messages"] == [{"role": "system", "content": "Be kind."}, *CONVERSATION[1:], {"role": "user", "content": "More?"}]


@pytest.mark.parametrize(
    ("content", "needle"),
    [("[1, 2]", "not an object with a role"), ('{"role": "user"}\n{oops', "neither JSON nor JSONL (line 2"), ("[]", "no messages")],
    ids=["not-messages", "bad-jsonl", "empty"],
)
def test_a_bad_messages_file_is_a_usage_error(server: ScriptedServer, tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    r = run_acs(["chat", "--messages", str(path)], env=answer(server))
    message, hint = assert_failure(r, 2)
    assert needle in message
    assert server.requests == []


def test_unreadable_files_are_usage_errors(server: ScriptedServer, tmp_path: Path) -> None:
    env = answer(server)
    for flag in ("--messages", "--tools", "--system-file"):
        r = run_acs(["chat", flag, str(tmp_path / "missing.json"), "Hi"], env=env)
        assert f"{flag}: cannot read" in assert_failure(r, 2)[0]
    r = run_acs(["chat", "--messages", "-", "-"], env=env, input=b"[]")
    assert "both want stdin" in assert_failure(r, 2)[0]


def test_tools_file_is_sent(server: ScriptedServer, tmp_path: Path) -> None:
    path = tmp_path / "tools.json"
    path.write_text(json.dumps(TOOLS))
    assert run_acs(["chat", "--tools", str(path), "Weather?"], env=answer(server)).returncode == 0
    assert sent(server)["tools"] == TOOLS
    path.write_text(json.dumps({"tools": TOOLS}))
    assert run_acs(["chat", "--tools", str(path), "Weather?"], env=answer(server)).returncode == 0
    assert sent(server)["tools"] == TOOLS
    path.write_text('"get_weather"')
    assert "not a JSON array of tools" in assert_failure(run_acs(["chat", "--tools", str(path), "Hi"], env=answer(server)), 2)[0]


def test_the_request_flags_of_complete(server: ScriptedServer) -> None:
    args = ["chat", "--max-tokens", "32", "-t", "0", "--top-p", "0.9", "--seed", "7", "-e", "--stop", "\\n\\n", "--n", "2",
            "--presence-penalty", "0.5", "--frequency-penalty", "0.25", "--logprobs", "3", "-p", "top_k=40", "--no-usage", "Hi"]
    run_acs(args, env=answer(server))
    body = sent(server)
    assert body == {
        "model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 32, "temperature": 0.0, "top_p": 0.9, "seed": 7, "n": 2,
        "presence_penalty": 0.5, "frequency_penalty": 0.25, "stop": ["\n\n"], "stream": True, "top_k": 40, "logprobs": True, "top_logprobs": 3,
    }


def test_param_wins_over_the_flags_it_names(server: ScriptedServer) -> None:
    run_acs(["chat", "--logprobs", "3", "-p", "logprobs=false", "-p", 'messages=[{"role":"user","content":"x"}]', "Hi"], env=answer(server))
    body = sent(server)
    assert body["logprobs"] is False and "top_logprobs" not in body
    assert body["messages"] == [{"role": "user", "content": "x"}]


def test_usage_errors_before_any_request(server: ScriptedServer) -> None:
    env = answer(server)
    assert "--echo" in assert_failure(run_acs(["chat", "--echo", "Hi"], env=env), 2)[0]
    assert "is not one of show, hide, only" in assert_failure(run_acs(["chat", "--reasoning", "all", "Hi"], env=env), 2)[0]
    assert "prompt is empty" in assert_failure(run_acs(["chat"], env=env), 2)[0]  # stdin empty, not a terminal
    assert "--param" in assert_failure(run_acs(["chat", "-p", "oops", "Hi"], env=env), 2)[0]
    assert "cannot be used together" in assert_failure(run_acs(["chat", "--json", "--raw", "Hi"], env=env), 2)[0]
    assert server.requests == []


@pytest.mark.parametrize(
    ("status", "body", "exit_status", "needle"),
    [
        (404, {"error": {"message": "Not Found", "type": "NotFoundError"}}, 7, "/chat/completions endpoint"),
        (401, {"error": "Unauthorized"}, 6, "ACS_API_KEY"),
        (400, {"error": {"message": "This model does not support chat: no chat template", "type": "BadRequestError"}}, 7, "no chat template"),
        (500, {"error": {"message": "boom"}}, 8, "boom"),
    ],
)
def test_http_errors(server: ScriptedServer, status: int, body: dict, exit_status: int, needle: str) -> None:
    server.route("POST", cf.CHAT, Reply.json(status, body))
    r = run_acs(["chat", "--retries", "0", "Hi"], env={"ACS_API_BASE": server.base_url, "ACS_MODEL": "m"})
    message, hint = assert_failure(r, exit_status)
    assert needle in message + hint
    assert r.stdout == ""


def test_no_model_asks_the_server(server: ScriptedServer) -> None:
    server.route("GET", "/v1/models", Reply.json(200, {"object": "list", "data": [{"id": "only-one", "object": "model"}]}))
    answer(server)
    r = run_acs(["chat", "Hi"], env={"ACS_API_BASE": server.base_url})
    assert r.returncode == 0 and sent(server)["model"] == "only-one"


def test_connect_refused_and_timeout(server: ScriptedServer) -> None:
    from tests.cliutil import closed_port

    r = run_acs(["chat", "--retries", "0", "Hi"], env={"ACS_API_BASE": f"http://127.0.0.1:{closed_port()}/v1", "ACS_MODEL": "m"})
    assert "cannot connect" in assert_failure(r, 4)[0]
    server.route("POST", cf.CHAT, Reply.sse(cf.answer_chunks(["a"]), first_delay=3))
    r = run_acs(["chat", "--timeout", "0.5", "--retries", "0", "Hi"], env={"ACS_API_BASE": server.base_url, "ACS_MODEL": "m"})
    assert "0.5 s" in assert_failure(r, 5)[0]
