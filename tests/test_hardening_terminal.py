"""Terminal safety everywhere a server string is printed (README "Terminal safety"): model text,
finish reasons and the rest of the usage line, error messages and hints that quote server text,
the base URL, the logprobs view and table, the event name of a warning. Control bytes are shown as
visible escapes, Rich markup is never interpreted, every JSON output is the escaping encoder's,
and --raw on a terminal shows control bytes like `cat -v` while staying exact when piped."""

from __future__ import annotations

import json
import re

import pytest

from tests.cliutil import COMPLETIONS, env_for
from tests.helpers import run_acs
from tests.ptyutil import PtyRun
from tests.sse_server import DONE, Reply, ScriptedServer, usage_frame, vllm_frame

MARKUP = "[bold red]loud[/] [link=https://evil.example]click[/link] :smile: [/]"
CONTROLS = "\x1b[2J\x1b]0;owned\x07\x1b]8;;https://evil.example\x1b\\x\x1b]8;;\x1b\\\r\x08\x9b31m\u202e"
HOSTILE = f"{MARKUP}{CONTROLS}"
# what must never reach a terminal raw: erase screen, a title, OSC 8 links, BEL, CR, BS, C1 CSI, bidi
RAW = ["\x1b[2J", "\x1b]", "\x07", "\x08", "\x9b", "\u202e"]
COLOUR = {"TERM": "xterm-256color"}
_SGR = re.compile(r"\x1b\[[0-9;]*m")


def on_terminal(args: list[str], env: dict, *, stdout: bool = True, stderr: bool = True):
    """acs in-process with stdout and stderr on a colour terminal."""
    return run_acs(args, env={**env, **COLOUR}, stdout_tty=stdout, stderr_tty=stderr)


def plain(text: str) -> str:
    """The text without acs's own styling (the reverse video around a visible escape)."""
    return _SGR.sub("", text)


def unwrapped(text: str) -> str:
    """stderr with the error and hint lines a terminal wraps (at spaces, hanging indent) joined."""
    return re.sub(r"\n +", " ", text)


def assert_inert(text: str) -> None:
    for raw in RAW:
        assert raw not in text, (raw, text)
    assert "\x1b[1;31mloud" not in text and "\x1b[1mloud" not in text  # no markup turned into style


def serve(server: ScriptedServer, *segments: bytes) -> None:
    server.route("POST", COMPLETIONS, Reply(segments=[*segments, DONE]))


def chunk(choice: dict, **top) -> bytes:
    return b"data: " + json.dumps({"id": "x", "model": "m", "choices": [choice], **top}).encode() + b"\n\n"


# ------------------------------------------------------------------------------------ the usage line, messages


@pytest.mark.parametrize("stdout", [True, False], ids=["colour-terminal", "stderr-terminal"])
def test_model_text_markup_is_literal_on_a_terminal(server: ScriptedServer, stdout: bool) -> None:
    serve(server, vllm_frame(HOSTILE, finish_reason="stop"), usage_frame(1, 1))
    r = on_terminal(["complete", "hi"], env_for(server), stdout=stdout)
    assert r.returncode == 0, r.stderr
    if stdout:
        assert_inert(r.stdout)
        shown = plain(r.stdout)
        assert "[bold red]loud[/]" in shown and "[link=https://evil.example]click[/link]" in shown and ":smile:" in shown
        assert "\\e[2J" in shown and "\\x07" in shown and "\\r" in shown and "\\u202e" in shown
    else:
        assert r.stdout == HOSTILE  # piped: exact


def test_finish_reasons_on_the_usage_line(server: ScriptedServer) -> None:
    serve(server, vllm_frame("a", finish_reason=HOSTILE), usage_frame(1, 1))
    r = on_terminal(["complete", "--stats", "hi"], env_for(server))
    assert_inert(r.stderr)
    assert "finish: [bold red]loud[/]" in r.stderr and "\\e[2J" in plain(r.stderr)


def test_several_finish_reasons_on_the_usage_line(server: ScriptedServer) -> None:
    serve(server, vllm_frame("a", finish_reason=HOSTILE), vllm_frame("b", index=1, finish_reason="\x1b[31m[red]"))
    r = on_terminal(["complete", "-n", "2", "hi"], env_for(server))
    assert_inert(r.stderr)
    assert "[1] \\e[31m[red]" in plain(r.stderr)


@pytest.mark.parametrize(
    "error",
    [{"error": {"message": HOSTILE, "type": MARKUP, "code": CONTROLS}}, {"object": "error", "message": HOSTILE}, {"error": HOSTILE}],
    ids=["nested", "flat", "string"],
)
def test_error_frames_on_a_terminal(server: ScriptedServer, error: dict) -> None:
    serve(server, vllm_frame("kept"), b"data: " + json.dumps(error).encode() + b"\n\n")
    r = on_terminal(["complete", "hi"], env_for(server))
    assert r.returncode == 9
    assert_inert(r.stderr)
    assert "[bold red]loud[/]" in unwrapped(r.stderr)


def test_an_error_event_on_a_terminal(server: ScriptedServer) -> None:
    serve(server, b"event: error\ndata: " + HOSTILE.encode() + b"\n\n")
    r = on_terminal(["complete", "hi"], env_for(server))
    assert r.returncode == 9
    assert_inert(r.stderr)


def test_a_frame_that_is_not_json_is_shown_visibly(server: ScriptedServer) -> None:
    serve(server, b"data: " + HOSTILE.encode() + b"\n\n")
    r = on_terminal(["complete", "hi"], env_for(server))
    assert r.returncode == 11
    assert_inert(r.stderr)


@pytest.mark.parametrize("status", [400, 404, 500])
def test_http_error_bodies_on_a_terminal(server: ScriptedServer, status: int) -> None:
    server.route("POST", COMPLETIONS, Reply.json(status, {"error": {"message": HOSTILE, "type": "x", "param": "model"}}))
    r = on_terminal(["complete", "-m", "m[bold]x[/]", "hi"], env_for(server))  # markup in the model the hint quotes
    assert r.returncode in (7, 8)
    assert_inert(r.stderr)
    assert "[bold red]loud[/]" in unwrapped(r.stderr)
    assert status != 404 or "m[bold]x[/]" in unwrapped(r.stderr)  # the 404 hint names the model, markup and all
    r = on_terminal(["complete", "-m", "m\x1b[2J[bold]", "hi"], env_for(server))  # a control character: refused before sending
    assert r.returncode == 3
    assert_inert(r.stderr)


def test_a_hostile_base_url_is_shown_visibly() -> None:
    r = on_terminal(["complete", "--base-url", "http://127.0.0.1:9/v1/\x1b[2J[bold]x\x07", "-m", "m", "hi"], {})
    assert r.returncode != 0
    assert_inert(r.stderr)


def test_the_json_outputs_escape_every_server_string(server: ScriptedServer) -> None:
    lp = {"tokens": [HOSTILE], "token_logprobs": [-0.1], "top_logprobs": [{HOSTILE: -0.1}], "text_offset": [0]}
    body = b"data: " + json.dumps({"id": HOSTILE, "model": HOSTILE, "choices": [{"index": 0, "text": HOSTILE, "logprobs": lp, "finish_reason": HOSTILE, "stop_reason": HOSTILE}]}).encode() + b"\n\n"
    serve(server, body, b'data: {"error": {"message": "' + json.dumps(HOSTILE).encode()[1:-1] + b'", "type": "t"}}\n\n')
    for flag in ("--json", "--jsonl"):
        r = on_terminal(["complete", flag, "--logprobs", "1", "hi"], env_for(server))
        assert r.returncode == 9
        assert_inert(r.stdout_bytes.decode())  # decoded: \u escapes are fine, raw bytes are not
        assert b"\xc2\x9b" not in r.stdout_bytes and b"\x1b" not in r.stdout_bytes


# ------------------------------------------------------------------------------------ logprobs


def hostile_logprobs() -> bytes:
    tokens = ["ok", HOSTILE]
    lp = {"tokens": tokens, "token_logprobs": [-0.1, -2.0], "top_logprobs": [{"[link=x]y[/link]\x1b]0;t\x07": -1.0}, {MARKUP: -3.0}], "text_offset": [0, 2]}
    return vllm_frame("".join(tokens), logprobs=lp, finish_reason="stop")


def test_the_logprobs_view_shows_hostile_tokens_visibly(server: ScriptedServer) -> None:
    serve(server, hostile_logprobs())
    r = on_terminal(["complete", "--logprobs", "2", "hi"], env_for(server))
    assert r.returncode == 0, r.stderr
    assert_inert(r.stdout)
    assert "[bold red]loud[/]" in plain(r.stdout)


@pytest.mark.parametrize("tty", [True, False], ids=["table", "tab-separated"])
def test_the_logprobs_table_shows_hostile_tokens_visibly(server: ScriptedServer, tty: bool) -> None:
    serve(server, hostile_logprobs())
    r = on_terminal(["complete", "--logprobs-table", "hi"], {**env_for(server), "COLUMNS": "400"}, stdout=False, stderr=tty)
    assert r.returncode == 0, r.stderr
    assert_inert(r.stderr)
    shown = plain(r.stderr).replace("\n", "")
    assert "[link=x]y[/link]" in shown and "\\u001b]0;t\\u0007" in shown  # tokens as JSON strings


def test_the_logprobs_view_on_a_pty(server: ScriptedServer) -> None:
    serve(server, hostile_logprobs())
    with PtyRun(["complete", "--logprobs", "2", "--logprobs-table", "hi"], env=env_for(server)) as run:
        rc = run.wait(30)
        text = run.output.decode("utf-8", "replace")
    assert rc == 0, text
    assert_inert(text)
    assert "[bold red]loud[/]" in text


# ------------------------------------------------------------------------------------ --raw like cat -v

RAW_SEGMENTS = [b"data: {\"a\": \"\x1b[2J", b"\x07 \r mid\r", b"\n\xc3", b"\xa9 \xff\xfe \x9b\"}\n\n", b": \x1b]0;t\x07\n\n"]


def test_raw_on_a_terminal_shows_control_bytes_visibly(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply(segments=RAW_SEGMENTS, delay=0.05))
    with PtyRun(["complete", "--raw", "-i", "hi"], env=env_for(server)) as run:
        run.wait(30)
        text = run.output.decode("utf-8", "replace")
    assert_inert(text)
    assert "\\e[2J" in text and "\\x07" in text and "\\r mid\\r" in text and "\\e]0;t\\x07" in text
    assert "é" in text  # a character split across two reads is joined
    assert "\\xff\\xfe" in text  # bytes that are not UTF-8 are shown as such
    assert "HTTP/1.1 200 OK\\r" in text  # the head's line endings, as they came


def test_raw_in_process_on_a_terminal_and_piped(server: ScriptedServer) -> None:
    reply = Reply(segments=RAW_SEGMENTS)
    server.route("POST", COMPLETIONS, reply)
    r = run_acs(["complete", "--raw", "hi"], env=env_for(server), stdout_tty=True)
    assert_inert(r.stdout)
    r = run_acs(["complete", "--raw", "hi"], env=env_for(server))
    assert r.stdout_bytes == reply.body()  # piped: byte for byte


def test_raw_names_a_hostile_content_encoding_visibly(server: ScriptedServer) -> None:
    """--raw says the body is content-encoded, quoting the server's Content-Encoding header: an
    escape sequence in it (HTTP lets a header value hold ESC and C1 bytes) is shown, not run."""
    coding = "x\x1b]0;owned\x07\x1b[2J\x9b31m"
    server.route("POST", COMPLETIONS, Reply(headers=[("content-type", "text/event-stream"), ("content-encoding", coding)], segments=[DONE]))
    r = on_terminal(["complete", "--raw", "hi"], env_for(server), stdout=False)
    assert r.returncode == 0, r.stderr
    assert "note: the server sent the body" in r.stderr
    assert_inert(r.stderr)
