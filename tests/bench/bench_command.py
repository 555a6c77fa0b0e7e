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
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/timed_server.py: the server, and how to run it
from timed_server import fetch_log, running  # noqa: E402

PEER_HOME = Path("/tmp/bench-peers")
FRAMES = 16
ACCURACY = ((1, 40, 10), (100, 400, 25), (1000, 1000, 250))  # (concurrency, requests, gap ms): ~4k frames/s at 100 and 1,000
FIRST_MS = 20.0
STREAM_FRAMES = 64  # frames per stream in the throughput rows


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
    log = fetch_log(origin, 60)
    out: dict[str, list[float]] = {"ttft": [], "itl": [], "ttft_sched": [], "itl_sched": [], "itl_mean": []}
    for rec in records:
        truth = log[rec["id"]]
        w = truth["writes"]
        out["ttft"].append(abs(rec["ttft_ms"] - (w[0] - truth["received"]) * 1000))
        out["itl"] += [abs(x - (b - a) * 1000) for x, a, b in zip(rec["itl_ms"], w, w[1:])]
        out["ttft_sched"].append(abs(rec["ttft_ms"] - FIRST_MS))
        out["itl_sched"] += [abs(x - gap_ms) for x in rec["itl_ms"]]
        out["itl_mean"].append(abs(sum(rec["itl_ms"]) / len(rec["itl_ms"]) - (w[-1] - w[0]) * 1000 / (len(w) - 1)))
    out["floor_ttft"], out["floor_itl"] = server_floor(log, gap_ms)
    return out


def acs_throughput(origin: str, conc: int, n: int) -> tuple[float, float, int]:
    """(wall, CPU seconds, frames) of acs bench at `conc` streams against a server writing at full speed."""
    argv = [acs_path(), "bench", "-c", str(conc), "-n", str(n), "--output-tokens", str(STREAM_FRAMES), "-q"]
    r, wall, cpu = timed_run(argv, acs_env(origin), 900)
    if r.returncode:
        raise RuntimeError(r.stderr[-500:])
    fetch_log(origin, 60)  # forget the writes
    return wall, cpu, n * STREAM_FRAMES


# ------------------------------------------------------------------------------------ peers


def peer(name: str) -> str | None:
    local = PEER_HOME / name / "bin" / name
    return str(local) if local.exists() else shutil.which(name)


def prompts_file(out: Path, n: int, key: str, extra: dict) -> Path:
    path = out / "prompts.jsonl"
    path.write_text("".join(json.dumps({key: f"hello world {i}", **extra}) + "\n" for i in range(n)))
    return path


def guidellm_argv(exe: str, origin: str, conc: int, n: int, out: Path, frames: int) -> list:
    data = prompts_file(out, n, "prompt", {"output_tokens_count": frames})
    return [exe, "run", "--backend", f"kind=openai_http,target={origin},model=timed,request_format=/v1/completions",
            "--profile", f"kind=concurrent,streams={conc}", "--constraint", f"kind=max_requests,count={n}",
            "--data", f"kind=json_file,path={data}", "--output", f"kind=json,path={out / 'out.json'}", "--disable-console"]


TOKENIZER_REV = "0" * 40


def aiperf_tokenizer(exe: str) -> Path:
    """A word-level tokenizer in a Hugging Face cache of its own (AIPerf insists on one, and the
    hub is out of reach here): made with the `tokenizers` package of AIPerf's own venv."""
    home = PEER_HOME / "hf"
    snap = home / "hub" / "models--bench--tokenizer" / "snapshots" / TOKENIZER_REV
    if not (snap / "tokenizer.json").exists():
        snap.mkdir(parents=True, exist_ok=True)
        (snap.parent.parent / "refs").mkdir(exist_ok=True)
        (snap.parent.parent / "refs" / "main").write_text(TOKENIZER_REV)
        code = ("import json,sys; from tokenizers import Tokenizer, models, pre_tokenizers as p;"
                "v={'[UNK]':0}; [v.setdefault(w, len(v)) for w in ['hello','world']+[str(i) for i in range(5000)]+[f't{i}' for i in range(64)]];"
                "t=Tokenizer(models.WordLevel(v, unk_token='[UNK]')); t.pre_tokenizer=p.Whitespace(); t.save(sys.argv[1]+'/tokenizer.json');"
                "json.dump({'tokenizer_class':'PreTrainedTokenizerFast','unk_token':'[UNK]'}, open(sys.argv[1]+'/tokenizer_config.json','w'))")
        subprocess.run([str(Path(exe).with_name("python")), "-c", code, str(snap)], check=True, capture_output=True, timeout=120)
    return home


def aiperf_argv(exe: str, origin: str, conc: int, n: int, out: Path, frames: int) -> list:
    os.environ["HF_HOME"] = str(aiperf_tokenizer(exe))
    data = prompts_file(out, n, "text", {})
    return [exe, "profile", "-m", "timed", "--url", origin, "--endpoint-type", "completions", "--streaming",
            "--concurrency", str(conc), "--request-count", str(n), "--input-file", str(data), "--custom-dataset-type", "single_turn",
            "--use-server-token-count", "--tokenizer", "bench/tokenizer", "--artifact-dir", str(out / "aiperf")]


PEERS: dict[str, Callable[[str, str, int, int, Path, int], list]] = {"guidellm": guidellm_argv, "aiperf": aiperf_argv}


def run_peer(name: str, origin: str, conc: int, n: int, frames: int = FRAMES) -> tuple[float, float, Path, str]:
    """(wall, CPU, its output directory, a note) of one peer run; raises RuntimeError with why not."""
    exe = peer(name)
    if exe is None:
        raise RuntimeError(f"not installed (python3 -m venv {PEER_HOME / name} && {PEER_HOME / name}/bin/pip install {name})")
    out = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    argv = PEERS[name](exe, origin, conc, n, out, frames)
    env = {**os.environ, "NO_PROXY": "127.0.0.1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    r, wall, cpu = timed_run([str(a) for a in argv], env, 900)
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
        if peer("vllm") is None:
            self.lines.append("\n`vllm bench serve`: not run: it comes only with vLLM itself (the 0.33.0 wheel alone is 336 MB, plus"
                              " torch, several GB), impractical on this machine.")
        self.lines += ["", "### acs bench: client throughput (server writing at full speed)", "",
                       f"Each tool runs N and 3N requests of {STREAM_FRAMES} frames; the difference of the two runs (frames, CPU, wall) is the"
                       " sustained rate, without start-up and imports.", ""]
        self.lines += ["| tool | concurrency | requests | Δ frames | Δ wall s | Δ client CPU s | frames/s per client core | requests/s per client core |",
                       "| --- | --: | --: | --: | --: | --: | --: | --: |"]
        for conc, n in ((100, 500), (1000, 1000)) if not self.quick else ((100, 100),):
            self.throughput(conc, n)
        return "\n".join(self.lines) + "\n"

    def accuracy(self, conc: int, n: int, gap: float) -> None:
        self.say(f"bench-command: accuracy at concurrency {conc}")
        with running("--gap", str(gap), "--frames", str(FRAMES), "--first", str(FIRST_MS)) as origin:
            try:
                e = acs_accuracy(origin, conc, n, gap)
                floor = f"{pct(e['floor_ttft'], 99):.3f} / {pct(e['floor_itl'], 99):.3f} ms"
                self.lines.append(f"| acs bench (matched by id) | {conc} | {dist(e['ttft'])} | {dist(e['itl'])} | {floor} |")
                self.lines.append(f"| acs bench (against the schedule) | {conc} | {dist(e['ttft_sched'])} | {dist(e['itl_sched'])} | |")
                self.lines.append(f"| acs bench (per-request mean ITL, as GuideLLM keeps) | {conc} | | {dist(e['itl_mean'])} | |")
            except Exception as exc:  # a row, not a crash
                self.lines.append(f"| acs bench | {conc} | FAILED: {exc} | | |")
            for name in PEERS:
                self.lines.append(self.peer_accuracy(name, origin, conc, n, gap))

    def peer_accuracy(self, name: str, origin: str, conc: int, n: int, gap: float) -> str:
        try:
            _, _, out, _ = run_peer(name, origin, conc, n)
            ttft, itl = PEER_READERS[name](out, fetch_log(origin, 60), gap)
            how = "TTFT matched by id, per-request mean ITL" if name == "guidellm" else "against the schedule"
            return f"| {name} ({how}) | {conc} | {dist(ttft)} | {dist(itl)} | |"
        except Exception as exc:
            return f"| {name} | {conc} | not run: {exc} | | |"

    def throughput(self, conc: int, n: int) -> None:
        self.say(f"bench-command: client throughput at concurrency {conc}")
        with running("--gap", "0", "--frames", str(STREAM_FRAMES), "--first", "0.01") as origin:
            rows: list[tuple[str, Callable[[int], tuple[float, float, int]]]] = [("acs bench", lambda k: acs_throughput(origin, conc, k))]
            rows += [(name, lambda k, name=name: self.peer_throughput(name, origin, conc, k)) for name in PEERS]
            for name, fn in rows:
                try:
                    w1, c1, f1 = fn(n)
                    w3, c3, f3 = fn(3 * n)
                    wall, cpu, frames = w3 - w1, c3 - c1, f3 - f1
                    self.lines.append(f"| {name} | {conc} | {n} → {3 * n} | {frames} | {wall:.2f} | {cpu:.2f} | {frames / cpu:,.0f} | {2 * n / cpu:,.1f} |")
                except Exception as exc:  # a row, not a crash
                    self.lines.append(f"| {name} | {conc} | {n} | | not run: {exc} | | | |")

    def peer_throughput(self, name: str, origin: str, conc: int, n: int) -> tuple[float, float, int]:
        wall, cpu, _, _ = run_peer(name, origin, conc, n, STREAM_FRAMES)
        fetch_log(origin, 60)
        return wall, cpu, n * STREAM_FRAMES


def guidellm_times(out: Path, log: dict, gap: float) -> tuple[list[float], list[float]]:
    """GuideLLM names each response's id: TTFT matched request by request; it keeps one ITL per
    request (the mean), compared with the mean of the server's gaps for that request."""
    ttft, itl = [], []
    for bench in json.loads((out / "out.json").read_text())["benchmarks"]:
        for req in bench["requests"]["successful"]:
            truth = log[req["response_id"]]
            w = truth["writes"]
            ttft.append(abs(req["time_to_first_token_ms"] - (w[0] - truth["received"]) * 1000))
            itl.append(abs(req["inter_token_latency_ms"] - (w[-1] - w[0]) * 1000 / (len(w) - 1)))
    return ttft, itl


def aiperf_times(out: Path, log: dict, gap: float) -> tuple[list[float], list[float]]:
    """AIPerf names no response id: its TTFT against the schedule (F), every gap against G."""
    ttft, itl = [], []
    for line in (out / "aiperf" / "profile_export.jsonl").read_text().splitlines():
        m = json.loads(line)["metrics"]
        ttft.append(abs(m["time_to_first_token"]["value"] - FIRST_MS))
        itl += [abs(x - gap) for x in m["inter_chunk_latency"]["value"]]
    return ttft, itl


PEER_READERS: dict[str, Callable[[Path, dict, float], tuple[list[float], list[float]]]] = {"guidellm": guidellm_times, "aiperf": aiperf_times}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    print(Section(args.quick).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
