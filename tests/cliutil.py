"""Helpers shared by the tests that run `acs` as a subprocess (tests/test_cli_*.py).

Nothing here replaces tests/helpers.py: `run_acs` stays THE way to run acs and wait for it; this
module adds stream builders, the one check every failure must pass, a free closed port, and a
`Streaming` wrapper for a running acs whose stdout is read live, byte by byte as it arrives.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence

from tests.helpers import REPO_ROOT, acs_env
from tests.sse_server import Reply, ScriptedServer, usage_frame, vllm_frame

COMPLETIONS = "/v1/completions"
MODELS = "/v1/models"
KEY = "sk-acs-test-5ecret-7f3a9c"  # distinctive, so a leak anywhere is easy to find


def frames(texts: Sequence[str], *, finish: str = "stop", index: int = 0) -> list[bytes]:
    """One vLLM frame per text; the last one carries the finish reason."""
    out = [vllm_frame(t, index=index) for t in texts[:-1]]
    out.append(vllm_frame(texts[-1], index=index, finish_reason=finish))
    return out


def text_reply(
    texts: Sequence[str], *, finish: str = "stop", usage: tuple[int, int] | None = (5, -1), done: bool = True, **kw
) -> Reply:
    """A complete vLLM stream of `texts`, then the usage chunk (completion tokens = len(texts)
    when given as -1), then [DONE]."""
    segs = frames(texts, finish=finish)
    if usage is not None:
        p, c = usage
        segs.append(usage_frame(p, len(texts) if c == -1 else c))
    return Reply.sse(segs, done=done, **kw)


def choices_reply(texts: Mapping[int, Sequence[str]], *, usage: tuple[int, int] | None = (5, 6), **kw) -> Reply:
    """A stream of several choices, their frames interleaved round-robin (as vLLM sends n>1);
    each choice's last frame finishes with "stop"."""
    segs: list[bytes] = []
    longest = max(len(v) for v in texts.values())
    for i in range(longest):
        for index, pieces in texts.items():
            if i < len(pieces):
                last = i == len(pieces) - 1
                segs.append(vllm_frame(pieces[i], index=index, finish_reason="stop" if last else None))
    if usage is not None:
        segs.append(usage_frame(*usage))
    return Reply.sse(segs, **kw)


def env_for(server: ScriptedServer | None = None, **extra: str | None) -> dict[str, str | None]:
    """ACS_API_BASE at the server and ACS_MODEL=m (so no GET /models), plus `extra`."""
    env: dict[str, str | None] = {}
    if server is not None:
        env["ACS_API_BASE"] = server.base_url
    env["ACS_MODEL"] = "m"
    env.update(extra)
    return env


def assert_failure(result, status: int) -> tuple[str, str]:
    """The documented shape of every failure: the exit status, a line `acs: error: …` followed by
    a line `hint: …` on stderr, no traceback. Returns (message, hint) without their prefixes."""
    err = result.stderr
    assert result.returncode == status, f"exit {result.returncode}, expected {status}; stderr:\n{err}"
    assert "Traceback" not in err, err
    lines = err.splitlines()
    idx = [i for i, line in enumerate(lines) if line.startswith("acs: error: ")]
    assert idx, f"no line starting 'acs: error: ' on stderr:\n{err}"
    i = idx[0]
    assert i + 1 < len(lines) and lines[i + 1].startswith("hint: "), f"no 'hint: ' line after the error line:\n{err}"
    return lines[i][len("acs: error: ") :], lines[i + 1][len("hint: ") :]


def closed_port() -> int:
    """A loopback TCP port nobody listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ignore(signum: int, frame: object) -> None:
    pass


@contextlib.contextmanager
def sigint_default_in_children() -> Iterator[None]:
    """Children inherit an *ignored* SIGINT, SIGHUP or SIGTERM (pytest started as a background job
    `cmd &` by a non-interactive shell has SIGINT ignored, under `nohup` SIGHUP), and then the
    signal tests would test nothing. A caught signal is reset to the default by exec, so while a
    child starts, catch them here (SIGINT as Python does; the others with a handler that ignores)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    ignored = [s for s in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM) if signal.getsignal(s) is signal.SIG_IGN]
    for signum in ignored:
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else _ignore)
    try:
        yield
    finally:
        for signum in ignored:
            signal.signal(signum, signal.SIG_IGN)


def read_until_eof(fd: int, on_data) -> None:
    """Call on_data with every read from fd until EOF (or EIO: a pty whose other side closed)."""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            return
        if not data:
            return
        on_data(data)


def first_arrival(reads: list[tuple[float, bytes]], needle: bytes) -> float | None:
    """When the (time, bytes) reads, joined in order, first contained needle."""
    seen = b""
    for t, d in reads:
        seen += d
        if needle in seen:
            return t
    return None


class LoopbackListener:
    """A TCP listener on 127.0.0.1 (a free port) whose accept loop runs in a thread and hands each
    connection to `handle`, inline or, with `threaded = True`, in a thread of its own. Subclasses
    set what `handle` needs before calling this __init__, since connections may come at once."""

    threaded = False
    scheme = "http"

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self.base_url = f"{self.scheme}://127.0.0.1:{self.port}/v1"
        self._stop = threading.Event()
        self._handlers: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.threaded:
                t = threading.Thread(target=self.handle, args=(conn,), daemon=True)
                self._handlers.append(t)
                t.start()
            else:
                self.handle(conn)

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()
        for t in self._handlers:
            t.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_request(conn: socket.socket) -> bytes:
    """The whole request (head and its Content-Length body), so closing sends FIN, not RST."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            return data
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        more = conn.recv(65536)
        if not more:
            break
        body += more
    return data


class ExactAnswers(LoopbackListener):
    """Answers every connection with `parts`, exact bytes, `pause` seconds apart, after reading the
    whole request (whole=False: one read, for a TLS hello, which has no head); then waits `linger`
    seconds and closes. Counts the connections (`accepted`)."""

    threaded = True

    def __init__(self, *parts: bytes, pause: float = 0.0, whole: bool = True, linger: float = 0.0) -> None:
        self.parts = parts
        self.pause = pause
        self.whole = whole
        self.linger = linger
        self.accepted = 0
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        self.accepted += 1
        with conn:
            conn.settimeout(10)
            try:
                read_request(conn) if self.whole else conn.recv(65536)
                for i, part in enumerate(self.parts):
                    if i:
                        time.sleep(self.pause)
                    conn.sendall(part)
                time.sleep(self.linger)
            except OSError:
                pass


class ClosingListener(LoopbackListener):
    """A loopback TCP listener that accepts each connection and closes it at once, before any
    answer (what a crashing server or a resetting proxy looks like). Counts the connections."""

    def __init__(self, reset: bool = True) -> None:
        self.accepted = 0
        self._reset = reset
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        import struct

        self.accepted += 1
        try:
            conn.settimeout(1)
            try:
                conn.recv(65536)  # let the request arrive, then drop it unanswered
            except OSError:
                pass
            if self._reset:  # RST instead of FIN
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        finally:
            conn.close()


class Streaming:
    """A running `python -m acs_cli ARGS` whose stdout (and stderr) are read by threads as the
    bytes arrive, each read stamped with time.monotonic(). Always use as a context manager: the
    process is killed (by its own pid) on exit if it is still running."""

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str | None] | None = None,
        *,
        stdin: int | None = subprocess.DEVNULL,
    ) -> None:
        self._home = tempfile.TemporaryDirectory(prefix="acs-home-")
        with sigint_default_in_children():
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "acs_cli", *args],
                env=acs_env(env, self._home.name),
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self._home.name,
            )
        self.out_reads: list[tuple[float, bytes]] = []
        self.err_reads: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.out_reads), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.err_reads), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _pump(self, pipe, sink: list) -> None:
        def keep(data: bytes) -> None:
            with self._lock:
                sink.append((time.monotonic(), data))

        read_until_eof(pipe.fileno(), keep)

    @property
    def stdout(self) -> bytes:
        with self._lock:
            return b"".join(d for _, d in self.out_reads)

    @property
    def stderr(self) -> bytes:
        with self._lock:
            return b"".join(d for _, d in self.err_reads)

    def first_time(self, needle: bytes) -> float | None:
        """When the stdout bytes read so far first contained `needle`."""
        with self._lock:
            return first_arrival(list(self.out_reads), needle)

    def wait_for_stdout(self, needle: bytes, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.stdout:
                return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        return needle in self.stdout

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def wait(self, timeout: float) -> int:
        rc = self.proc.wait(timeout)
        for t in self._threads:
            t.join(5)
        return rc

    def __enter__(self) -> Streaming:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for t in self._threads:
            t.join(5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        self._home.cleanup()


__all__ = [
    "COMPLETIONS",
    "KEY",
    "MODELS",
    "REPO_ROOT",
    "ClosingListener",
    "Streaming",
    "assert_failure",
    "choices_reply",
    "closed_port",
    "env_for",
    "frames",
    "sigint_default_in_children",
    "text_reply",
]
