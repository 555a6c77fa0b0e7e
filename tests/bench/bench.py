#!/usr/bin/env python3
"""Benchmark acs against its peers on a loopback vLLM-shaped server.

    python tests/bench/bench.py [--quick] [--engine | --bench-command | --batch] [--json FILE] [--acs PATH] [--llm PATH] [--reps R]

Run it with the Python of the venv acs is installed in: acs is found as the `acs` console script next
to sys.executable (or --acs PATH), the Python peers run with sys.executable, `llm` comes from --llm,
$BENCH_LLM or PATH (skipped with a note when absent), curl from PATH. Progress goes to stderr, the
Markdown table to stdout. See tests/bench/README.md for what each row means.

Not a test: pytest never collects this directory (tests/bench/conftest.py).
"""

from __future__ import annotations

import argparse
import bisect
import fcntl
import gc
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROMPT = "Benchmark prompt"
MODEL = "bench"
MIB = 1024
CHILD_CPU = [0.0]  # CPU seconds of every command run so far (reported by the spawner)
FOREIGN = 0.05  # share of one core used by other processes above which a section is flagged


def cpu_snapshot() -> tuple[float, float, float] | None:
    """(wall, CPU seconds the whole machine was busy, CPU seconds of this bench and its commands)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / hz  # all but idle and iowait (steal included)
    t = os.times()
    return time.monotonic(), busy, t.user + t.system + CHILD_CPU[0]


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


# ------------------------------------------------------------------------------------ spawner


class Spawner:
    """Starts commands through tests/bench/spawner.py so their ru_maxrss is their own (see there)."""

    def __init__(self) -> None:
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(HERE / "spawner.py"), str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.sock.settimeout(30)
        hello = json.loads(self.sock.recv(65536))
        assert hello.get("ready"), hello

    def start(self, argv: list[str], env: dict[str, str], fds: tuple[int, int, int], ctty: bool = False) -> int:
        msg = json.dumps({"argv": argv, "env": env, "ctty": ctty}).encode()
        socket.send_fds(self.sock, [msg], list(fds))
        self.sock.settimeout(30)
        return json.loads(self.sock.recv(65536))["pid"]

    def wait(self, pid: int, timeout: float) -> tuple[dict, bool]:
        """(exit report, timed_out). On timeout the child's process group is killed first."""
        self.sock.settimeout(timeout)
        try:
            return json.loads(self.sock.recv(65536)), False
        except TimeoutError:
            kill_group(pid)
            self.sock.settimeout(30)
            return json.loads(self.sock.recv(65536)), True
        except BaseException:
            kill_group(pid)
            raise

    def close(self) -> None:
        try:
            self.sock.send(json.dumps({"quit": True}).encode())
        except OSError:
            pass
        self.sock.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ------------------------------------------------------------------------------------ one run


@dataclass
class Run:
    wall: float = 0.0
    status: int | None = None
    nbytes: int = 0
    maxrss_kib: int = 0
    cpu: float = 0.0
    stderr: bytes = b""
    data: bytes = b""  # kept when asked (small outputs, pty, latency)
    reads: list[tuple[float, int]] = field(default_factory=list)  # (monotonic after read, end offset)
    error: str | None = None  # set when the run does not count (wrong output, exit status, timeout)


class Reader(threading.Thread):
    """Reads an fd to EOF (EIO for a pty master), counting bytes; checks them against `expected`
    incrementally (when given), keeps them (when `keep`), stamps each read (when `stamps`)."""

    def __init__(self, fd: int, expected: bytes | None, keep: bool, stamps: bool) -> None:
        super().__init__(daemon=True)
        self.fd, self.expected, self.keep, self.stamps = fd, expected, keep, stamps
        self.nbytes = 0
        self.match = True
        self.chunks: list[bytes] = []
        self.reads: list[tuple[float, int]] = []

    def run(self) -> None:
        fd, expected = self.fd, self.expected
        while True:
            try:
                data = os.read(fd, 1 << 20)
            except OSError:  # EIO: the pty's other side is closed
                break
            if not data:
                break
            if self.stamps:
                self.reads.append((time.monotonic(), self.nbytes + len(data)))
            if expected is not None and self.match and not expected.startswith(data, self.nbytes):
                self.match = False
            self.nbytes += len(data)
            if self.keep:
                self.chunks.append(data)


def set_winsize(fd: int, rows: int = 50, cols: int = 200) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def run_once(
    spawner: Spawner,
    argv: list[str],
    env: dict[str, str],
    *,
    timeout: float,
    pty: bool = False,
    expected: bytes | None = None,
    keep: bool = False,
    stamps: bool = False,
) -> Run:
    """Run a command with stdout on a pipe (or stdout, stderr and stdin on a pty) and time it.

    The wall time runs from asking the spawner to start it until its exit is reported and its
    stdout reached EOF. With `expected`, stdout must be exactly those bytes (pipe mode)."""
    res = Run()
    err = tempfile.TemporaryFile()
    if pty:
        import pty as ptymod

        master, slave = ptymod.openpty()
        set_winsize(master)
        read_fd, fds = master, (slave, slave, slave)
        env = {**env, "TERM": env.get("TERM") or "xterm-256color"}
    else:
        read_fd, write_fd = os.pipe()
        null = os.open(os.devnull, os.O_RDONLY)
        fds = (null, write_fd, err.fileno())
    reader = Reader(read_fd, None if pty else expected, keep or pty, stamps)
    reader.start()
    t0 = time.perf_counter()
    try:
        pid = spawner.start(argv, env, fds, ctty=pty)
    finally:
        for fd in set(fds) - {err.fileno()}:
            os.close(fd)
    report, timed_out = spawner.wait(pid, timeout)
    reader.join(timeout=30)
    res.wall = time.perf_counter() - t0
    if reader.is_alive():  # something still holds the write side: give up on it
        res.error = "stdout did not reach EOF"
    os.close(read_fd)
    res.status = report["status"]
    res.maxrss_kib = report["maxrss_kib"]
    res.cpu = report["utime"] + report["stime"]
    CHILD_CPU[0] += res.cpu
    res.nbytes = reader.nbytes
    res.reads = reader.reads
    res.data = b"".join(reader.chunks)
    err.seek(0)
    res.stderr = err.read()
    err.close()
    if timed_out:
        res.error = f"timed out after {timeout:.0f} s (killed)"
    elif res.status != 0:
        said = strip_terminal(res.data).encode() if pty else res.stderr  # on a pty, stderr went there too
        res.error = f"exit status {res.status}: {tail(said)}"
    elif expected is not None:
        if pty:
            if expected.decode() not in strip_terminal(res.data):
                res.error = f"pty output ({res.nbytes} B) does not contain the expected text ({len(expected)} B)"
        elif not reader.match or reader.nbytes != len(expected):
            res.error = (
                f"wrong stdout: {reader.nbytes} B, expected {len(expected)} B"
                + ("" if reader.match else " (content differs)")
            )
    return res


_ESC = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]|\r")


def strip_terminal(data: bytes) -> str:
    """A pty's bytes as plain text: escape sequences and carriage returns removed."""
    return _ESC.sub("", data.decode("utf-8", "replace"))


def tail(data: bytes, n: int = 200) -> str:
    text = data.decode("utf-8", "replace").strip().replace("\n", " | ")
    return text[-n:] or "(no stderr)"


# ------------------------------------------------------------------------------------ tools


@dataclass
class Tool:
    name: str
    argv: Callable[[str, int, bool], list[str]]  # (base_url, max_tokens, raw) -> argv
    env: dict[str, str]
    suffix: bytes = b""  # what the tool adds after the text (llm: a newline)
    raw_output: bool = False  # stdout is the response body (curl)
    note: str = ""
    base_var: str | None = None  # the environment variable that carries the base URL (acs: ACS_API_BASE)

    def environ(self, base: str) -> dict[str, str]:
        return {**self.env, self.base_var: base} if self.base_var else self.env


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACS_", "OPENAI_", "LLM_"))}
    env.pop("NO_COLOR", None)
    return env


def request_body(n: int) -> str:
    """The body acs sends, for curl."""
    return json.dumps(
        {"model": MODEL, "prompt": PROMPT, "max_tokens": n, "stream": True, "stream_options": {"include_usage": True}}
    )


def find_acs(given: str | None) -> str:
    if given:
        path = shutil.which(given) or given
    else:
        path = shutil.which("acs", path=str(Path(sys.executable).parent)) or ""
    if not path or not os.access(path, os.X_OK):
        sys.exit(
            f"bench: error: acs not found {'at ' + given if given else 'next to ' + sys.executable}\n"
            "hint: run the bench with the Python of the venv acs is installed in "
            "(e.g. /tmp/venv/bin/python tests/bench/bench.py), or pass --acs PATH"
        )
    return path


def setup_llm(given: str | None, server_base: str, paced_base: str, workdir: Path) -> tuple[str | None, dict, str]:
    path = given or os.environ.get("BENCH_LLM") or shutil.which("llm")
    if not path or not (shutil.which(path) or os.access(path, os.X_OK)):
        return None, {}, (
            "llm not found (--llm PATH, $BENCH_LLM or PATH); install it apart: "
            "python3 -m venv /tmp/llm-venv && /tmp/llm-venv/bin/pip install llm"
        )
    path = shutil.which(path) or path
    user = workdir / "llm-user"
    user.mkdir()
    (user / "extra-openai-models.yaml").write_text(
        f"- model_id: bench-fast\n  model_name: {MODEL}\n  api_base: \"{server_base}\"\n  completion: true\n"
        f"- model_id: bench-paced\n  model_name: {MODEL}\n  api_base: \"{paced_base}\"\n  completion: true\n"
    )
    env = {"LLM_USER_PATH": str(user), "OPENAI_API_KEY": "x"}
    return path, env, ""


def has_module(name: str) -> bool:
    try:
        out = subprocess.run(
            [sys.executable, "-c", f"import {name}"], capture_output=True, timeout=60, stdin=subprocess.DEVNULL
        )
        return out.returncode == 0
    except subprocess.TimeoutExpired:
        return False


def make_tools(args, server, workdir: Path) -> tuple[dict[str, Tool], list[str], dict[str, str]]:
    notes: list[str] = []
    paths: dict[str, str] = {}
    env0 = base_env()
    acs = find_acs(args.acs)
    paths["acs"] = acs
    tools: dict[str, Tool] = {
        "acs": Tool(
            "acs",
            lambda base, n, raw: [acs, "complete", "-m", MODEL, "--max-tokens", str(n)]
            + (["--raw"] if raw else [])
            + [PROMPT],
            env0,
            base_var="ACS_API_BASE",
        )
    }
    curl = shutil.which("curl")
    if curl:
        paths["curl"] = curl
        tools["curl"] = Tool(
            "curl -N -s",
            lambda base, n, raw: [curl, "-N", "-s", "-X", "POST", base + "/completions",
                                  "-H", "Content-Type: application/json", "-d", request_body(n)],
            env0,
            raw_output=True,
            note="prints the raw body",
        )
    else:
        notes.append("curl skipped: not on PATH")
    py = sys.executable
    if has_module("httpx_sse"):
        script = str(HERE / "peers" / "httpx_loop.py")
        tools["httpx"] = Tool("httpx loop", lambda base, n, raw: [py, script, base, MODEL, str(n), PROMPT], env0)
    else:
        notes.append(f"httpx loop skipped: httpx_sse not importable by {py} (pip install httpx-sse)")
    if has_module("openai"):
        script2 = str(HERE / "peers" / "openai_loop.py")
        tools["openai"] = Tool("OpenAI-SDK loop", lambda base, n, raw: [py, script2, base, MODEL, str(n), PROMPT], env0)
    else:
        notes.append(f"OpenAI-SDK loop skipped: openai not importable by {py} (pip install openai)")
    llm, llm_env, why = setup_llm(args.llm, server.base, server.paced_base, workdir)
    if llm:
        paths["llm"] = llm
        tools["llm"] = Tool(
            "llm",
            lambda base, n, raw: [llm, "-m", "bench-paced" if "/paced/" in base else "bench-fast",
                                  "-o", "max_tokens", str(n), PROMPT],
            {**env0, **llm_env},
            suffix=b"\n",
            note="logs each response to its SQLite DB (its default)",
        )
    else:
        notes.append(why)
    return tools, notes, paths


# ------------------------------------------------------------------------------------ the bench


@dataclass
class Row:
    section: str
    tool: str
    samples: list[float] = field(default_factory=list)  # the row's quantity per rep
    unit: str = "s"
    n: int | None = None  # frames
    extra: str = ""
    ratio: float | None = None  # acs / this (same quantity)
    target: str = ""
    verdict: str = ""
    note: str = ""
    error: str | None = None
    rss_kib: list[int] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args) -> None:
        self.args = args
        self.quick = args.quick
        self.reps = args.reps or (2 if args.quick else 5)
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.results: dict[tuple[str, str], Row] = {}

    # sizes
    @property
    def sizes(self) -> dict[str, int]:
        if self.quick:
            return dict(small=16, thr=20_000, slow=2_000, raw=100_000, pty_small=10_000, pty_big=100_000, lat=100)
        return dict(small=16, thr=200_000, slow=200_000, raw=1_000_000, pty_small=100_000, pty_big=1_000_000, lat=300)

    def measure(
        self,
        section: str,
        key: str,
        label: str,
        argv: list[str],
        env: dict[str, str],
        *,
        reps: int,
        timeout: float,
        expected: bytes | None = None,
        pty: bool = False,
        warmup: bool = False,
        n: int | None = None,
        note: str = "",
    ) -> Row:
        row = Row(section, label, n=n, note=note)
        if warmup:
            run_once(self.spawner, argv, env, timeout=timeout)
        for i in range(reps):
            r = run_once(self.spawner, argv, env, timeout=timeout, pty=pty, expected=expected)
            if r.error:
                row.error = r.error
                log(f"  {label}: FAILED ({r.error})")
                break
            row.samples.append(r.wall)
            row.rss_kib.append(r.maxrss_kib)
            row.cpu.append(r.cpu)
        if row.samples and not row.error:
            log(
                f"  {section} / {label}: median {row.median:.3f} s over {len(row.samples)} "
                f"(all: {', '.join(f'{s:.3f}' for s in row.samples)}), peak RSS {max(row.rss_kib) / MIB:.1f} MiB"
            )
        self.results[(section, key)] = row
        self.rows.append(row)
        return row

    def run(self) -> int:
        args = self.args
        t_start = time.perf_counter()
        self.spawner = Spawner()  # first, while this process is small
        from server import BenchServer, expected_body, expected_text, prompt_tokens

        self.server = server = BenchServer()
        self.workdir = Path(tempfile.mkdtemp(prefix="acs-bench-"))
        try:
            self.tools, notes, self.paths = make_tools(args, server, self.workdir)
            self.notes += notes
            self.floor = self.rss_floor()
            self.header()
            ptoks = prompt_tokens(PROMPT)
            self.text = lambda n: expected_text(n)
            self.body = lambda n: expected_body(n, True, ptoks)
            self.ptoks = ptoks
            self.busy: list[str] = []
            self.foreign_total = 0.0
            for step in (self.check_tools, self.startup, self.small, self.throughput, self.chat, self.raw, self.pty, self.latency):
                self.watch_cpu(step.__name__)
                step()
            self.watch_cpu("end")
            self.rss_rows()
            elapsed = time.perf_counter() - t_start
            self.report(elapsed)
            if server.errors:
                print("\nserver errors:\n" + "\n".join(server.errors))
                return 1
            return 0
        finally:
            server.close()
            self.spawner.close()
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --------------------------------------------------------------- pieces

    def watch_cpu(self, where: str) -> None:
        """Between two calls: CPU time the machine spent on anything but this bench and the commands
        it ran (other sessions' tests, builds, the hypervisor's steal). Noted when it is more than
        FOREIGN of one core, since every row here is sensitive to it."""
        now = cpu_snapshot()
        last, self._cpu_last = getattr(self, "_cpu_last", None), (now, where)
        if now is None or last is None or last[0] is None:
            return
        (w0, b0, o0), section = last
        w1, b1, o1 = now
        foreign = max(0.0, (b1 - b0) - (o1 - o0))
        self.foreign_total += foreign
        if w1 > w0 and foreign / (w1 - w0) > FOREIGN and foreign > 0.3:
            self.busy.append(f"{section}: {foreign:.1f} s of CPU over {w1 - w0:.0f} s ({100 * foreign / (w1 - w0):.0f}% of a core)")
            log(f"warning: other processes used {foreign:.1f} s of CPU during {section}")

    def rss_floor(self) -> int:
        true = shutil.which("true") or "/bin/true"
        return run_once(self.spawner, [true], base_env(), timeout=10).maxrss_kib

    def header(self) -> None:
        cpu = "unknown"
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        versions = {}
        for key, argv in {
            "acs": [self.paths["acs"], "--version"],
            "curl": [self.paths.get("curl", ""), "--version"],
            "llm": [self.paths.get("llm", ""), "--version"],
        }.items():
            if not argv[0]:
                continue
            try:
                out = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
                first = (out.stdout.splitlines() or ["?"])[0]
                m = re.search(r"\d+\.\d+(?:\.\d+)?", first)
                versions[key] = m.group(0) if m else first.strip()
            except (OSError, subprocess.TimeoutExpired) as exc:
                versions[key] = f"? ({exc})"
        for mod in ("openai", "httpx", "httpx_sse"):
            out = subprocess.run(
                [sys.executable, "-c", f"import importlib.metadata as m; print(m.version({mod.replace('_', '-')!r}))"],
                capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
            )
            versions[mod] = out.stdout.strip() or "not installed"
        self.machine = {
            "cpu": cpu,
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "python_executable": sys.executable,
            "kernel": platform.release(),
            "versions": versions,
            "rss_floor_kib": self.floor,
        }
        lines = [
            "# acs benchmark" + (" (--quick)" if self.quick else ""),
            "",
            f"- machine: {cpu}, {os.cpu_count()} cores, Linux {platform.release()}",
            f"- Python {platform.python_version()} ({sys.executable})",
            "- tools: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
            f"- server: tests/bench/server.py on 127.0.0.1:{self.server.port}, in the bench's process",
            f"- repetitions: {self.reps} (fewer where the row says), medians reported",
            f"- load average at start: {loadavg()} (anything else busy on the machine skews every row)",
        ]
        self.header_lines = lines
        print("\n".join(lines), flush=True)
        log("machine: " + cpu)

    def check_tools(self) -> None:
        """Each tool once on a 16-frame stream: a tool that cannot stream the text is dropped."""
        n = 16
        self.server.prepare(n, True, self.ptoks)
        for key, tool in list(self.tools.items()):
            exp = self.body(n) if tool.raw_output else self.text(n) + tool.suffix
            r = run_once(self.spawner, tool.argv(self.server.base, n, False), tool.environ(self.server.base), timeout=120, expected=exp)
            if r.error and key == "acs":
                raise SystemExit(f"bench: error: acs failed its check run on a 16-frame stream: {r.error}")
            if r.error:
                self.notes.append(f"{tool.name} skipped: its check run failed: {r.error}")
                log(f"{tool.name}: check FAILED: {r.error}")
                del self.tools[key]
            else:
                log(f"{tool.name}: check ok ({r.nbytes} B in {r.wall:.3f} s)")

    def startup(self) -> None:
        log("start-up")
        reps = max(self.reps, 5) if not self.quick else self.reps
        env = base_env()
        acs = self.paths["acs"]
        s = "start-up: `--version`"
        self.measure(s, "acs", "`acs --version`", [acs, "--version"], env, reps=reps, timeout=60, warmup=True)
        if "curl" in self.tools:
            self.measure(s, "curl", "`curl --version`", [self.paths["curl"], "--version"], env, reps=reps, timeout=60, warmup=True)
        if "llm" in self.tools:
            self.measure(s, "llm", "`llm --version`", [self.paths["llm"], "--version"], self.tools["llm"].env,
                         reps=reps, timeout=60, warmup=True)
        if "openai" in self.tools:
            self.measure(s, "openai", '`python -c "import openai"`', [sys.executable, "-c", "import openai"], env,
                         reps=reps, timeout=60, warmup=True, note="reference: the SDK's import alone")
        self.measure(s, "python", "`python -c pass`", [sys.executable, "-c", "pass"], env, reps=reps, timeout=60,
                     warmup=True, note="reference: the interpreter alone")
        s = "start-up: `--help`"
        self.measure(s, "acs", "`acs --help`", [acs, "--help"], env, reps=reps, timeout=60, warmup=True)
        if "llm" in self.tools:
            self.measure(s, "llm", "`llm --help`", [self.paths["llm"], "--help"], self.tools["llm"].env,
                         reps=reps, timeout=60, warmup=True)

    def small(self) -> None:
        n = self.sizes["small"]
        log(f"{n}-token completion")
        self.server.prepare(n, True, self.ptoks)
        s = f"{n}-token completion, piped"
        for key, tool in self.tools.items():
            exp = self.body(n) if tool.raw_output else self.text(n) + tool.suffix
            self.measure(s, key, tool.name, tool.argv(self.server.base, n, False), tool.environ(self.server.base), reps=max(self.reps, 5)
                         if not self.quick else self.reps, timeout=120, expected=exp, warmup=True, n=n,
                         note=tool.note)

    def throughput(self) -> None:
        n, slow = self.sizes["thr"], self.sizes["slow"]
        self.server.prepare(n, True, self.ptoks)
        self.server.prepare(slow, True, self.ptoks)
        s = "throughput, piped"
        log(s)
        for key, tool in self.tools.items():
            is_slow = key in ("openai", "llm")
            size = slow if is_slow else n
            reps = 1 if is_slow and not self.quick else self.reps
            exp = self.body(size) if tool.raw_output else self.text(size) + tool.suffix
            note = tool.note
            if is_slow and reps == 1:
                note = (note + "; " if note else "") + "1 run (slow)"
            row = self.measure(s, key, tool.name, tool.argv(self.server.base, size, False), tool.environ(self.server.base), reps=reps,
                               timeout=600, expected=exp, n=size, note=note)
            if row.samples:
                row.extra = f"{size / row.median:,.0f} frames/s"

    def chat(self) -> None:
        """`acs chat` on the same number of frames in vLLM's chat shape, next to `acs complete`:
        the chat state and sinks sit on the same parser and pump, so the speed must hold."""
        n = self.sizes["thr"]
        self.server.prepare(n, True, self.ptoks, True)
        s = "chat vs complete, piped"
        log(s)
        acs, env = self.paths["acs"], self.tools["acs"].environ(self.server.base)
        for key, command in (("complete", "complete"), ("chat", "chat")):
            row = self.measure(s, key, f"`acs {command}`", [acs, command, "-m", MODEL, "--max-tokens", str(n), PROMPT], env,
                               reps=self.reps, timeout=600, expected=self.text(n), n=n)
            if row.samples:
                row.extra = f"{n / row.median:,.0f} frames/s"

    def raw(self) -> None:
        n = self.sizes["raw"]
        self.server.prepare(n, True, self.ptoks)
        s = "`--raw` vs curl, piped"
        log(s)
        reps = min(self.reps, 3)
        exp = self.body(n)
        self.measure(s, "acs", "`acs --raw`", self.tools["acs"].argv(self.server.base, n, True), self.tools["acs"].environ(self.server.base),
                     reps=reps, timeout=600, expected=exp, n=n)
        if "curl" in self.tools:
            self.measure(s, "curl", "curl -N -s", self.tools["curl"].argv(self.server.base, n, False),
                         self.tools["curl"].environ(self.server.base), reps=reps, timeout=600, expected=exp, n=n)
        for row in (self.results.get((s, "acs")), self.results.get((s, "curl"))):
            if row and row.samples:
                row.extra = f"{n / row.median:,.0f} frames/s, {len(exp) / row.median / 1e6:,.0f} MB/s"

    def pty(self) -> None:
        reps = min(self.reps, 3)
        acs = self.tools["acs"]
        for size in (self.sizes["pty_small"], self.sizes["pty_big"]):
            self.server.prepare(size, True, self.ptoks)
            exp = self.text(size)
            s = f"pty vs pipe, {size:,} frames"
            log(s)
            argv = acs.argv(self.server.base, size, False)
            self.measure(s, "pipe", "acs, stdout piped", argv, acs.environ(self.server.base), reps=reps, timeout=900, expected=exp, n=size)
            self.measure(s, "pty", "acs, on a pty", argv, acs.environ(self.server.base), reps=reps, timeout=900, expected=exp, n=size, pty=True,
                         note="stdin, stdout and stderr on the pty")
            for key in ("pipe", "pty"):
                row = self.results.get((s, key))
                if row and row.samples:
                    row.extra = f"{size / row.median:,.0f} frames/s"
        # a peer at the big size, for its peak RSS (one run)
        big = self.sizes["pty_big"]
        if "httpx" in self.tools:
            t = self.tools["httpx"]
            s = f"pty vs pipe, {big:,} frames"
            row = self.measure(s, "httpx", "httpx loop, piped", t.argv(self.server.base, big, False), t.environ(self.server.base), reps=1,
                               timeout=900, expected=self.text(big), n=big, note="1 run, for its peak RSS")
            if row.samples:
                row.extra = f"{big / row.median:,.0f} frames/s"

    def latency(self) -> None:
        n = self.sizes["lat"]
        s = f"latency, paced {1 / self.server.paced_interval:.0f} frames/s"
        log(s)
        old_switch = sys.getswitchinterval()
        sys.setswitchinterval(0.0002)  # the reader thread must never wait long for the GIL
        gc.disable()  # nor for a collection in this process
        try:
            self._latency(s, n)
        finally:
            gc.enable()
            sys.setswitchinterval(old_switch)
        self.lat_section = s

    def _latency(self, s: str, n: int) -> None:
        runs = [(key, tool, False) for key, tool in self.tools.items()]
        runs.insert(1, ("acs", self.tools["acs"], True))
        for key, tool, pty in runs:
            label = tool.name + (", on a pty" if pty else ", piped")
            rkey = key + ("-pty" if pty else "")
            row = Row(s, label, unit="ms", n=n, note=tool.note)
            reps = 1 if self.quick else 2
            lat: list[float] = []
            firsts: list[float] = []
            for _ in range(reps):
                before = len(self.server.paced_stamps)
                r = run_once(self.spawner, tool.argv(self.server.paced_base, n, False), tool.environ(self.server.paced_base),
                             timeout=120 + n * self.server.paced_interval, pty=pty, keep=True, stamps=True)
                if r.error:
                    row.error = r.error
                    break
                if len(self.server.paced_stamps) != before + 1:
                    row.error = f"expected one paced request, saw {len(self.server.paced_stamps) - before}"
                    break
                stamps = self.server.paced_stamps[-1]
                got, missing = match_frames(r, stamps)
                if missing:
                    row.error = f"{missing} of {n} frames never seen in stdout"
                    break
                lat += got
                firsts.append(got[0])
                row.rss_kib.append(r.maxrss_kib)
            if lat and not row.error:
                lat.sort()
                p50, p99 = quantile(lat, 0.50), quantile(lat, 0.99)
                row.samples = [p99 * 1000]
                row.extra = (
                    f"p50 {p50 * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms, max {lat[-1] * 1000:.1f} ms,"
                    f" {sum(x > 0.001 for x in lat)} > 1 ms, over {len(lat)} frames"
                    f" ({reps} run{'s' if reps > 1 else ''}); first frame {statistics.median(firsts) * 1000:.1f} ms"
                )
                row.p50 = p50 * 1000  # type: ignore[attr-defined]
                if p50 > 0.1:
                    row.note = (row.note + "; " if row.note else "") + "does not stream live"
                log(f"  {label}: {row.extra}")
            else:
                log(f"  {label}: FAILED ({row.error})")
            self.results[(s, rkey)] = row
            self.rows.append(row)

    def rss_rows(self) -> None:
        """Peak RSS at the big size, gathered from the runs above."""
        big, raw = self.sizes["pty_big"], self.sizes["raw"]
        s = "peak RSS"
        out = []
        srcs = [
            (f"acs, piped ({big:,} frames)", (f"pty vs pipe, {big:,} frames", "pipe"), "acs"),
            (f"acs --raw ({raw:,} frames)", ("`--raw` vs curl, piped", "acs"), "acs"),
            (f"acs, on a pty ({big:,} frames)", (f"pty vs pipe, {big:,} frames", "pty"), "acs"),
            (f"curl -N -s ({raw:,} frames)", ("`--raw` vs curl, piped", "curl"), "curl"),
            (f"httpx loop ({big:,} frames)", (f"pty vs pipe, {big:,} frames", "httpx"), "httpx"),
        ]
        thr = self.sizes["slow"]
        for k in ("openai", "llm"):
            if k in self.tools:
                srcs.append((f"{self.tools[k].name} ({thr:,} frames)", ("throughput, piped", k), k))
        for label, src, key in srcs:
            row0 = self.results.get(src)
            if not row0:
                continue
            if not row0.rss_kib:
                row = Row(s, label, unit="MiB", error=f"not measured: its run failed ({row0.error})")
            else:
                row = Row(s, label, samples=[statistics.median(row0.rss_kib) / MIB], unit="MiB")
                row.extra = f"max {max(row0.rss_kib) / MIB:.1f} MiB over {len(row0.rss_kib)} run{'s' if len(row0.rss_kib) > 1 else ''}"
            row.rss_key = key  # type: ignore[attr-defined]
            out.append(row)
            self.results[(s, label)] = row
        self.rows += out
        self.rss_section = s

    # --------------------------------------------------------------- the table

    def verdicts(self) -> None:
        R = self.results

        def med(sec, key):
            row = R.get((sec, key))
            return row.median if row and row.samples else None

        def set_ratio(sec, acs_key, peer_key):
            a, p = med(sec, acs_key), med(sec, peer_key)
            row = R.get((sec, peer_key))
            if row and a is not None and p:
                row.ratio = a / p

        def verdict(row, ok, target):
            if row is None:
                return
            row.target = target
            if row.error:
                row.verdict = "**FAIL**"  # a target row that could not be measured has not met it
            else:
                row.verdict = "n/a" if ok is None else ("PASS" if ok else "**FAIL**")

        sv = "start-up: `--version`"
        for k in ("curl", "llm", "openai", "python"):
            set_ratio(sv, "acs", k)
        a = med(sv, "acs")
        verdict(R.get((sv, "acs")), None if a is None else a < 0.15, "< 0.15 s")
        sh = "start-up: `--help`"
        set_ratio(sh, "acs", "llm")
        a = med(sh, "acs")
        verdict(R.get((sh, "acs")), None if a is None else a < 0.25, "< 0.25 s")

        n = self.sizes["small"]
        s16 = f"{n}-token completion, piped"
        for k in self.tools:
            if k != "acs":
                set_ratio(s16, "acs", k)
        a, o = med(s16, "acs"), med(s16, "openai")
        verdict(R.get((s16, "acs")), None if a is None or o is None else a <= 0.4 * o, "≤ 0.4 × OpenAI-SDK loop")

        st = "throughput, piped"
        arow = R.get((st, "acs"))
        for k in self.tools:
            row = R.get((st, k))
            if k != "acs" and row and row.samples and arow and arow.samples:
                row.ratio = (arow.median / arow.n) / (row.median / row.n)  # per-frame time
        h = R.get((st, "httpx"))
        ok = None
        if arow and arow.samples and h and h.samples:
            ok = (arow.n / arow.median) >= 3 * (h.n / h.median)
        verdict(arow, ok, "≥ 3 × httpx loop frames/s")

        sc = "chat vs complete, piped"
        a, c = med(sc, "chat"), med(sc, "complete")
        crow = R.get((sc, "chat"))
        if crow and a is not None and c:
            crow.extra += f"; {a / c:.2f} × complete"
        verdict(crow, None if a is None or c is None else a <= 1.2 * c, "≤ 1.2 × complete")

        sr = "`--raw` vs curl, piped"
        set_ratio(sr, "acs", "curl")
        a, c = med(sr, "acs"), med(sr, "curl")
        verdict(R.get((sr, "acs")), None if a is None or c is None else a <= 3 * c, "≤ 3 × curl")

        small, big = self.sizes["pty_small"], self.sizes["pty_big"]
        for size in (small, big):
            sp = f"pty vs pipe, {size:,} frames"
            prow, pp = R.get((sp, "pty")), med(sp, "pipe")
            if prow and prow.samples and pp:
                r = prow.median / pp
                prow.extra += f"; {r:.2f} × piped"
                verdict(prow, r <= 1.5, "≤ 1.5 × piped")
            else:
                verdict(prow, None, "≤ 1.5 × piped")
            set_ratio(sp, "pipe", "httpx")
        for key in ("pty", "pipe"):
            a1, a2 = med(f"pty vs pipe, {small:,} frames", key), med(f"pty vs pipe, {big:,} frames", key)
            row = R.get((f"pty vs pipe, {big:,} frames", key))
            if row and a1 and a2:
                lin = a2 / a1
                row.extra += f"; {big // small} × frames took {lin:.1f} × the time"
                if key == "pty" and not row.error:
                    row.target += f"; {big // small}× frames ≤ {big // small + 2}× time"
                    ok = row.verdict == "PASS" and lin <= big // small + 2
                    row.verdict = "PASS" if ok else "**FAIL**"

        for label, row in [(l, r) for (sec, l), r in R.items() if sec == getattr(self, "rss_section", None)]:
            if getattr(row, "rss_key", "") == "acs":
                verdict(row, None if row.median is None else row.median < 60, "< 60 MiB")
        acs_rss = [r.median for (sec, l), r in R.items() if sec == getattr(self, "rss_section", None)
                   and getattr(r, "rss_key", "") == "acs" and r.samples]
        if acs_rss:
            worst = max(acs_rss)
            for (sec, l), r in R.items():
                if sec == getattr(self, "rss_section", None) and getattr(r, "rss_key", "") != "acs" and r.samples:
                    r.ratio = worst / r.median

        sl = getattr(self, "lat_section", None)
        if sl:
            for k in ("acs", "acs-pty"):
                row = R.get((sl, k))
                if row:
                    verdict(row, None if not row.samples else row.median <= 1.0, "p99 ≤ 1 ms")
            a = med(sl, "acs")
            for k in self.tools:
                if k != "acs":
                    set_ratio(sl, "acs", k)

    def report(self, elapsed: float) -> None:
        self.verdicts()
        out = ["", "| measurement | tool | n | median | detail | acs ÷ tool | target | result | notes |",
               "|---|---|--:|--:|---|--:|---|---|---|"]
        last = None
        for row in self.rows:
            sec = row.section if row.section != last else ""
            last = row.section
            if row.error:
                val = "FAILED"
            elif row.median is None:
                val = "—"
            elif row.unit == "s":
                val = f"{row.median:.3f} s"
            elif row.unit == "ms":
                val = f"p99 {row.median:.3f} ms"
            else:
                val = f"{row.median:.1f} {row.unit}"
            ratio = f"{row.ratio:.2f}" if row.ratio is not None else ""
            note = row.note
            if row.error:
                note = (note + "; " if note else "") + row.error.replace("|", "/")
                if row.target and not row.verdict:
                    row.verdict = "**FAIL**"
            reps = f" ×{len(row.samples)}" if row.unit == "s" and len(row.samples) != self.reps and row.samples else ""
            out.append(
                f"| {sec} | {row.tool} | {'' if row.n is None else f'{row.n:,}'} | {val}{reps} | {row.extra} | {ratio} "
                f"| {row.target} | {row.verdict} | {note} |"
            )
        out += [
            "",
            "acs ÷ tool: acs's median over this tool's (time; per-frame time for throughput; p99 for latency; for"
            " peak RSS, acs's largest mode over the tool): below 1 means acs is faster or smaller.",
            f"Peak RSS is the child's ru_maxrss (os.wait4) started through a {self.floor / MIB:.1f} MiB spawner, which"
            " is the floor of every RSS figure.",
            f"Total bench time: {elapsed:.0f} s; CPU used by other processes meanwhile: {self.foreign_total:.1f} s;"
            f" load average at the end: {loadavg()}.",
        ]
        if self.busy:
            out.append(
                "**Warning:** other processes used the CPU during "
                + "; ".join(self.busy)
                + ". Those rows are skewed: rerun on an idle machine before trusting close calls."
            )
        if self.notes:
            out += ["", "Notes:"] + [f"- {n}" for n in self.notes]
        print("\n".join(out), flush=True)
        if self.args.json:
            data = {
                "machine": self.machine,
                "quick": self.quick,
                "reps": self.reps,
                "sizes": self.sizes,
                "elapsed_s": elapsed,
                "notes": self.notes,
                "foreign_cpu_s": self.foreign_total,
                "busy_sections": self.busy,
                "rows": [
                    {
                        "section": r.section, "tool": r.tool, "n": r.n, "unit": r.unit, "samples": r.samples,
                        "median": r.median, "detail": r.extra, "ratio_acs_over_tool": r.ratio, "target": r.target,
                        "result": r.verdict.strip("*"), "note": r.note, "error": r.error, "maxrss_kib": r.rss_kib,
                        "cpu_s": r.cpu, "p50_ms": getattr(r, "p50", None),
                    }
                    for r in self.rows
                ],
            }
            Path(self.args.json).write_text(json.dumps(data, indent=2) + "\n")
            log(f"wrote {self.args.json}")


def quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile of sorted values."""
    k = max(0, min(len(sorted_values) - 1, int(round(q * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


_FRAME = re.compile(rb" \[(\d+)\]")


def match_frames(r: Run, stamps: list[float]) -> tuple[list[float], int]:
    """Latency of each paced frame: when its text ` [i]` was read from stdout minus when the server
    wrote it. Returns (latencies in s, number of frames never seen)."""
    ends = [off for _, off in r.reads]
    seen: dict[int, float] = {}
    for m in _FRAME.finditer(r.data):
        i = int(m.group(1))
        if i in seen or i >= len(stamps):
            continue
        k = bisect.bisect_left(ends, m.end())
        if k < len(r.reads):
            seen[i] = r.reads[k][0] - stamps[i]
    return [seen[i] for i in sorted(seen)], len(stamps) - len(seen)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes and 2 repetitions: a smoke run (~1-2 min)")
    p.add_argument("--json", metavar="FILE", help="also write every sample as JSON")
    p.add_argument("--acs", metavar="PATH", help="the acs executable [default: `acs` next to sys.executable]")
    p.add_argument("--llm", metavar="PATH", help="the llm executable [default: $BENCH_LLM, else `llm` on PATH]")
    p.add_argument("--reps", type=int, metavar="R", help="repetitions per row [default 5, --quick 2]")
    p.add_argument("--engine", action="store_true", help="run only the engine section (many concurrent streams)")
    p.add_argument("--bench-command", action="store_true", help="run only the acs bench section (accuracy and client throughput against peers)")
    p.add_argument("--batch", action="store_true", help="run only the batch section (acs batch vs the cookbook's parallel processor)")
    args = p.parse_args()
    sys.path.insert(0, str(HERE))
    only = args.engine or args.bench_command or args.batch
    status = 0 if only else Bench(args).run()
    # the sections below run their clients in processes of their own: nothing above skews them
    if args.engine or not only:
        from engine_bench import Section as EngineSection

        print(EngineSection(args.quick).run(), flush=True)
    if args.bench_command or not only:
        from bench_command import Section as CommandSection

        print(CommandSection(args.quick).run(), flush=True)
    if args.batch or not only:
        from batch_bench import run as batch_section

        print(batch_section(args.quick), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
