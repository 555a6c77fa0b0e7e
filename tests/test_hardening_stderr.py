"""What stderr says around the text (README "Use", "Token probabilities"): with stdout redirected
and stderr a terminal, the first line acs writes on stderr after text that ended mid-line starts
a line of its own, stdout unchanged; --logprobs against a server (or capture) that sends none says
so once; replay shows a capture's logprobs view and table; the bundled sample says what it is in a
dim header on a terminal, and only there."""

from __future__ import annotations

import math

import pytest

from tests.cliutil import COMPLETIONS, assert_failure, env_for, text_reply
from tests.helpers import run_acs
from tests.ptyutil import PtyRun, colour_sgr, strip_ansi
from tests.sse_server import Reply, ScriptedServer, vllm_frame

HEADER = "a recorded sample stream, not a live server"


# ------------------------------------------------------------------------------------ the first stderr line after the text


@pytest.mark.parametrize(("texts", "opened"), [(["abc"], True), (["abc\n"], False), (["a", "b\nc"], True), (["ab", "\n"], False)], ids=["mid-line", "newline", "mid-line-2", "newline-2"])
def test_the_usage_line_starts_its_own_line(server: ScriptedServer, texts: list[str], opened: bool) -> None:
    server.route("POST", COMPLETIONS, text_reply(texts))
    r = run_acs(["complete", "hi"], env=env_for(server), stderr_tty=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "".join(texts)  # stdout unchanged
    assert r.stderr.startswith("\n") == opened, repr(r.stderr)
    assert "prompt +" in r.stderr.splitlines()[-1]


def test_no_newline_when_stderr_is_not_a_terminal(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["abc"]))
    r = run_acs(["complete", "hi"], env=env_for(server))
    assert not r.stderr.startswith("\n")


def test_no_newline_when_both_are_the_terminal(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["abc"]))
    r = run_acs(["complete", "hi"], env=env_for(server), stdout_tty=True, stderr_tty=True)
    assert r.stdout.endswith("abc\n")  # the terminal sink ends the line on stdout itself
    assert not r.stderr.startswith("\n")


@pytest.mark.parametrize("flags", [["-n", "2"], ["--stats"], ["--logprobs-table"]], ids=["choices", "stats", "table"])
def test_the_first_stderr_line_starts_its_own_line_in_every_mode(server: ScriptedServer, flags: list[str]) -> None:
    lp = {"tokens": ["ab"], "token_logprobs": [-0.1], "top_logprobs": [None], "text_offset": [0]}
    server.route("POST", COMPLETIONS, Reply.sse([vllm_frame("ab", logprobs=lp, finish_reason="stop"), vllm_frame("cd", index=1, finish_reason="stop")]))
    r = run_acs(["complete", *flags, "hi"], env={**env_for(server), "COLUMNS": "200"}, stderr_tty=True)
    assert r.stderr.startswith("\n") and not r.stderr.startswith("\n\n"), repr(r.stderr)


def test_a_warning_after_the_text_starts_its_own_line(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.sse([b"event: x\n" + vllm_frame("lost"), vllm_frame("abc", finish_reason="stop")]))
    r = run_acs(["complete", "-q", "hi"], env=env_for(server), stderr_tty=True)
    assert r.stderr.startswith("\nwarning:") or r.stderr.startswith("\n\x1b[33mwarning:"), repr(r.stderr)


def test_an_error_after_the_text_starts_its_own_line_also_with_quiet(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.sse([vllm_frame("abc"), {"error": {"message": "boom"}}]))
    r = run_acs(["complete", "-q", "hi"], env=env_for(server), stderr_tty=True)
    assert r.returncode == 9
    assert r.stdout == "abc"
    assert r.stderr.split("acs: error:")[0] in ("\n", "\n\x1b[1;31m"), repr(r.stderr)


def test_json_output_needs_no_newline(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["abc"]))
    r = run_acs(["complete", "--json", "hi"], env=env_for(server), stderr_tty=True)
    assert not r.stderr.startswith("\n")


def test_quiet_success_writes_nothing(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["abc"]))
    r = run_acs(["complete", "-q", "hi"], env=env_for(server), stderr_tty=True)
    assert r.stderr == "" and r.stdout == "abc"


# ------------------------------------------------------------------------------------ logprobs asked, none sent


@pytest.mark.parametrize(
    ("flags", "tty"),
    [(["--logprobs", "2"], False), (["--logprobs", "2"], True), (["--logprobs-table"], False), (["--logprobs-table", "--logprobs", "3"], True), (["--logprobs", "1", "--json"], False), (["--logprobs", "1", "-q"], False)],
    ids=["piped", "view", "table", "table-terminal", "json", "quiet"],
)
def test_logprobs_asked_but_none_sent_says_so_once(server: ScriptedServer, flags: list[str], tty: bool) -> None:
    server.route("POST", COMPLETIONS, text_reply(["plain ", "text"]))
    r = run_acs(["complete", *flags, "hi"], env={**env_for(server), "TERM": "xterm-256color"}, stdout_tty=tty)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("logprobs: the server sent none") == 1


def test_logprobs_sent_draw_no_note(server: ScriptedServer) -> None:
    lp = {"tokens": ["x"], "token_logprobs": [-0.1], "top_logprobs": [None], "text_offset": [0]}
    server.route("POST", COMPLETIONS, Reply.sse([vllm_frame("plain"), vllm_frame("x", logprobs=lp, finish_reason="stop")]))
    r = run_acs(["complete", "--logprobs", "1", "hi"], env=env_for(server))
    assert "logprobs:" not in r.stderr


def test_no_logprobs_note_without_an_answer(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.json(500, {"error": "down"}))
    r = run_acs(["complete", "--logprobs", "1", "hi"], env=env_for(server))
    assert_failure(r, 8)
    assert "logprobs:" not in r.stderr


def test_no_logprobs_note_without_logprobs_asked(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["plain"]))
    r = run_acs(["complete", "hi"], env=env_for(server))
    assert "logprobs" not in r.stderr


@pytest.mark.parametrize("flags", [["--logprobs"], ["--logprobs-table"]])
def test_a_capture_without_logprobs_says_so(tmp_path, flags: list[str]) -> None:
    path = tmp_path / "plain.sse"
    path.write_bytes(text_reply(["plain"]).body())
    r = run_acs(["replay", *flags, str(path)])
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("logprobs: the capture holds none") == 1


# ------------------------------------------------------------------------------------ replay's logprobs view


def capture(tmp_path) -> str:
    tokens = [("The", -0.01), (" sky", -0.5), (" is", -1.5), (" blue", -3.0)]
    frames = [
        vllm_frame(t, logprobs={"tokens": [t], "token_logprobs": [v], "top_logprobs": [{t: v, " alt": v - 1}], "text_offset": [0]}, finish_reason="stop" if i == 3 else None)
        for i, (t, v) in enumerate(tokens)
    ]
    path = tmp_path / "lp.sse"
    path.write_bytes(Reply.sse(frames).body())
    return str(path)


def test_replay_logprobs_view_on_a_pty(tmp_path) -> None:
    with PtyRun(["replay", "--logprobs", capture(tmp_path)]) as run:
        assert run.wait(30) == 0
        out = run.output
    assert "The sky is blue" in strip_ansi(out).decode()
    assert {"32", "33", "35", "31"} <= {code for params in colour_sgr(out) for code in params.split(";")}  # each band
    assert b"token probability:" in out  # the legend


def test_replay_logprobs_piped_is_the_plain_text(tmp_path) -> None:
    r = run_acs(["replay", "--logprobs", capture(tmp_path)])
    assert r.returncode == 0, r.stderr
    assert r.stdout == "The sky is blue"
    assert "\x1b" not in r.stdout + r.stderr


def test_replay_logprobs_table_piped(tmp_path) -> None:
    r = run_acs(["replay", "--logprobs-table", capture(tmp_path)])
    assert r.returncode == 0, r.stderr
    assert r.stdout == "The sky is blue"
    rows = [line.split("\t") for line in r.stderr.splitlines() if line[:1].isdigit()]
    assert [(row[2], row[3]) for row in rows] == [('"The"', f"{100 * math.exp(-0.01):.1f}%"), ('" sky"', "60.7%"), ('" is"', "22.3%"), ('" blue"', "5.0%")]
    assert rows[0][5] == f'" alt" {100 * math.exp(-1.01):.1f}%'


def test_replay_logprobs_table_on_a_pty(tmp_path) -> None:
    with PtyRun(["replay", "--logprobs-table", capture(tmp_path)]) as run:
        assert run.wait(30) == 0
        text = strip_ansi(run.output).decode()
    assert "probability" in text and '" blue"' in text and "\t" not in text


# ------------------------------------------------------------------------------------ the bundled sample's header


def test_the_sample_says_what_it_is_on_a_terminal() -> None:
    r = run_acs(["replay", "--delay", "0"], env={"TERM": "xterm-256color"}, stdout_tty=True, stderr_tty=True)
    assert r.returncode == 0, r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith("\x1b[2m") and HEADER in first  # dim
    assert "Five reasons to learn Rust" in first


def test_the_sample_header_on_a_pty() -> None:
    with PtyRun(["replay", "--delay", "0"]) as run:
        assert run.wait(30) == 0
        out = run.output
    assert b"\x1b[2m" + HEADER.encode() in out
    assert out.index(HEADER.encode()) < out.index(b"Rust")  # before the text


@pytest.mark.parametrize(
    ("args", "tty"),
    [([], False), (["--json"], True), (["--jsonl"], True), (["-q"], True)],
    ids=["piped", "json", "jsonl", "quiet"],
)
def test_no_sample_header_off_a_terminal_or_with_machine_output(args: list[str], tty: bool) -> None:
    r = run_acs(["replay", "--delay", "0", *args], env={"TERM": "xterm-256color"}, stdout_tty=tty, stderr_tty=True)
    assert r.returncode == 0, r.stderr
    assert HEADER not in r.stderr and HEADER not in r.stdout


def test_no_sample_header_for_a_capture_file(tmp_path) -> None:
    path = tmp_path / "c.sse"
    path.write_bytes(text_reply(["x"]).body())
    r = run_acs(["replay", str(path)], env={"TERM": "xterm-256color"}, stdout_tty=True, stderr_tty=True)
    assert HEADER not in r.stderr
