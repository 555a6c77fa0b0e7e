"""Process behaviour: Ctrl-C (SIGINT) mid-stream and a reader that closes the pipe (README exit
statuses 130 and 141)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time

import pytest

from tests.cliutil import COMPLETIONS, Streaming, env_for, text_reply
from tests.helpers import acs_env
from tests.sse_server import Reply, ScriptedServer, vllm_frame

LONG = [f"w{i:03d} " for i in range(200)]


def long_reply(delay: float = 0.05, **kw) -> Reply:
    return text_reply(LONG, delay=delay, **kw)


# ------------------------------------------------------------------------------------ Ctrl-C


def test_sigint_mid_stream_exits_130_keeping_the_text(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, long_reply())
    with Streaming(["complete", "hi"], env=env_for(server)) as run:
        assert run.wait_for_stdout(b"w005", 20), run.stderr
        sent_at = time.monotonic()
        run.interrupt()
        rc = run.wait(10)
        took = time.monotonic() - sent_at
        out, err = run.stdout.decode(), run.stderr.decode()
    assert rc == 130, err
    assert took < 2.0
    assert out.startswith("w000 w001 w002 w003 w004 w005")
    assert "w199" not in out
    assert out == "".join(LONG)[: len(out)]  # a prefix of the text, nothing else
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err
    assert "interrupted" in err
    assert server.wait_for_disconnect(5), "the server never saw acs close the connection"


def test_sigint_usage_line_counts_what_arrived(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, long_reply())
    with Streaming(["complete", "hi"], env=env_for(server)) as run:
        assert run.wait_for_stdout(b"w003", 20)
        run.interrupt()
        assert run.wait(10) == 130
        err = run.stderr.decode()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err  # one line: what arrived and that it was interrupted
    assert "interrupted" in lines[0]


def test_sigint_while_waiting_for_the_first_token(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["late"], first_delay=30))
    with Streaming(["complete", "hi"], env=env_for(server)) as run:
        assert server.wait_for_requests(1, 20)
        time.sleep(0.2)
        run.interrupt()
        rc = run.wait(10)
        err = run.stderr.decode()
        assert run.stdout == b""
    assert rc == 130, err
    assert "Traceback" not in err
    assert server.wait_for_disconnect(5)


def test_sigint_with_quiet_prints_nothing_on_stderr(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, long_reply())
    with Streaming(["complete", "-q", "hi"], env=env_for(server)) as run:
        assert run.wait_for_stdout(b"w002", 20)
        run.interrupt()
        assert run.wait(10) == 130
        assert run.stderr == b""


def test_sigint_with_raw_keeps_the_bytes(server: ScriptedServer) -> None:
    reply = long_reply()
    server.route("POST", COMPLETIONS, reply)
    with Streaming(["complete", "--raw", "hi"], env=env_for(server)) as run:
        assert run.wait_for_stdout(b'"w004 "', 20)
        run.interrupt()
        rc = run.wait(10)
        out, err = run.stdout, run.stderr.decode()
    assert rc == 130, err
    assert reply.body().startswith(out)
    assert "Traceback" not in err
    assert server.wait_for_disconnect(5)


def test_sigint_during_replay(tmp_path) -> None:
    path = tmp_path / "long.sse"
    path.write_bytes(long_reply().body())
    with Streaming(["replay", str(path), "--delay", "0.05"]) as run:
        assert run.wait_for_stdout(b"w003", 20)
        run.interrupt()
        rc = run.wait(10)
        err = run.stderr.decode()
    assert rc == 130, err
    assert "Traceback" not in err
    assert "interrupted" in err


# ------------------------------------------------------------------------------------ closed pipe


def _pipeline(args: list[str], env: dict, reader: str) -> subprocess.CompletedProcess:
    """`acs ARGS | READER` in bash; prints acs's own exit status (PIPESTATUS[0]) on fd 3 via a file."""
    acs = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "acs_cli", *args])
    script = f"{acs} 2>\"$ACS_ERR\" | {reader}; echo \"${{PIPESTATUS[0]}}\" >\"$ACS_RC\""
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, timeout=60)


@pytest.mark.parametrize("raw", [False, True])
def test_closed_pipe_exits_141_quietly(server: ScriptedServer, tmp_path, raw: bool) -> None:
    server.route("POST", COMPLETIONS, long_reply(delay=0.05))  # 10 s of stream
    env = acs_env(env_for(server), home=tmp_path)
    env["ACS_ERR"] = str(tmp_path / "err")
    env["ACS_RC"] = str(tmp_path / "rc")
    args = ["complete", *(["--raw"] if raw else []), "hi"]
    t0 = time.monotonic()
    done = _pipeline(args, env, "head -c 20")
    elapsed = time.monotonic() - t0
    assert len(done.stdout) == 20
    rc = int((tmp_path / "rc").read_text())
    err = (tmp_path / "err").read_text()
    assert rc == 141, err
    assert err == "", err  # no message, no traceback, no usage line
    assert elapsed < 5  # acs stopped when the reader left, not at the end of the 10 s stream
    assert server.wait_for_disconnect(5)


def test_closed_pipe_with_python_reader(server: ScriptedServer) -> None:
    """The reader closes its end after 20 bytes; acs notices on its next write."""
    server.route("POST", COMPLETIONS, long_reply(delay=0.01))
    with subprocess.Popen(
        [sys.executable, "-m", "acs_cli", "complete", "hi"],
        env=acs_env(env_for(server)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        got = b""
        while len(got) < 20:
            chunk = os.read(proc.stdout.fileno(), 20 - len(got))
            assert chunk, "acs ended before writing 20 bytes"
            got += chunk
        proc.stdout.close()
        try:
            rc = proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        err = proc.stderr.read().decode()
    assert rc == 141, err
    assert err == ""
    assert "".join(LONG).encode().startswith(got)


def test_closed_pipe_during_replay(tmp_path) -> None:
    path = tmp_path / "long.sse"
    path.write_bytes(long_reply().body())
    env = acs_env({}, home=tmp_path)
    env["ACS_ERR"] = str(tmp_path / "err")
    env["ACS_RC"] = str(tmp_path / "rc")
    done = _pipeline(["replay", str(path), "--delay", "0.01"], env, "head -c 20")
    assert len(done.stdout) == 20
    assert int((tmp_path / "rc").read_text()) == 141
    assert (tmp_path / "err").read_text() == ""


def test_closed_pipe_at_the_very_end_is_still_quiet(server: ScriptedServer, tmp_path) -> None:
    """A reader that takes exactly the text (`head -c N`) may leave just as acs finishes."""
    server.route("POST", COMPLETIONS, Reply.sse([vllm_frame("x" * 10), vllm_frame("y" * 10, finish_reason="stop")]))
    env = acs_env(env_for(server), home=tmp_path)
    env["ACS_ERR"] = str(tmp_path / "err")
    env["ACS_RC"] = str(tmp_path / "rc")
    _pipeline(["complete", "-q", "hi"], env, "head -c 5")
    rc = int((tmp_path / "rc").read_text())
    err = (tmp_path / "err").read_text()
    assert rc in (0, 141), err
    assert "Traceback" not in err and "Exception" not in err
