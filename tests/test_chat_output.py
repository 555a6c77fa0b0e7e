"""What `acs chat` prints: the answer, the reasoning and the tool calls in a pipe and on a
terminal, --reasoning, the warnings, --stats, the logprobs view and table, --raw -i, and the
bundled chat sample of `acs replay`. In-process against the loopback server."""

from __future__ import annotations

import json
import re

import pytest

from tests import chat_frames as cf
from tests.helpers import run_acs
from tests.sse_server import Reply, ScriptedServer

COLOUR = {"TERM": "xterm-256color"}
THINKS = [cf.role_chunk(), cf.reasoning("Hm.\n"), cf.reasoning("Sure."), cf.content("Yes"), cf.content("."), cf.finish("stop"), cf.usage_chunk(5, 4)]
CALLS = [
    cf.role_chunk(),
    cf.reasoning("Need weather."),
    cf.content("Checking."),
    cf.calls(cf.call(0, id="a", name="get_weather", arguments='{"city": ')),
    cf.calls(cf.call(0, arguments='"Paris"}')),
    cf.calls(cf.call(1, id="b", name="get_time", arguments="{}")),
    cf.finish("tool_calls"),
]


def serve(server: ScriptedServer, chunks: list, **kw) -> dict[str, str | None]:
    server.route("POST", cf.CHAT, Reply.sse(chunks, **kw))
    return {"ACS_API_BASE": server.base_url, "ACS_MODEL": "m"}


@pytest.mark.parametrize(
    ("mode", "stdout"),
    [([], "Yes."), (["--reasoning", "hide"], "Yes."), (["--reasoning", "show"], "Hm.\nSure.\n\nYes."), (["--reasoning", "only"], "Hm.\nSure.")],
    ids=["default", "hide", "show", "only"],
)
def test_reasoning_in_a_pipe(server: ScriptedServer, mode: list[str], stdout: str) -> None:
    r = run_acs(["chat", *mode, "Is it?"], env=serve(server, THINKS))
    assert r.returncode == 0, r.stderr
    assert r.stdout == stdout
    assert r.stderr == "5 prompt + 4 completion = 9 tokens · finish: stop\n"


def test_reasoning_on_a_terminal_dimmed_and_set_apart(server: ScriptedServer) -> None:
    r = run_acs(["chat", "Is it?"], env={**serve(server, THINKS), **COLOUR}, stdout_tty=True)
    assert r.stdout == "\x1b[2mThinking…\x1b[0m\n\x1b[2;3mHm.\x1b[0m\n\x1b[2;3mSure.\x1b[0m\n\x1b[2m…done thinking.\x1b[0m\n\nYes.\n"
    plain = run_acs(["chat", "Is it?"], env=serve(server, THINKS), stdout_tty=True)  # TERM=dumb: the labels set it apart
    assert plain.stdout == "Thinking…\nHm.\nSure.\n…done thinking.\n\nYes.\n"
    hidden = run_acs(["chat", "--reasoning", "hide", "Is it?"], env=serve(server, THINKS), stdout_tty=True)
    assert hidden.stdout == "Yes.\n"


def test_tool_calls_on_a_terminal_as_they_stream(server: ScriptedServer) -> None:
    r = run_acs(["chat", "Weather?"], env=serve(server, CALLS), stdout_tty=True)
    assert r.returncode == 0
    assert r.stdout == (
        'Thinking…\nNeed weather.\n…done thinking.\n\nChecking.\n→ get_weather({"city": "Paris"})\n→ get_time({})\n'
    )
    assert "tool call" not in r.stderr
    coloured = run_acs(["chat", "Weather?"], env={**serve(server, CALLS), **COLOUR}, stdout_tty=True)
    # the heading magenta, the arguments cyan (one span per network read, so maybe several)
    assert '\x1b[1;35m→ get_weather(\x1b[0m\x1b[36m{"city": ' in coloured.stdout and '\x1b[1;35m)' in coloured.stdout
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured.stdout) == r.stdout


def test_tool_calls_in_a_pipe_go_to_stderr_and_json_keeps_them(server: ScriptedServer) -> None:
    env = serve(server, CALLS)
    r = run_acs(["chat", "Weather?"], env=env)
    assert r.stdout == "Checking."
    assert r.stderr.splitlines() == ['tool call get_weather({"city": "Paris"})', "tool call get_time({})", "usage: the server reported none · finish: tool_calls"]
    quiet = run_acs(["chat", "-q", "Weather?"], env=env)
    assert quiet.stderr.count("tool call") == 2  # -q drops the usage line, not the calls
    doc = json.loads(run_acs(["chat", "--json", "Weather?"], env=env).stdout)
    assert doc["choices"][0]["message"]["tool_calls"] == [
        {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ]
    assert "tool call" not in run_acs(["chat", "--json", "Weather?"], env=env).stderr


def test_arguments_that_are_not_json_are_reported(server: ScriptedServer) -> None:
    chunks = [cf.calls(cf.call(0, id="a", name="get_weather", arguments='{"city": "Par')), cf.finish("tool_calls")]
    for extra in ([], ["--json"], ["-q"]):
        r = run_acs(["chat", *extra, "Weather?"], env=serve(server, chunks))
        assert r.returncode == 0  # the stream is whole; the call is what it is
        warnings = [line for line in r.stderr.splitlines() if line.startswith("warning: ")]
        assert len(warnings) == 1, r.stderr
        assert "tool call 0 (get_weather) of choice 0: the arguments are not valid JSON" in warnings[0]
        assert '{"city": "Par' in warnings[0]


def test_control_characters_never_reach_the_terminal(server: ScriptedServer) -> None:
    chunks = [cf.reasoning("\x1b]52;c;cHduZWQ=\x07"), cf.content("ok\x1b[2J"), cf.calls(cf.call(0, id="a", name="f\x1b[8m", arguments='"\u202e"')), cf.finish("tool_calls")]
    r = run_acs(["chat", "x"], env={**serve(server, chunks), **COLOUR}, stdout_tty=True, stderr_tty=True)
    shown = re.sub(r"\x1b\[[0-9;?]*[mKlh]", "", r.stdout)  # acs's own styles and cursor codes
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert "\\e]52;c;cHduZWQ=\\x07" in shown and "ok\\e[2J" in shown and "f\\e[8m" in shown and "\\u202e" in shown
    piped = run_acs(["chat", "x"], env=serve(server, chunks))
    assert piped.stdout_bytes == b"ok\x1b[2J"  # a pipe gets the exact bytes
    assert "f\\e[8m" in piped.stderr  # the stderr line is escaped


def test_stats_give_the_first_reasoning_and_the_first_answer_apart(server: ScriptedServer) -> None:
    chunks = [cf.role_chunk(), cf.reasoning("a"), cf.reasoning("b"), cf.reasoning("c"), cf.content("x"), cf.content("y"), cf.finish("stop"), cf.usage_chunk(3, 5)]
    r = run_acs(["chat", "--stats", "Hi"], env=serve(server, chunks, delay=0.1))
    line = r.stderr.splitlines()[-1]
    match = re.fullmatch(r"3 prompt \+ 5 completion = 8 tokens · finish: stop · first reasoning (\S+) s · first answer (\S+) s · (\S+) tokens/s · total (\S+) s", line)
    assert match, line
    reasoning, answer, rate, total = map(float, match.groups())
    assert 0.0 <= reasoning <= answer <= total and answer >= 0.35  # the answer is the fifth frame, 100 ms apart
    doc = json.loads(run_acs(["chat", "--json", "Hi"], env=serve(server, chunks, delay=0.1)).stdout)
    t = doc["timings"]
    assert t["ttft_s"] == t["first_reasoning_s"] <= t["first_answer_s"] and t["first_answer_s"] >= 0.35 and t["tokens"] == 5
    plain = run_acs(["chat", "--stats", "Hi"], env=serve(server, cf.answer_chunks(["a", "b"])))
    assert " · first token " in plain.stderr and "first reasoning" not in plain.stderr


LP = [
    cf.role_chunk(),
    cf.chunk({"content": "Par"}, logprobs={"content": [{"token": "Par", "logprob": -0.01, "bytes": [80, 97, 114], "top_logprobs": [{"token": "Par", "logprob": -0.01}, {"token": "Lyon", "logprob": -4.6}]}]}),
    cf.chunk({"content": "is"}, logprobs={"content": [{"token": "is", "logprob": -1.2, "bytes": [105, 115], "top_logprobs": [{"token": "is", "logprob": -1.2}]}]}, finish="stop"),
]


def test_logprobs_view_table_and_json(server: ScriptedServer) -> None:
    env = serve(server, LP)
    coloured = run_acs(["chat", "--logprobs", "2", "Capital?"], env={**env, **COLOUR}, stdout_tty=True)
    assert coloured.stdout == "\x1b[32mPar\x1b[0m\x1b[35mis\x1b[0m\n"  # 99%: green, 30%: magenta
    table = run_acs(["chat", "--logprobs-table", "Capital?"], env=env)
    assert table.stdout == "Paris"
    rows = [line.split("\t") for line in table.stderr.splitlines() if line.startswith("0\t")]
    assert [(r[2], r[3]) for r in rows] == [('"Par"', "99.0%"), ('"is"', "30.1%")]
    assert '"Lyon" 1.0%' in rows[0][5]
    assert sent_body(server)["logprobs"] is True and sent_body(server)["top_logprobs"] == 5
    doc = json.loads(run_acs(["chat", "--json", "--logprobs", "2", "Capital?"], env=env).stdout)
    assert doc["choices"][0]["logprobs"] == {"content": [LP[1]["choices"][0]["logprobs"]["content"][0], LP[2]["choices"][0]["logprobs"]["content"][0]]}
    lines = [json.loads(line) for line in run_acs(["chat", "--jsonl", "--logprobs", "2", "Capital?"], env=env).stdout.splitlines()]
    assert lines[0] == {"type": "delta", "index": 0, "text": "Par", "logprobs": LP[1]["choices"][0]["logprobs"]}


def sent_body(server: ScriptedServer) -> dict:
    return server.requests[-1].json()


def test_several_choices_and_choice(server: ScriptedServer) -> None:
    chunks = [cf.role_chunk(0), cf.role_chunk(1), cf.reasoning("r", 1), cf.content("b", 1), cf.content("a", 0),
              cf.calls(cf.call(0, id="x", name="f", arguments="{}"), index=1), cf.finish("stop", 0), cf.finish("tool_calls", 1)]
    env = serve(server, chunks)
    r = run_acs(["chat", "-n", "2", "Hi"], env=env)
    assert r.stdout == "a\n\nb"
    assert "choice 1: tool call f({})" in r.stderr
    assert run_acs(["chat", "-n", "2", "--choice", "1", "Hi"], env=env).stdout == "b"
    tty = run_acs(["chat", "-n", "2", "Hi"], env=env, stdout_tty=True)
    assert tty.stdout == "── choice 0 ──\na\n\n── choice 1 ──\nThinking…\nr\n…done thinking.\n\nb\n→ f({})\n"


def test_raw_with_head(server: ScriptedServer) -> None:
    r = run_acs(["chat", "--raw", "-i", "Hi"], env=serve(server, cf.answer_chunks(["a"])))
    assert r.returncode == 0
    assert r.stdout_bytes.startswith(b"HTTP/1.1 200 OK\r\n") and r.stdout_bytes.endswith(cf.sse(cf.answer_chunks(["a"])))
    assert run_acs(["chat", "--raw", "--stats", "Hi"], env=serve(server, cf.answer_chunks(["a"]))).returncode == 2


def test_replay_the_bundled_chat_sample() -> None:
    r = run_acs(["replay", "--chat", "--delay", "0"])
    assert r.returncode == 0
    assert r.stdout == "Let me check tomorrow's forecast for Paris first."
    assert r.stderr.splitlines() == [
        'tool call get_weather({"city": "Paris", "date": "tomorrow", "unit": "celsius"})',
        "196 prompt + 68 completion = 264 tokens · finish: tool_calls",
    ]
    tty = run_acs(["replay", "--chat", "--delay", "0"], stdout_tty=True, stderr_tty=True)
    assert tty.stdout.startswith("Thinking…\nThe user is going to Paris") and "→ get_weather(" in tty.stdout
    assert "the answer to “What should I pack for Paris tomorrow?” (acs chat talks to ACS_API_BASE)" in tty.stderr
    doc = json.loads(run_acs(["replay", "--chat", "--json"]).stdout)
    assert doc["choices"][0]["message"]["reasoning"].startswith("The user is going to Paris")
    capture = run_acs(["replay", "--chat", "--delay", "0", "--raw"])
    assert capture.returncode == 2  # replay has no --raw


def test_replay_of_a_completion_capture_is_unchanged() -> None:
    r = run_acs(["replay", "--delay", "0", "--json"])
    assert "text" in json.loads(r.stdout)["choices"][0]
