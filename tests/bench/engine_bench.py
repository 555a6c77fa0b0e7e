#!/usr/bin/env python3
"""The engine section of the bench: acs's asyncio engine against an aiohttp loop and an
httpx.AsyncClient loop, many concurrent streams in one process each.

    python tests/bench/bench.py --engine [--quick]      (or this file alone, same flags)

Every client runs in its own process against tests/bench/stream_server.py (another process), at
concurrency C = 1, 100, 1,000 and 10,000: C workers each send `rounds` requests one after the other
(keep-alive) so that every level moves at least 200,000 frames (C=1: 1,000 requests in a row).
Every stream is 200 frames, each frame its own HTTP chunk and its own server write, and its text
must come out exact. Each client does the same work per frame: split the event stream, decode the
JSON, keep the text. Figures: frames/s (wall), client CPU µs per frame (getrusage of the client
process around the run, imports excluded), peak RSS (VmHWM), frames per socket read (every
client's socket reads counted alike; a client whose reads hold more frames pays less per frame:
the server writes round-robin, so reads coalesce when a client falls behind), and the server's
CPU share of one core over the run (near 100% would mean the server, not the client, was measured).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
KINDS = ("engine", "aiohttp", "httpx", "bytes")
NAMES = {"engine": "acs engine", "aiohttp": "aiohttp loop", "httpx": "httpx.AsyncClient loop", "bytes": "acs engine, bytes only"}
MODULES = {"engine": "acs_cli.engine", "aiohttp": "aiohttp", "httpx": "httpx_sse", "bytes": "acs_cli.engine"}
PROMPT = "Benchmark prompt"


# ------------------------------------------------------------------------------- the clients


def vm_hwm_kib() -> int:
    """Peak RSS of this process image (ru_maxrss would include the parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def run_engine(base: str, conc: int, rounds: int, frames: int, expected: str, reads: list[int]) -> tuple[int, int]:
    from acs_cli.consumer import CompletionConsumer
    from acs_cli.engine import Engine
    from acs_cli.records import Delta

    class Texts:
        """A sink that keeps the text (the same work every client does: decode, keep the text)."""

        __slots__ = ("parts",)

        def __init__(self) -> None:
            self.parts: list[str] = []

        def begin(self) -> None:
            pass

        def write(self, records: list) -> None:
            self.parts += [r.text for r in records if type(r) is Delta and r.text]

        def end(self, outcome: object) -> None:
            pass

    body = request_body(frames)
    ok = bad = 0
    async with Engine(base, {"Content-Type": "application/json"}, proxy=None, timeout=600) as engine:

        async def worker() -> None:
            nonlocal ok, bad
            for _ in range(rounds):
                texts = Texts()
                consumer = CompletionConsumer(sink=texts, keep_times=False)
                record = await engine.request("POST", "completions", body, consumer)
                if consumer.verdict(record.error) is None and "".join(texts.parts) == expected:
                    ok += 1
                else:
                    bad += 1

        await asyncio.gather(*(worker() for _ in range(conc)))
    return ok, bad


async def run_bytes(base: str, conc: int, rounds: int, frames: int, expected: str, reads: list[int]) -> tuple[int, int]:
    """The engine with no parsing at all: each body checked byte for byte against the expected
    one as it arrives (the HTTP layer's own cost, for reference; no peer does this little)."""
    from server import expected_body

    from acs_cli.engine import Engine

    body_expected = expected_body(frames, usage=False)

    class Compare:
        __slots__ = ("pos", "same")

        def __init__(self) -> None:
            self.pos, self.same = 0, True

        def on_head(self, head: object, now: float) -> None:
            pass

        def on_data(self, data: bytes, now: float) -> bool:
            self.same = self.same and body_expected.startswith(data, self.pos)
            self.pos += len(data)
            return False

        def on_end(self, now: float) -> None:
            pass

    body = request_body(frames)
    ok = bad = 0
    async with Engine(base, {"Content-Type": "application/json"}, proxy=None, timeout=600) as engine:

        async def worker() -> None:
            nonlocal ok, bad
            for _ in range(rounds):
                consumer = Compare()
                record = await engine.request("POST", "completions", body, consumer)
                good = record.error is None and consumer.same and consumer.pos == len(body_expected)
                ok, bad = (ok + 1, bad) if good else (ok, bad + 1)

        await asyncio.gather(*(worker() for _ in range(conc)))
    return ok, bad


async def peer_workers(one: Callable[[], Awaitable[str]], conc: int, rounds: int, expected: str) -> tuple[int, int]:
    """A peer's C workers, each sending `rounds` requests one after the other: (exact texts, other
    outcomes, failures included)."""
    ok = bad = 0

    async def worker() -> None:
        nonlocal ok, bad
        for _ in range(rounds):
            try:
                text = await one()
            except Exception:
                text = None
            ok, bad = (ok + 1, bad) if text == expected else (ok, bad + 1)

    await asyncio.gather(*(worker() for _ in range(conc)))
    return ok, bad


async def run_aiohttp(base: str, conc: int, rounds: int, frames: int, expected: str, reads: list[int]) -> tuple[int, int]:
    import aiohttp

    body = request_body(frames)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:

        async def one() -> str:
            parts: list[str] = []
            async with session.post(base + "/completions", data=body, headers={"Content-Type": "application/json"}) as response:
                async for line in response.content:
                    if not line.startswith(b"data: "):
                        continue
                    data = line[6:].strip()
                    if data == b"[DONE]":
                        break
                    obj = json.loads(data)
                    if obj["choices"]:
                        parts.append(obj["choices"][0]["text"])
            return "".join(parts)

        return await peer_workers(one, conc, rounds, expected)


async def run_httpx(base: str, conc: int, rounds: int, frames: int, expected: str, reads: list[int]) -> tuple[int, int]:
    import httpx
    from httpx_sse import aconnect_sse

    body = request_body(frames)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:

        async def one() -> str:
            parts: list[str] = []
            headers = {"Content-Type": "application/json"}
            async with aconnect_sse(client, "POST", base + "/completions", content=body, headers=headers) as source:
                async for event in source.aiter_sse():
                    if event.data == "[DONE]":
                        break
                    obj = json.loads(event.data)
                    if obj["choices"]:
                        parts.append(obj["choices"][0]["text"])
            return "".join(parts)

        return await peer_workers(one, conc, rounds, expected)


def count_reads(reads: list[int]) -> None:
    """Count every socket read that returned data, the same way for every client: asyncio's
    transports (aiohttp's, anyio's under httpx, the engine's) all read through these methods."""
    import socket

    recv, recv_into = socket.socket.recv, socket.socket.recv_into

    def counted_recv(self: socket.socket, size: int, *flags: int) -> bytes:
        data = recv(self, size, *flags)
        reads[0] += bool(data)
        return data

    def counted_recv_into(self: socket.socket, buffer: memoryview, *args: int) -> int:
        n = recv_into(self, buffer, *args)
        reads[0] += bool(n)
        return n

    socket.socket.recv = counted_recv  # type: ignore[method-assign]
    socket.socket.recv_into = counted_recv_into  # type: ignore[method-assign]


def request_body(frames: int) -> bytes:
    return json.dumps({"model": "bench", "prompt": PROMPT, "max_tokens": frames, "stream": True}).encode()


def client_main(kind: str, base: str, conc: int, rounds: int, frames: int) -> None:
    from server import expected_text
    from stream_server import raise_nofile

    raise_nofile()
    __import__(MODULES[kind])  # imports before the clock starts
    runner = {"engine": run_engine, "aiohttp": run_aiohttp, "httpx": run_httpx, "bytes": run_bytes}[kind]
    expected = expected_text(frames).decode()
    reads = [0]
    count_reads(reads)
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    loop_factory = None
    if os.environ.get("ACS_BENCH_LOOP") == "uvloop":  # the event loop the `fast` extra brings
        import uvloop

        loop_factory = uvloop.new_event_loop
    if kind in ("engine", "bytes") and loop_factory is None:
        from acs_cli.engine import run as engine_run  # acs's own way to run the engine

        ok, bad = engine_run(runner(base, conc, rounds, frames, expected, reads))
    else:
        with asyncio.Runner(loop_factory=loop_factory) as runner_loop:
            ok, bad = runner_loop.run(runner(base, conc, rounds, frames, expected, reads))
    t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(json.dumps({"ok": ok, "bad": bad, "frames": ok * frames, "wall": t1 - t0, "cpu": cpu, "reads": reads[0], "rss_kib": vm_hwm_kib()}))


# ------------------------------------------------------------------------------- the section


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


class Section:
    def __init__(self, quick: bool, levels: list[int] | None = None) -> None:
        self.quick = quick
        self.frames = 200
        self.levels = levels or ([1, 100, 1000] if quick else [1, 100, 1000, 10000])
        self.floor = 20_000 if quick else 200_000  # frames per level (at least)
        self.results: dict[tuple[int, str], dict] = {}
        self.notes: list[str] = []

    def log(self, msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    def server_cpu(self) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=30) as response:
            return float(json.loads(response.read())["cpu"])

    def run(self) -> str:
        env = {**os.environ, "PYTHONPATH": str(HERE.parent.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        env.pop("NO_COLOR", None)
        self.env = {k: v for k, v in env.items() if not k.upper().endswith("_PROXY")}
        server = subprocess.Popen([sys.executable, str(HERE / "stream_server.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=HERE, env=self.env)
        try:
            assert server.stdout is not None
            self.port = int(server.stdout.readline())
            kinds = [k for k in KINDS if self.importable(k)]
            self.load_before = loadavg()
            for level in self.levels:
                for kind in kinds:
                    self.measure(kind, level)
            self.load_after = loadavg()
        finally:
            if server.stdin:
                server.stdin.close()
            server.wait(10)
        return self.table(kinds)

    def importable(self, kind: str) -> bool:
        found = subprocess.run([sys.executable, "-c", f"import {MODULES[kind]}"], env=self.env, capture_output=True, check=False).returncode == 0
        if not found:
            self.notes.append(f"{NAMES[kind]} skipped: {MODULES[kind]} is not importable by {sys.executable}")
        return found

    def measure(self, kind: str, level: int) -> None:
        rounds = max(1, self.floor // (level * self.frames))
        base = f"http://127.0.0.1:{self.port}/v1"
        argv = [sys.executable, str(HERE / "engine_bench.py"), "--client", kind, base, str(level), str(rounds), str(self.frames)]
        before = self.server_cpu()
        started = time.perf_counter()
        try:
            out = subprocess.run(argv, env=self.env, cwd=HERE, capture_output=True, timeout=900, check=False)
            result = json.loads(out.stdout.splitlines()[-1]) if out.returncode == 0 else {"error": out.stderr.decode()[-300:]}
        except subprocess.TimeoutExpired:
            result = {"error": "timed out after 900 s"}
        except (ValueError, IndexError):
            result = {"error": f"no result: {out.stderr.decode()[-300:]}"}
        wall = time.perf_counter() - started
        result["server_share"] = (self.server_cpu() - before) / wall
        result["streams"] = level * rounds
        self.results[(level, kind)] = result
        if "error" in result:
            self.log(f"  {NAMES[kind]} at {level}: FAILED ({result['error']})")
        else:
            self.log(
                f"  {NAMES[kind]} at {level:,} x {rounds}: {result['frames'] / result['wall']:,.0f} frames/s, "
                f"{1e6 * result['cpu'] / max(1, result['frames']):.1f} µs CPU/frame, {result['bad']} bad"
            )

    def table(self, kinds: list[str]) -> str:
        out = [
            "",
            f"### Engine: concurrent streams in one process ({self.frames} frames each, one chunk and one write per frame)",
            "",
            (
                "| concurrency | client | streams | frames/s | client CPU µs/frame | client CPU share | frames/read | peak RSS "
                "| server CPU | engine ÷ client: frames/s | : CPU/frame | target | result |"
            ),
            "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|",
        ]
        for level in self.levels:
            eng = self.results.get((level, "engine"), {})
            for kind in kinds:
                r = self.results.get((level, kind), {})
                out.append(self.row(level, kind, r, eng))
        out += [
            "",
            f"Load average before {self.load_before}, after {self.load_after} (2 cores, shared: rerun if it was high).",
            (
                "Server CPU is the stream server's share of one core over the client's run; well under 100% means the"
                " server kept up and the client was measured. frames/read above 1 means the client fell behind and its"
                " reads coalesced frames, which lowers its cost per frame (an advantage to the slower clients)."
                " Client CPU share below 100% with the server idle too means other processes had the cores: frames/s"
                " then understates every client and CPU µs/frame is the steadier comparison (engine ÷ client: CPU/frame"
                " is the client's CPU per frame over the engine's). `acs engine, bytes only` checks each body byte for"
                " byte without parsing it: the HTTP layer's own cost."
            ),
        ]
        out += [f"- {n}" for n in self.notes]
        return "\n".join(out)

    def row(self, level: int, kind: str, r: dict, eng: dict) -> str:
        if "error" in r or not r:
            return f"| {level:,} | {NAMES[kind]} | | FAILED | | | | | | | | | **FAIL** {r.get('error', 'not run')[:120]} |"
        fps = r["frames"] / r["wall"] if r["wall"] else 0.0
        per = r["cpu"] / max(1, r["frames"])
        cells = [f"{level:,}", NAMES[kind], f"{r['streams']:,}", f"{fps:,.0f}", f"{1e6 * per:.1f}", f"{100 * r['cpu'] / r['wall']:.0f}%",
                 f"{r['frames'] / max(1, r['reads']):.1f}", f"{r['rss_kib'] / 1024:.0f} MiB", f"{100 * r['server_share']:.0f}%"]
        target, verdict = "", ""
        if kind in ("bytes", "engine"):
            checks = [("no failed stream", r["bad"] == 0)]
            if level == 1000 and kind == "engine":
                checks += [("≥ 20,000 frames/s", fps >= 20_000), ("RSS ≤ 150 MiB", r["rss_kib"] <= 150 * 1024)]
            cells += ["", ""]
        else:
            good = eng.get("wall") and "error" not in eng and eng["frames"]
            efps = eng["frames"] / eng["wall"] if good else 0.0
            eper = eng["cpu"] / eng["frames"] if good else 0.0
            cells += [f"{efps / fps:.1f}" if fps and efps else "", f"{per / eper:.1f}" if eper else ""]
            need = 3 if kind == "aiohttp" else 10
            checks = [(f"engine ≥ {need} ×", bool(fps) and efps >= need * fps)] if level == 1000 else []
        if checks:
            target = "; ".join(name for name, _ in checks)
            verdict = "PASS" if all(ok for _, ok in checks) else "**FAIL**"
        return "| " + " | ".join(cells + [target, verdict]) + " |"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="levels 1, 100, 1,000 and 20,000 frames a level")
    p.add_argument("--levels", help="comma-separated concurrency levels [default 1,100,1000,10000]")
    p.add_argument("--client", nargs=5, metavar=("KIND", "BASE", "C", "ROUNDS", "FRAMES"), help=argparse.SUPPRESS)
    args = p.parse_args()
    sys.path.insert(0, str(HERE))
    if args.client:
        kind, base, conc, rounds, frames = args.client
        client_main(kind, base, int(conc), int(rounds), int(frames))
        return 0
    levels = [int(x) for x in args.levels.split(",")] if args.levels else None
    print(Section(args.quick, levels).run(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
