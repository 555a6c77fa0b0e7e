"""The logprobs view: with --logprobs on a terminal each token is coloured by its probability (a
legend on stderr), --logprobs-table prints each token's probability and alternatives on stderr,
and piped stdout stays the plain text (README "Token probabilities")."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import tempfile
import threading

import pytest

from tests.cliutil import COMPLETIONS, assert_failure, env_for, read_until_eof, text_reply
from tests.helpers import acs_env, run_acs
from tests.ptyutil import PtyRun, colour_sgr, open_pty, strip_ansi
from tests.scenarios import get_scenario
from tests.sse_server import Reply, ScriptedServer, usage_frame, vllm_frame

# (token, probability) one per frame; None = unknown (echo's first token); 0 = vLLM's -9999 clamp
TOKENS = [("Say", None), (" sure", 0.95), (" maybe", 0.7), (" perhaps", 0.2), (" never", 0.01), (" zero", 0.0)]
BAND_SGR = {" sure": "32", " maybe": "33", " perhaps": "35", " never": "31", " zero": "31"}
LEGEND = b"token probability:"


def logprob(p: float | None) -> float | None:
    return None if p is None else (-9999.0 if p == 0 else math.log(p))


def frame_logprobs(token: str, p: float | None, alternative: tuple[str, float] = (" other", 0.04)) -> dict:
    value = logprob(p)
    top = None if value is None else {token: value, alternative[0]: math.log(alternative[1])}
    return {"tokens": [token], "token_logprobs": [value], "top_logprobs": [top], "text_offset": [0]}


def logprob_reply(tokens=TOKENS, **kw) -> Reply:
    segs = [vllm_frame(t, logprobs=frame_logprobs(t, p)) for t, p in tokens[:-1]]
    last, p = tokens[-1]
    segs.append(vllm_frame(last, logprobs=frame_logprobs(last, p), finish_reason="length"))
    segs.append(usage_frame(3, len(tokens)))
    return Reply.sse(segs, **kw)


def sgr_before(output: bytes, token: str) -> str | None:
    """The parameters of the SGR sequence right before `token` in the output, or None."""
    m = re.search(rb"\x1b\[([0-9;]*)m" + re.escape(token.encode()), output)
    return m.group(1).decode() if m else None


# ------------------------------------------------------------------------------------ colours


def test_tokens_are_coloured_by_band(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, logprob_reply())
    with PtyRun(["complete", "--logprobs", "1", "hi"], env=env_for(server)) as run:
        assert run.wait(30) == 0, run.output
        out = run.output
    for token, sgr in BAND_SGR.items():
        assert sgr_before(out, token) == sgr, (token, out)
    # the unknown first token is not coloured
    assert sgr_before(out, "Say") is None
    assert b"Say sure maybe perhaps never zero" in strip_ansi(out)
    assert LEGEND in out


def test_request_asks_for_logprobs(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, logprob_reply())
    with PtyRun(["complete", "--logprobs", "3", "hi"], env=env_for(server)) as run:
        assert run.wait(30) == 0
    assert server.requests[0].json()["logprobs"] == 3


def test_no_color_means_no_colours_and_no_legend(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, logprob_reply())
    with PtyRun(["complete", "--logprobs", "1", "hi"], env=env_for(server, NO_COLOR="1")) as run:
        assert run.wait(30) == 0
        out = run.output
    assert colour_sgr(out) == [], out
    assert LEGEND not in out
    assert b"Say sure maybe perhaps never zero" in strip_ansi(out)


def test_without_logprobs_nothing_is_coloured(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, logprob_reply())  # the server sends them unasked
    with PtyRun(["complete", "hi"], env=env_for(server)) as run:
        assert run.wait(30) == 0
        out = run.output
    assert sgr_before(out, " sure") is None
    assert LEGEND not in out


def test_legend_goes_to_stderr_not_stdout(server: ScriptedServer) -> None:
    """stdout and stderr on two terminals: the legend is on stderr's, the coloured text on stdout's."""
    server.route("POST", COMPLETIONS, logprob_reply())
    out_master, out_slave = open_pty()
    err_master, err_slave = open_pty()
    got: dict[int, bytes] = {out_master: b"", err_master: b""}

    def drain(fd: int) -> None:
        def keep(data: bytes) -> None:
            got[fd] += data

        read_until_eof(fd, keep)

    readers = [threading.Thread(target=drain, args=(fd,), daemon=True) for fd in got]
    for t in readers:
        t.start()
    with tempfile.TemporaryDirectory() as home:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "acs_cli", "complete", "--logprobs", "1", "hi"],
                env=acs_env(env_for(server, TERM="xterm-256color"), home),
                stdin=subprocess.DEVNULL,
                stdout=out_slave,
                stderr=err_slave,
                timeout=30,
                cwd=home,
            )
        finally:
            os.close(out_slave)
            os.close(err_slave)
        for t in readers:
            t.join(5)
        os.close(out_master)
        os.close(err_master)
    assert proc.returncode == 0
    out, err = got[out_master], got[err_master]
    assert LEGEND in err and LEGEND not in out
    for label in ("≥90%", "≥50%", "≥10%", "<10%"):
        assert label.encode() in err
    assert sgr_before(out, " sure") == "32"


def test_token_text_stays_escape_safe(server: ScriptedServer) -> None:
    hostile = [("ok", 0.99), (" \x1b]0;pwned\x07", 0.6), (" \x1b[2J", 0.05)]
    server.route("POST", COMPLETIONS, logprob_reply(hostile))
    with PtyRun(["complete", "--logprobs", "1", "hi"], env=env_for(server)) as run:
        assert run.wait(30) == 0
        out = run.output
    assert b"\x1b]0;pwned" not in out and b"\x1b[2J" not in out
    plain = strip_ansi(out)
    assert b"ok \\e]0;pwned\\x07 \\e[2J" in plain
    assert sgr_before(out, "\\e") == "7;33"  # a visible escape: reverse video, in its token's colour


def test_tokens_that_do_not_spell_the_text_are_left_uncoloured(server: ScriptedServer) -> None:
    lp = {"tokens": ["bytes:\\xe2"], "token_logprobs": [-0.01], "top_logprobs": [None], "text_offset": [0]}
    server.route("POST", COMPLETIONS, Reply.sse([vllm_frame("odd", logprobs=lp, finish_reason="stop")]))
    with PtyRun(["complete", "--logprobs", "1", "hi"], env=env_for(server)) as run:
        assert run.wait(30) == 0
        out = run.output
    assert sgr_before(out, "odd") is None
    assert b"odd" in out


def test_several_choices_are_coloured_in_their_sections(server: ScriptedServer) -> None:
    segs = [
        vllm_frame(" alpha", index=0, logprobs=frame_logprobs(" alpha", 0.95)),
        vllm_frame(" beta", index=1, logprobs=frame_logprobs(" beta", 0.05)),
        vllm_frame(" gamma", index=0, logprobs=frame_logprobs(" gamma", 0.6), finish_reason="stop"),
        vllm_frame(" delta", index=1, logprobs=frame_logprobs(" delta", 0.3), finish_reason="stop"),
        usage_frame(2, 4),
    ]
    server.route("POST", COMPLETIONS, Reply.sse(segs))
    with PtyRun(["complete", "--n", "2", "--logprobs", "1", "hi"], env=env_for(server)) as run:
        assert run.wait(30) == 0
        out = run.output
    assert [sgr_before(out, t) for t in (" alpha", " gamma", " beta", " delta")] == ["32", "33", "31", "35"]
    plain = strip_ansi(out)
    assert plain.index(b"choice 0") < plain.index(b"alpha") < plain.index(b"choice 1") < plain.index(b"beta")


# ------------------------------------------------------------------------------------ piped


def test_piped_stdout_is_the_plain_text(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.from_scenario(get_scenario("S09")))
    r = run_acs(["complete", "--logprobs", "2", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert r.stdout_bytes == b" It was the end"
    assert "token probability" not in r.stderr


# ------------------------------------------------------------------------------------ table


def table_rows(stderr: str) -> list[list[str]]:
    lines = [line for line in stderr.splitlines() if "\t" in line]
    assert lines and lines[0] == "choice\tposition\ttoken\tprobability\tlogprob\talternatives", stderr
    return [line.split("\t") for line in lines[1:]]


def test_table_piped_is_tab_separated_on_stderr(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.from_scenario(get_scenario("S09")))
    r = run_acs(["complete", "--logprobs-table", "--logprobs", "2", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert r.stdout_bytes == b" It was the end"  # stdout stays the text
    rows = table_rows(r.stderr)
    assert rows == [
        ["0", "0", '" It"', "77.9%", "-0.2500", '" The" 17.4%'],
        ["0", "1", '" was"', "22.3%", "-1.5000", ""],
        ["0", "2", '" the"', "0.0%", "-inf", ""],
        ["0", "3", '" end"', "60.7%", "-0.5000", ""],
    ]
    # the percentages are exp(logprob)
    assert f"{100 * math.exp(-0.25):.1f}%" == "77.9%" and f"{100 * math.exp(-1.75):.1f}%" == "17.4%"
    # and the usage line still ends stderr
    assert r.stderr.rstrip().splitlines()[-1].startswith("usage: the server reported none · finish: length")


def test_table_alternatives_best_first(server: ScriptedServer) -> None:
    lp = {
        "tokens": [" a"],
        "token_logprobs": [math.log(0.5)],
        "top_logprobs": [{" c": math.log(0.1), " a": math.log(0.5), " b": math.log(0.3)}],
        "text_offset": [0],
    }
    server.route("POST", COMPLETIONS, Reply.sse([vllm_frame(" a", logprobs=lp, finish_reason="stop")]))
    r = run_acs(["complete", "--logprobs-table", "hi"], env=env_for(server))
    assert table_rows(r.stderr) == [["0", "0", '" a"', "50.0%", "-0.6931", '" b" 30.0%, " c" 10.0%']]


def test_table_alone_asks_for_logprobs_5(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.from_scenario(get_scenario("S09")))
    r = run_acs(["complete", "--logprobs-table", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert server.requests[0].json()["logprobs"] == 5
    assert len(table_rows(r.stderr)) == 4


def test_table_echo_first_token_unknown(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.from_scenario(get_scenario("S18")))
    r = run_acs(["complete", "--echo", "--logprobs-table", "Hello"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    rows = table_rows(r.stderr)
    assert rows[0][:5] == ["0", "0", '"Hello"', "?", "?"]
    assert rows[1][:5] == ["0", "1", '" world"', "13.5%", "-2.0000"]


def test_table_several_choices(server: ScriptedServer) -> None:
    segs = [
        vllm_frame(" x", index=0, logprobs=frame_logprobs(" x", 0.9)),
        vllm_frame(" y", index=1, logprobs=frame_logprobs(" y", 0.4), finish_reason="stop"),
        vllm_frame(" z", index=0, logprobs=frame_logprobs(" z", 0.8), finish_reason="stop"),
    ]
    server.route("POST", COMPLETIONS, Reply.sse(segs))
    r = run_acs(["complete", "--n", "2", "--logprobs-table", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert [(row[0], row[2]) for row in table_rows(r.stderr)] == [("0", '" x"'), ("0", '" z"'), ("1", '" y"')]


def test_table_when_the_server_sends_no_logprobs(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["plain"]))
    r = run_acs(["complete", "--logprobs-table", "hi"], env=env_for(server))
    assert r.returncode == 0
    assert "logprobs: the server sent none" in r.stderr


def test_table_on_a_terminal(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, logprob_reply())
    with PtyRun(["complete", "--logprobs-table", "hi"], env=env_for(server)) as run:
        assert run.wait(30) == 0
        out = run.output
    plain = strip_ansi(out).decode()
    assert re.search(r"#\s+token\s+probability\s+logprob\s+alternatives", plain), plain
    assert re.search(r'1\s+" sure"\s+95\.0%\s+-0\.0513\s+" other" 4\.0%', plain), plain
    assert re.search(r'0\s+"Say"\s+\?\s+\?', plain), plain
    assert re.search(r'5\s+" zero"\s+0\.0%\s+-inf', plain), plain
    assert b"\t" not in out  # a table, not tab-separated lines


def test_table_token_text_is_escape_safe(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, logprob_reply([("a", 0.9), (" \x1b]0;pwned\x07\u009b", 0.5)]))
    with PtyRun(["complete", "--logprobs-table", "hi"], env=env_for(server)) as run:
        assert run.wait(30) == 0
        out = run.output
    assert b"\x1b]0;pwned" not in out and "\u009b".encode() not in out


@pytest.mark.parametrize("args", [["--raw", "--logprobs-table"]])
def test_table_with_raw_is_a_usage_error(server: ScriptedServer, args: list[str]) -> None:
    r = run_acs(["complete", *args, "hi"], env=env_for(server))
    assert_failure(r, 2)
