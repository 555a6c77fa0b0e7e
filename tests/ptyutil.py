"""Run `acs` on a pseudo-terminal, as a person at a terminal would, and record what it draws.

`PtyRun` starts `python -m acs_cli ARGS` with stdout and stderr (and, by default, stdin) on the
slave side of a fresh pty sized 24x80, in a session of its own (so a signal to its process group
is what a terminal's Ctrl-C does). A thread reads the master side; every read is kept with its
time.monotonic() stamp, so a test can tell *when* something appeared, not only that it did.
Always use it as a context manager: the process is killed (by its own pid) if it still runs.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Mapping, Sequence

from tests.cliutil import first_arrival, read_until_eof, sigint_default_in_children
from tests.helpers import acs_env

SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
HIDE_CURSOR = b"\x1b[?25l"
SHOW_CURSOR = b"\x1b[?25h"
_SGR = re.compile(rb"\x1b\[([0-9;]*)m")


def open_pty(rows: int = 24, cols: int = 80) -> tuple[int, int]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    return master, slave


class PtyRun:
    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str | None] | None = None,
        *,
        stdin_tty: bool = True,
        input: bytes | None = None,
        term: str = "xterm-256color",
    ) -> None:
        self._home = tempfile.TemporaryDirectory(prefix="acs-home-")
        self.master, slave = open_pty()
        merged: dict[str, str | None] = {"TERM": term}
        merged.update(env or {})
        if stdin_tty:
            stdin: int | None = slave
        elif input is not None:
            stdin = subprocess.PIPE
        else:
            stdin = subprocess.DEVNULL
        with sigint_default_in_children():
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "acs_cli", *args],
                env=acs_env(merged, self._home.name),
                stdin=stdin,
                stdout=slave,
                stderr=slave,
                cwd=self._home.name,
                start_new_session=True,
            )
        os.close(slave)
        if stdin == subprocess.PIPE:
            assert self.proc.stdin is not None
            self.proc.stdin.write(input or b"")
            self.proc.stdin.close()
        self.reads: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        def keep(data: bytes) -> None:
            with self._lock:
                self.reads.append((time.monotonic(), data))

        read_until_eof(self.master, keep)  # ends with EIO once every process closed the slave side

    @property
    def output(self) -> bytes:
        with self._lock:
            return b"".join(d for _, d in self.reads)

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace")

    def first_time(self, needle: bytes) -> float | None:
        with self._lock:
            return first_arrival(list(self.reads), needle)

    def wait_for(self, needle: bytes, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.output:
                return True
            if self.proc.poll() is not None:
                time.sleep(0.05)
                return needle in self.output
            time.sleep(0.01)
        return needle in self.output

    def ctrl_c(self) -> None:
        """What the terminal does on Ctrl-C: SIGINT to the foreground process group."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def wait(self, timeout: float = 30) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(5)  # the reader ends at EIO once the child is gone
        return rc

    def __enter__(self) -> PtyRun:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        try:
            os.close(self.master)
        except OSError:
            pass
        self._reader.join(5)
        self._home.cleanup()


def sgr_params(output: bytes) -> list[str]:
    """The parameter strings of every SGR sequence (ESC [ … m) in the output."""
    return [m.group(1).decode() for m in _SGR.finditer(output)]


def colour_sgr(output: bytes) -> list[str]:
    """SGR sequences that set a colour (30-49, 90-107, 38/48 extended), as parameter strings."""
    found = []
    for params in sgr_params(output):
        codes = [int(p) for p in params.split(";") if p.isdigit()]
        if any(30 <= c <= 49 or 90 <= c <= 107 for c in codes):
            found.append(params)
    return found


def strip_ansi(output: bytes) -> bytes:
    """The output without CSI and OSC sequences (for reading the text a person sees)."""
    out = re.sub(rb"\x1b\[[0-9;?]*[ -/]*[@-~]", b"", output)
    out = re.sub(rb"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)", b"", out)
    return out
