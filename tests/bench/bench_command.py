#!/usr/bin/env python3
"""The `acs bench` section of the bench: how exact its times are and how much load one client core
drives, next to GuideLLM, AIPerf and `vllm bench serve` where they install.

    python tests/bench/bench.py --bench-command [--quick]     (or this file alone, same flags)

Server: tests/timed_server.py, a process of its own that records when it wrote each frame
(perf_counter, the clock acs uses). Accuracy: at concurrency 1, 100 and 1,000 every stream's first
text frame is written F ms after the request reached the server (kernel receive time) and the next
ones every G ms, G chosen so the server writes about 4,000 frames/s (so the machine, not the
server, is not the limit); a tool's error is |its TTFT - the server's| per request and |its ITL -
the server's write gap| per gap. acs's records carry the stream's id, so its errors are matched
request by request; a peer's are taken against the schedule (F and G), and the server's own
lateness against its schedule is printed as the floor. Client throughput: the server writes as
fast as it can (G = 0), and each tool's CPU time (getrusage of its process tree) gives frames/s and
requests/s per client core, at the same concurrency and the same frames.

Peers are looked for as `guidellm`, `aiperf` and `vllm` on PATH or in /tmp/bench-peers/<name>/bin
(`python3 -m venv /tmp/bench-peers/guidellm && /tmp/bench-peers/guidellm/bin/pip install guidellm`,
the same for aiperf); a missing or failing peer is a note, never a failure of the section.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
TIMED_SERVER = HERE.parent / "timed_server.py"
PEER_HOME = Path("/tmp/bench-peers")
FRAMES = 16
ACCURACY = ((1, 40, 10), (100, 400, 25), (1000, 1000, 250))  # (concurrency, requests, gap ms): ~4k frames/s at 100 and 1,000
FIRST_MS = 20.0


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def dist(values: list[float]) -> str:
    if not values:
        return "no data"
    return f"p50 {pct(values, 50):.3f} · p99 {pct(values, 99):.3f} · max {max(values):.3f} ms (n={len(values)})"


@contextlib.contextmanager
def timed_server(*args: str) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, str(TIMED_SERVER), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{int(proc.stdout.readline())}"
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)


def server_log(origin: str) -> dict:
    with urllib.request.urlopen(origin + "/log", timeout=60) as r:
        return json.loads(r.read())


def timed_run(argv: list[str], env: dict[str, str], timeout: float) -> tuple[subprocess.CompletedProcess, float, float]:
    """(result, wall seconds, CPU seconds of the process and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def server_floor(log: dict, gap_ms: float) -> tuple[list[float], list[float]]:
    """How late the server itself was against its schedule (ms): first writes and gaps."""
    first = [abs((t["writes"][0] - t["received"]) * 1000 - FIRST_MS) for t in log.values() if t["writes"]]
    gaps = [abs((b - a) * 1000 - gap_ms) for t in log.values() for a, b in zip(t["writes"], t["writes"][1:])]
    return first, gaps


# ------------------------------------------------------------------------------------ acs


def acs_path() -> str:
    found = Path(sys.executable).with_name("acs")
    return str(found) if found.exists() else shutil.which("acs") or "acs"


def acs_env(origin: str) -> dict[str, str]:
    return {**os.environ, "ACS_API_BASE": origin + "/v1", "ACS_MODEL": "timed", "NO_PROXY": "127.0.0.1"}


def acs_accuracy(origin: str, conc: int, n: int, gap_ms: float) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        lines = Path(tmp) / "r.jsonl"
        argv = [acs_path(), "bench", "-c", str(conc), "-n", str(n), "--output-tokens", str(FRAMES), "--warmup", str(conc),
                "--save-requests", str(lines), "-q"]
        r, _, _ = timed_run(argv, acs_env(origin), 600)
        if r.returncode:
            raise RuntimeError(r.stderr[-500:])
        records = [json.loads(line) for line in lines.read_text().splitlines()]
    log = server_log(origin)
    out: dict[str, list[float]] = {"ttft": [], "itl": [], "ttft_sched": [], "itl_sched": []}
    for rec in records:
        truth = log[rec["id"]]
        w = truth["writes"]
        out["ttft"].append(abs(rec["ttft_ms"] - (w[0] - truth["received"]) * 1000))
        out["itl"] += [abs(x - (b - a) * 1000) for x, a, b in zip(rec["itl_ms"], w, w[1:])]
        out["ttft_sched"].append(abs(rec["ttft_ms"] - FIRST_MS))
        out["itl_sched"] += [abs(x - gap_ms) for x in rec["itl_ms"]]
    out["floor_ttft"], out["floor_itl"] = server_floor(log, gap_ms)
    return out


def acs_throughput(origin: str, conc: int, n: int) -> tuple[float, float, int]:
    """(wall, CPU seconds, frames) of acs bench at `conc` streams against a server writing at full speed."""
    argv = [acs_path(), "bench", "-c", str(conc), "-n", str(n), "--output-tokens", str(FRAMES), "-q"]
    r, wall, cpu = timed_run(argv, acs_env(origin), 900)
    if r.returncode:
        raise RuntimeError(r.stderr[-500:])
    server_log(origin)  # forget the writes
    return wall, cpu, n * FRAMES


# ------------------------------------------------------------------------------------ peers


def peer(name: str) -> str | None:
    local = PEER_HOME / name / "bin" / name
    return str(local) if local.exists() else shutil.which(name)


PEERS: dict[str, Callable[[str, str, int, int, Path], Path]] = {}


def run_peer(name: str, origin: str, conc: int, n: int) -> tuple[float, float, Path, str]:
    """(wall, CPU, its output directory, a note) of one peer run; raises RuntimeError with why not."""
    exe = peer(name)
    if exe is None:
        raise RuntimeError(f"not installed (python3 -m venv {PEER_HOME / name} && {PEER_HOME / name}/bin/pip install {name})")
    out = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    argv = PEERS[name](exe, origin, conc, n, out)  # type: ignore[arg-type]
    env = {**os.environ, "NO_PROXY": "127.0.0.1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    r, wall, cpu = timed_run([str(a) for a in argv], env, 900)  # type: ignore[arg-type]
    if r.returncode:
        raise RuntimeError(f"exit {r.returncode}: {(r.stderr or r.stdout).strip().splitlines()[-1][:300] if (r.stderr or r.stdout).strip() else ''}")
    return wall, cpu, out, ""


# ------------------------------------------------------------------------------------ the section


class Section:
    def __init__(self, quick: bool = False) -> None:
        self.quick = quick
        self.lines: list[str] = []

    def say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def run(self) -> str:
        self.lines += ["", "### acs bench: accuracy (|tool - server| per request and per gap)", ""]
        self.lines += ["| tool | concurrency | TTFT error | ITL error | server's own lateness (TTFT / ITL p99) |", "| --- | --: | --- | --- | --- |"]
        levels = ACCURACY[:2] if self.quick else ACCURACY
        for conc, n, gap in levels:
            self.accuracy(conc, n if not self.quick else max(conc, n // 4), gap)
        self.lines += ["", "### acs bench: client throughput (server writing at full speed)", ""]
        self.lines += ["| tool | concurrency | requests | frames | wall s | client CPU s | frames/s per client core | requests/s per client core |",
                       "| --- | --: | --: | --: | --: | --: | --: | --: |"]
        for conc, n in ((100, 1000), (1000, 2000)) if not self.quick else ((100, 300),):
            self.throughput(conc, n)
        return "\n".join(self.lines) + "\n"

    def accuracy(self, conc: int, n: int, gap: float) -> None:
        self.say(f"bench-command: accuracy at concurrency {conc}")
        with timed_server("--gap", str(gap), "--frames", str(FRAMES), "--first", str(FIRST_MS)) as origin:
            try:
                e = acs_accuracy(origin, conc, n, gap)
                floor = f"{pct(e['floor_ttft'], 99):.3f} / {pct(e['floor_itl'], 99):.3f} ms"
                self.lines.append(f"| acs bench (matched by id) | {conc} | {dist(e['ttft'])} | {dist(e['itl'])} | {floor} |")
                self.lines.append(f"| acs bench (against the schedule) | {conc} | {dist(e['ttft_sched'])} | {dist(e['itl_sched'])} | |")
            except Exception as exc:  # a row, not a crash
                self.lines.append(f"| acs bench | {conc} | FAILED: {exc} | | |")
            for name in PEERS:
                self.lines.append(self.peer_accuracy(name, origin, conc, n, gap))

    def peer_accuracy(self, name: str, origin: str, conc: int, n: int, gap: float) -> str:
        try:
            _, _, out, _ = run_peer(name, origin, conc, n)
            ttft, itl = PEER_READERS[name](out)
            server_log(origin)
            return (f"| {name} (against the schedule) | {conc} | {dist([abs(t - FIRST_MS) for t in ttft])} | "
                    f"{dist([abs(x - gap) for x in itl])} | |")
        except Exception as exc:
            return f"| {name} | {conc} | not run: {exc} | | |"

    def throughput(self, conc: int, n: int) -> None:
        self.say(f"bench-command: client throughput at concurrency {conc}")
        with timed_server("--gap", "0", "--frames", str(FRAMES), "--first", "0.01") as origin:
            rows = [("acs bench", lambda: acs_throughput(origin, conc, n))]
            rows += [(name, lambda name=name: self.peer_throughput(name, origin, conc, n)) for name in PEERS]
            for name, fn in rows:
                try:
                    wall, cpu, frames = fn()
                    self.lines.append(f"| {name} | {conc} | {n} | {frames} | {wall:.2f} | {cpu:.2f} | {frames / cpu:,.0f} | {n / cpu:,.1f} |")
                except Exception as exc:  # a row, not a crash
                    self.lines.append(f"| {name} | {conc} | {n} | | not run: {exc} | | | |")

    def peer_throughput(self, name: str, origin: str, conc: int, n: int) -> tuple[float, float, int]:
        wall, cpu, _, _ = run_peer(name, origin, conc, n)
        server_log(origin)
        return wall, cpu, n * FRAMES


PEER_READERS: dict[str, Callable[[Path], tuple[list[float], list[float]]]] = {}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    print(Section(args.quick).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
