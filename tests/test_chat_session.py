"""The conversation of `acs chat` with no prompt on a terminal: in-process for the commands and
what each turn sends, and under a pseudo-terminal for readline, live answers, Ctrl-C mid-answer,
/save and reload, history and Ctrl-D."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests import chat_frames as cf
from tests.cliutil import assert_failure
from tests.helpers import run_acs
from tests.ptyutil import PtyRun, strip_ansi
from tests.sse_server import Reply, ScriptedServer

WORDS = [f" w{i:03d}" for i in range(400)]


def env_at(server: ScriptedServer, **extra: str) -> dict[str, str | None]:
    return {"ACS_API_BASE": server.base_url, "ACS_MODEL": "m", **extra}


def answers(server: ScriptedServer, *replies: Reply) -> None:
    server.route("POST", cf.CHAT, list(replies))


def said(server: ScriptedServer) -> list[list[dict]]:
    return [r.json()["messages"] for r in server.requests if r.path == cf.CHAT]


def test_two_turns_keep_the_conversation_and_commands(server: ScriptedServer, tmp_path: Path) -> None:
    answers(server, Reply.sse(cf.answer_chunks(["Paris", "."])), Reply.sse(cf.answer_chunks(["Rome", "."])), Reply.sse(cf.answer_chunks(["Hi"])))
    saved = tmp_path / "conv.json"
    typed = f"Capital of France?\nAnd Italy?\n/save {saved}\n/reset\n/system Be terse.\n//slash\n/nope\n".encode()
    r = run_acs(["chat", "--system", "You help."], env=env_at(server), input=typed, stdin_tty=True, stdout_tty=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Paris.\nRome.\nHi\n"
    system = {"role": "system", "content": "You help."}
    first, second, third = said(server)
    assert first == [system, {"role": "user", "content": "Capital of France?"}]
    assert second == [*first, {"role": "assistant", "content": "Paris."}, {"role": "user", "content": "And Italy?"}]
    assert third == [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "/slash"}]  # after /reset and /system
    assert json.loads(saved.read_text()) == [*second, {"role": "assistant", "content": "Rome."}]
    assert "5 messages saved to" in r.stderr and "unknown command /nope" in r.stderr


def test_a_failed_turn_is_not_kept(server: ScriptedServer) -> None:
    answers(server, Reply.json(500, {"error": {"message": "overloaded"}}), Reply.sse(cf.answer_chunks(["ok"])))
    r = run_acs(["chat", "--retries", "0"], env=env_at(server), input=b"First?\nSecond?\n", stdin_tty=True, stdout_tty=True)
    assert r.returncode == 0
    assert "acs: error: HTTP 500" in r.stderr and "not kept in the conversation" in r.stderr
    assert said(server)[1] == [{"role": "user", "content": "Second?"}]


def test_a_tool_call_answer_is_kept_with_its_calls(server: ScriptedServer) -> None:
    chunks = [cf.role_chunk(), cf.calls(cf.call(0, id="c1", name="now", arguments="{}")), cf.finish("tool_calls")]
    answers(server, Reply.sse(chunks), Reply.sse(cf.answer_chunks(["ok"])))
    run_acs(["chat"], env=env_at(server), input=b"Time?\nThanks\n", stdin_tty=True, stdout_tty=True)
    assert said(server)[1][1] == {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "now", "arguments": "{}"}}]}


def test_output_flags_need_a_prompt(server: ScriptedServer) -> None:
    r = run_acs(["chat", "--json"], env=env_at(server), stdin_tty=True, stdout_tty=True)
    assert "--json needs a prompt" in assert_failure(r, 2)[0]


# ------------------------------------------------------------------------------ pseudo-terminal


def type_line(run: PtyRun, text: str) -> None:
    os.write(run.master, text.encode() + b"\r")


def wait_for_count(run: PtyRun, needle: bytes, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while run.output.count(needle) < count and time.monotonic() < deadline and run.proc.poll() is None:
        time.sleep(0.02)
    assert run.output.count(needle) >= count, strip_ansi(run.output).decode("utf-8", "replace")[-2000:]


def test_conversation_on_a_terminal(server: ScriptedServer, tmp_path: Path) -> None:
    slow = Reply.sse([cf.role_chunk(), *(cf.content(w) for w in WORDS), cf.finish("stop")], delay=0.03)
    answers(server, Reply.sse(cf.answer_chunks(["Paris", "."])), slow, Reply.sse(cf.answer_chunks(["Rome", "."])))
    state = tmp_path / "state"
    saved = tmp_path / "conv.json"
    env = env_at(server, XDG_STATE_HOME=str(state))
    with PtyRun(["chat"], env=env) as run:
        assert run.wait_for(b"Ctrl-D to leave", 20), run.text
        wait_for_count(run, b"> ", 1)
        type_line(run, "Capital of France?")
        assert run.wait_for(b"Paris.", 20), run.text
        wait_for_count(run, b"> ", 2)
        type_line(run, "Count to 400")
        assert run.wait_for(b"w010", 20), run.text
        run.ctrl_c()  # the answer stops, the conversation goes on
        assert run.wait_for(b"not kept in the conversation", 10), run.text
        assert server.wait_for_disconnect(5), "the connection stayed open after Ctrl-C"
        assert run.proc.poll() is None
        wait_for_count(run, b"> ", 3)
        type_line(run, "And Italy?")
        assert run.wait_for(b"Rome.", 20), run.text
        wait_for_count(run, b"> ", 4)
        type_line(run, f"/save {saved}")
        assert run.wait_for(b"messages saved to", 10), run.text
        wait_for_count(run, b"> ", 5)
        os.write(run.master, b"\x04")  # Ctrl-D
        rc = run.wait(10)
        shown = strip_ansi(run.output).decode("utf-8", "replace")
    assert rc == 0, shown
    assert "Traceback" not in shown and "w399" not in shown and "interrupted" in shown
    first, cancelled, third = said(server)
    assert cancelled[-1] == {"role": "user", "content": "Count to 400"}
    assert third == [*first, {"role": "assistant", "content": "Paris."}, {"role": "user", "content": "And Italy?"}]  # the cancelled turn is gone
    conversation = json.loads(saved.read_text())
    assert conversation == [*third, {"role": "assistant", "content": "Rome."}]
    history = (state / "acs" / "history").read_text()
    assert "Capital of France?" in history and "/save" in history

    answers(server, Reply.sse(cf.answer_chunks(["Madrid"])))
    with PtyRun(["chat", "--messages", str(saved)], env=env) as run:  # reload and go on
        assert run.wait_for(b"4 messages from", 20), run.text
        wait_for_count(run, b"> ", 1)
        os.write(run.master, b"\x1b[A")  # up arrow: the history of the last session
        assert run.wait_for(b"/save", 10), run.text
        os.write(run.master, b"\x15")  # Ctrl-U: clear the line
        type_line(run, "And Spain?")
        assert run.wait_for(b"Madrid", 20), run.text
        type_line(run, "/exit")
        assert run.wait(10) == 0
    assert said(server)[-1] == [*conversation, {"role": "user", "content": "And Spain?"}]
