#!/usr/bin/env python3
"""The engine section of the bench: acs's asyncio engine against an aiohttp loop and an
httpx.AsyncClient loop, many concurrent streams in one process each.

    python tests/bench/bench.py --engine [--quick]      (or this file alone, same flags)

Every client (tests/bench/engine_clients.py) runs in its own process against
tests/bench/stream_server.py (another process) at concurrency C = 1, 100, 1,000 and 10,000, every
stream 200 frames (each its own HTTP chunk), every stream's text checked exact. Two regimes:

- **paced** (the target's regime: every frame in its own socket read): the server writes one frame
  to every stream per tick of a global clock, and the bench looks for the client's capacity: the
  highest offered rate (C / tick) it keeps up with, i.e. frames/s ≥ 95% of offered and ≤ 1.2 frames
  per read, in windows of a few seconds on a client that streams all along (a bisection over tick
  lengths: double until the client falls behind, then halve the gap until it is within 12%). At
  1,000 streams (the targets' level) each client is searched twice, the clients taking turns, and
  the better search counts (`--searches`).
  A step where the server could not keep its own clock (over 5% of ticks skipped, or busy over 90%
  of the window) is marked server-limited, not counted as the client falling behind.
- **full speed**: the server writes as fast as it can, round-robin; a client that falls behind
  reads several frames at once, which makes each frame cheaper for it (frames/read shows it).

Figures: frames/s, client CPU µs per frame (getrusage of the client), frames per read, peak RSS
(VmHWM), the server's CPU and busy share of a core, the CPU other processes used meanwhile.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from engine_clients import MODULES  # noqa: E402
from engine_report import full_speed_table, paced_table, targets_table  # noqa: E402

KINDS = ("engine", "aiohttp", "httpx", "bytes")
FRAMES = 200
KEEP_UP = 0.95  # achieved ÷ offered frames/s at or above which a client kept up
MAX_FPR = 1.2  # frames per read above which a client fell behind (its reads coalesce)
PRECISION = 1.12  # the search stops when the failing rate is within this factor of the passing one
TARGET_LEVEL = 1000  # the concurrency the targets are judged at
TARGET_SEARCHES = 2  # capacity searches per client there (a single one moves by up to a third on a shared VM)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system


class StreamServer:
    """tests/bench/stream_server.py in its own process."""

    def __init__(self, env: dict) -> None:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "stream_server.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=HERE, env=env)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.base = f"http://127.0.0.1:{self.port}/v1"

    def _call(self, path: str, body: bytes | None = None) -> dict:
        with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body), timeout=60) as response:
            return json.loads(response.read())

    def stats(self) -> dict:
        return self._call("/stats")

    def set_tick(self, ms: float) -> dict:
        return self._call("/tick", json.dumps({"ms": ms}).encode())

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(10)


class Client:
    """One client process (tests/bench/engine_clients.py)."""

    def __init__(self, kind: str, base: str, conc: int, rounds: int | None, env: dict) -> None:
        argv = [sys.executable, str(HERE / "engine_clients.py"), kind, base, str(conc), str(FRAMES), "paced" if rounds is None else str(rounds)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=HERE, env=env)

    def sample(self) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(b"s")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the client died: {self.error()}")
        return json.loads(line)

    def final(self, timeout: float) -> dict:
        """Stop the workers (after their current stream) and read the last line."""
        try:
            out, err = self.proc.communicate(b"q", timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            return {"error": f"timed out after {timeout:.0f} s"}
        lines = [json.loads(x) for x in out.splitlines() if x.startswith(b"{")]
        if self.proc.returncode != 0 or not lines or not lines[-1].get("final"):
            return {"error": err.decode(errors="replace")[-300:] or f"exit status {self.proc.returncode}"}
        return lines[-1]

    def error(self) -> str:
        self.proc.kill()
        _, err = self.proc.communicate()
        return err.decode(errors="replace")[-300:]


@dataclass
class Step:
    """One window at one offered rate."""

    offered: float  # C / tick, frames/s
    achieved: float  # the client's frames/s over the window
    slack: float  # one tick's frames over the window: where the window's ends fall in a tick's burst
    fpr: float  # frames per socket read
    cpu_us: float  # client CPU µs per frame
    client_share: float  # client CPU over the window's wall time
    server_busy: float  # share of the window the server spent writing and handling events
    server_cpu: float
    skipped: float  # share of the server's ticks given up
    foreign: float  # CPU other processes used, share of one core
    bad: int  # streams whose text was not exact, in the window

    @property
    def server_limited(self) -> bool:
        return self.skipped > 0.05 or self.server_busy > 0.9

    @property
    def kept_up(self) -> bool:
        return self.achieved + self.slack >= KEEP_UP * self.offered and self.fpr <= MAX_FPR and self.bad == 0 and not self.server_limited

    def verdict(self) -> str:
        if self.server_limited:
            return "server-limited"
        return "kept up" if self.kept_up else "fell behind"


class Search:
    """The capacity of one client at one concurrency in the paced regime."""

    def __init__(self, section: Section, kind: str, level: int, start: float) -> None:
        self.s, self.kind, self.level, self.start = section, kind, level, start
        self.steps: list[Step] = []
        self.behind = 0.0  # the rate of the last window if the client fell behind in it

    def run(self) -> dict:
        server = self.s.server
        server.set_tick(1000 * self.level / self.start)
        base_written = server.stats()["written"]
        client = Client(self.kind, server.base, self.level, None, self.s.env)
        try:
            self.wait_streams(client)
            best, failed_at = self.bisect(client, base_written)
        except RuntimeError as exc:
            return {"error": str(exc)}
        finally:
            server.set_tick(0)  # the streams in flight end at full speed
        final = client.final(timeout=600)
        self.s.wait_idle()
        return {"best": best, "failed_at": failed_at, "totals": final, "steps": self.steps}

    def wait_streams(self, client: Client) -> None:
        deadline = time.monotonic() + 120
        while self.s.server.stats()["streams"] < 0.9 * self.level:
            if client.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the client did not open its streams: {client.error()}")
            time.sleep(0.2)

    def bisect(self, client: Client, base_written: int) -> tuple[Step | None, float | None]:
        best: Step | None = None
        failed_at: float | None = None
        rate = self.start
        budget = time.monotonic() + self.s.budget
        while len(self.steps) < 10 and time.monotonic() < budget:
            step = self.step(client, rate, base_written)
            if not step.kept_up and step.foreign > 0.15:  # other processes took the CPU: once more
                step = self.step(client, rate, base_written)
            self.steps.append(step)
            self.s.log(
                f"    {self.kind} at {self.level:,}: offered {rate:,.0f}/s -> {step.achieved:,.0f}/s, {step.fpr:.2f} frames/read, "
                f"{step.cpu_us:.1f} µs/frame, server busy {step.server_busy:.0%}, others {step.foreign:.0%}: {step.verdict()}"
            )
            if step.kept_up:
                best = step if best is None or step.offered > best.offered else best
            else:
                failed_at = rate if failed_at is None else min(failed_at, rate)
            if best and failed_at and failed_at / best.offered <= PRECISION:
                break
            if failed_at is None:
                rate *= 2
            elif best is None:
                rate /= 2
                if rate < 20:
                    break
            else:
                rate = math.sqrt(best.offered * failed_at)
        return best, failed_at

    def lag(self, client: Client, base_written: int) -> int:
        """Frames written but not yet parsed by the client: at most one tick's (C) when it keeps up."""
        return (self.s.server.stats()["written"] - base_written) - client.sample()["frames"]

    def drain(self, client: Client, rate: float, base_written: int) -> None:
        """After a step the client fell behind in, let it catch up at a quarter of that rate
        (a backlog would make the next window's reads coalesce)."""
        tick = 4 * self.level / rate
        self.s.server.set_tick(1000 * tick)
        deadline = time.monotonic() + min(60.0, max(20.0, 20 * tick))
        while self.lag(client, base_written) > 1.5 * self.level + 50 and time.monotonic() < deadline:
            time.sleep(max(0.1, tick))

    def step(self, client: Client, rate: float, base_written: int) -> Step:
        server, tick = self.s.server, self.level / rate
        if self.behind:
            self.drain(client, self.behind, base_written)
        server.set_tick(1000 * tick)
        time.sleep(min(10.0, max(0.5, 5 * tick)))
        settled = time.monotonic() + min(30.0, max(10.0, 50 * tick))
        while self.lag(client, base_written) > 1.5 * self.level + 50 and time.monotonic() < settled:
            time.sleep(max(0.1, tick))  # still behind when it gives up: the window will say so
        c0, s0, m0, b0 = client.sample(), server.stats(), machine_busy(), own_cpu()
        time.sleep(min(30.0, max(2.0, 20 * tick)))
        c1, s1, m1, b1 = client.sample(), server.stats(), machine_busy(), own_cpu()
        wall, swall = c1["t"] - c0["t"], s1["t"] - s0["t"]
        frames, cpu, server_cpu = c1["frames"] - c0["frames"], c1["cpu"] - c0["cpu"], s1["cpu"] - s0["cpu"]
        step = Step(
            offered=rate,
            achieved=frames / wall,
            slack=self.level / wall,
            fpr=frames / max(1, c1["reads"] - c0["reads"]),
            cpu_us=1e6 * cpu / max(1, frames),
            client_share=cpu / wall,
            server_busy=(s1["busy"] - s0["busy"]) / swall,
            server_cpu=server_cpu / swall,
            skipped=(s1["skipped"] - s0["skipped"]) / max(1.0, swall / tick),
            foreign=max(0.0, (m1 - m0) - cpu - server_cpu - (b1 - b0)) / swall,
            bad=c1["bad"] - c0["bad"],
        )
        self.behind = 0.0 if step.kept_up else rate
        return step


class Section:
    def __init__(
        self, quick: bool, levels: list[int] | None = None, kinds: list[str] | None = None, regimes: str = "both", searches: int = TARGET_SEARCHES
    ) -> None:
        self.quick = quick
        self.searches = max(1, searches)  # at the target's level (1,000 streams), taken in turn; the best counts
        self.levels = levels or ([1, 100, 1000] if quick else [1, 100, 1000, 10000])
        self.wanted = kinds or list(KINDS)
        self.regimes = regimes
        self.floor = 20_000 if quick else 200_000  # frames per level at full speed (at least)
        self.budget = 60.0 if quick else 150.0  # seconds of search per client and level (then the best so far)
        self.paced: dict[tuple[int, str], dict] = {}  # the best search of each client and level
        self.capacities: dict[tuple[int, str], list[float | None]] = {}  # every search's capacity
        self.full: dict[tuple[int, str], dict] = {}
        self.notes: list[str] = []

    def log(self, msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    def run(self) -> str:
        env = {**os.environ, "PYTHONPATH": str(HERE.parent.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        env.pop("NO_COLOR", None)
        self.env = {k: v for k, v in env.items() if not k.upper().endswith("_PROXY")}
        if os.environ.get("ACS_BENCH_LOOP") == "uvloop":
            self.notes.append("ACS_BENCH_LOOP=uvloop: the engine rows ran on uvloop (the peers on asyncio's loop)")
        self.server = StreamServer(self.env)
        try:
            kinds = [k for k in self.wanted if self.importable(k)]
            self.load_before = loadavg()
            started = {k: 5_000.0 for k in kinds}
            for level in self.levels:
                rounds = self.searches if level == TARGET_LEVEL else 1
                for _ in range(rounds if self.regimes in ("both", "paced") else 0):
                    for kind in kinds:
                        self.search(kind, level, started)
                for kind in kinds if self.regimes in ("both", "full") else []:
                    self.measure_full(kind, level)
            self.load_after = loadavg()
        finally:
            self.server.close()
        out = []
        if self.paced:
            out += [paced_table(self, kinds), targets_table(self)]
        if self.full:
            out.append(full_speed_table(self, kinds))
        return "\n".join(out)

    def search(self, kind: str, level: int, started: dict[str, float]) -> None:
        """One capacity search; of several at one level (each client's in turn, so that the
        machine's slower and faster spells fall on all of them) the best is kept."""
        self.log(f"paced: {kind} at {level:,} streams, searching from {started[kind]:,.0f} frames/s")
        result = Search(self, kind, level, started[kind]).run()
        best = result.get("best")
        self.capacities.setdefault((level, kind), []).append(best.achieved if best else None)
        kept = self.paced.get((level, kind))
        if kept is not None:
            peaks = [r["totals"]["rss_kib"] for r in (kept, result) if "rss_kib" in r.get("totals", {})]
            if kept.get("best") and (not best or kept["best"].achieved >= best.achieved):
                result = kept
            if peaks and "totals" in result:
                result["totals"]["rss_kib"] = max(peaks)  # the peak over every search
        self.paced[(level, kind)] = result
        if best:  # the next level (or search) starts near it (one stream is a poor guide: no less than 2,000)
            started[kind] = max(2_000.0, best.offered)

    def importable(self, kind: str) -> bool:
        found = subprocess.run([sys.executable, "-c", f"import {MODULES[kind]}"], env=self.env, capture_output=True, check=False).returncode == 0
        if not found:
            self.notes.append(f"{kind} skipped: {MODULES[kind]} is not importable by {sys.executable}")
        return found

    def wait_idle(self) -> None:
        """Until the server has no paced stream left (the last client's streams have ended)."""
        deadline = time.monotonic() + 60
        while self.server.stats()["streams"] and time.monotonic() < deadline:
            time.sleep(0.1)

    def measure_full(self, kind: str, level: int) -> None:
        rounds = max(1, self.floor // (level * FRAMES))
        before, started = self.server.stats()["cpu"], time.perf_counter()
        result = Client(kind, self.server.base, level, rounds, self.env).final(timeout=900)
        result["server_share"] = (self.server.stats()["cpu"] - before) / (time.perf_counter() - started)
        result["streams"] = level * rounds
        if "error" not in result:
            result["frames"] = result["ok"] * FRAMES
        self.full[(level, kind)] = result
        if "error" in result:
            self.log(f"  full speed: {kind} at {level}: FAILED ({result['error']})")
        else:
            self.log(
                f"  full speed: {kind} at {level:,} x {rounds}: {result['frames'] / result['wall']:,.0f} frames/s, "
                f"{1e6 * result['cpu'] / max(1, result['frames']):.1f} µs CPU/frame, {result['bad']} bad"
            )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="levels 1, 100, 1,000 and 20,000 frames a level at full speed")
    p.add_argument("--levels", help="comma-separated concurrency levels [default 1,100,1000,10000]")
    p.add_argument("--kinds", help=f"comma-separated clients [default {','.join(KINDS)}]")
    p.add_argument("--regime", choices=("both", "paced", "full"), default="both", help="which tables [default both]")
    p.add_argument("--searches", type=int, default=TARGET_SEARCHES, help=f"capacity searches per client at 1,000 streams, the best kept [default {TARGET_SEARCHES}]")
    args = p.parse_args()
    levels = [int(x) for x in args.levels.split(",")] if args.levels else None
    kinds = args.kinds.split(",") if args.kinds else None
    print(Section(args.quick, levels, kinds, args.regime, args.searches).run(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
