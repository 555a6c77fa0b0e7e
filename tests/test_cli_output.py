"""What acs writes when stdout is not a terminal: exact text, live, --raw bytes, several choices,
replay of captures, and the informational commands (README "Use")."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from acs_cli import __version__
from tests.cliutil import COMPLETIONS, REPO_ROOT, Streaming, assert_failure, choices_reply, env_for, frames, text_reply
from tests.helpers import run_acs
from tests.sse_server import DONE, Reply, ScriptedServer, usage_frame, vllm_frame

SAMPLE_USAGE = "9 prompt + 80 completion = 89 tokens · finish: length"


# ------------------------------------------------------------------------------------ piped text


def test_piped_stdout_is_exactly_the_text(server: ScriptedServer) -> None:
    pieces = ["Once", " upon", " a time,\n", "there was\ta ", "crab 🦀."]
    server.route("POST", COMPLETIONS, text_reply(pieces))
    r = run_acs(["complete", "hi"], env=env_for(server, TERM="xterm-256color"))
    assert r.returncode == 0, r.stderr
    assert r.stdout_bytes == "".join(pieces).encode("utf-8")
    assert b"\x1b" not in r.stdout_bytes
    assert b"\x1b" not in r.stderr_bytes


def test_piped_output_keeps_escape_codes_in_the_text_byte_exact(server: ScriptedServer) -> None:
    """A pipe gets what the model wrote, escape sequences and control characters included."""
    pieces = ["plain ", "\x1b[31mred\x1b[0m ", "\x1b]0;title\x07", "back\x08space\rCR ", "c1\x9b!", " \u202eRTL\u202c"]
    server.route("POST", COMPLETIONS, text_reply(pieces))
    r = run_acs(["complete", "hi"], env=env_for(server, TERM="xterm-256color"))
    assert r.returncode == 0, r.stderr
    assert r.stdout_bytes == "".join(pieces).encode("utf-8")
    assert b"\x1b" not in r.stderr_bytes


def test_usage_line_on_stderr(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["a", "b", "c"], finish="length", usage=(9, 3)))
    r = run_acs(["complete", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "abc"
    assert r.stderr.strip() == "9 prompt + 3 completion = 12 tokens · finish: length"


@pytest.mark.parametrize("flag", ["-q", "--quiet"])
def test_quiet_drops_the_usage_line(server: ScriptedServer, flag: str) -> None:
    server.route("POST", COMPLETIONS, text_reply(["a", "b"]))
    r = run_acs(["complete", flag, "hi"], env=env_for(server))
    assert r.returncode == 0
    assert r.stdout == "ab"
    assert r.stderr == ""


def test_usage_line_when_the_server_sends_none(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["a", "b"], usage=None))
    r = run_acs(["complete", "--no-usage", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    line = r.stderr.strip()
    assert "\n" not in line
    assert "usage" in line and "none" in line  # says so ...
    assert not re.search(r"\d+ (prompt|completion)|\d+ tokens", line), line  # ... and invents nothing
    assert "finish: stop" in line


def test_pipe_is_live(server: ScriptedServer) -> None:
    """Each network read is written through: a reader sees the first token long before the end."""
    pieces = [f"tok{i} " for i in range(5)]
    server.route("POST", COMPLETIONS, text_reply(pieces, delay=0.4))
    with Streaming(["complete", "hi"], env=env_for(server)) as run:
        rc = run.wait(30)
        first = run.first_time(b"tok0")
        out = run.stdout
    assert rc == 0
    assert out == "".join(pieces).encode()
    assert first is not None
    last_segment = max(t for _, t in server.segment_times)
    assert first < last_segment - 0.5, (first, last_segment)
    # and every token arrived before the next was even written
    times = [t for _, t in server.segment_times]
    for i in range(4):
        seen = run.first_time(f"tok{i}".encode())
        assert seen is not None and seen < times[i + 1], (i, seen, times)


# ------------------------------------------------------------------------------------ --raw

RAW_SEGMENTS = [
    b": keep-alive\r\n\r\n",
    b"data: " + vllm_frame(" Hi")[6:-2] + b"\r\n\r\n",
    b"event: message\nid: 7\ndata: " + vllm_frame(" there")[6:-2] + b"\n\n",
    b": ping\n\n",
    vllm_frame("!", finish_reason="stop"),
    usage_frame(3, 3),
    b"data: [DONE]\r\n\r\n",
]


@pytest.mark.parametrize("one_byte", [False, True])
def test_raw_is_the_body_byte_for_byte(server: ScriptedServer, one_byte: bool) -> None:
    reply = Reply(segments=RAW_SEGMENTS, one_byte_chunks=one_byte)
    server.route("POST", COMPLETIONS, reply)
    r = run_acs(["complete", "--raw", "hi"], env=env_for(server), timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout_bytes == reply.body()


def test_raw_with_length_framing(server: ScriptedServer) -> None:
    reply = Reply(segments=RAW_SEGMENTS, end="length")
    server.route("POST", COMPLETIONS, reply)
    r = run_acs(["complete", "--raw", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert r.stdout_bytes == reply.body()


def test_raw_include_prints_status_line_and_headers_first(server: ScriptedServer) -> None:
    reply = Reply(
        headers=[("content-type", "text/event-stream; charset=utf-8"), ("x-request-id", "req-42"), ("cache-control", "no-cache")],
        segments=RAW_SEGMENTS,
    )
    server.route("POST", COMPLETIONS, reply)
    r = run_acs(["complete", "--raw", "-i", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    out = r.stdout_bytes
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    head, sep, body = out.partition(b"\r\n\r\n")
    assert sep
    lines = head.split(b"\r\n")[1:]
    assert b"content-type: text/event-stream; charset=utf-8" in lines
    assert b"x-request-id: req-42" in lines
    assert b"cache-control: no-cache" in lines
    assert body == reply.body()


def test_raw_include_long_flag(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply(segments=RAW_SEGMENTS))
    r = run_acs(["complete", "--raw", "--include", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert r.stdout_bytes.startswith(b"HTTP/1.1 200 OK\r\n")


def test_raw_is_live(server: ScriptedServer) -> None:
    segs = frames([f"w{i}" for i in range(5)]) + [DONE]
    server.route("POST", COMPLETIONS, Reply(segments=segs, delay=0.3))
    with Streaming(["complete", "--raw", "hi"], env=env_for(server)) as run:
        assert run.wait(30) == 0
        first = run.first_time(b'"w0"')
        assert run.stdout == b"".join(segs)
    assert first is not None
    assert first < max(t for _, t in server.segment_times) - 0.5


def test_raw_404_prints_the_error_body_and_exits_7(server: ScriptedServer) -> None:
    body = b'{"error":{"message":"The model `m` does not exist.","type":"NotFoundError","param":"model","code":404}}'
    server.route("POST", COMPLETIONS, Reply.json(404, body))
    r = run_acs(["complete", "--raw", "hi"], env=env_for(server))
    message, hint = assert_failure(r, 7)
    assert r.stdout_bytes == body
    assert "404" in message and "does not exist" in message


def test_raw_include_on_error_shows_the_status_line(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.json(500, b"boom"))
    r = run_acs(["complete", "--raw", "-i", "--retries", "0", "hi"], env=env_for(server))
    assert_failure(r, 8)
    assert r.stdout_bytes.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert r.stdout_bytes.endswith(b"\r\n\r\nboom")


def test_raw_cut_stream_is_incomplete(server: ScriptedServer) -> None:
    segs = frames(["a", "b"])[:1]
    server.route("POST", COMPLETIONS, Reply(segments=segs, end="abort"))
    r = run_acs(["complete", "--raw", "hi"], env=env_for(server))
    assert_failure(r, 10)
    assert r.stdout_bytes == segs[0]


# ------------------------------------------------------------------------------------ several choices


def test_two_choices_piped_are_joined_by_a_blank_line(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, choices_reply({0: ["The ", "first."], 1: ["The ", "second."]}))
    r = run_acs(["complete", "--n", "2", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "The first.\n\nThe second."
    assert b"\x1b" not in r.stdout_bytes


def test_two_choices_in_index_order_when_choice_1_finishes_first(server: ScriptedServer) -> None:
    segs = [
        vllm_frame("B1", index=1),
        vllm_frame("A1", index=0),
        vllm_frame("B2", index=1, finish_reason="stop"),
        vllm_frame("A2", index=0, finish_reason="length"),
        usage_frame(1, 4),
    ]
    server.route("POST", COMPLETIONS, Reply.sse(segs))
    r = run_acs(["complete", "-n", "2", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "A1A2\n\nB1B2"


@pytest.mark.parametrize("k, text", [(0, "first"), (1, "second")])
def test_choice_k_prints_only_that_choice(server: ScriptedServer, k: int, text: str) -> None:
    server.route("POST", COMPLETIONS, choices_reply({0: ["fir", "st"], 1: ["sec", "ond"]}))
    r = run_acs(["complete", "--n", "2", "--choice", str(k), "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert r.stdout == text


# ------------------------------------------------------------------------------------ replay


def test_replay_plays_the_bundled_sample() -> None:
    t0 = time.monotonic()
    r = run_acs(["replay"], timeout=60)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(" It’s fast.")
    assert SAMPLE_USAGE in r.stderr
    assert b"\x1b" not in r.stdout_bytes + r.stderr_bytes
    assert elapsed > 1.0  # paced like a model by default


def test_replay_sample_without_delay_is_quick_and_equal() -> None:
    r = run_acs(["replay", "--delay", "0"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(" It’s fast.")
    assert r.stderr.strip() == SAMPLE_USAGE


def _capture(server: ScriptedServer, tmp_path: Path, reply: Reply, *extra: str) -> tuple[Path, object]:
    """Run live (text) and live --raw against the same reply; return the capture file and the live run."""
    server.route("POST", COMPLETIONS, reply)
    live = run_acs(["complete", *extra, "hi"], env=env_for(server))
    raw = run_acs(["complete", "--raw", *extra, "hi"], env=env_for(server))
    assert raw.returncode == 0, raw.stderr
    path = tmp_path / "capture.sse"
    path.write_bytes(raw.stdout_bytes)
    return path, live


def test_replay_file_equals_the_live_run(server: ScriptedServer, tmp_path: Path) -> None:
    reply = Reply(segments=RAW_SEGMENTS)
    path, live = _capture(server, tmp_path, reply)
    assert live.returncode == 0
    r = run_acs(["replay", str(path)])
    assert r.returncode == 0, r.stderr
    assert r.stdout_bytes == live.stdout_bytes == b" Hi there!"
    assert r.stderr == live.stderr


def test_replay_stdin_equals_the_live_run(server: ScriptedServer, tmp_path: Path) -> None:
    path, live = _capture(server, tmp_path, text_reply(["alpha", " beta\n", "gamma"], finish="length", usage=(4, 3)))
    r = run_acs(["replay", "-"], input=path.read_bytes())
    assert r.returncode == 0, r.stderr
    assert r.stdout_bytes == live.stdout_bytes == b"alpha beta\ngamma"
    assert r.stderr == live.stderr


def test_replay_two_choices_with_n(server: ScriptedServer, tmp_path: Path) -> None:
    path, live = _capture(server, tmp_path, choices_reply({0: ["x", "y"], 1: ["z"]}), "--n", "2")
    r = run_acs(["replay", "--n", "2", str(path)])
    assert r.returncode == 0, r.stderr
    assert r.stdout == live.stdout == "xy\n\nz"
    r = run_acs(["replay", "--n", "2", "--choice", "1", "-q", str(path)])
    assert (r.returncode, r.stdout, r.stderr) == (0, "z", "")


def test_replay_of_an_include_capture(server: ScriptedServer, tmp_path: Path) -> None:
    server.route("POST", COMPLETIONS, text_reply(["one", " two"]))
    raw = run_acs(["complete", "--raw", "-i", "hi"], env=env_for(server))
    assert raw.returncode == 0
    assert raw.stdout_bytes.startswith(b"HTTP/1.1 200 OK\r\n")
    path = tmp_path / "with-head.sse"
    path.write_bytes(raw.stdout_bytes)
    r = run_acs(["replay", str(path)])
    assert r.returncode == 0, r.stderr
    assert r.stdout == "one two"
    assert "finish: stop" in r.stderr


def test_replay_of_a_cut_capture_is_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "cut.sse"
    path.write_bytes(b"".join(frames(["a", "b"])[:1]))
    r = run_acs(["replay", str(path)])
    assert_failure(r, 10)
    assert r.stdout == "a"


def test_replay_missing_file_is_usage_error(tmp_path: Path) -> None:
    r = run_acs(["replay", str(tmp_path / "nope.sse")])
    assert_failure(r, 2)


def test_replay_delay_paces_the_frames(tmp_path: Path) -> None:
    path = tmp_path / "five.sse"
    path.write_bytes(b"".join(frames([f"f{i}" for i in range(5)])) + DONE)
    t0 = time.monotonic()
    r = run_acs(["replay", str(path), "--delay", "0.1"])
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert r.stdout == "f0f1f2f3f4"
    assert elapsed >= 0.4


def test_replay_delay_is_live(tmp_path: Path) -> None:
    path = tmp_path / "five.sse"
    path.write_bytes(b"".join(frames([f"f{i}" for i in range(5)])) + DONE)
    with Streaming(["replay", str(path), "--delay", "0.3"]) as run:
        assert run.wait(30) == 0
        first, last = run.first_time(b"f0"), run.first_time(b"f4")
    assert first is not None and last is not None
    assert last - first >= 0.9


# ------------------------------------------------------------------------------------ help and version


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str) -> None:
    r = run_acs([flag])
    assert r.returncode == 0
    assert r.stdout == f"acs {__version__}\n"
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert f'version = "{__version__}"' in pyproject


def test_help_lists_the_commands() -> None:
    r = run_acs(["--help"])
    assert r.returncode == 0, r.stderr
    for name in ("complete", "replay", "completion"):
        assert name in r.stdout
    assert b"\x1b" not in r.stdout_bytes


def test_complete_help_shows_options_examples_and_environment() -> None:
    r = run_acs(["complete", "--help"])
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for opt in ("--model", "--max-tokens", "--temperature", "--stop", "--param", "--raw", "--base-url", "--timeout", "--retries"):
        assert opt in out
    assert "Examples:" in out
    assert 'acs complete -e "Five reasons to learn Rust:\\n1."' in out
    assert "ACS_API_BASE" in out and "ACS_API_KEY" in out


def test_complete_short_help_flag() -> None:
    r = run_acs(["complete", "-h"])
    assert r.returncode == 0
    assert "Examples:" in r.stdout


def test_replay_help() -> None:
    r = run_acs(["replay", "--help"])
    assert r.returncode == 0, r.stderr
    assert "--delay" in r.stdout
    assert "acs replay" in r.stdout  # its examples
