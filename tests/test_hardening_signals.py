"""Signals (README "Exit status" 129, 130, 143): SIGTERM and SIGHUP end a run as Ctrl-C does, at
every stage (before the request, during the model lookup, waiting for the first token, streaming,
replaying): the text so far, the usage line, the --json object, the cursor given back, the
connection closed. Signals in quick succession never print a traceback or lose the JSON object."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.cliutil import COMPLETIONS, MODELS, Streaming, env_for, text_reply
from tests.ptyutil import HIDE_CURSOR, SHOW_CURSOR, PtyRun, strip_ansi
from tests.sse_server import Reply, ScriptedServer

LONG = [f"w{i:03d} " for i in range(200)]
ENDINGS = [(signal.SIGINT, 130, "interrupted by Ctrl-C"), (signal.SIGTERM, 143, "terminated by SIGTERM"), (signal.SIGHUP, 129, "hung up (SIGHUP)")]
IDS = ["SIGINT", "SIGTERM", "SIGHUP"]


def clean(err: str) -> None:
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "Exception" not in err, err


@pytest.mark.parametrize(("signum", "status", "_"), ENDINGS, ids=IDS)
def test_signal_mid_stream_ends_like_ctrl_c(server: ScriptedServer, signum: int, status: int, _: str) -> None:
    server.route("POST", COMPLETIONS, text_reply(LONG, delay=0.05))
    with Streaming(["complete", "hi"], env=env_for(server)) as run:
        assert run.wait_for_stdout(b"w003", 20), run.stderr
        run.proc.send_signal(signum)
        rc = run.wait(10)
        out, err = run.stdout.decode(), run.stderr.decode()
    assert rc == status, err
    assert out.startswith("w000 w001 w002 w003") and "w199" not in out
    assert out == "".join(LONG)[: len(out)]
    clean(err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0], err  # the usage line, saying so
    assert server.wait_for_disconnect(5)  # the server may stop generating


@pytest.mark.parametrize(("signum", "status", "message"), ENDINGS, ids=IDS)
def test_signal_keeps_the_json_object(server: ScriptedServer, signum: int, status: int, message: str) -> None:
    server.route("POST", COMPLETIONS, text_reply(LONG, delay=0.05))
    with Streaming(["complete", "--json", "hi"], env=env_for(server)) as run:
        assert server.wait_for_requests(1, 20)
        time.sleep(0.4)
        run.proc.send_signal(signum)
        rc = run.wait(10)
        out, err = run.stdout.decode(), run.stderr.decode()
    assert rc == status, err
    obj = json.loads(out)
    assert obj["choices"][0]["text"].startswith("w000 ")
    assert obj["error"] == {"kind": "interrupted", "message": message, "hint": None, "exit_status": status}
    clean(err)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_signal_while_waiting_for_the_first_token(server: ScriptedServer, signum: int) -> None:
    server.route("POST", COMPLETIONS, text_reply(["late"], first_delay=30))
    with Streaming(["complete", "--jsonl", "hi"], env=env_for(server)) as run:
        assert server.wait_for_requests(1, 20)
        time.sleep(0.2)
        run.proc.send_signal(signum)
        rc = run.wait(10)
        lines = [json.loads(line) for line in run.stdout.decode().splitlines()]
        err = run.stderr.decode()
    assert rc == 128 + signum
    assert [line["type"] for line in lines] == ["error", "done"] and lines[0]["kind"] == "interrupted"
    clean(err)
    assert server.wait_for_disconnect(5)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=IDS)
def test_signal_during_the_model_lookup(server: ScriptedServer, signum: int) -> None:
    server.route("GET", MODELS, Reply.json(200, {"data": [{"id": "m"}]}, first_delay=30))
    with Streaming(["complete", "--json", "hi"], env={"ACS_API_BASE": server.base_url}) as run:
        assert server.wait_for_requests(1, 20)
        time.sleep(0.2)
        run.proc.send_signal(signum)
        rc = run.wait(10)
        out, err = run.stdout.decode(), run.stderr.decode()
    assert rc == 128 + signum, err
    obj = json.loads(out)
    assert obj["choices"] == [] and obj["error"]["kind"] == "interrupted"
    clean(err)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=IDS)
def test_signal_before_the_request(signum: int) -> None:
    """acs reads a prompt from a stdin that never ends: a signal ends it quietly, no request made."""
    with Streaming(["complete", "--json"], env={"ACS_MODEL": "m"}, stdin=subprocess.PIPE) as run:
        time.sleep(1.0)  # started and reading stdin
        run.proc.send_signal(signum)
        rc = run.wait(10)
        out, err = run.stdout, run.stderr.decode()
        run.proc.stdin.close()
    assert rc == 128 + signum, err
    assert out == b""  # no request was attempted: no JSON object
    assert err == ""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_signal_during_replay(tmp_path, signum: int) -> None:
    path = tmp_path / "long.sse"
    path.write_bytes(text_reply(LONG).body())
    with Streaming(["replay", str(path), "--delay", "0.05"]) as run:
        assert run.wait_for_stdout(b"w003", 20)
        run.proc.send_signal(signum)
        rc = run.wait(10)
        err = run.stderr.decode()
    assert rc == 128 + signum
    assert "interrupted" in err
    clean(err)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_signal_on_a_terminal_gives_the_cursor_back(server: ScriptedServer, signum: int) -> None:
    server.route("POST", COMPLETIONS, text_reply(["late"], first_delay=30))
    with PtyRun(["complete", "hi"], env=env_for(server)) as run:
        assert run.wait_for(HIDE_CURSOR, 20), run.text  # the spinner is up
        os.kill(run.proc.pid, signum)
        rc = run.wait(10)
        output = run.output
    assert rc == 128 + signum
    assert output.rindex(SHOW_CURSOR) > output.rindex(HIDE_CURSOR)
    assert b"interrupted" in strip_ansi(output)
    clean(output.decode("utf-8", "replace"))


@pytest.mark.parametrize("gap", [0.0, 0.002, 0.02, 0.1])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_two_signals_in_quick_succession_keep_the_json_object(server: ScriptedServer, signum: int, gap: float) -> None:
    server.route("POST", COMPLETIONS, text_reply(LONG, delay=0.02))
    with Streaming(["complete", "--json", "hi"], env=env_for(server)) as run:
        assert server.wait_for_requests(1, 20)
        time.sleep(0.3)
        run.proc.send_signal(signum)
        if gap:
            time.sleep(gap)
        run.proc.send_signal(signum)
        rc = run.wait(10)
        out, err = run.stdout.decode(), run.stderr.decode()
    assert rc == 128 + signum, err
    obj = json.loads(out)
    assert obj["error"]["kind"] == "interrupted" and obj["choices"][0]["text"].startswith("w000")
    clean(err)


def test_two_ctrl_c_on_a_terminal(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(LONG, delay=0.05))
    with PtyRun(["complete", "hi"], env=env_for(server)) as run:
        assert run.wait_for(b"w003", 20), run.text
        run.ctrl_c()
        run.ctrl_c()
        rc = run.wait(10)
        text = run.text
    assert rc == 130
    assert "interrupted" in text
    clean(text)


def test_a_third_signal_ends_acs_at_once(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(LONG, delay=0.05))
    with Streaming(["complete", "hi"], env=env_for(server)) as run:
        assert run.wait_for_stdout(b"w002", 20)
        for _ in range(3):
            run.proc.send_signal(signal.SIGTERM)
        rc = run.wait(10)
        err = run.stderr.decode()
    assert rc == 143
    clean(err)


# ------------------------------------------------------------------------------------ a bug mid-stream


@pytest.fixture
def buggy(monkeypatch: pytest.MonkeyPatch, server: ScriptedServer) -> ScriptedServer:
    """A parser that breaks on the third frame, as a bug in acs would."""
    from acs_cli.completion_state import CompletionState

    real = CompletionState._frame

    def frame(self, payload, records):  # type: ignore[no-untyped-def]
        if self.frames >= 2:
            raise RuntimeError("a bug")
        real(self, payload, records)

    monkeypatch.setattr(CompletionState, "_frame", frame)
    server.route("POST", COMPLETIONS, text_reply(["one ", "two ", "three"]))
    return server


def test_a_bug_mid_stream_still_ends_the_json_output(buggy: ScriptedServer) -> None:
    from tests.helpers import run_acs

    r = run_acs(["complete", "--json", "hi"], env=env_for(buggy))
    assert r.returncode == 1
    obj = json.loads(r.stdout)
    assert obj["complete"] is False and obj["error"]["exit_status"] == 1
    assert "acs: internal error: RuntimeError: a bug" in r.stderr and "Traceback" not in r.stderr


def test_a_bug_mid_stream_gives_the_cursor_back(buggy: ScriptedServer) -> None:
    from tests.helpers import run_acs

    r = run_acs(["complete", "hi"], env={**env_for(buggy), "TERM": "xterm-256color"}, stdout_tty=True, stderr_tty=True)
    assert r.returncode == 1
    assert r.stderr.rindex("\x1b[?25h") > r.stderr.rindex("\x1b[?25l")
