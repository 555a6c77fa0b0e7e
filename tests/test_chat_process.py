"""`acs chat` as a process: Ctrl-C mid-answer closes the connection, a closed stdout is quiet, and
the commands that are not chat never import the chat modules (start-up stays as it was)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests import chat_frames as cf
from tests.cliutil import Streaming
from tests.helpers import REPO_ROOT, acs_env
from tests.sse_server import Reply, ScriptedServer

WORDS = [f" w{i:03d}" for i in range(300)]
CHAT_MODULES = ("acs_cli.chat_state", "acs_cli.chat_request", "acs_cli.commands.chat", "acs_cli.commands.chat_session", "acs_cli.sinks.chat", "acs_cli.sinks.chat_json")


def slow_answer(server: ScriptedServer) -> dict[str, str | None]:
    chunks = [cf.role_chunk(), cf.reasoning("thinking"), *(cf.content(w) for w in WORDS), cf.finish("stop")]
    server.route("POST", cf.CHAT, Reply.sse(chunks, delay=0.03))
    return {"ACS_API_BASE": server.base_url, "ACS_MODEL": "m"}


def test_ctrl_c_mid_answer_exits_130_and_closes_the_connection(server: ScriptedServer) -> None:
    with Streaming(["chat", "Count."], env=slow_answer(server)) as run:
        assert run.wait_for_stdout(b"w005", 20), run.stderr
        run.interrupt()
        rc = run.wait(10)
        out, err = run.stdout.decode(), run.stderr.decode()
    assert rc == 130, err
    assert out == "".join(WORDS)[: len(out)] and "w299" not in out
    assert "Traceback" not in err and "interrupted" in err
    assert server.wait_for_disconnect(5), "the server never saw acs close the connection"


def test_json_on_ctrl_c_keeps_the_partial_answer(server: ScriptedServer) -> None:
    with Streaming(["chat", "--jsonl", "Count."], env=slow_answer(server)) as run:
        assert run.wait_for_stdout(b"w003", 20), run.stderr
        run.interrupt()
        assert run.wait(10) == 130
        lines = [json.loads(line) for line in run.stdout.decode().splitlines()]
    assert lines[0] == {"type": "reasoning", "index": 0, "text": "thinking"}
    assert lines[-1]["type"] == "done" and lines[-1]["complete"] is False
    assert lines[-2]["type"] == "error" and lines[-2]["kind"] == "interrupted"


def test_closed_stdout_is_quiet(server: ScriptedServer) -> None:
    env = acs_env(slow_answer(server))
    reader = "import sys; sys.stdin.buffer.read(12)"
    acs = subprocess.Popen([sys.executable, "-m", "acs_cli", "chat", "Count."], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT)
    head = subprocess.Popen([sys.executable, "-c", reader], stdin=acs.stdout)
    assert acs.stdout is not None and acs.stderr is not None
    acs.stdout.close()
    head.wait(20)
    rc = acs.wait(20)
    err = acs.stderr.read().decode()
    acs.stderr.close()
    assert rc == 141 and err == "", err


@pytest.mark.parametrize(
    ("args", "allowed"),
    [(["--help"], ()), (["complete", "Hi"], ()), (["complete", "--json", "Hi"], ()), (["replay", "--delay", "0"], ("acs_cli.chat_state",))],
    ids=["help", "complete", "complete-json", "replay"],
)
def test_other_commands_do_not_import_chat(server: ScriptedServer, args: list[str], allowed: tuple[str, ...]) -> None:
    """(replay reads the capture's first frames with the chat state's rule to tell chat apart)"""
    server.route("POST", "/v1/completions", Reply.sse([b'data: {"choices":[{"index":0,"text":"x","finish_reason":"stop"}]}\n\n']))
    code = (
        "import sys\nfrom acs_cli.__main__ import main\n"
        f"status = main({args!r})\n"
        "print('\\n'.join(m for m in sys.modules if m.startswith('acs_cli')), file=sys.stderr)\n"
    )
    env = acs_env({"ACS_API_BASE": server.base_url, "ACS_MODEL": "m"})
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=30, cwd=REPO_ROOT, stdin=subprocess.DEVNULL)
    modules = set(r.stderr.decode().split())
    assert "acs_cli.__main__" in modules, r.stderr
    assert not modules & (set(CHAT_MODULES) - set(allowed)), sorted(modules & set(CHAT_MODULES))
