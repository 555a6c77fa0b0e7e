"""acs bench's times against the truth: a server process that records when it wrote each frame
(tests/timed_server.py, perf_counter: the same monotonic clock as acs's on this machine).

Per request, acs's TTFT (request sent → first text frame read) is compared with the server's
(request parsed → first text frame written), and every ITL with the gap between the server's two
writes. The warmup opens the connections first, so what is timed is streaming, not a storm of
a thousand TCP handshakes in one event-loop turn. At concurrency 1, 100 and 1,000 the error must stay within 1 ms at p99; the error
distribution is printed (pytest -s shows it). The open-loop test takes 20 s by design: it is
marked `slow` and runs in CI like every other test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acs_cli.bench.metrics import percentile
from tests.helpers import run_acs
from tests.timed_server import fetch_log, running


def errors_ms(records: list[dict], log: dict) -> tuple[list[float], list[float]]:
    """|acs - server| in ms for every request's TTFT and every ITL, matched by the stream's id."""
    ttft, itl = [], []
    for rec in records:
        truth = log[rec["id"]]
        writes = truth["writes"]
        assert rec["output_tokens"] == len(writes), rec
        ttft.append(abs(rec["ttft_ms"] - (writes[0] - truth["received"]) * 1000))
        gaps = [(b - a) * 1000 for a, b in zip(writes, writes[1:])]
        assert len(rec["itl_ms"]) == len(gaps)
        itl += [abs(x - y) for x, y in zip(rec["itl_ms"], gaps)]
    return ttft, itl


def describe(name: str, values: list[float]) -> str:
    v = sorted(values)
    return f"{name}: n={len(v)} p50={percentile(v, 50):.3f} p90={percentile(v, 90):.3f} p99={percentile(v, 99):.3f} max={v[-1]:.3f} ms"


def measure(tmp_path: Path, concurrency: int, requests: int, gap_ms: int) -> tuple[float, float, float]:
    """One run: the p99 |error| of TTFT and of ITL in ms (the distributions printed), and how late
    the server itself wrote at p99 (ms): the machine's noise at that moment."""
    lines = tmp_path / "r.jsonl"
    with running("--gap", str(gap_ms), "--frames", "8") as origin:
        r = run_acs(["bench", "-c", str(concurrency), "-n", str(requests), "--save-requests", str(lines), "--output-tokens", "8",
                     "--warmup", str(concurrency)],
                    env={"ACS_API_BASE": origin + "/v1", "ACS_MODEL": "timed"}, timeout=120)
        assert r.returncode == 0, r.stderr
        log = fetch_log(origin)
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert len(records) == requests and all(rec["error_kind"] is None for rec in records)
    ttft, itl = errors_ms(records, log)
    late = sorted((w - d) * 1000 for t in log.values() for w, d in zip(t["writes"], t["due"]))
    print(f"\nconcurrency {concurrency}: |acs - server| " + describe("TTFT", ttft) + "; " + describe("ITL", itl)
          + f"; the server itself late by p99 {percentile(late, 99):.3f} ms")
    return percentile(sorted(ttft), 99), percentile(sorted(itl), 99), percentile(late, 99)


BUSY_MS = 0.5  # a server process late by more than this at p99 means other processes hold the cores


def judge(runs: list[tuple[float, ...]], what: str) -> None:
    """Pass when a run met the target; fail when a run on a quiet machine missed it; skip (saying
    so) when every run happened while the machine was too busy to measure a millisecond."""
    if any(max(run[:2]) <= 1.0 for run in runs):
        return
    quiet = [run for run in runs if run[2] <= BUSY_MS]
    assert not quiet, f"{what}: p99 |error| over 1 ms on a quiet machine: (TTFT, ITL, server lateness) ms per run: {runs}"
    pytest.skip(f"{what}: the machine was too busy to judge 1 ms (the server itself late by p99 {min(r[2] for r in runs):.1f} ms or more)")


@pytest.mark.parametrize(("concurrency", "requests", "gap_ms"), [(1, 40, 5), (100, 300, 100), (1000, 1000, 250)])
def test_ttft_and_itl_match_the_servers_write_times(tmp_path: Path, concurrency: int, requests: int, gap_ms: int) -> None:
    # Other processes on a shared machine can preempt the client for milliseconds at a time (the
    # scheduler, not acs): a run is repeated up to twice when its p99 is over.
    runs: list[tuple[float, ...]] = []
    for _ in range(3):
        runs.append(measure(tmp_path, concurrency, requests, gap_ms))
        if max(runs[-1][:2]) <= 1.0:
            break
    judge(runs, f"concurrency {concurrency}")


def open_loop(tmp_path: Path) -> tuple[dict, float]:
    out = tmp_path / "r.json"
    with running("--gap", "5", "--frames", "4", "--first", "2") as origin:
        r = run_acs(["bench", "--rate", "50", "--arrival", "constant", "--duration", "20", "--json", str(out)],
                    env={"ACS_API_BASE": origin + "/v1", "ACS_MODEL": "timed"}, timeout=120)
        assert r.returncode == 0, r.stderr
        log = fetch_log(origin)
    data = json.loads(out.read_text())
    late = percentile(sorted((w - d) * 1000 for t in log.values() for w, d in zip(t["writes"], t["due"])), 99)
    print(f"\nopen loop: {data['completed']} requests, send rate {data['achieved_send_rate']:.3f}/s, "
          f"dispatch lag p50 {data['p50_dispatch_lag_ms']:.3f} p99 {data['p99_dispatch_lag_ms']:.3f} max {data['max_dispatch_lag_ms']:.3f} ms; "
          f"the server itself late by p99 {late:.3f} ms")
    assert data["completed"] == 1000 and data["failed"] == 0
    assert data["achieved_send_rate"] == pytest.approx(50, rel=0.01)
    return data, late


@pytest.mark.slow
def test_open_loop_sends_at_the_asked_rate(tmp_path: Path) -> None:
    """--rate 50 --arrival constant for 20 s: the achieved send rate within 1%, p99 dispatch lag ≤ 5 ms
    (run again once when the machine was busy; skipped, saying so, when it was busy both times)."""
    runs = []
    for _ in range(2):
        data, late = open_loop(tmp_path)
        runs.append((data["p99_dispatch_lag_ms"], late))
        if data["p99_dispatch_lag_ms"] <= 5.0:
            return
    assert all(late > BUSY_MS for _, late in runs), f"p99 dispatch lag over 5 ms on a quiet machine: (lag, server lateness) ms per run: {runs}"
    pytest.skip(f"the machine was too busy to judge 5 ms of dispatch lag: (lag, server lateness) ms per run: {runs}")
