"""Hostile JSON (README "What acs does with unusual streams"): nesting too deep to read, numbers too
long or out of a float's range, NaN/Infinity, logprobs of every wrong shape, choice indices that
are not whole numbers. None of it crashes acs in any output (pipe, terminal, the logprobs view,
--logprobs-table, --json, --jsonl); the text already received is kept; a frame acs cannot read is
a protocol error (exit 11). JSON output stays strict JSON: what JSON cannot hold is null."""

from __future__ import annotations

import json
import math

import pytest

from tests.cliutil import COMPLETIONS, assert_failure, env_for
from tests.helpers import run_acs
from tests.ptyutil import PtyRun, colour_sgr, strip_ansi
from tests.sse_server import DONE, Reply, ScriptedServer, usage_frame, vllm_frame

OUTPUTS = [[], ["--json"], ["--jsonl"], ["--logprobs-table"], ["--stats"]]
OUTPUT_IDS = ["pipe", "json", "jsonl", "table", "stats"]
VIEW = {"stdout_tty": True, "env": {"TERM": "xterm-256color"}}  # the logprobs view (stdout a colour terminal)


def strict(text: str):
    """json.loads that refuses NaN and Infinity, as every other JSON reader does."""

    def refuse(name: str):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def raw_frame(choice_json: str, extra: str = "") -> bytes:
    """A frame whose choice is given as JSON text, so it can hold what json.dumps never writes."""
    return f'data: {{"id":"x","model":"m","choices":[{choice_json}]{extra}}}\n\n'.encode()


def lp_frame(text: str, tokens: str, values: str, tops: str = "null", finish: str = "null") -> bytes:
    logprobs = f'{{"tokens":{tokens},"token_logprobs":{values},"top_logprobs":{tops},"text_offset":null}}'
    return raw_frame(f'{{"index":0,"text":{json.dumps(text)},"logprobs":{logprobs},"finish_reason":{finish}}}')


def complete(server: ScriptedServer, segments: list[bytes], *flags: str, done: bool = True, **kw):
    server.route("POST", COMPLETIONS, Reply(segments=[*segments, *([DONE] if done else [])]))
    env = {**env_for(server), **kw.pop("env", {})}
    return run_acs(["complete", *flags, "hi"], env=env, **kw)


def kept_text(r, flags: tuple[str, ...]) -> str:
    if "--json" in flags:
        obj = strict(r.stdout)
        return "".join(c["text"] for c in obj["choices"])
    if "--jsonl" in flags:
        return "".join(line["text"] for line in map(strict, r.stdout.splitlines()) if line["type"] == "delta")
    return r.stdout


# ------------------------------------------------------------------------------------ unreadable frames

UNREADABLE = {
    "deep-array": "[" * 100_000,
    "deep-object": '{"a":' * 100_000,
    "deep-logprobs": '{"choices":[{"index":0,"text":"x","logprobs":' + "[" * 50_000 + "]" * 50_000 + "}]}",
    "long-int-usage": '{"choices":[],"usage":{"prompt_tokens":' + "9" * 5000 + "}}",
    "long-int-index": '{"choices":[{"index":' + "1" * 4400 + ',"text":"x"}]}',
}


@pytest.mark.parametrize("flags", OUTPUTS, ids=OUTPUT_IDS)
@pytest.mark.parametrize("data", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_unreadable_frame_is_a_protocol_error_keeping_the_text(server: ScriptedServer, data: str, flags: list[str]) -> None:
    r = complete(server, [vllm_frame("Once"), vllm_frame(" upon"), f"data: {data}\n\n".encode()], *flags)
    message, _ = assert_failure(r, 11)
    assert "nested too deeply" in message or "number too long" in message, message
    assert len(message) < 400
    assert kept_text(r, tuple(flags)) == "Once upon"


@pytest.mark.parametrize("data", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_unreadable_frame_in_the_logprobs_view(server: ScriptedServer, data: str) -> None:
    first = lp_frame("Once", '["Once"]', "[-0.1]")
    r = complete(server, [first, f"data: {data}\n\n".encode()], "--logprobs", "1", **VIEW)
    assert_failure(r, 11)
    assert "Once" in r.stdout


@pytest.mark.parametrize("data", ["[" * 100_000, '{"choices":' + "9" * 5000 + "}"], ids=["deep", "long-int"])
def test_an_unreadable_json_answer_is_a_protocol_error(server: ScriptedServer, data: str) -> None:
    server.route("POST", COMPLETIONS, Reply.json(200, data.encode()))
    r = run_acs(["complete", "--json", "hi"], env=env_for(server))
    assert_failure(r, 11)
    assert strict(r.stdout)["error"]["kind"] == "protocol"


@pytest.mark.parametrize("flags", [["--json"], ["--jsonl"], ["--json", "--logprobs-table"]], ids=["json", "jsonl", "json-table"])
def test_nesting_near_the_limit_never_crashes_the_json_output(server: ScriptedServer, flags: list[str]) -> None:
    """Somewhere below the parser's depth limit lies the encoder's: whichever a depth hits, the
    answer is a protocol error or a JSON object, never a crash."""
    for depth in range(880, 1001, 8):
        nested = "[" * depth + "]" * depth
        frame = lp_frame("x", '["x"]', "[-0.5]", tops=f"[{nested}]", finish='"stop"')
        r = complete(server, [frame], *flags)
        assert r.returncode in (0, 11), (depth, r.stderr)
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr
        if r.returncode == 0 and "--json" in flags:
            assert strict(r.stdout)["choices"][0]["text"] == "x"


# ------------------------------------------------------------------------------------ numbers out of range

HOSTILE_VALUES = "[NaN, Infinity, -Infinity, 1e999, -1e999, 1e308, -1e308, 1" + "0" * 400 + ', "-0.5", null, true, {"a": [1]}, -0.25]'
TOKENS = json.dumps([f"t{i}" for i in range(13)])
TEXT = "".join(f"t{i}" for i in range(13))


@pytest.mark.parametrize("flags", OUTPUTS, ids=OUTPUT_IDS)
def test_out_of_range_logprobs_never_crash(server: ScriptedServer, flags: list[str]) -> None:
    r = complete(server, [lp_frame(TEXT, TOKENS, HOSTILE_VALUES, finish='"stop"')], *flags, "--logprobs", "1")
    assert r.returncode == 0, r.stderr
    assert kept_text(r, tuple(flags)) == TEXT


def test_json_writes_what_json_cannot_hold_as_null(server: ScriptedServer) -> None:
    r = complete(server, [lp_frame(TEXT, TOKENS, HOSTILE_VALUES, finish='"stop"')], "--json", "--logprobs", "1")
    values = strict(r.stdout)["choices"][0]["logprobs"]["token_logprobs"]
    assert values[:5] == [None] * 5  # NaN, Infinity, -Infinity, 1e999, -1e999
    assert values[5:7] == [1e308, -1e308]
    assert values[7] == 10**400  # a long integer is still a number JSON can carry
    assert values[8:] == ["-0.5", None, True, {"a": [1]}, -0.25]  # the server's own values otherwise


def test_jsonl_writes_what_json_cannot_hold_as_null(server: ScriptedServer) -> None:
    extra = ',"usage":{"prompt_tokens":NaN,"completion_tokens":1e999,"total_tokens":-Infinity}'
    frame = raw_frame('{"index":0,"text":"a","finish_reason":"stop","stop_reason":NaN}', extra)
    r = complete(server, [frame], "--jsonl")
    assert r.returncode == 0, r.stderr
    lines = [strict(line) for line in r.stdout.splitlines()]
    assert {"type": "finish", "index": 0, "finish_reason": "stop", "stop_reason": None} in lines
    assert {"type": "usage", "prompt_tokens": None, "completion_tokens": None, "total_tokens": None} in lines


def test_the_table_shows_out_of_range_values(server: ScriptedServer) -> None:
    r = complete(server, [lp_frame(TEXT, TOKENS, HOSTILE_VALUES, finish='"stop"')], "--logprobs-table")
    rows = [line.split("\t") for line in r.stderr.splitlines() if line.startswith("0\t")]
    assert len(rows) == 13
    shown = [(row[3], row[4]) for row in rows]
    assert shown[0] == ("?", "?") and shown[1] == ("?", "?")  # NaN, +Infinity: unknown
    assert shown[2] == ("0.0%", "-inf") and shown[4] == ("0.0%", "-inf") and shown[6] == ("0.0%", "-inf")
    assert shown[3] == ("?", "?")  # 1e999 reads as +Infinity
    assert shown[5] == ("100.0%", "1e+308")  # a positive logprob is out of range: 100%
    assert shown[7] == ("?", "?")  # an integer past a float's range is +Infinity too
    assert shown[8:11] == [("?", "?")] * 3  # a string, null, a bool
    assert shown[12] == (f"{100 * math.exp(-0.25):.1f}%", "-0.2500")


def test_out_of_range_logprobs_in_the_logprobs_view(server: ScriptedServer) -> None:
    r = complete(server, [lp_frame(TEXT, TOKENS, HOSTILE_VALUES, finish='"stop"')], "--logprobs", "1", **VIEW)
    assert r.returncode == 0, r.stderr
    assert TEXT in strip_ansi(r.stdout_bytes).decode()


def test_out_of_range_logprobs_on_a_colour_pty(server: ScriptedServer) -> None:
    deep = "[" * 500 + "]" * 500
    frames = [lp_frame("t0t1", '["t0","t1"]', "[NaN, -0.01]"), lp_frame("t2", '["t2"]', "[1e999]", tops=f"[{deep}]"), lp_frame("t3", '["t3"]', "[-1e308]", finish='"stop"')]
    server.route("POST", COMPLETIONS, Reply(segments=[*frames, DONE]))
    with PtyRun(["complete", "--logprobs", "1", "--logprobs-table", "hi"], env=env_for(server)) as run:
        rc = run.wait(30)
        output = run.output
    assert rc == 0, output
    text = strip_ansi(output).decode()
    assert "t0t1t2t3" in text and "Traceback" not in text
    assert colour_sgr(output)  # the tokens that have a probability are coloured


# ------------------------------------------------------------------------------------ logprobs of the wrong shape


def test_arrays_of_different_lengths_stay_aligned(server: ScriptedServer) -> None:
    frames = [lp_frame("ab", '["a","b"]', "[-0.1]"), lp_frame("c", '["c"]', "[-0.2, -7, -8]", tops='[{"x": -1}]', finish='"stop"')]
    r = complete(server, frames, "--json", "--logprobs-table", "--logprobs", "1")
    assert r.returncode == 0, r.stderr
    lp = strict(r.stdout)["choices"][0]["logprobs"]
    assert lp["tokens"] == ["a", "b", "c"]
    assert lp["token_logprobs"] == [-0.1, None, -0.2]  # c keeps its own value
    assert lp["top_logprobs"] == [None, None, {"x": -1}]
    rows = [line.split("\t") for line in r.stderr.splitlines() if line.startswith("0\t")]
    assert [(row[2], row[4]) for row in rows] == [('"a"', "-0.1000"), ('"b"', "?"), ('"c"', "-0.2000")]


GARBAGE_TOPS = [
    '[[[1]], {"a": {"b": []}}, "s", 5, null, [{"token": [1], "logprob": "x"}, {"token": "ok", "logprob": -0.1}, 7]]',
    '{"not": "a list"}',
    '"top"',
    "[" + "[" * 300 + "]" * 300 + "]",
]


@pytest.mark.parametrize("flags", [["--json"], ["--jsonl"], ["--logprobs-table"], []], ids=["json", "jsonl", "table", "pipe"])
@pytest.mark.parametrize("tops", GARBAGE_TOPS, ids=["mixed", "object", "string", "deep"])
def test_nested_garbage_in_top_logprobs(server: ScriptedServer, tops: str, flags: list[str]) -> None:
    frames = [lp_frame("t0t1t2t3t4t5", '["t0","t1","t2","t3","t4","t5"]', "[-0.1,-0.2,-0.3,-0.4,-0.5,-0.6]", tops=tops, finish='"stop"')]
    r = complete(server, frames, *flags, "--logprobs", "2")
    assert r.returncode == 0, r.stderr
    assert kept_text(r, tuple(flags)) == "t0t1t2t3t4t5"


@pytest.mark.parametrize(
    "logprobs",
    ['"text"', "[1, 2]", "7", '{"tokens": "t0", "token_logprobs": {"a": 1}}', '{"tokens": [[1], {"a": 2}, null], "token_logprobs": [-1, -2, -3]}'],
    ids=["string", "list", "number", "wrong-types", "non-string-tokens"],
)
@pytest.mark.parametrize("flags", [["--json"], ["--logprobs-table"]], ids=["json", "table"])
def test_logprobs_of_the_wrong_shape(server: ScriptedServer, logprobs: str, flags: list[str]) -> None:
    frame = raw_frame(f'{{"index":0,"text":"t0","logprobs":{logprobs},"finish_reason":"stop"}}')
    r = complete(server, [frame], *flags, "--logprobs", "1")
    assert r.returncode == 0, r.stderr
    assert kept_text(r, tuple(flags)) == "t0"
    r = complete(server, [frame], "--logprobs", "1", **VIEW)
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------------------------ other fields


@pytest.mark.parametrize("flags", OUTPUTS, ids=OUTPUT_IDS)
def test_huge_usage_numbers(server: ScriptedServer, flags: list[str]) -> None:
    big = "9" * 4000
    per_choice = f',"usage":{{"prompt_tokens":{big},"completion_tokens":{big},"total_tokens":{big}}}'
    frames = [raw_frame('{"index":0,"text":"a","finish_reason":"stop"}', per_choice), raw_frame('{"index":1,"text":"b","finish_reason":"stop"}', per_choice)]
    r = complete(server, frames, *flags, "-n", "2")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    if "--json" in flags:  # the server's own figures, which are no token counts acs would add up
        assert strict(r.stdout)["usage"] == {"prompt_tokens": int(big), "completion_tokens": int(big), "total_tokens": int(big)}
    elif "--jsonl" not in flags:
        assert "usage: no token counts" in r.stderr


@pytest.mark.parametrize("usage", ['{"prompt_tokens":1e999,"completion_tokens":NaN}', '{"prompt_tokens":"5","completion_tokens":true}', '{"x":1}', '{"completion_tokens":-3}'])
def test_usage_without_readable_counts(server: ScriptedServer, usage: str) -> None:
    r = complete(server, [raw_frame('{"index":0,"text":"a","finish_reason":"stop"}'), raw_frame("", f',"usage":{usage}')], "--stats")
    assert r.returncode == 0, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert "finish: stop" in line and "inf" not in line and "nan" not in line.lower()


@pytest.mark.parametrize("reason", ['{"a":[1,2]}', "[" * 200 + "]" * 200, "12345", '"' + "r" * 100_000 + '"', "1e999", "true"])
def test_finish_reasons_that_are_not_short_strings(server: ScriptedServer, reason: str) -> None:
    r = complete(server, [raw_frame(f'{{"index":0,"text":"a","finish_reason":{reason}}}')], "--json")
    assert r.returncode == 0, r.stderr
    assert len(r.stderr) < 300  # the usage line, shortened
    assert isinstance(strict(r.stdout)["choices"][0]["finish_reason"], str)


@pytest.mark.parametrize(
    "error",
    ['{"message":' + "[" * 300 + "]" * 300 + ',"type":{"x":1},"code":[1]}', '{"message":1e999,"type":"t","code":NaN}', '"' + "e" * 50_000 + '"', "[" * 300 + "1" + "]" * 300],
    ids=["deep-message", "numbers", "long-string", "deep-string"],
)
def test_error_frames_with_hostile_fields(server: ScriptedServer, error: str) -> None:
    r = complete(server, [vllm_frame("kept"), f'data: {{"error":{error}}}\n\n'.encode()], "--json")
    message, _ = assert_failure(r, 9)
    assert len(message) < 400
    obj = strict(r.stdout)
    assert obj["choices"][0]["text"] == "kept" and obj["error"]["kind"] == "stream_error"


# ------------------------------------------------------------------------------------ choice indices

NOT_WHOLE = ['"0"', "1.0", "0.0", "true", "false", "-1", "null", "[0]", '{"i":0}', "1e999", "NaN"]


@pytest.mark.parametrize("flags", [[], ["--json"]], ids=["pipe", "json"])
@pytest.mark.parametrize("index", NOT_WHOLE)
def test_a_choice_index_that_is_not_a_whole_number(server: ScriptedServer, index: str, flags: list[str]) -> None:
    r = complete(server, [vllm_frame("kept"), raw_frame(f'{{"index":{index},"text":"x"}}')], *flags)
    message, _ = assert_failure(r, 11)
    assert "not a whole number" in message
    assert kept_text(r, tuple(flags)) == "kept"


@pytest.mark.parametrize("index", ["true", "1.0"])
def test_an_index_equal_to_a_known_choice_is_still_refused(server: ScriptedServer, index: str) -> None:
    """True == 1 == 1.0 in Python: a bool or float index must not pass for choice 1."""
    frames = [vllm_frame("a", index=0), vllm_frame("b", index=1), raw_frame(f'{{"index":{index},"text":"x","finish_reason":"stop"}}')]
    r = complete(server, frames, "-n", "2")
    assert_failure(r, 11)


def test_a_bad_index_with_usage_on_its_frame(server: ScriptedServer) -> None:
    r = complete(server, [vllm_frame("kept"), raw_frame('{"index":[1],"text":"x"}', ',"usage":{"prompt_tokens":1}')])
    assert_failure(r, 11)
    assert r.stdout == "kept"


def test_replay_of_a_hostile_capture(tmp_path) -> None:
    path = tmp_path / "hostile.sse"
    path.write_bytes(lp_frame(TEXT, TOKENS, HOSTILE_VALUES, finish='"stop"') + usage_frame(1, 13) + b"data: " + b"[" * 100_000 + b"\n\n")
    r = run_acs(["replay", str(path), "--json", "--logprobs-table"])
    assert_failure(r, 11)
    obj = strict(r.stdout)
    assert obj["choices"][0]["text"] == TEXT and obj["choices"][0]["logprobs"]["token_logprobs"][0] is None


# ------------------------------------------------------------------------------------ whole JSON bodies

DEEP = b"[" * 100_000


@pytest.mark.parametrize("status", [400, 500, 401])
def test_an_error_body_nested_too_deeply(server: ScriptedServer, status: int) -> None:
    server.route("POST", COMPLETIONS, Reply.json(status, DEEP))
    r = run_acs(["complete", "--json", "hi"], env=env_for(server))
    assert_failure(r, {400: 7, 500: 8, 401: 6}[status])
    assert strict(r.stdout)["error"]["http_status"] == status


@pytest.mark.parametrize("body", [DEEP, b'{"data": [{"id": "m", "max_model_len": ' + b"9" * 5000 + b"}]}"], ids=["deep", "long-int"])
@pytest.mark.parametrize("args", [["models"], ["models", "--json"], ["complete", "hi"]], ids=["models", "models-json", "model-lookup"])
def test_a_model_list_acs_cannot_read(server: ScriptedServer, body: bytes, args: list[str]) -> None:
    server.route("GET", "/v1/models", Reply.json(200, body))
    r = run_acs(args, env={"ACS_API_BASE": server.base_url})
    assert_failure(r, 11)


def test_a_model_list_with_numbers_json_lacks(server: ScriptedServer) -> None:
    server.route("GET", "/v1/models", Reply.json(200, b'{"data": [{"id": "m", "max_model_len": NaN, "created": 1e999}]}'))
    r = run_acs(["models", "--json"], env={"ACS_API_BASE": server.base_url})
    assert r.returncode == 0, r.stderr
    assert strict(r.stdout)["data"][0] == {"id": "m", "max_model_len": None, "created": None}


def test_replay_of_an_error_capture_nested_too_deeply(tmp_path) -> None:
    path = tmp_path / "error.sse"
    path.write_bytes(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\r\n" + DEEP)
    r = run_acs(["replay", str(path)])
    assert_failure(r, 7)


def test_a_model_id_with_a_lone_surrogate(server: ScriptedServer) -> None:
    """The server's own model id, with a `\\ud800` escape no UTF-8 can carry, is sent back escaped."""
    server.route("GET", "/v1/models", Reply.json(200, b'{"data":[{"id":"m\\ud800"}]}'))
    server.route("POST", COMPLETIONS, Reply.sse([vllm_frame("x", finish_reason="stop")]))
    r = run_acs(["complete", "--json", "hi"], env={"ACS_API_BASE": server.base_url})
    assert r.returncode == 0, r.stderr
    assert b"\\ud800" in server.requests[-1].body
    assert strict(r.stdout)["choices"][0]["text"] == "x"
