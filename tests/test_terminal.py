"""acs on a pseudo-terminal: live text, the spinner, the cursor, colours, terminal safety, Ctrl-C,
labelled choices (README "Use" and "Terminal safety")."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time

import pytest

from tests.cliutil import COMPLETIONS, choices_reply, env_for, text_reply
from tests.helpers import acs_env
from tests.ptyutil import HIDE_CURSOR, SHOW_CURSOR, SPINNER_FRAMES, PtyRun, colour_sgr, open_pty, strip_ansi
from tests.sse_server import Reply, ScriptedServer, vllm_frame

WAITING = b"waiting for the first token"
SPINNER_BYTES = [c.encode() for c in SPINNER_FRAMES]


def has_spinner(output: bytes) -> bool:
    return any(b in output for b in SPINNER_BYTES) or WAITING in output


def assert_cursor_shown_at_end(output: bytes) -> None:
    if HIDE_CURSOR in output:
        assert SHOW_CURSOR in output[output.rindex(HIDE_CURSOR) :], "the cursor is left hidden"


# ------------------------------------------------------------------------------------ live text


def test_first_token_appears_before_the_stream_ends(server: ScriptedServer) -> None:
    pieces = ["alpha", " beta", " gamma", " delta", " omega"]
    server.route("POST", COMPLETIONS, text_reply(pieces, delay=0.3))
    with PtyRun(["complete", "hi"], env=env_for(server)) as run:
        rc = run.wait(30)
        first = run.first_time(b"alpha")
        out = run.output
    assert rc == 0, out
    assert first is not None, out
    last_segment = max(t for _, t in server.segment_times)
    assert first < last_segment - 0.5, (first, last_segment)
    assert b"alpha beta gamma delta omega" in strip_ansi(out)


def test_text_is_append_only(server: ScriptedServer) -> None:
    """Once text is on the screen nothing moves the cursor up or erases: it scrolls and stays."""
    pieces = [f"line {i}\n" for i in range(40)]
    server.route("POST", COMPLETIONS, text_reply(pieces, delay=0.01, first_delay=0.3))
    with PtyRun(["complete", "hi"], env=env_for(server)) as run:
        assert run.wait(30) == 0
        out = run.output
    after = out[out.index(b"line 0") :]
    assert not re.search(rb"\x1b\[\d*[ABFJ]|\x1b\[[12]?K|\x1b\[\d*;\d*H", after), after[:400]
    for i in range(40):
        assert f"line {i}\r\n".encode() in after


def test_spinner_shows_before_the_first_token(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["Hello", " there"], first_delay=1.0))
    with PtyRun(["complete", "hi"], env=env_for(server)) as run:
        rc = run.wait(30)
        out = run.output
        spun = run.first_time(WAITING)
        text = run.first_time(b"Hello")
    assert rc == 0, out
    before = out[: out.index(b"Hello")]
    assert any(b in before for b in SPINNER_BYTES), before[:300]
    assert WAITING in before
    assert spun is not None and text is not None and spun < text - 0.5


def test_spinner_animates(server: ScriptedServer) -> None:
    """A spinner spins: during a 1.5 s wait more than one of its frames is drawn."""
    server.route("POST", COMPLETIONS, text_reply(["Hello"], first_delay=1.5))
    with PtyRun(["complete", "hi"], env=env_for(server)) as run:
        assert run.wait(30) == 0
        out = run.output
    before = out[: out.index(b"Hello")].decode("utf-8", "replace")
    drawn = {c for c in before if c in SPINNER_FRAMES}
    assert len(drawn) >= 3, f"spinner frames drawn: {sorted(drawn)}"
    # and the time waited counts up
    times = [float(t) for t in re.findall(r"(\d+\.\d)s", before)]
    assert times and max(times) >= 1.0


def test_spinner_is_gone_when_the_text_starts(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["Hello"], first_delay=0.6))
    with PtyRun(["complete", "hi"], env=env_for(server)) as run:
        assert run.wait(30) == 0
        out = run.output
    after = out[out.index(b"Hello") :]
    assert not has_spinner(after)


def test_cursor_is_shown_again_at_the_end(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["Hello", " there"], first_delay=0.6))
    with PtyRun(["complete", "hi"], env=env_for(server)) as run:
        assert run.wait(30) == 0
        out = run.output
    assert HIDE_CURSOR in out  # the spinner hid it
    assert_cursor_shown_at_end(out)


def test_usage_line_on_the_terminal(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["a", "b", "c"], finish="length", usage=(9, 3)))
    with PtyRun(["complete", "hi"], env=env_for(server)) as run:
        assert run.wait(30) == 0
        out = strip_ansi(run.output)
    assert "9 prompt + 3 completion = 12 tokens · finish: length".encode() in out
    # the usage line starts a line of its own after the text
    assert re.search(rb"abc\r\n(?:\r)?9 prompt", out), out


def test_quiet_on_the_terminal(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["a", "b"]))
    with PtyRun(["complete", "-q", "hi"], env=env_for(server)) as run:
        assert run.wait(30) == 0
        out = strip_ansi(run.output)
    assert b"tokens" not in out and b"finish" not in out


def test_failure_on_the_terminal_keeps_text_and_cursor(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply(segments=[vllm_frame("partial")], end="abort", first_delay=0.5))
    with PtyRun(["complete", "hi"], env=env_for(server)) as run:
        rc = run.wait(30)
        out = run.output
    assert rc == 10
    plain = strip_ansi(out)
    assert b"partial" in plain
    assert b"acs: error: " in plain and b"hint: " in plain
    assert b"Traceback" not in plain
    assert_cursor_shown_at_end(out)


# ------------------------------------------------------------------------------------ terminal safety

HOSTILE = [
    "safe ",
    "\x1b[31mRED\x1b[0m ",
    "\x1b]0;pwned\x07 ",
    "\x1b]52;c;cm0gLXJmIH4=\x07 ",
    "\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\ ",
    "back\x08\x08\x08 ",
    "over\rwrite ",
    "c1\x9b2J ",
    "bidi\u202egnp.exe\u202c ",
    "bell\x07 del\x7f end",
]


def test_escape_sequences_in_model_text_are_shown_not_interpreted(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(HOSTILE))
    with PtyRun(["complete", "hi"], env=env_for(server)) as run:
        assert run.wait(30) == 0
        out = run.output
    # never raw on the terminal
    for raw in (b"\x1b[31m", b"\x1b]0;", b"\x1b]52;", b"\x1b]8;", b"\x08", b"\x07", b"\x7f", "\x9b".encode(), "\u202e".encode()):
        assert raw not in out, (raw, out)
    assert b"over\rwrite" not in out
    # but visible, so the reader sees what the model sent
    visible = strip_ansi(out).decode("utf-8", "replace")
    for shown in (r"\e[31mRED\e[0m", r"\e]0;pwned", r"\e]52;c;cm0gLXJmIH4=", r"over\rwrite", "safe", "end"):
        assert shown in visible, (shown, visible)
    assert "pwned" in visible and "link" in visible


def test_escape_sequences_stay_exact_when_only_stderr_is_a_terminal(server: ScriptedServer) -> None:
    """stdout to a pipe (or file) stays byte-exact even when stderr is a terminal."""
    server.route("POST", COMPLETIONS, text_reply(HOSTILE))
    master, slave = open_pty()
    with tempfile.TemporaryDirectory() as home:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "acs_cli", "complete", "hi"],
                env=acs_env(env_for(server, TERM="xterm-256color"), home),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=slave,
                timeout=30,
                cwd=home,
            )
        finally:
            os.close(slave)
            os.close(master)
    assert proc.returncode == 0
    assert proc.stdout == "".join(HOSTILE).encode()


def test_server_error_message_is_made_visible_on_the_terminal(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.json(400, {"error": {"message": "nope \x1b]0;pwned\x07 \x1b[2J"}}))
    with PtyRun(["complete", "hi"], env=env_for(server)) as run:
        assert run.wait(30) == 7
        out = run.output
    assert b"\x1b]0;" not in out and b"\x1b[2J" not in out
    assert b"pwned" in out


# ------------------------------------------------------------------------------------ colour


def test_colour_is_used_on_a_colour_terminal(server: ScriptedServer) -> None:
    """The positive control for the NO_COLOR tests: by default the error line is coloured."""
    server.route("POST", COMPLETIONS, Reply.json(500, {"error": {"message": "boom"}}))
    with PtyRun(["complete", "--retries", "0", "hi"], env=env_for(server)) as run:
        assert run.wait(30) == 8
        out = run.output
    assert colour_sgr(out), out


@pytest.mark.parametrize("case", ["success", "failure", "choices"])
def test_no_color_means_no_colour_codes(server: ScriptedServer, case: str) -> None:
    if case == "success":
        server.route("POST", COMPLETIONS, text_reply(["a", "b"], first_delay=0.4))
        args, expected = ["complete", "hi"], 0
    elif case == "failure":
        server.route("POST", COMPLETIONS, Reply.json(500, {"error": {"message": "boom"}}))
        args, expected = ["complete", "--retries", "0", "hi"], 8
    else:
        server.route("POST", COMPLETIONS, choices_reply({0: ["a"], 1: ["b"]}))
        args, expected = ["complete", "-n", "2", "hi"], 0
    with PtyRun(args, env=env_for(server, NO_COLOR="1")) as run:
        assert run.wait(30) == expected
        out = run.output
    assert colour_sgr(out) == [], out
    assert b"\x1b[1;31m" not in out
    assert b"\x1b[3" not in out.replace(b"\x1b[?25", b"")


def test_term_dumb_has_no_spinner(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["Hello", " there"], first_delay=0.8))
    with PtyRun(["complete", "hi"], env=env_for(server), term="dumb") as run:
        assert run.wait(30) == 0
        out = run.output
    assert not has_spinner(out), out
    assert HIDE_CURSOR not in out
    assert b"Hello there" in strip_ansi(out)
    assert colour_sgr(out) == []


# ------------------------------------------------------------------------------------ Ctrl-C


def test_ctrl_c_while_the_spinner_runs_restores_the_cursor(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["late"], first_delay=30))
    with PtyRun(["complete", "hi"], env=env_for(server)) as run:
        assert run.wait_for(WAITING, 20), run.output
        time.sleep(0.3)
        t0 = time.monotonic()
        run.ctrl_c()
        rc = run.wait(10)
        took = time.monotonic() - t0
        out = run.output
    assert rc == 130, out
    assert took < 2
    assert b"Traceback" not in out
    assert_cursor_shown_at_end(out)
    assert server.wait_for_disconnect(5)


def test_ctrl_c_mid_stream_on_the_terminal(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply([f"w{i:03d} " for i in range(200)], delay=0.05, first_delay=0.3))
    with PtyRun(["complete", "hi"], env=env_for(server)) as run:
        assert run.wait_for(b"w005", 20), run.output
        run.ctrl_c()
        rc = run.wait(10)
        out = run.output
    assert rc == 130, out
    plain = strip_ansi(out)
    assert b"w000 w001" in plain
    assert b"interrupted" in plain
    assert b"Traceback" not in plain and b"KeyboardInterrupt" not in plain
    assert_cursor_shown_at_end(out)
    # the usage line starts on a line of its own
    assert re.search(rb"\r\n[^\r\n]*interrupted", plain)
    assert server.wait_for_disconnect(5)


# ------------------------------------------------------------------------------------ several choices


def test_two_choices_have_labelled_sections(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, choices_reply({0: ["The ", "first."], 1: ["The ", "second."]}))
    with PtyRun(["complete", "--n", "2", "hi"], env=env_for(server)) as run:
        assert run.wait(30) == 0
        plain = strip_ansi(run.output).decode()
    assert "choice 0" in plain and "choice 1" in plain
    i0, i1 = plain.index("choice 0"), plain.index("choice 1")
    assert i0 < plain.index("The first.") < i1 < plain.index("The second.")


def test_choice_k_on_the_terminal_has_no_labels(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, choices_reply({0: ["zeroth"], 1: ["oneth"]}))
    with PtyRun(["complete", "--n", "2", "--choice", "1", "hi"], env=env_for(server)) as run:
        assert run.wait(30) == 0
        plain = strip_ansi(run.output).decode()
    assert "oneth" in plain and "zeroth" not in plain
    assert "choice 0" not in plain and "choice 1" not in plain


def test_replay_on_the_terminal_is_live() -> None:
    with PtyRun(["replay", "--delay", "0.02"]) as run:
        assert run.wait(30) == 0
        out = strip_ansi(run.output).decode()
    assert "It’s fast." in out
    assert "9 prompt + 80 completion = 89 tokens · finish: length" in out
