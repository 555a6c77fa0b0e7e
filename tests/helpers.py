"""Run `acs` with a clean, predictable environment: in-process through a test Terminal
(`run_acs`, for output shapes, messages and exit statuses) or as a real subprocess
(`run_acs_process`, for what needs a process: start-up, imports, packaging, signals, pipes)."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Variables every run gets (before the caller's `env`). This is THE place to change the
# environment a test process sees. Anything not listed here, in PASSTHROUGH_ENV, or given by the
# caller is absent: no ACS_*, no NO_COLOR/FORCE_COLOR, no proxies, no OPENAI_* from the developer.
DEFAULT_ENV: dict[str, str] = {
    "TERM": "dumb",
    "LC_ALL": "C.UTF-8",
    "LANG": "C.UTF-8",
    "PYTHONPATH": str(REPO_ROOT),  # so `python -m acs_cli` works without an install
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "NO_PROXY": "127.0.0.1,localhost",  # never send loopback test traffic through a proxy
    "COLUMNS": "80",
}
# Copied from the test runner's own environment when set.
PASSTHROUGH_ENV: tuple[str, ...] = ("PATH", "SYSTEMROOT", "TMPDIR")


def acs_env(env: Mapping[str, str | None] | None = None, home: str | os.PathLike | None = None) -> dict[str, str]:
    """The environment run_acs uses. In ``env``, a value of None removes that variable."""
    out = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
    out.update(DEFAULT_ENV)
    if home is not None:
        out["HOME"] = str(home)
    for k, v in (env or {}).items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def run_acs_process(
    args: Sequence[str],
    env: Mapping[str, str | None] | None = None,
    input: str | bytes | None = None,
    timeout: float = 30,
    *,
    home: str | os.PathLike | None = None,
    cwd: str | os.PathLike | None = None,
) -> subprocess.CompletedProcess:
    """Run ``python -m acs_cli *args`` and wait for it.

    HOME is a fresh empty temporary directory (removed afterwards) unless ``home`` is given;
    cwd defaults to that HOME too, so no project config from the developer's directory leaks in.
    Returns a CompletedProcess whose ``stdout``/``stderr`` are str (UTF-8, invalid bytes
    replaced) with the exact bytes in ``stdout_bytes``/``stderr_bytes``.
    Raises subprocess.TimeoutExpired (after killing the process) when ``timeout`` passes.
    """
    data = input.encode("utf-8") if isinstance(input, str) else input
    with tempfile.TemporaryDirectory(prefix="acs-home-") as tmp_home:
        the_home = home if home is not None else tmp_home
        proc = subprocess.run(
            [sys.executable, "-m", "acs_cli", *args],
            env=acs_env(env, the_home),
            input=data,
            stdin=subprocess.DEVNULL if data is None else None,
            capture_output=True,
            timeout=timeout,
            cwd=cwd if cwd is not None else the_home,
        )
    return completed(proc.args, proc.returncode, proc.stdout, proc.stderr)


def completed(args: object, code: int, stdout: bytes, stderr: bytes) -> subprocess.CompletedProcess:
    """A CompletedProcess with str `stdout`/`stderr` (UTF-8, invalid bytes replaced) and the exact
    bytes in `stdout_bytes`/`stderr_bytes`."""
    result = subprocess.CompletedProcess(args, code, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"))
    result.stdout_bytes = stdout  # type: ignore[attr-defined]
    result.stderr_bytes = stderr  # type: ignore[attr-defined]
    return result


class InProcessTimeout(BaseException):
    """run_acs's time limit passed (a BaseException, so acs's own handlers cannot swallow it)."""


@contextlib.contextmanager
def _process_state(env: Mapping[str, str], cwd: str | os.PathLike, out: io.BytesIO, err: io.BytesIO, timeout: float) -> Iterator[None]:
    """What a fresh process would have: this environment, this cwd, sys.stdout/stderr on the
    captured buffers (Click prints its help there), default signal handlers, and a time limit."""
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_streams = (sys.stdout, sys.stderr, sys.stdin)
    saved_alarm = signal.getsignal(signal.SIGALRM)

    def expire(signum: int, frame: object) -> None:
        raise InProcessTimeout(f"acs did not finish within {timeout} s")

    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.stdout = io.TextIOWrapper(out, encoding="utf-8", errors="replace", write_through=True)
    sys.stderr = io.TextIOWrapper(err, encoding="utf-8", errors="replace", write_through=True)
    sys.stdin = io.TextIOWrapper(io.BytesIO(b""), encoding="utf-8")
    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, saved_alarm)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
            stream.detach()
        sys.stdout, sys.stderr, sys.stdin = saved_streams
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def run_acs(
    args: Sequence[str],
    env: Mapping[str, str | None] | None = None,
    input: str | bytes | None = None,
    timeout: float = 30,
    *,
    home: str | os.PathLike | None = None,
    cwd: str | os.PathLike | None = None,
    stdout_tty: bool = False,
    stderr_tty: bool = False,
    stdin_tty: bool = False,
) -> subprocess.CompletedProcess:
    """Run acs in this process, as `run_acs_process` runs it in a child: the same environment
    (acs_env), HOME and cwd, stdin from ``input`` (else empty), and a CompletedProcess back with
    ``stdout``/``stderr`` as str and the exact bytes in ``stdout_bytes``/``stderr_bytes``.
    stdout, stderr and stdin are not terminals unless the *_tty flags say so."""
    from acs_cli.__main__ import main
    from acs_cli.terminal import Terminal

    data = input.encode("utf-8") if isinstance(input, str) else input
    with tempfile.TemporaryDirectory(prefix="acs-home-") as tmp_home:
        the_home = home if home is not None else tmp_home
        environ = acs_env(env, the_home)
        term = Terminal.for_test(
            data if data is not None else b"",
            stdin_tty=stdin_tty,
            stdout_tty=stdout_tty,
            stderr_tty=stderr_tty,
            env=environ,
            width=int(environ.get("COLUMNS", "80")),
        )
        assert term.buffers is not None
        out, err = term.buffers
        with _process_state(environ, cwd if cwd is not None else the_home, out, err, timeout):
            code = main(list(args), term)
        stdout, stderr = term.captured()
    return completed(["acs", *args], code, stdout, stderr)
