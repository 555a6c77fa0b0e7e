"""The clients of the engine bench (tests/bench/engine_bench.py), one per process:

    python tests/bench/engine_clients.py KIND BASE CONC FRAMES ROUNDS|paced

KIND is `engine` (acs_cli.engine with acs's CompletionConsumer), `aiohttp`, `httpx`
(httpx.AsyncClient + httpx-sse) or `bytes` (the engine with no parsing: the HTTP layer's own cost).
Each does the same work per frame: split the event stream, decode the JSON, keep the text; every
stream's text is checked exact. CONC workers each send requests one after the other (keep-alive).

- ROUNDS (a number): each worker sends ROUNDS requests of FRAMES frames at full speed; one JSON
  line at the end (ok, bad, frames, wall, cpu, reads, rss_kib).
- `paced`: requests ask the stream server for paced frames (`"paced": true`) and go on until told
  to stop. Worker i's first request asks for 1 + i*FRAMES/CONC frames, so the streams' ends (and
  the next requests) are spread evenly over the ticks and any window sees its share of them. On
  stdin, `s` prints a sample line (t = time.perf_counter(), frames, reads, ok, bad, cpu, rss_kib),
  `q` or EOF stops the workers, cancelling the streams in flight (counted neither exact nor not);
  then the final line.

Reads are every socket read that returned data, counted alike for every client on asyncio's own
loop (aiohttp's, anyio's under httpx and the engine's transports all read through socket.recv /
recv_into); under uvloop (ACS_BENCH_LOOP=uvloop, reads done in C) the engine's connections count
their buffer_updated calls, one per read. CPU is getrusage(RUSAGE_SELF), imports excluded.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULES = {"engine": "acs_cli.engine", "aiohttp": "aiohttp", "httpx": "httpx_sse", "bytes": "acs_cli.engine"}
PROMPT = "Benchmark prompt"


class Counts:
    __slots__ = ("bad", "frames", "ok", "reads")

    def __init__(self) -> None:
        self.frames = self.reads = self.ok = self.bad = 0


COUNTS = Counts()


class Load:
    """What the workers ask for: CONC workers, FRAMES frames a stream, ROUNDS streams each (None:
    until stopped), paced or full speed."""

    def __init__(self, conc: int, frames: int, rounds: int | None) -> None:
        self.conc, self.frames, self.rounds = conc, frames, rounds
        self.paced = rounds is None
        self.stopped = False
        self.cancel: Callable[[], object] = lambda: None  # ends the streams in flight (they count neither way)
        self._bodies: dict[int, bytes] = {}
        self._texts: dict[int, str] = {}

    def streams(self, worker: int) -> Iterator[int]:
        """The frame counts of one worker's requests."""
        if self.paced and self.conc > 1:
            yield 1 + worker * self.frames // self.conc  # spread the streams' ends over the ticks
        done = 0
        while not self.stopped and (self.rounds is None or done < self.rounds):
            yield self.frames
            done += 1

    def body(self, n: int) -> bytes:
        if n not in self._bodies:
            req: dict = {"model": "bench", "prompt": PROMPT, "max_tokens": n, "stream": True}
            if self.paced:
                req["paced"] = True
            self._bodies[n] = json.dumps(req).encode()
        return self._bodies[n]

    def expected(self, n: int) -> str:
        if n not in self._texts:
            from server import expected_text

            self._texts[n] = expected_text(n).decode()
        return self._texts[n]


async def drive(load: Load, one: Callable[[int], Awaitable[bool]]) -> None:
    """CONC workers, each sending its requests in a row; `one(n)` is True when the text was exact."""

    async def worker(i: int) -> None:
        for n in load.streams(i):
            try:
                good = await one(n)
            except Exception:
                good = False
            if good:
                COUNTS.ok += 1
            else:
                COUNTS.bad += 1

    tasks = [asyncio.ensure_future(worker(i)) for i in range(load.conc)]
    load.cancel = lambda: [task.cancel() for task in tasks]
    await asyncio.gather(*tasks, return_exceptions=True)


async def run_engine(base: str, load: Load) -> None:
    from acs_cli.consumer import CompletionConsumer
    from acs_cli.engine import Engine
    from acs_cli.records import Delta

    counts = COUNTS

    class Texts:
        """A sink that keeps the text (the same work every client does: decode, keep the text)."""

        __slots__ = ("parts",)

        def __init__(self) -> None:
            self.parts: list[str] = []

        def begin(self) -> None:
            pass

        def write(self, records: list) -> None:
            got = [r.text for r in records if type(r) is Delta and r.text]
            self.parts += got
            counts.frames += len(got)

        def end(self, outcome: object) -> None:
            pass

    async with Engine(base, {"Content-Type": "application/json"}, proxy=None, timeout=600) as engine:

        async def one(n: int) -> bool:
            texts = Texts()
            consumer = CompletionConsumer(sink=texts, keep_times=False)
            record = await engine.request("POST", "completions", load.body(n), consumer)
            return consumer.verdict(record.error) is None and "".join(texts.parts) == load.expected(n)

        await drive(load, one)


async def run_bytes(base: str, load: Load) -> None:
    """The engine with no parsing at all: each body checked byte for byte against the expected
    one as it arrives (the HTTP layer's own cost, for reference; no peer does this little).
    Frames are counted as the `data: {` starts in each read."""
    from server import expected_body

    from acs_cli.engine import Engine

    counts = COUNTS
    bodies: dict[int, bytes] = {}

    class Compare:
        __slots__ = ("expected", "pos", "same")

        def __init__(self, expected: bytes) -> None:
            self.expected, self.pos, self.same = expected, 0, True

        def on_head(self, head: object, now: float) -> None:
            pass

        def on_data(self, data: bytes, now: float) -> bool:
            self.same = self.same and self.expected.startswith(data, self.pos)
            self.pos += len(data)
            counts.frames += data.count(b"data: {")
            return False

        def on_end(self, now: float) -> None:
            pass

    async with Engine(base, {"Content-Type": "application/json"}, proxy=None, timeout=600) as engine:

        async def one(n: int) -> bool:
            if n not in bodies:
                bodies[n] = expected_body(n, usage=False)
            consumer = Compare(bodies[n])
            record = await engine.request("POST", "completions", load.body(n), consumer)
            return record.error is None and consumer.same and consumer.pos == len(bodies[n])

        await drive(load, one)


async def run_aiohttp(base: str, load: Load) -> None:
    import aiohttp

    counts = COUNTS
    timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:

        async def one(n: int) -> bool:
            parts: list[str] = []
            async with session.post(base + "/completions", data=load.body(n), headers={"Content-Type": "application/json"}) as response:
                async for line in response.content:
                    if not line.startswith(b"data: "):
                        continue
                    data = line[6:].strip()
                    if data == b"[DONE]":
                        break
                    obj = json.loads(data)
                    if obj["choices"]:
                        parts.append(obj["choices"][0]["text"])
                        counts.frames += 1
            return "".join(parts) == load.expected(n)

        await drive(load, one)


async def run_httpx(base: str, load: Load) -> None:
    import httpx
    from httpx_sse import aconnect_sse

    counts = COUNTS
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:

        async def one(n: int) -> bool:
            parts: list[str] = []
            headers = {"Content-Type": "application/json"}
            async with aconnect_sse(client, "POST", base + "/completions", content=load.body(n), headers=headers) as source:
                async for event in source.aiter_sse():
                    if event.data == "[DONE]":
                        break
                    obj = json.loads(event.data)
                    if obj["choices"]:
                        parts.append(obj["choices"][0]["text"])
                        counts.frames += 1
            return "".join(parts) == load.expected(n)

        await drive(load, one)


RUNNERS = {"engine": run_engine, "aiohttp": run_aiohttp, "httpx": run_httpx, "bytes": run_bytes}


def count_reads(uvloop: bool, kind: str) -> None:
    """Count every socket read that returned data, the same way for every client (see the top)."""
    if uvloop:
        if kind not in ("engine", "bytes"):
            raise SystemExit("reads are counted under uvloop for the engine only")
        from acs_cli.connection import Connection

        updated = Connection.buffer_updated

        def counted_update(self: Connection, nbytes: int) -> None:
            COUNTS.reads += 1
            updated(self, nbytes)

        Connection.buffer_updated = counted_update  # type: ignore[method-assign]
        return
    import socket

    recv, recv_into = socket.socket.recv, socket.socket.recv_into

    def counted_recv(self: socket.socket, size: int, *flags: int) -> bytes:
        data = recv(self, size, *flags)
        COUNTS.reads += bool(data)
        return data

    def counted_recv_into(self: socket.socket, buffer: memoryview, *args: int) -> int:
        n = recv_into(self, buffer, *args)
        COUNTS.reads += bool(n)
        return n

    socket.socket.recv = counted_recv  # type: ignore[method-assign,assignment]
    socket.socket.recv_into = counted_recv_into  # type: ignore[method-assign,assignment]


def vm_hwm_kib() -> int:
    """Peak RSS of this process image (ru_maxrss would include the parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def sample() -> dict:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    c = COUNTS
    return {"t": time.perf_counter(), "frames": c.frames, "reads": c.reads, "ok": c.ok, "bad": c.bad,
            "cpu": usage.ru_utime + usage.ru_stime, "rss_kib": vm_hwm_kib()}


def listen_for_commands(load: Load) -> None:
    """`s`: a sample line on stdout; `q` or EOF: stop after the current streams."""
    loop = asyncio.get_running_loop()

    def on_stdin() -> None:
        data = os.read(0, 4096)
        for _ in range(data.count(b"s")):
            sys.stdout.write(json.dumps(sample()) + "\n")
        sys.stdout.flush()
        if not data or b"q" in data:
            load.stopped = True
            load.cancel()
            loop.remove_reader(0)

    loop.add_reader(0, on_stdin)


async def client(kind: str, base: str, load: Load) -> None:
    if load.paced:
        listen_for_commands(load)
    await RUNNERS[kind](base, load)


def main(argv: list[str]) -> None:
    kind, base, conc, frames, rounds = argv
    sys.path.insert(0, str(HERE))
    from stream_server import raise_nofile

    raise_nofile()
    __import__(MODULES[kind])  # imports before the clock starts
    uvloop = os.environ.get("ACS_BENCH_LOOP") == "uvloop"  # the event loop the `fast` extra brings
    count_reads(uvloop, kind)
    load = Load(int(conc), int(frames), None if rounds == "paced" else int(rounds))
    before, t0 = sample(), time.perf_counter()
    if uvloop:
        import uvloop as uv

        asyncio.set_event_loop_policy(uv.EventLoopPolicy())  # asyncio.run, so acs's engine.run too, makes a uvloop loop
    if kind in ("engine", "bytes"):
        from acs_cli.engine import run as engine_run  # acs's own way to run the engine

        engine_run(client(kind, base, load))
    else:
        asyncio.run(client(kind, base, load))
    after = sample()
    c = COUNTS
    sys.stdout.write(json.dumps({"final": True, "ok": c.ok, "bad": c.bad, "frames": c.frames, "wall": time.perf_counter() - t0,
                                 "cpu": after["cpu"] - before["cpu"], "reads": c.reads, "rss_kib": after["rss_kib"]}) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
