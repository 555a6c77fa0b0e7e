"""--stats: time to first token, decode speed and total time on the usage line (and the same
figures in --json's "timings"), measured against a paced server (README "Timing")."""

from __future__ import annotations

import json
import re
import time

from tests.cliutil import COMPLETIONS, Streaming, assert_failure, env_for, text_reply
from tests.helpers import run_acs
from tests.sse_server import ScriptedServer

STATS = re.compile(r"first token (\d+\.\d\d) s · (~?)(\d+\.\d) tokens/s(?: \(~(\d+) tokens\))? · total (\d+\.\d\d) s$")
PIECES = [f" t{i}" for i in range(10)]
FIRST_DELAY = 0.4
DELAY = 0.05


def stats_of(stderr: str) -> tuple[float, bool, float, int | None, float]:
    lines = [line for line in stderr.splitlines() if "first token" in line]
    assert len(lines) == 1, stderr
    m = STATS.search(lines[0])
    assert m, lines[0]
    ttft, tilde, rate, tokens, total = m.groups()
    return float(ttft), tilde == "~", float(rate), int(tokens) if tokens else None, float(total)


def test_stats_with_usage(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(PIECES, finish="length", usage=(7, 10), first_delay=FIRST_DELAY, delay=DELAY))
    started = time.monotonic()
    r = run_acs(["complete", "--stats", "hi"], env=env_for(server))
    wall = time.monotonic() - started
    assert r.returncode == 0, r.stderr
    assert r.stdout == "".join(PIECES)  # stdout is untouched
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("7 prompt + 10 completion = 17 tokens · finish: length · first token "), line
    ttft, estimated, rate, tokens, total = stats_of(r.stderr)
    assert not estimated and tokens is None
    assert FIRST_DELAY <= ttft < FIRST_DELAY + 1.5
    decode = total - ttft
    # 11 segments after the first (9 more texts, the usage, [DONE]) are each DELAY apart
    assert decode >= 9 * DELAY - 0.02, (ttft, total)
    assert total < wall
    # the rate is (completion tokens - 1) / decode time, up to the rounding of what is shown
    assert abs(rate - 9 / decode) <= 0.15 * rate, (rate, decode)


def test_stats_without_usage_are_estimated(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(PIECES, usage=None, first_delay=0.1, delay=DELAY))
    r = run_acs(["complete", "--stats", "--no-usage", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert "usage: none (not asked for: --no-usage)" in r.stderr
    ttft, estimated, rate, tokens, total = stats_of(r.stderr)
    assert estimated and tokens == len(PIECES)  # frames with text, counted as tokens
    assert ttft >= 0.1 and total > ttft and rate > 0


def test_stats_quiet_prints_nothing(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["a", "b"]))
    r = run_acs(["complete", "--stats", "-q", "hi"], env=env_for(server))
    assert r.returncode == 0
    assert r.stderr == ""


def test_stats_one_token_has_no_rate(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["only"], usage=(2, 1)))
    r = run_acs(["complete", "--stats", "hi"], env=env_for(server))
    assert r.returncode == 0
    line = r.stderr.strip().splitlines()[-1]
    assert re.search(r"· first token \d+\.\d\d s · total \d+\.\d\d s$", line), line
    assert "tokens/s" not in line


def test_stats_on_failure_before_any_text(server: ScriptedServer) -> None:
    from tests.sse_server import Reply

    server.route("POST", COMPLETIONS, Reply.sse([], done=False, end="abort"))
    r = run_acs(["complete", "--stats", "hi"], env=env_for(server))
    assert_failure(r, 10)
    assert re.search(r"first token none · total \d+\.\d\d s", r.stderr), r.stderr


def test_stats_on_ctrl_c(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply([f"w{i:03d} " for i in range(200)], delay=0.05))
    with Streaming(["complete", "--stats", "hi"], env=env_for(server)) as run:
        assert run.wait_for_stdout(b"w005", 20)
        run.interrupt()
        assert run.wait(10) == 130
        err = run.stderr.decode()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "interrupted" in lines[0]
    _, estimated, _, tokens, _ = stats_of(err)
    assert estimated and tokens is not None and tokens >= 6


def test_stats_on_replay_reflect_the_pacing(tmp_path) -> None:
    path = tmp_path / "c.sse"
    path.write_bytes(text_reply(PIECES, usage=(3, 10)).body())
    r = run_acs(["replay", str(path), "--stats", "--delay", "0.05"])
    assert r.returncode == 0, r.stderr
    ttft, estimated, rate, _, total = stats_of(r.stderr)
    assert not estimated
    assert ttft < 0.05  # the first frame is not delayed
    assert total >= 11 * 0.05 - 0.01  # 12 frames (10 texts, usage, [DONE]): 11 pauses
    assert 5 < rate < 25  # 9 tokens over ~0.45 s: about 20 tokens/s


def test_json_timings_match_the_pacing(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(PIECES, usage=(7, 10), first_delay=FIRST_DELAY, delay=DELAY))
    r = run_acs(["complete", "--json", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    t = json.loads(r.stdout)["timings"]
    assert t["estimated"] is False and t["tokens"] == 10
    assert t["ttft_s"] >= FIRST_DELAY
    assert t["total_s"] - t["ttft_s"] >= 9 * DELAY - 0.02
    assert abs(t["decode_tokens_per_s"] - 9 / (t["total_s"] - t["ttft_s"])) <= 0.1 + 0.01 * t["decode_tokens_per_s"]


def test_json_timings_estimated_without_usage(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(PIECES, usage=None, delay=0.02))
    r = run_acs(["complete", "--json", "--no-usage", "hi"], env=env_for(server))
    t = json.loads(r.stdout)["timings"]
    assert t["estimated"] is True and t["tokens"] == len(PIECES) and t["decode_tokens_per_s"] > 0


def test_stats_with_json_puts_the_figures_on_the_usage_line(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(["a", "b", "c"]))
    r = run_acs(["complete", "--json", "--stats", "hi"], env=env_for(server))
    assert r.returncode == 0
    json.loads(r.stdout)
    stats_of(r.stderr)
