#!/usr/bin/env python3
"""The batch section of the bench: `acs batch` against the OpenAI cookbook's
api_request_parallel_processor.py approach (tests/bench/peers/cookbook_batch.py, an aiohttp loop),
the same short requests against the same loopback server, side by side; then acs alone at growing
line counts to show that its memory does not grow with the input.

    python tests/bench/bench.py --batch [--quick]      (or this file alone, same flags)

Each client is its own process against tests/bench/batch_server.py (another process): 100,000
requests (--quick: 20,000) of 4 tokens each at concurrency 256. acs streams every request (its
design) and writes OpenAI's batch output; the cookbook approach asks for the non-streaming JSON
answer and writes `[request, response, metadata]` lines. Every output is checked: one line per
request, each request's own text. Figures: wall time from start to exit, requests/s, peak RSS
(the child's own ru_maxrss from wait4), client CPU seconds, and the server's CPU share of one core
(near 100% would mean the server, not the client, was measured).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from batch_server import answer_text  # noqa: E402

TOKENS = 4
CONCURRENCY = 256


def acs_command() -> list[str]:
    acs = Path(sys.executable).with_name("acs")
    return [str(acs)] if acs.exists() else [sys.executable, "-m", "acs_cli"]


class Server:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "batch_server.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        self.base = f"http://127.0.0.1:{int(self.proc.stdout.readline())}/v1"

    def cpu(self) -> float:
        with urllib.request.urlopen(self.base.replace("/v1", "/stats"), timeout=10) as r:
            return float(json.loads(r.read())["cpu"])

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


def prompt(i: int) -> str:
    return f"prompt {i} of the batch bench"


def write_inputs(workdir: Path, n: int) -> tuple[Path, Path]:
    ours, theirs = workdir / f"acs-{n}.jsonl", workdir / f"cookbook-{n}.jsonl"
    with ours.open("w") as a, theirs.open("w") as b:
        for i in range(n):
            a.write(json.dumps({"custom_id": f"r{i}", "prompt": prompt(i), "max_tokens": TOKENS}) + "\n")
            b.write(json.dumps({"model": "bench", "prompt": prompt(i), "max_tokens": TOKENS, "metadata": {"custom_id": f"r{i}"}}) + "\n")
    return ours, theirs


def run_client(cmd: list[str], server: Server) -> dict:
    """Popen without reaping, then wait4 for this child's own figures."""
    cpu0 = server.cpu()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall": wall,
        "rss_mib": usage.ru_maxrss / 1024,
        "cpu": usage.ru_utime + usage.ru_stime,
        "server_share": (server.cpu() - cpu0) / wall,
        "code": proc.returncode,
        "stderr": err.decode("utf-8", "replace")[-400:],
    }


def check_acs(path: Path, n: int) -> str | None:
    seen = set()
    with path.open("rb") as f:
        for line in f:
            r = json.loads(line)
            i = int(r["custom_id"][1:])
            if r["custom_id"] in seen:
                return f"{r['custom_id']} twice"
            seen.add(r["custom_id"])
            if r["error"] is not None or r["response"]["body"]["choices"][0]["text"] != answer_text(prompt(i), TOKENS):
                return f"wrong result for {r['custom_id']}"
    return None if len(seen) == n else f"{len(seen)} results for {n} requests"


def check_cookbook(path: Path, n: int) -> str | None:
    seen = set()
    with path.open() as f:
        for line in f:
            request, response, metadata = json.loads(line)
            cid = metadata["custom_id"]
            if cid in seen:
                return f"{cid} twice"
            seen.add(cid)
            if not isinstance(response, dict) or response["choices"][0]["text"] != answer_text(request["prompt"], TOKENS):
                return f"wrong result for {cid}"
    return None if len(seen) == n else f"{len(seen)} results for {n} requests"


def row(name: str, n: int, m: dict, problem: str | None) -> str:
    if problem or m["code"] != 0:
        return f"| {name} | {n:,} | FAILED: {problem or m['stderr']} | | | | |"
    return f"| {name} | {n:,} | {m['wall']:.1f} | {n / m['wall']:,.0f} | {m['rss_mib']:.1f} | {m['cpu']:.1f} | {100 * m['server_share']:.0f}% |"


def run(quick: bool) -> str:
    side_by_side = 20_000 if quick else 100_000
    flat = (2_000, 20_000, 100_000) if quick else (10_000, 100_000, 1_000_000)
    server = Server()
    lines = [
        f"### acs batch vs the cookbook's parallel processor ({TOKENS}-token requests, concurrency {CONCURRENCY})",
        "",
        "| client | requests | wall s | requests/s | peak RSS MiB | client CPU s | server CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    rates: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="acs-batch-bench-") as tmp:
            work = Path(tmp)
            for n in sorted({side_by_side, *flat}):
                ours, theirs = write_inputs(work, n)
                out = work / f"out-{n}.jsonl"
                print(f"batch bench: acs batch, {n:,} requests", file=sys.stderr, flush=True)
                m = run_client([*acs_command(), "batch", str(ours), "-o", str(out), "-c", str(CONCURRENCY), "--base-url", server.base, "-m", "bench"], server)
                lines.append(row("acs batch", n, m, check_acs(out, n)))
                if n == side_by_side:
                    rates["acs"] = n / m["wall"]
                    results = work / "cookbook-out.jsonl"
                    print(f"batch bench: cookbook approach, {n:,} requests", file=sys.stderr, flush=True)
                    peer = [sys.executable, str(HERE / "peers" / "cookbook_batch.py"), str(theirs), str(results), server.base + "/completions", "--max-in-flight", str(CONCURRENCY)]
                    c = run_client(peer, server)
                    lines.append(row("cookbook approach (aiohttp)", n, c, check_cookbook(results, n)))
                    rates["cookbook"] = n / c["wall"]
                for path in (ours, theirs, out):
                    path.unlink(missing_ok=True)
    finally:
        server.close()
    if len(rates) == 2:
        ratio = rates["acs"] / rates["cookbook"]
        lines.append("")
        lines.append(f"acs batch / cookbook approach: {ratio:.1f} × the requests/s (target ≥ 3 ×: {'met' if ratio >= 3 else 'NOT met'})")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    print(run(args.quick), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
