"""acs bench's pure parts: the metric definitions, the schedule, the workload."""

from __future__ import annotations

import json
import random
import statistics

import pytest

from acs_cli.bench.metrics import Sample, distribution, percentile, summarize
from acs_cli.bench.schedule import Level, Stop, arrivals, levels, saturated, saturation_index, split
from acs_cli.bench.workload import Length, Workload, parse_length, read_prompts
from acs_cli.commands.bench import parse_slos
from acs_cli.errors import UsageError


def ok(i: int, sent: float, frames: list[float], end: float, tokens: int | None = None, scheduled: float | None = None) -> Sample:
    s = Sample(index=i, scheduled=sent if scheduled is None else scheduled, dispatched=sent, sent=sent, end=end)
    s.first_token, s.last_token = frames[0], frames[-1]
    s.itl = [b - a for a, b in zip(frames, frames[1:])]
    s.output_tokens = len(frames) if tokens is None else tokens
    s.output_source = "frames" if tokens is None else "usage"
    s.input_tokens, s.input_source = 10, "usage"
    return s


def test_percentiles_are_numpys_linear_ones() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 99) == pytest.approx(4 + 6 * 0.96)
    assert percentile(values, 90) == pytest.approx(4 + 6 * 0.6)
    d = distribution(values)
    assert d["mean"] == 4.0 and d["std"] == pytest.approx(statistics.pstdev(values))
    assert distribution([])["p99"] == 0.0


def test_ttft_tpot_itl_e2el_follow_vllms_definitions() -> None:
    s = ok(0, sent=1.0, frames=[1.2, 1.3, 1.5, 1.6], end=1.7, tokens=4)
    assert s.ttft == pytest.approx(0.2)
    assert s.tpot == pytest.approx((1.6 - 1.2) / 3)
    assert s.itl == pytest.approx([0.1, 0.2, 0.1])
    assert s.e2el == pytest.approx(0.7)
    one = ok(1, sent=0.0, frames=[0.5], end=0.6, tokens=1)
    assert one.tpot is None  # one token has no time per output token


def test_failed_and_interrupted_requests_are_counted_never_dropped() -> None:
    good = [ok(i, i * 0.1, [i * 0.1 + 0.05, i * 0.1 + 0.06], i * 0.1 + 0.07, tokens=2) for i in range(8)]
    bad = Sample(index=8, scheduled=0.8, sent=0.8, end=0.9, error_kind="http", error="HTTP 500", status=500)
    cut = Sample(index=9, scheduled=0.9, sent=0.9, end=0.95, error_kind="incomplete", error="cut")
    gone = Sample(index=10, scheduled=1.0, error_kind="interrupted", end=1.0)
    m = summarize(good + [bad, cut, gone], duration=2.0, slos={"ttft": 0.04})
    assert (m["completed"], m["failed"], m["interrupted"], m["attempted"]) == (8, 2, 1, 10)
    assert m["errors"] == {"http": 1, "incomplete": 1}
    assert m["error_rate"] == pytest.approx(0.2)
    assert m["request_throughput"] == pytest.approx(4.0) and m["attempted_throughput"] == pytest.approx(5.0)
    assert m["total_output_tokens"] == 16 and m["output_token_source"] == "usage"
    assert m["goodput_percent"] == 0.0  # every TTFT is 50 ms > 40 ms
    assert m["mean_ttft_ms"] == pytest.approx(50)
    for key in ("completed", "failed", "duration", "total_input_tokens", "total_output_tokens", "request_throughput",
                "output_throughput", "total_token_throughput", "mean_ttft_ms", "median_ttft_ms", "std_ttft_ms", "p99_ttft_ms",
                "mean_tpot_ms", "p99_itl_ms", "median_e2el_ms"):
        assert key in m, key


def test_goodput_counts_requests_meeting_every_slo() -> None:
    fast = ok(0, 0.0, [0.01, 0.02], 0.03, tokens=2)
    slow_itl = ok(1, 0.0, [0.01, 0.5], 0.6, tokens=2)
    m = summarize([fast, slow_itl], 1.0, {"ttft": 0.1, "itl": 0.1})
    assert m["goodput_percent"] == 50.0 and m["request_goodput"] == 1.0


def test_queue_and_scheduled_latencies_show_coordinated_omission() -> None:
    late = ok(0, sent=1.0, frames=[1.1, 1.2], end=1.3, tokens=2, scheduled=0.0)
    m = summarize([late], 2.0)
    assert m["mean_queue_ms"] == pytest.approx(1000)
    assert m["mean_ttft_ms"] == pytest.approx(100) and m["mean_sched_ttft_ms"] == pytest.approx(1100)


def test_token_source_is_marked() -> None:
    counted = ok(0, 0.0, [0.1, 0.2, 0.3], 0.4)  # no usage: frames counted
    m = summarize([counted, ok(1, 0.0, [0.1, 0.2], 0.3, tokens=2)], 1.0)
    assert m["output_token_source"] == "mixed" and m["output_tokens_counted_from_frames"] == 1


def test_constant_arrivals_are_exact_and_poisson_has_the_asked_mean() -> None:
    t = arrivals(50, "constant", 1, Stop(duration=20), random.Random(0))
    assert len(t) == 1000 and t[1] == pytest.approx(0.02) and t[-1] == pytest.approx(19.98)
    p = arrivals(100, "poisson", 1, Stop(requests=20000), random.Random(1))
    assert (p[-1] / len(p)) == pytest.approx(0.01, rel=0.03)
    g = arrivals(100, "gamma", 0.25, Stop(requests=20000), random.Random(2))
    gaps = [b - a for a, b in zip(g, g[1:])]
    assert statistics.mean(gaps) == pytest.approx(0.01, rel=0.05)
    assert statistics.pstdev(gaps) > 1.5 * statistics.pstdev([b - a for a, b in zip(p, p[1:])])  # burstier
    assert arrivals(5, "poisson", 1, Stop(requests=7), random.Random(3)) == arrivals(5, "poisson", 1, Stop(requests=7), random.Random(3))


def test_levels_and_sweep_rules() -> None:
    assert levels("1,4", None, None) == [Level(concurrency=1), Level(concurrency=4)]
    assert levels(None, "2.5", 8) == [Level(rate=2.5, max_concurrency=8)]
    for bad in (("0", None), (None, "-5"), (None, "x"), ("4", "5")):
        with pytest.raises(UsageError):
            levels(bad[0], bad[1], None)
    assert split(10, 3) == [4, 3, 3]
    assert not saturated([10, 20], False) and saturated([10, 20, 20.5], False) and saturated([10], True)
    assert saturation_index([10, 20, 19], [True, True, True]) == 1
    assert saturation_index([10, 20, 30], [True, True, False]) == 1


def test_slo_names_and_units() -> None:
    assert parse_slos(["ttft=500ms", "tpot=0.05s", "e2el=2000"]) == {"ttft": 0.5, "tpot": 0.05, "e2el": 2.0}
    with pytest.raises(UsageError, match="unknown SLO name 'latency'"):
        parse_slos(["latency=5ms"])


def test_workload_is_reproducible_and_exact_with_token_ids(tmp_path) -> None:
    w = Workload({"model": "m", "stream": True}, seed=7, input_length=Length(100, 20), output_length=Length(50), token_pool=list(range(1000)))
    body, n, source, fixed = w.request(3)
    req = json.loads(body)
    assert len(req["prompt"]) == n and 80 <= n <= 120 and source == "tokenize"
    assert req["max_tokens"] == 50 and req["ignore_eos"] is True and req["min_tokens"] == 50 and fixed == 50
    assert w.request(3) == (body, n, source, fixed)
    assert w.request(4)[0] != body
    est = Workload({"model": "m"}, input_length=Length(100))
    body, n, source, fixed = est.request(0)
    assert source == "estimate" and isinstance(json.loads(body)["prompt"], str) and fixed is None
    with pytest.raises(UsageError):
        parse_length("10:20", "--input-tokens")
    assert parse_length("512:128", "--input-tokens") == Length(512, 128)


def test_prompts_file_jsonl_or_lines(tmp_path) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "a", "max_tokens": 5}\n\nplain line\n')
    assert read_prompts(str(f)) == [("a", 5), ("plain line", None)]
    with pytest.raises(UsageError, match="cannot read the prompts file"):
        read_prompts(str(tmp_path / "missing"))


def test_a_sweep_doubles_until_throughput_stops_rising_or_the_slos_break(monkeypatch) -> None:
    from acs_cli.bench.options import BenchOptions
    from acs_cli.commands import bench as command

    curve = {1: (10.0, 100.0), 2: (19.0, 100.0), 4: (30.0, 100.0), 8: (31.0, 100.0), 16: (40.0, 100.0)}
    seen = []

    def fake_level(run, level):
        seen.append(level.concurrency)
        tp, good = curve[level.concurrency]
        summary = {"output_throughput": tp, "request_throughput": tp, "goodput_percent": good}
        run.summaries.append(summary)
        return summary

    monkeypatch.setattr(command, "run_level", fake_level)
    run = command.Run(BenchOptions(sweep=True), None, "", {}, 1.0, None, Stop(requests=10), {}, "m")  # type: ignore[arg-type]
    assert command.run_levels(run, [Level(concurrency=1)]) == 3 and seen == [1, 2, 4, 8]  # 31 < 30 × 1.05: saturated
    curve[4] = (30.0, 50.0)  # the SLOs break at 4
    seen.clear()
    run = command.Run(BenchOptions(sweep=True, slo_goodput=95), None, "", {}, 1.0, None, Stop(requests=10), {"ttft": 1.0}, "m")  # type: ignore[arg-type]
    assert command.run_levels(run, [Level(concurrency=1)]) == 1 and seen == [1, 2, 4]


def test_a_prompt_with_a_lone_surrogate_escape_is_sent_with_json_escapes(tmp_path) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "a \\ud800 b"}\n')
    body, *_ = Workload({"model": "m"}, prompts=read_prompts(str(f))).request(0)
    assert b"\\ud800" in body and json.loads(body.decode("utf-8"))["prompt"] == "a \ud800 b"


def test_a_prompts_line_nested_too_deeply_is_a_usage_error(tmp_path) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": ' + "[" * 100_000 + "\n")
    with pytest.raises(UsageError, match="not a JSON object"):
        read_prompts(str(f))
