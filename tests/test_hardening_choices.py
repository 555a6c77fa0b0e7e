"""Choices (README "Exit status" 2, 10, 11 and "What acs does with unusual streams"): a run is
complete only when every choice asked for (and every one the server sent) finished; --choice
outside the choices asked for is a usage error; a single choice streams live whatever its index;
completion frames under another event name draw one warning instead of vanishing."""

from __future__ import annotations

import json

import pytest

from acs_cli.completion_state import CompletionState
from tests.cliutil import COMPLETIONS, Streaming, assert_failure, env_for, text_reply
from tests.helpers import run_acs
from tests.sse_server import Reply, ScriptedServer, usage_frame, vllm_frame

DONE = ("message", "[DONE]")


def frame(index: int, text: str = "x", finish: str | None = None) -> tuple[str, str]:
    return ("message", json.dumps({"choices": [{"index": index, "text": text, "finish_reason": finish}]}))


# ------------------------------------------------------------------------------------ the verdict, from the rule

VERDICTS = [
    # (n asked for, events, complete?)
    (1, [frame(0, finish="stop"), DONE], True),
    (1, [frame(0, finish="stop")], True),  # every choice finished: [DONE] is not needed
    (1, [DONE], False),  # [DONE] alone
    (1, [frame(0), DONE], False),  # [DONE] before the finish
    (1, [frame(0)], False),  # cut before the finish
    (1, [], False),
    (2, [frame(0, finish="stop"), DONE], False),  # choice 1 never came
    (2, [frame(1, finish="stop"), DONE], False),  # choice 0 never came
    (2, [frame(0, finish="stop"), frame(1), DONE], False),  # choice 1 never finished
    (2, [frame(1, finish="stop"), frame(0, finish="length"), DONE], True),
    (3, [frame(0, finish="stop"), frame(2, finish="stop"), DONE], False),  # one of three missing
    (3, [frame(0, finish="stop"), frame(1, finish="stop"), frame(2), DONE], False),
    (3, [frame(2, finish="stop"), frame(0, finish="stop"), frame(1, finish="stop")], True),
    (1, [frame(0, finish="stop"), frame(0, "again", finish="length"), DONE], True),  # finished twice
    (2, [frame(0, finish="stop"), frame(1, finish="stop"), frame(2, finish="stop"), DONE], True),  # an extra choice, finished
    (2, [frame(0, finish="stop"), frame(1, finish="stop"), frame(2), DONE], False),  # an extra choice, unfinished
    (1, [frame(5, finish="stop"), DONE], True),  # one choice asked for: whatever its index
    (1, [frame(5), DONE], False),
    (1, [frame(5, finish="stop"), frame(6), DONE], False),  # a second, unasked, unfinished
    (1, [frame(0, finish="abort"), DONE], False),
    (2, [frame(0, finish="stop"), frame(1, finish="error"), DONE], False),
]


@pytest.mark.parametrize(("n", "events", "whole"), VERDICTS)
def test_verdict(n: int, events: list[tuple[str, str]], whole: bool) -> None:
    state = CompletionState(n)
    state.feed(events)
    verdict = state.verdict()
    assert (verdict is None) == whole, verdict and verdict.message
    if verdict is not None:
        assert int(verdict.status) == 10


def test_a_second_finish_changes_nothing() -> None:
    state = CompletionState(1)
    records = state.feed([frame(0, "a", finish="stop"), frame(0, "ignored", finish="length")])
    assert [type(r).__name__ for r in records] == ["Delta", "Finish"]
    assert state.choices[0].finish_reason == "stop"


def sse(*frames_: bytes, done: bool = True) -> Reply:
    return Reply.sse(list(frames_), done=done)


@pytest.mark.parametrize(
    ("flags", "reply", "words"),
    [
        (["-n", "2"], sse(vllm_frame("a", finish_reason="stop")), "[DONE] came before choice 1"),
        (["--param", "n=2"], sse(vllm_frame("a", finish_reason="stop")), "[DONE] came before choice 1"),
        (["-n", "3"], sse(vllm_frame("a", finish_reason="stop"), vllm_frame("c", index=2, finish_reason="stop"), done=False), "without [DONE]"),
        (["--param", "n=3"], sse(vllm_frame("a", index=0, finish_reason="stop"), vllm_frame("b", index=1, finish_reason="stop"), vllm_frame("c", index=2)), "choice 2"),
        (["--param", 'prompt=["p","q"]'], sse(vllm_frame("a", finish_reason="stop")), "choice 1"),
        ([], sse(), "[DONE] came without any completion frame"),
        ([], sse(vllm_frame("a")), "[DONE] came before choice 0"),
        (["-n", "2"], sse(vllm_frame("a", finish_reason="stop"), vllm_frame("b", index=1, finish_reason="stop"), vllm_frame("c", index=2)), "choice 2"),
    ],
    ids=["n2-one-missing", "param-n2", "n3-one-missing-cut", "param-n3-unfinished", "two-prompts", "done-alone", "done-before-finish", "extra-unfinished"],
)
def test_incomplete_choices_exit_10(server: ScriptedServer, flags: list[str], reply: Reply, words: str) -> None:
    server.route("POST", COMPLETIONS, reply)
    r = run_acs(["complete", *flags, "hi"], env=env_for(server))
    message, _ = assert_failure(r, 10)
    assert words in message
    r = run_acs(["complete", "--json", *flags, "hi"], env=env_for(server))
    obj = json.loads(r.stdout)
    assert r.returncode == 10 and obj["complete"] is False and obj["error"]["kind"] == "incomplete"


def test_every_choice_finished_is_complete(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, sse(vllm_frame("b", index=1, finish_reason="stop"), vllm_frame("a", finish_reason="length"), vllm_frame("c", index=2, finish_reason="stop")))
    r = run_acs(["complete", "--param", "n=3", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "a\n\nb\n\nc"  # in index order, a blank line between


def test_a_choice_finished_twice_keeps_its_first_end(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, sse(vllm_frame("a", finish_reason="stop"), vllm_frame("late", finish_reason="length"), usage_frame(1, 1)))
    r = run_acs(["complete", "--json", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    choice = json.loads(r.stdout)["choices"][0]
    assert choice["text"] == "a" and choice["finish_reason"] == "stop"


def test_an_extra_choice_that_finished_is_shown(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, sse(vllm_frame("a", finish_reason="stop"), vllm_frame("b", index=1, finish_reason="stop"), vllm_frame("extra", index=2, finish_reason="stop")))
    r = run_acs(["complete", "-n", "2", "--json", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert [c["text"] for c in json.loads(r.stdout)["choices"]] == ["a", "b", "extra"]


def test_replay_with_fewer_choices_than_asked(tmp_path) -> None:
    path = tmp_path / "one.sse"
    path.write_bytes(text_reply(["a"]).body())
    r = run_acs(["replay", "-n", "2", str(path)])
    assert_failure(r, 10)


# ------------------------------------------------------------------------------------ --choice


@pytest.mark.parametrize(
    "args",
    [["-n", "2", "--choice", "2"], ["--choice", "1"], ["--param", "n=3", "--choice", "3"], ["-n", "3", "--choice", "7"], ["--param", 'prompt=["a","b"]', "--choice", "2"], ["--json", "-n", "2", "--choice", "5"]],
    ids=["n2-c2", "n1-c1", "param-n3-c3", "n3-c7", "two-prompts-c2", "json"],
)
def test_choice_outside_the_choices_asked_for(server: ScriptedServer, args: list[str]) -> None:
    server.route("POST", COMPLETIONS, text_reply(["a"]))
    r = run_acs(["complete", *args, "hi"], env=env_for(server))
    message, hint = assert_failure(r, 2)
    assert "--choice" in message and "asked for" in message
    assert r.stdout == "" and server.requests == []


@pytest.mark.parametrize(("args", "text"), [(["--param", "n=3", "--choice", "2"], "c"), (["--param", 'prompt=["a","b"]', "--choice", "1"], "b")], ids=["param-n3", "prompts"])
def test_choice_inside_the_choices_asked_for(server: ScriptedServer, args: list[str], text: str) -> None:
    frames = [vllm_frame(t, index=i, finish_reason="stop") for i, t in enumerate("abc")]
    server.route("POST", COMPLETIONS, sse(*frames))
    r = run_acs(["complete", *args, "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert r.stdout == text


@pytest.mark.parametrize("args", [["--choice", "1"], ["-n", "2", "--choice", "2"], ["-n", "3", "--choice", "3", "--json"]])
def test_replay_choice_outside_the_choices(tmp_path, args: list[str]) -> None:
    path = tmp_path / "c.sse"
    path.write_bytes(text_reply(["a"]).body())
    r = run_acs(["replay", *args, str(path)])
    message, _ = assert_failure(r, 2)
    assert "--choice" in message and r.stdout == ""


# ------------------------------------------------------------------------------------ one choice, any index


@pytest.mark.parametrize("index", [1, 40])
def test_a_single_choice_with_another_index_streams_live(server: ScriptedServer, index: int) -> None:
    pieces = ["one ", "two ", "three ", "four"]
    frames = [vllm_frame(p, index=index, finish_reason="stop" if i == 3 else None) for i, p in enumerate(pieces)]
    server.route("POST", COMPLETIONS, Reply.sse(frames, delay=0.4))
    with Streaming(["complete", "hi"], env=env_for(server)) as run:
        assert run.wait(20) == 0, run.stderr
        first = run.first_time(b"one")
        out = run.stdout
    last_sent = max(t for _, t in server.segment_times[-2:])  # the last frame (or [DONE] after it)
    assert first is not None and first < last_sent - 0.5  # shown as it came, not held to the end
    assert out == b"one two three four"  # no section label, no separator


@pytest.mark.parametrize("flags", [[], ["--param", "n=1"], ["-n", "1"]], ids=["default", "param-n1", "n1"])
def test_a_single_choice_with_another_index_on_a_terminal(server: ScriptedServer, flags: list[str]) -> None:
    server.route("POST", COMPLETIONS, sse(vllm_frame("hello", index=5), vllm_frame(" there", index=5, finish_reason="stop")))
    r = run_acs(["complete", *flags, "hi"], env=env_for(server), stdout_tty=True)
    assert r.returncode == 0, r.stderr
    assert "choice" not in r.stdout and "hello there" in r.stdout
    r = run_acs(["complete", "--json", *flags, "hi"], env=env_for(server))
    assert json.loads(r.stdout)["choices"] == [{"index": 5, "text": "hello there", "finish_reason": "stop", "stop_reason": None}]


# ------------------------------------------------------------------------------------ named events


def named(name: bytes, text: str, **kw) -> bytes:
    return b"event: " + name + b"\n" + vllm_frame(text, **kw)


def test_completion_frames_under_another_event_name_warn_once(server: ScriptedServer) -> None:
    frames = [named(b"completion", f"lost{i} ") for i in range(5)] + [vllm_frame("shown", finish_reason="stop")]
    server.route("POST", COMPLETIONS, sse(*frames))
    r = run_acs(["complete", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "shown"
    warnings = [line for line in r.stderr.splitlines() if "event: completion" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning:")


@pytest.mark.parametrize("flags", [["-q"], ["--json"], ["--jsonl"], ["-q", "--json"]])
def test_the_named_event_warning_is_shown_with_every_output(server: ScriptedServer, flags: list[str]) -> None:
    """A warning about text that vanished stays, like the plain-http key warning, also with -q."""
    server.route("POST", COMPLETIONS, sse(named(b"delta", "lost"), vllm_frame("shown", finish_reason="stop")))
    r = run_acs(["complete", *flags, "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("event: delta") == 1
    if "-q" in flags:
        assert len(r.stderr.splitlines()) == 1  # the warning only: no usage line


def test_only_named_completion_frames_is_incomplete_and_says_why(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, sse(named(b"completion", "a"), named(b"completion", "b", finish_reason="stop")))
    r = run_acs(["complete", "hi"], env=env_for(server))
    assert_failure(r, 10)
    assert r.stderr.count("event: completion") == 1


@pytest.mark.parametrize("data", [b'{"type":"ping"}', b"ping", b'{"choices_left": 1}', b"[1,2]"], ids=["ping-json", "ping-text", "no-choices", "list"])
def test_named_pings_draw_no_warning(server: ScriptedServer, data: bytes) -> None:
    server.route("POST", COMPLETIONS, sse(b"event: ping\ndata: " + data + b"\n\n", vllm_frame("a", finish_reason="stop")))
    r = run_acs(["complete", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr


def test_a_minimal_completion_frame_under_a_name_warns(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, sse(b'event: chunk\ndata: {"choices":[{"index":0,"text":"x"}]}\n\n', vllm_frame("a", finish_reason="stop")))
    r = run_acs(["complete", "hi"], env=env_for(server))
    assert "event: chunk" in r.stderr


def test_a_hostile_event_name_is_shown_visibly(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, sse(named(b"x\x1b[2J\x07y", "lost"), vllm_frame("a", finish_reason="stop")))
    r = run_acs(["complete", "hi"], env=env_for(server), stderr_tty=True)
    assert "\x1b[2J" not in r.stderr and "\x07" not in r.stderr
    assert "x\\e[2J\\x07y" in r.stderr


@pytest.mark.parametrize("n", [1, 4])
def test_a_flood_of_unasked_choices_is_bounded(server: ScriptedServer, n: int) -> None:
    frames = [vllm_frame(f"c{i}", index=i, finish_reason="stop") for i in range(n + 200)]
    server.route("POST", COMPLETIONS, sse(*frames))
    r = run_acs(["complete", "-n", str(n), "--json", "hi"], env=env_for(server))
    message, _ = assert_failure(r, 11)
    assert f"{n} were asked for" in message
    assert len(json.loads(r.stdout)["choices"]) == n + 64  # what came before is kept


def test_a_few_extra_choices_are_fine(server: ScriptedServer) -> None:
    frames = [vllm_frame(f"c{i}", index=i, finish_reason="stop") for i in range(10)]
    server.route("POST", COMPLETIONS, sse(*frames))
    r = run_acs(["complete", "-n", "2", "--json", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
